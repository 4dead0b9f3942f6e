-- Unit tests of the json module as a script sees it: round trips, the null
-- sentinel, invalid text as data (nil, err), misuse raising.
-- Run: build/halo exec --lib tests/lua/lib tests/lua/test_json.lua  (an error = a failure)

local unit = require "unit"
local test, eq, raises = unit.test, unit.eq, unit.raises

test("json is the module require returns", function()
  assert(rawequal(json, require "json"), "the json global is not require 'json'")
  for _, k in ipairs({ "encode", "decode" }) do eq(type(json[k]), "function", "json." .. k) end
  eq(type(json.null), "userdata", "json.null")
end)

test("scalars encode as JSON", function()
  eq(json.encode(1), "1", "integer")
  eq(json.encode(-2.5), "-2.5", "float")
  eq(json.encode(true), "true", "true")
  eq(json.encode(false), "false", "false")
  eq(json.encode("a\"b\\c\n"), [["a\"b\\c\n"]], "escaped string")
  eq(json.encode(json.null), "null", "null")
end)

test("a nested value survives a round trip", function()
  local v = {
    name = "halo ✓", list = { 1, 2.5, "three", false }, nested = { deeper = { n = -7 } },
    slash = "a/b", quote = "say \"hi\"", control = "tab\there",
  }
  local back = json.decode(json.encode(v))
  eq(back.name, v.name, "utf-8 string")
  eq(#back.list, 4, "array length")
  eq(back.list[2], 2.5, "float in array")
  eq(back.list[3], "three", "string in array")
  eq(back.list[4], false, "false in array")
  eq(back.nested.deeper.n, -7, "nested number")
  eq(back.slash, "a/b", "slash")
  eq(back.quote, v.quote, "quotes")
  eq(back.control, v.control, "tab")
end)

test("decode gives the JSON types", function()
  local v = json.decode('{"a": [1, 2, {"b": "c"}], "n": 1.5, "t": true, "s": "x"}')
  eq(v.a[3].b, "c", "nested object")
  eq(v.n, 1.5, "number")
  eq(v.t, true, "boolean")
  -- Debian's lua-cjson decodes every number as a float: 3 comes back 3.0,
  -- equal to 3 but printed "3.0" by tostring.
  eq(json.decode("[3]")[1], 3, "integer value")
end)

test("null is one sentinel both ways", function()
  assert(json.decode("null") == json.null, "decode('null') is not json.null")
  local v = json.decode('{"a": null, "b": [null, 1]}')
  assert(v.a == json.null, "null member is not json.null")
  assert(v.b[1] == json.null, "null element is not json.null")
  eq(#v.b, 2, "an array with a null keeps its length")
  eq(json.encode({ a = json.null }), '{"a":null}', "encode of a null member")
  eq(json.encode({ json.null, 1 }), "[null,1]", "encode of a null element")
end)

test("arrays with holes encode with nulls", function()
  eq(json.encode({ 1, nil, 3 }), "[1,null,3]", "sparse array")
end)

test("invalid text returns nil and an error of kind json, it does not raise", function()
  for _, text in ipairs({ "{bad", "", "[1,", "nul", "{\"a\" 1}", "1 2" }) do
    local v, err = json.decode(text)
    eq(v, nil, "value for '" .. text .. "'")
    eq(type(err), "table", "error type for '" .. text .. "'")
    eq(err.kind, "json", "err.kind for '" .. text .. "'")
    assert(err.message:find("^json: .+"), "message for '" .. text .. "': " .. tostring(err.message))
    eq(tostring(err), err.message, "tostring(err)")
  end
end)

test("decode of a non-string raises a bad argument", function()
  raises("bad argument #1", json.decode)
  raises("bad argument #1", json.decode, {})
end)

test("encode of a function or a task raises", function()
  raises("Cannot serialise function", json.encode, print)
  raises("Cannot serialise function", json.encode, { f = print })
  local h = task.spawn(function() end)
  raises("Cannot serialise", json.encode, h)
  h:join()
end)

test("encode of a cycle raises instead of looping", function()
  local t = {}
  t.self = t
  raises("excessive nesting", json.encode, t)
end)

test("numbers that JSON cannot hold raise", function()
  raises("Cannot serialise number", json.encode, 0 / 0)
  raises("Cannot serialise number", json.encode, math.huge)
end)

test("integral numbers decode as integers, at every depth", function()
  local v = json.decode('{"n": 3, "f": 2.5, "list": [1, 2.0, -7, {"restarts": 0}], "big": 1e300, "s": "3"}')
  eq(math.type(v.n), "integer", "n")
  eq(string.format("%s templates", v.n), "3 templates", "as a message reads it")
  eq(math.type(v.f), "float", "2.5 stays a float")
  eq(math.type(v.list[1]), "integer", "list[1]")
  eq(math.type(v.list[2]), "integer", "2.0 is integral")
  eq(v.list[3], -7, "a negative")
  eq(tostring(v.list[4].restarts), "0", "nested in an array")
  eq(math.type(v.big), "float", "1e300 does not fit")
  eq(v.s, "3", "a string stays a string")
  eq(math.type(json.decode("42")), "integer", "a bare number")
  eq(math.type(json.decode("9007199254740992")), "integer", "2^53 still exact")
  eq(math.type(json.decode("18014398509481984")), "float", "2^54: a double does not hold every such integer")
end)

unit.finish("test_json")
