-- expect: ERROR proc\.run: 'sh' is not on the stack file's allow_exec list \(allowed: sleep\)
-- The stack allows only sleep: sh (which would create the marker file)
-- is refused with a message naming what is allowed.
local proc = require "proc"
return {
  title = "proc.run of a shell",
  timeout = 2,
  run = function(t, stack)
    proc.run { argv = { "sh", "-c", "touch " .. stack.marker } }
  end,
}
