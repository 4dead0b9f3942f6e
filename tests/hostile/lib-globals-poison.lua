-- expect: FAIL lib-globals-poison\.lua:\d+: poisoned world: 7$
-- Replaces every base function, and the library tables themselves, with
-- things that raise. The context t was built from the real functions
-- before any check code ran, so its failure message still comes out as
-- written, with file and line; the report is not broken.
return {
  title = "every global poisoned",
  timeout = 2,
  run = function(t)
    local rawset, ipairs, names = rawset, ipairs, {}
    for k in pairs(_G) do names[#names + 1] = k end
    local poison = function() error("poisoned") end
    for _, k in ipairs(names) do
      if k ~= "_G" then rawset(_G, k, poison) end
    end
    rawset(_G, "_G", nil)
    t:fail("poisoned world: %d", 7)
  end,
}
