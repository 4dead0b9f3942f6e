-- expect: ERROR ^hard deadline: the worker did not finish within 3 s \(timeout 1 s \+ grace 2 s\) and was killed$
-- The runaway match runs in a background task, inside pcall, inside a
-- coroutine, with a defer registered: none of that can help -- the hard
-- deadline kills the worker -- and the canary beside it is untouched.
local task, time = require "task", require "time"
return {
  title = "a runaway match in a background task",
  timeout = 1,
  run = function(t)
    t:defer(function() t:log("defer ran") end)
    task.spawn(function()
      coroutine.wrap(function()
        pcall(string.match, string.rep("x", 5000), ".-.-.-.-.-.-.-y")
      end)()
    end)
    time.sleep(10)
  end,
}
