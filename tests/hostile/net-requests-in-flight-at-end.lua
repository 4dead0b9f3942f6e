-- expect: PASS
-- log: cancelled 500 task\(s\) still running when the check ended
-- 500 slow requests in flight when the run returns: their tasks are
-- cancelled, the transfers abandoned and the connections closed; the
-- check passes.
local http, task, time = require "http", require "task", require "time"
return {
  title = "500 requests in flight at the end",
  timeout = 2,
  run = function(t, stack)
    for i = 1, 500 do task.spawn(http.get, stack.server .. "/slow?s=30&i=" .. i) end
    time.sleep(0.3)
  end,
}
