-- What the parts of the HTML report (report/html.lua, html_timeline.lua,
-- html_chart.lua) share: text made safe for XHTML, values as text, the key
-- order of the JSON report's objects, axis steps and the marks' shapes.
--   require "html_util" -> the table M below
local json = require "json"

local format, concat, sort, floor = string.format, table.concat, table.sort, math.floor
local type, tostring, pairs, ipairs, pcall = type, tostring, pairs, ipairs, pcall
local null = json.null

local M = { null = null }

M.CHAR_PX = 6.8 -- a 12 px sans-serif character, roughly

function M.log10(x) return math.log(x, 10) end

---------------------------------------------------------------- text

-- XML has no place for invalid UTF-8 or most control characters.
local function clean(s)
  s = tostring(s)
  if not utf8.len(s) then
    local parts, i = {}, 1
    while i <= #s do
      local ok_to, bad = utf8.len(s, i)
      if ok_to then
        parts[#parts + 1] = s:sub(i)
        break
      end
      parts[#parts + 1] = s:sub(i, bad - 1) .. "\u{FFFD}"
      i = bad + 1
    end
    s = concat(parts)
  end
  -- control characters, and U+FFFE/U+FFFF, are not characters XML 1.0 allows
  s = s:gsub("[\0-\8\11\12\14-\31\127]", "\u{FFFD}")
  return (s:gsub("\xEF\xBF[\xBE\xBF]", "\u{FFFD}"))
end

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }

-- Text or an attribute value, escaped for XML and HTML alike.
function M.esc(s)
  return (clean(s):gsub('[&<>"]', ESCAPES))
end

function M.is_null(v) return v == nil or v == null end

function M.seconds(s) return format("%.2f s", s) end

function M.latency_text(s)
  if s < 1 then return format("%.1f ms", s * 1000) end
  return format("%.2f s", s)
end

-- Numbers as the JSON had them (every decoded number is a float here).
function M.number_text(v)
  if v == floor(v) and v > -1e15 and v < 1e15 then return format("%d", v) end
  return format("%.14g", v)
end

function M.scalar_text(v)
  if M.is_null(v) then return "null" end
  if type(v) == "number" then return M.number_text(v) end
  return tostring(v)
end

-- A value usable as an XML id.
function M.id_of(v)
  return (clean(M.scalar_text(v)):gsub("[^%w_.-]", "_"))
end

function M.is_array(t)
  local n = #t
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n then return false end
  end
  return n > 0
end

---------------------------------------------------------------- key order

-- A decoded JSON object has lost its key order, yet the evidence and the
-- facts read best in the order the check (and halo) wrote them. The JSON
-- report has no whitespace, so the order is read back from its text.

local function skip_string(text, pos) -- pos: the opening quote
  local i = pos + 1
  while true do
    local q = assert(text:find('["\\]', i))
    if text:byte(q) == 34 then return q + 1 end
    i = q + 2
  end
end

local function skip_value(text, pos)
  local c = text:byte(pos)
  if c == 34 then return skip_string(text, pos) end
  if c ~= 123 and c ~= 91 then return assert(text:find("[,}%]]", pos)) end
  local depth, i = 0, pos
  while true do
    local j = assert(text:find('[][{}"]', i))
    local b = text:byte(j)
    if b == 34 then
      i = skip_string(text, j)
    else
      depth = depth + ((b == 123 or b == 91) and 1 or -1)
      i = j + 1
      if depth == 0 then return i end
    end
  end
end

-- The keys of the object at pos ('{'), in order; and the position after it.
local function object_keys(text, pos)
  local keys, i = {}, pos + 1
  while text:byte(i) == 34 do
    local after = skip_string(text, i)
    keys[#keys + 1] = json.decode(text:sub(i, after - 1))
    i = skip_value(text, after + 1)
    if text:byte(i) == 44 then i = i + 1 end
  end
  return keys, i + 1
end

-- The keys of t: those in `order` first, as they come there, then the rest sorted.
function M.ordered_keys(t, order)
  local keys, seen = {}, {}
  for _, k in ipairs(order or {}) do
    if t[k] ~= nil and not seen[k] then
      keys[#keys + 1], seen[k] = k, true
    end
  end
  local rest = {}
  for k in pairs(t) do
    if not seen[k] then rest[#rest + 1] = tostring(k) end
  end
  sort(rest)
  for _, k in ipairs(rest) do keys[#keys + 1] = k end
  return keys
end

-- Each check's evidence keys, in the order the check recorded them, by
-- check index: engine/report/html.c hands them over as the global
-- evidence_keys, built from the result model, so nothing is read back
-- from the JSON text.
function M.evidence_orders(_, nchecks)
  local orders = {}
  for i = 1, nchecks do
    local keys = type(evidence_keys) == "table" and evidence_keys[i]
    orders[i] = type(keys) == "table" and keys or nil
  end
  return orders
end

-- The md entry's order for what halo detected; images and anything else follow.
local FACT_ORDER = { ["App version"] = 1, PostgreSQL = 2, Docker = 3 }

-- The run's facts in the md entry's order: known ones first, the rest as written.
function M.fact_keys(text, facts)
  local last, pos = nil, 1
  while true do
    local at = text:find('"facts":{', pos, true)
    if not at then break end
    last, pos = at, at + 1
  end
  local written = {}
  if last then
    local ok, keys = pcall(object_keys, text, last + #'"facts":')
    if ok then written = keys end -- else no order to follow: sorted, then
  end
  local rank = {}
  for i, k in ipairs(written) do rank[k] = (FACT_ORDER[k] or 100) * 1e6 + i end
  local keys = M.ordered_keys(facts, written)
  sort(keys, function(a, b) return (rank[a] or 1e12) < (rank[b] or 1e12) end)
  return keys
end

---------------------------------------------------------------- drawing

-- 1, 2 or 5 times a power of ten: about `n` steps across `span`.
function M.nice_step(span, n)
  local raw = span / n
  local p = 10 ^ floor(M.log10(raw))
  for _, m in ipairs({ 1, 2, 5 }) do
    if raw <= m * p then return m * p end
  end
  return 10 * p
end

-- The SVG element of one shape centred on x, y ("circle", "square",
-- "triangle", "diamond", "cross"; "tick" a bar 4 wide, 20 high), with a
-- class and a <title> (already escaped) when given.
function M.shape(kind, x, y, class, title)
  local body = title and ("<title>" .. title .. "</title>") or ""
  local cls = class and format(' class="%s"', class) or ""
  if kind == "circle" then
    return format('<circle%s cx="%.1f" cy="%.1f" r="3.5">%s</circle>', cls, x, y, body)
  elseif kind == "square" then
    return format('<rect%s x="%.1f" y="%.1f" width="7" height="7">%s</rect>', cls, x - 3.5, y - 3.5, body)
  elseif kind == "triangle" then
    return format('<path%s d="M%.1f %.1fl4.5 8h-9z">%s</path>', cls, x, y - 4.5, body)
  elseif kind == "diamond" then
    return format('<path%s d="M%.1f %.1fl5 5-5 5-5-5z">%s</path>', cls, x, y - 5, body)
  elseif kind == "tick" then
    return format('<rect%s x="%.1f" y="%.1f" width="4" height="20">%s</rect>', cls, x - 2, y - 10, body)
  end
  return format('<path%s d="M%.1f %.1fl8 8m0-8l-8 8">%s</path>', cls, x - 4, y - 4, body) -- cross
end

return M
