-- expect: PASS
-- User coroutines wrapping host calls: coroutine.wrap around time.sleep
-- and http.get, nested two deep, a generator that yields between sleeps,
-- pcall inside the coroutine, and two tasks doing it side by side. The
-- waits suspend the task, not the coroutine's caller; values and errors
-- come out where Lua says they do.
local time, http, task = require "time", require "http", require "task"
return {
  title = "coroutines around host calls",
  timeout = 2,
  run = function(t, stack)
    local slept = coroutine.wrap(function() time.sleep(0.02) return "slept" end)()
    t:expect(slept == "slept", "wrap around sleep gave %s", tostring(slept))
    local status = coroutine.wrap(function()
      return coroutine.wrap(function() return http.get(stack.server .. "/fast").status end)()
    end)()
    t:expect(status == 200, "nested wrap around http.get gave %s", tostring(status))
    local gen = coroutine.wrap(function()
      for i = 1, 3 do time.sleep(0.01) coroutine.yield(i) end
    end)
    t:expect(gen() == 1 and gen() == 2 and gen() == 3, "the generator lost values")
    local co = coroutine.create(function()
      local ok, err = pcall(function() time.sleep(0.01) error("inner", 0) end)
      coroutine.yield(ok, err)
      return "done"
    end)
    local ok1, ok2, err = coroutine.resume(co)
    t:expect(ok1 and ok2 == false and err == "inner", "pcall in a coroutine gave %s %s %s", tostring(ok1), tostring(ok2), tostring(err))
    t:expect(select(2, coroutine.resume(co)) == "done" and coroutine.status(co) == "dead", "the coroutine did not finish")
    local started = time.mono()
    local a = task.spawn(function() return coroutine.wrap(function() time.sleep(0.2) return 1 end)() end)
    local b = task.spawn(function() return coroutine.wrap(function() time.sleep(0.2) return 2 end)() end)
    t:expect(a:join() + b:join() == 3, "the tasks lost values")
    t:expect(time.mono() - started < 0.35, "two 0.2 s sleeps in coroutines in two tasks took %.2f s", time.mono() - started)
  end,
}
