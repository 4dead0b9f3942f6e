-- expect: ERROR yield-tostring-metamethod\.lua:9: time\.sleep cannot wait here: attempt to yield across a C-call boundary
-- A __tostring that sleeps, reached through tostring() (a C function):
-- refused with the message.
local time = require "time"
return {
  title = "time.sleep inside __tostring",
  timeout = 2,
  run = function(t)
    local obj = setmetatable({}, { __tostring = function() time.sleep(0.01) return "obj" end })
    t:log(tostring(obj))
  end,
}
