-- expect: PASS
-- collectgarbage answers "count" and "isrunning"; every other option --
-- collect (also the default, no argument), stop, restart, step,
-- incremental, generational, setpause, setstepmul, and nonsense -- is
-- refused with a message saying so, and the collector keeps running.
return {
  title = "collectgarbage options",
  timeout = 2,
  run = function(t)
    for _, opt in ipairs { "collect", "stop", "restart", "step", "incremental", "generational", "setpause",
                           "setstepmul", "bogus" } do
      local ok, err = pcall(collectgarbage, opt, 0)
      t:expect(not ok and tostring(err):match("collectgarbage%('" .. opt .. "'%) is not allowed"),
               "collectgarbage(%q) gave %s", opt, tostring(err))
    end
    local ok, err = pcall(collectgarbage)
    t:expect(not ok and tostring(err):match("collectgarbage%('collect'%) is not allowed"), "collectgarbage() gave %s", tostring(err))
    t:expect(type(collectgarbage("count")) == "number", "count is broken")
    t:expect(collectgarbage("isrunning") == true, "the collector does not run")
    local ok2 = pcall(collectgarbage, 42)
    t:expect(not ok2, "collectgarbage(42) was accepted")
  end,
}
