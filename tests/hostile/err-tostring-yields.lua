-- expect: ERROR ^\S*err-tostring-yields\.lua:10: error object: \{\}
-- An error object whose __tostring waits (time.sleep): the host
-- describes it outside any task, where nothing can wait; it must not
-- hang or crash.
local time = require "time"
return {
  title = "an error object whose __tostring sleeps",
  timeout = 2,
  run = function(t)
    error(setmetatable({}, { __tostring = function() time.sleep(10) return "slept" end }))
  end,
}
