-- expect: ERROR ^timeout: the check exceeded its 1 s limit
-- A background task spins without ever waiting, so the run -- asleep --
-- never gets the event loop back. The deadline is still enforced.
local task, time = require "task", require "time"
return {
  title = "a background task that never yields",
  timeout = 1,
  run = function(t)
    task.spawn(function() local n = 0 while true do n = n + 1 end end)
    time.sleep(0.5)
    t:log("the run got the loop back")
  end,
}
