-- expect: ERROR ^timeout: the check exceeded its 1 s limit at .+:\d+$
-- A child process that outlives the check: sleep 60 with the check's
-- timeout at 1 s. The check ends at its timeout; the child's process
-- group is killed, nothing is left running.
local proc = require "proc"
return {
  title = "a child process past the timeout",
  timeout = 1,
  run = function(t)
    proc.run { argv = { "sleep", "60" } }
  end,
}
