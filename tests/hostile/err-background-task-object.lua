-- expect: ERROR ^background task \d+ failed: \S*err-background-task-object\.lua:10: error object: \{\}$
-- A background task raises an error object nobody joins, whose
-- __tostring raises: the check is an ERROR saying a background task
-- failed, described as well as it can be.
local task, time = require "task", require "time"
return {
  title = "a background task raising a broken error object",
  timeout = 2,
  run = function(t)
    task.spawn(function() error(setmetatable({}, { __tostring = function() error("x") end })) end)
    time.sleep(0.05)
  end,
}
