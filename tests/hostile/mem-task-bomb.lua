-- expect: ERROR ^memory limit of 64 MiB exceeded
-- args: --max-mem 64M
-- Tasks spawned without end, each waiting on a timer of its own: the
-- scheduler's and the event loop's bookkeeping for them must not grow
-- past what the cap allows (the worker's memory is bounded by --max-mem,
-- not by the machine).
local task, time = require "task", require "time"
return {
  title = "millions of sleeping tasks",
  timeout = 5,
  run = function(t)
    for i = 1, 1e7 do
      task.spawn(function() time.sleep(100) end)
      if i % 1000 == 0 then time.sleep(0) end
    end
  end,
}
