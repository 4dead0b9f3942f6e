-- expect: ERROR ^timeout: the check exceeded its 1 s limit at .+:\d+$
-- log: ^defer ran$
-- The run's own to-be-closed value sleeps for a minute in its __close as
-- the run returns: the wait is the run's, so the timeout ends it; the
-- defers still run.
local time = require "time"
return {
  title = "a __close that sleeps forever",
  timeout = 1,
  run = function(t)
    t:defer(function() t:log("defer ran") end)
    local guard <close> = setmetatable({}, { __close = function() time.sleep(60) end })
  end,
}
