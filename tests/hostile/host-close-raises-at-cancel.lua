-- expect: ERROR host-close-raises-at-cancel\.lua:13: close handler failed loudly
-- A background task still waiting when the run returns is cancelled by
-- the host, which closes its to-be-closed values; this one's __close
-- raises. That is the check's own code failing, like a task that failed
-- and was never joined ("background task N failed"): the check must be
-- an ERROR that says so, not PASS with the error dropped.
local time, task = require "time", require "task"
return {
  title = "a __close that raises when its task is cancelled",
  timeout = 2,
  run = function(t)
    task.spawn(function()
      local guard <close> = setmetatable({}, { __close = function() error("close handler failed loudly") end })
      time.sleep(60)
    end)
    time.sleep(0.05)
  end,
}
