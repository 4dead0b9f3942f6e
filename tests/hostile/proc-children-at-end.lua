-- expect: PASS
-- log: cancelled 20 task\(s\) still running when the check ended
-- 20 background tasks each running sleep 60 when the run returns: the
-- tasks are cancelled and every child killed with them; the check passes
-- and nothing is left running.
local proc, task, time = require "proc", require "task", require "time"
return {
  title = "child processes running when the check ends",
  timeout = 2,
  run = function(t)
    for i = 1, 20 do task.spawn(proc.run, { argv = { "sleep", "60" } }) end
    time.sleep(0.3)
  end,
}
