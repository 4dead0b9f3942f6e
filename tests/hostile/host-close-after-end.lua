-- expect: ERROR (can only run inside a halo task|cannot wait|timeout)
-- A background task holds a to-be-closed value whose __close sends a
-- request and sleeps; the check returns while the task still waits, so
-- the task is cancelled by the host after the run -- and its __close runs
-- outside any task. The request must not be sent then (it is not the
-- check's time any more) and the sleep must not hang the worker; the
-- refusal is an error of the check's own code, and must be reported as
-- one (an ERROR saying the call cannot wait there, or that the wait
-- ran into the deadline), not dropped.
local http, time, task = require "http", require "time", require "task"
return {
  title = "a __close that calls http after the run",
  timeout = 2,
  run = function(t, stack)
    task.spawn(function()
      local guard <close> = setmetatable({}, { __close = function()
        time.sleep(5)
        http.get(stack.server .. "/forbidden/close")
      end })
      time.sleep(60)
    end)
    time.sleep(0.05)
  end,
}
