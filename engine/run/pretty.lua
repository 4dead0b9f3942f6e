-- Pretty printer for values printed by `halo eval`, `halo exec` and the
-- REPL: tables nested and sorted, cycles marked, json.null as null,
-- secrets as *** (redacted before quoting, which would disguise them).
local internal = ...
local redact = internal and internal.redact or function(s) return s end
local json = require "json"
local format, rep, concat, sort, tostring, type, pairs = string.format, string.rep, table.concat, table.sort, tostring, type, pairs
-- never string methods: the string metatable is the state's to change
local match, gmatch, gsub, find = string.match, string.gmatch, string.gsub, string.find
local math_type = math.type

local KEYWORDS = {}
for w in gmatch("and break do else elseif end false for function goto if in local nil not or repeat return then true until while", "%a+") do
  KEYWORDS[w] = true
end

local function is_identifier(k)
  return type(k) == "string" and match(k, "^[%a_][%w_]*$") ~= nil and not KEYWORDS[k]
end

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta == "number" end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function scalar(v)
  if v == json.null then return "null" end
  local t = type(v)
  if t == "string" then return (gsub(format("%q", redact(v)), "\\\n", "\\n")) end
  if t == "number" and math_type(v) == "float" and v == v and v ~= math.huge and v ~= -math.huge then
    return find(format("%.17g", v), "[%.eEn]") and format("%.17g", v) or format("%.1f", v)
  end
  return tostring(v)
end

local function render(v, indent, seen, out)
  if type(v) ~= "table" then
    out[#out + 1] = scalar(v)
    return
  end
  if seen[v] then
    out[#out + 1] = "<cycle>"
    return
  end
  local mt = getmetatable(v)
  if mt and mt.__tostring then
    out[#out + 1] = tostring(v)
    return
  end
  seen[v] = true
  local n = #v
  local keys = {}
  for k in pairs(v) do
    if not (math_type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  sort(keys, key_order)
  if n == 0 and #keys == 0 then
    out[#out + 1] = "{}"
    seen[v] = nil
    return
  end
  local pad = rep("  ", indent + 1)
  out[#out + 1] = "{\n"
  for i = 1, n do
    out[#out + 1] = pad
    render(v[i], indent + 1, seen, out)
    out[#out + 1] = ",\n"
  end
  for _, k in ipairs(keys) do
    out[#out + 1] = pad
    out[#out + 1] = is_identifier(k) and k or "[" .. scalar(k) .. "]"
    out[#out + 1] = " = "
    render(v[k], indent + 1, seen, out)
    out[#out + 1] = ",\n"
  end
  out[#out + 1] = rep("  ", indent) .. "}"
  seen[v] = nil
end

-- pretty(value [, top]) -> text; top-level strings print as themselves.
return function(v, top)
  if top and type(v) == "string" then return redact(v) end
  local out = {}
  render(v, 0, {}, out)
  return concat(out)
end
