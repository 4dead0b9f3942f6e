-- expect: FAIL string-metatable-index\.lua:\d+: reported as written: 42 of 42$
-- A hostile getmetatable("").__index: every string method now raises. The
-- metatable is the check's own, but the host's Lua in its state (the
-- context t) uses no string methods, so the FAIL below reads exactly as
-- written, evidence and log included.
return {
  title = "getmetatable('').__index = hostile",
  timeout = 2,
  run = function(t)
    local mt = getmetatable("")
    mt.__index = function(_, k) error("string method " .. tostring(k) .. " called after the change") end
    t:evidence("after", "the change")
    t:log("logged %s", "after the change")
    t:expect(false, "reported as written: %d of %d", 42, 42)
  end,
}
