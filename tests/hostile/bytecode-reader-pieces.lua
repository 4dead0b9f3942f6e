-- expect: PASS
-- load with a reader function that hands the binary signature over one
-- byte at a time, or after empty pieces; and readers that misbehave
-- (a non-string piece, an error, endless input). All refused or ended
-- with a message; nothing runs.
return {
  title = "binary chunks through a reader function",
  timeout = 2,
  run = function(t)
    local function reader(pieces)
      local i = 0
      return function() i = i + 1 return pieces[i] end
    end
    local f, err = load(reader { "\27", "L", "u", "a", "\x54\x00" })
    t:expect(f == nil and tostring(err):match("binary chunk"), "a byte-wise signature gave %s", tostring(err))
    f, err = load(reader { "\27Lua\x54" }, "=r", "t", {})
    t:expect(f == nil and tostring(err):match("binary chunk"), "a reader with env gave %s", tostring(err))
    f, err = load(function() return {} end)
    t:expect(f == nil and tostring(err):match("reader function must return a string"), "a table piece gave %s", tostring(err))
    f, err = load(function() error("reader failed") end)
    t:expect(f == nil and tostring(err):match("reader failed"), "a failing reader gave %s", tostring(err))
    local n = 0
    f, err = load(function() n = n + 1 if n > 1000 then return nil end return "x = 1 " end)
    t:expect(f ~= nil and f() == nil, "a long text chunk from a reader did not load: %s", tostring(err))
  end,
}
