-- expect: PASS
-- Ways to get a finalizer past setmetatable's check: add __gc to the
-- metatable after setmetatable (Lua 5.4 then never finalizes the
-- object), a metatable whose own __index supplies __gc (refused: the
-- check sees it), and __gc on a table that becomes a metatable later.
-- None of the finalizers may ever run; the check churns memory so the
-- collector has every chance, and asserts that they did not.
local http = require "http"
return {
  title = "finalizers sneaked past setmetatable",
  timeout = 2,
  run = function(t, stack)
    local ran = {}
    local function finalizer(name) return function() ran[#ran + 1] = name end end
    for i = 1, 200 do
      local mt = {}
      setmetatable({}, mt)
      mt.__gc = finalizer("late")
      rawset(mt, "__gc", finalizer("late-raw"))
    end
    local ok = pcall(setmetatable, {}, setmetatable({}, { __index = { __gc = finalizer("inherited") } }))
    t:expect(not ok, "a __gc inherited through __index was accepted")
    local churn = {}
    for i = 1, 300000 do churn[i % 1000] = { i } end
    t:expect(#ran == 0, "finalizers ran: %s", table.concat(ran, ", "))
  end,
}
