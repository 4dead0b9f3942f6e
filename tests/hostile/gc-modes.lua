-- expect: PASS
-- collectgarbage does what plain Lua does for everything that stays inside
-- the check's own state -- collect (also the default, no argument), step,
-- count, isrunning, incremental, generational -- and refuses, with a
-- message saying so, what would let garbage pile up to the memory cap
-- (stop, restart) or retune it (setpause, setstepmul) and nonsense; the
-- collector keeps running throughout.
return {
  title = "collectgarbage options",
  timeout = 2,
  run = function(t)
    for _, opt in ipairs { "stop", "restart", "setpause", "setstepmul", "bogus" } do
      local ok, err = pcall(collectgarbage, opt, 0)
      t:expect(not ok and tostring(err):match("collectgarbage%('" .. opt .. "'%) is not allowed"),
               "collectgarbage(%q) gave %s", opt, tostring(err))
    end
    t:expect(collectgarbage() == 0, "collectgarbage() did not collect")
    t:expect(collectgarbage("collect") == 0, "collect did not collect")
    t:expect(type(collectgarbage("step", 0)) == "boolean", "step is broken")
    t:expect(collectgarbage("generational") == "incremental", "generational did not switch from incremental")
    t:expect(collectgarbage("incremental") == "generational", "incremental did not switch back")
    t:expect(type(collectgarbage("count")) == "number", "count is broken")
    t:expect(collectgarbage("isrunning") == true, "the collector does not run")
    local ok2 = pcall(collectgarbage, 42)
    t:expect(not ok2, "collectgarbage(42) was accepted")
  end,
}
