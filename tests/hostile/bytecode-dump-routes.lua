-- expect: PASS
-- string.dump is gone by every route: the library, the string methods
-- (through the hidden string metatable), a loaded chunk. Without it no
-- bytecode of a real function can be made.
return {
  title = "string.dump is unreachable",
  timeout = 2,
  run = function(t)
    t:expect(string.dump == nil, "string.dump exists")
    t:expect(("").dump == nil, "(''):dump exists")
    t:expect(load("return string.dump")() == nil, "a loaded chunk has string.dump")
    local ok, err = pcall(function() return ("x"):dump() end)
    t:expect(not ok and tostring(err):match("attempt to call a nil value %(method 'dump'%)"), "(''):dump() gave %s", tostring(err))
  end,
}
