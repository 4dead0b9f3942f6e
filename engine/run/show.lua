-- How the REPL, `halo eval` and `halo exec` show values to an operator:
-- an HTTP response as its status line, headers and body (pretty JSON when
-- it is JSON, cut when long), SQL rows (query's rows, columns) as an
-- aligned table, anything else through pretty.lua (tables nested and
-- sorted, cycles marked, json.null as null). Every line is redacted, so a
-- secret shows as ***.
--   render(results [, together]) -> text for a packed list of values ({ n = ..., ... })
local internal, pretty = ...
local json = require "json"

local format, rep, concat, sort, type, tostring, pairs, ipairs = string.format, string.rep, table.concat,
  table.sort, type, tostring, pairs, ipairs
local redact = internal.redact
-- never string methods: the string metatable is the session's to change
local sub, find, gsub = string.sub, string.find, string.gsub

local BODY_MAX = 4000    -- characters of a body shown before it is cut
local CELL_MAX = 60      -- characters of one SQL cell

local M = {}

---------------------------------------------------------------- JSON

local function json_scalar(v)
  if v == json.null then return "null" end
  if type(v) == "string" then return json.encode(v) end
  return tostring(v)
end

local function is_array(t)
  local n = #t
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then return false end
  end
  return true
end

-- JSON indented two spaces, keys sorted: a body as a person reads it.
local function json_pretty(v, indent, out)
  if type(v) ~= "table" then
    out[#out + 1] = json_scalar(v)
    return
  end
  local pad, inner = rep("  ", indent), rep("  ", indent + 1)
  if is_array(v) then
    if #v == 0 then out[#out + 1] = "[]" return end
    out[#out + 1] = "[\n"
    for i, item in ipairs(v) do
      out[#out + 1] = inner
      json_pretty(item, indent + 1, out)
      out[#out + 1] = i < #v and ",\n" or "\n"
    end
    out[#out + 1] = pad .. "]"
    return
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  sort(keys)
  if #keys == 0 then out[#out + 1] = "{}" return end
  out[#out + 1] = "{\n"
  for i, k in ipairs(keys) do
    out[#out + 1] = inner .. json.encode(k) .. ": "
    json_pretty(v[k], indent + 1, out)
    out[#out + 1] = i < #keys and ",\n" or "\n"
  end
  out[#out + 1] = pad .. "}"
end

---------------------------------------------------------------- HTTP

local function cut(text, max, what)
  if #text <= max then return text end
  return sub(text, 1, max) .. format("\n… (%d more %s)", #text - max, what)
end

local function printable(s)
  return not find(s, "[%z\1-\8\14-\31]") and utf8.len(s) ~= nil
end

local function response_text(res)
  local out = {}
  local timing = res.timing
  local took = type(timing) == "table" and timing.total and format("%.3f s, ", timing.total) or ""
  out[#out + 1] = format("HTTP %s  (%s%s %s)", tostring(res.status), took, tostring(res.method), tostring(res.url))
  local names = {}
  for name in pairs(res.headers or {}) do names[#names + 1] = name end
  sort(names)
  for _, name in ipairs(names) do out[#out + 1] = name .. ": " .. tostring(res.headers[name]) end
  local body = res.body or ""
  if body ~= "" then
    out[#out + 1] = ""
    local doc = json.decode(body)
    if type(doc) == "table" then
      local parts = {}
      json_pretty(doc, 0, parts)
      out[#out + 1] = cut(concat(parts), BODY_MAX, "characters")
    elseif printable(body) then
      out[#out + 1] = cut(body, BODY_MAX, "bytes")
    else
      out[#out + 1] = format("<%d bytes of %s>", #body, tostring(res.headers and res.headers["content-type"] or "binary data"))
    end
  end
  return concat(out, "\n")
end

---------------------------------------------------------------- SQL

-- conn:query returns rows and the column names: shown as psql would.
local function is_rows(rows, columns)
  if type(rows) ~= "table" or type(columns) ~= "table" or #columns == 0 then return false end
  for _, c in ipairs(columns) do if type(c) ~= "string" then return false end end
  for _, r in ipairs(rows) do if type(r) ~= "table" then return false end end
  return true
end

local function cell(v)
  local s
  if v == nil or v == json.null then s = "null"
  elseif type(v) == "table" then s = json.encode(v)
  else s = tostring(v) end
  s = gsub(s, "[\r\n\t]", " ")
  if utf8.len(s) and utf8.len(s) > CELL_MAX then s = sub(s, 1, utf8.offset(s, CELL_MAX) - 1) .. "…" end
  return s
end

local function width(s) return utf8.len(s) or #s end

local function rows_text(rows, columns)
  local cells, widths = {}, {}
  for i, c in ipairs(columns) do widths[i] = width(c) end
  for r, row in ipairs(rows) do
    cells[r] = {}
    for i, c in ipairs(columns) do
      local text = cell(row[c])
      cells[r][i] = text
      if width(text) > widths[i] then widths[i] = width(text) end
    end
  end
  local function line(values, is_number)
    local parts = {}
    for i, v in ipairs(values) do
      local padding = rep(" ", widths[i] - width(v))
      parts[i] = " " .. (is_number and is_number[i] and padding .. v or v .. padding) .. " "
    end
    return (gsub(concat(parts, "|"), "%s+$", ""))
  end
  local numeric = {}
  for i, c in ipairs(columns) do
    numeric[i] = #rows > 0
    for _, row in ipairs(rows) do
      if type(row[c]) ~= "number" then numeric[i] = false break end
    end
  end
  local out = { line(columns) }
  local rule = {}
  for i = 1, #columns do rule[i] = rep("-", widths[i] + 2) end
  out[#out + 1] = concat(rule, "+")
  for r = 1, #rows do out[#out + 1] = line(cells[r], numeric) end
  out[#out + 1] = format("(%d row%s)", #rows, #rows == 1 and "" or "s")
  return concat(out, "\n")
end

---------------------------------------------------------------- values

function M.value(v)
  if internal.kind(v) == "http.response" then return response_text(v) end
  return pretty(v, true)
end

-- together: several one-line values on one line, tab-separated, as lua.c
-- prints them (the REPL, show()); else one a line (eval and exec, whose
-- output scripts read line by line)
function M.render(results, together)
  local n = results.n or #results
  if n == 2 and is_rows(results[1], results[2]) then return redact(rows_text(results[1], results[2])) end
  local out, one_line = {}, together
  for i = 1, n do
    out[i] = M.value(results[i])
    one_line = one_line and not find(out[i], "\n", 1, true)
  end
  return redact(concat(out, one_line and "\t" or "\n"))
end

return M
