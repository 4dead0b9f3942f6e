-- expect: ERROR yield-load-reader\.lua:10: .*cannot wait here: attempt to yield across a C-call boundary
-- A load reader function that waits: load is C, the reader cannot
-- suspend the task; load returns the refusal, assert raises it.
local time = require "time"
return {
  title = "time.sleep inside a load reader",
  timeout = 2,
  run = function(t)
    local done = false
    assert(load(function() if done then return nil end time.sleep(0.01) done = true return "return 1" end))
  end,
}
