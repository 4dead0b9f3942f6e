-- expect: PASS
-- log: cancelled \d+ task\(s\) still running when the check ended
-- Host functions captured to be called after the check returns: stashed
-- in globals, in a suspended coroutine that loops on http.get, and in a
-- background task that keeps sending requests. The check itself passes;
-- when it returns, its tasks are cancelled and its state closed: no
-- request reaches the server after halo exits (the test checks), and
-- nothing calls the stash.
local http, time, task = require "http", require "time", require "task"
return {
  title = "host functions stashed for after the end",
  timeout = 2,
  run = function(t, stack)
    HALO_STASH = { get = http.get, sleep = time.sleep, spawn = task.spawn, t = t }
    HALO_STASH.co = coroutine.wrap(function()
      while true do coroutine.yield(http.get(stack.server .. "/forbidden/stash")) end
    end)
    task.spawn(function()
      while true do
        http.get(stack.server .. "/fast?from=background")
        time.sleep(0.01)
      end
    end)
    time.sleep(0.1)
  end,
}
