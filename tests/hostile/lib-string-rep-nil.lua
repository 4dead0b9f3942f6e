-- expect: PASS
-- Removes and replaces string functions. The string methods share the
-- string table, so ("x"):rep changes with it -- in this check's own
-- world. The canary, running beside it and after it, must see the
-- originals.
return {
  title = "string.rep = nil and friends",
  timeout = 2,
  run = function(t)
    local format = string.format
    string.rep = nil
    string.format = function() error("tampered string.format") end
    string.upper = string.lower
    string.find = function() return 1, 1 end
    string.gsub, string.match, string.len, string.sub = nil, nil, nil, nil
    string.HALO_HOSTILE = "planted"
    t:expect(("x").rep == nil, "the string methods kept rep")
    t:expect(("ABC"):upper() == "abc", "string.upper was not replaced")
    t:expect(not pcall(function() return ("%d"):format(1) end), "format was not replaced")
    t:expect(true, format("%s", "t's messages still format"))
  end,
}
