-- expect: PASS
-- Every route to the string metatable reaches the state's own, as in plain
-- Lua: getmetatable on strings of all kinds, rawset, a loaded chunk; a
-- string still cannot be given another metatable, and other types have none.
return {
  title = "the string metatable is the check's own",
  timeout = 2,
  run = function(t)
    local mt = getmetatable("")
    for _, s in ipairs { "", "x", string.rep("y", 100), "\0" } do
      t:expect(getmetatable(s) == mt, "getmetatable(%q) gave another table", s:sub(1, 5))
    end
    t:expect(mt.__index == string, "its __index is not the string table")
    t:expect(not pcall(setmetatable, "", {}), "setmetatable on a string was accepted")
    t:expect(pcall(rawset, mt, "__index", string), "rawset on the check's own string metatable was refused")
    t:expect(load("return getmetatable('')")() == mt, "a loaded chunk sees another string metatable")
    t:expect(getmetatable(1) == nil and getmetatable(print) == nil and getmetatable(true) == nil,
             "another type has a metatable")
    t:expect(("abc"):upper() == "ABC" and ("").upper == string.upper, "string methods are not the string table's")
  end,
}
