-- expect: ERROR timeout: the check exceeded its 1 s limit
-- A background task is cancelled by the host after the run returned; its
-- __close spins. The spin is stopped at the check's deadline -- and a
-- check stopped at its deadline is an ERROR "timeout", not a PASS that
-- happened to take exactly its whole timeout.
local time, task = require "time", require "task"
return {
  title = "a __close that spins when its task is cancelled",
  timeout = 1,
  run = function(t)
    task.spawn(function()
      local guard <close> = setmetatable({}, { __close = function() while true do end end })
      time.sleep(60)
    end)
    time.sleep(0.05)
  end,
}
