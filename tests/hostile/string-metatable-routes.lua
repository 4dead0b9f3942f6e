-- expect: PASS
-- Every route to the string metatable: getmetatable on strings of all
-- kinds, setmetatable and rawset on a string, a loaded chunk, the
-- metatable of a number. Each is refused or gives false; the string
-- methods still come from the (check's own) string table.
return {
  title = "the string metatable stays the host's",
  timeout = 2,
  run = function(t)
    for _, s in ipairs { "", "x", string.rep("y", 100), "\0" } do
      t:expect(getmetatable(s) == false, "getmetatable(%q) gave %s", s:sub(1, 5), tostring(getmetatable(s)))
    end
    t:expect(not pcall(setmetatable, "", {}), "setmetatable on a string was accepted")
    t:expect(not pcall(rawset, getmetatable(""), "__index", {}), "rawset on the string metatable was accepted")
    t:expect(load("return getmetatable('')")() == false, "a loaded chunk sees the string metatable")
    t:expect(getmetatable(1) == nil and getmetatable(print) == nil and getmetatable(true) == nil,
             "another type has a metatable")
    t:expect(("abc"):upper() == "ABC" and ("").upper == string.upper, "string methods are not the string table's")
  end,
}
