-- expect: FAIL env-metatable-tricks\.lua:\d+: the context still works: 42$
-- setmetatable tricks on _G and _ENV: an __index that invents globals,
-- an __newindex that refuses them, a locked __metatable, and a run that
-- swaps its _ENV for an empty table. The check's world changes (its own
-- business), the real libraries are not reached, and t keeps working:
-- its one deliberate failure is reported as written.
return {
  title = "metatable tricks on _G and _ENV",
  timeout = 2,
  run = function(t)
    local real_G = _G
    setmetatable(_G, { __index = function(_, k) return "invented " .. tostring(k) end,
                       __newindex = function(_, k) error("no new globals: " .. tostring(k), 2) end,
                       __metatable = "locked" })
    t:expect(io == "invented io", "the __index did not apply: %s", tostring(io))
    t:expect(getmetatable(_G) == "locked", "the lock did not apply")
    t:expect(not pcall(setmetatable, _G, nil), "a locked metatable was replaced")
    t:expect(not pcall(function() HALO_HOSTILE = 1 end), "__newindex did not refuse a global")
    t:expect(load("return io")() == "invented io" and load("return string.dump")() == nil, "load reached a real io or dump")
    local ok = pcall(function() setmetatable(_G, { __gc = function() end }) end)
    t:expect(not ok, "a __gc on _G was accepted")
    do
      local _ENV = setmetatable({}, { __index = function() return nil end })
      t:expect(print == nil and string == nil, "an empty _ENV still sees globals")
    end
    t:fail("the context still works: %d", 42)
  end,
}
