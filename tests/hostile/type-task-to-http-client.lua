-- expect: ERROR type-task-to-http-client\.lua:11: bad argument #1 to 'get' \(.*expected, got halo\.task\)
-- Type confusion: a task handle passed as the self of an http client's
-- method. A clear "bad argument", no request sent, no crash.
local http, task = require "http", require "task"
return {
  title = "a task handle as an http client",
  timeout = 2,
  run = function(t, stack)
    local client = http.client { base = stack.server .. "/forbidden" }
    local h = task.spawn(function() end)
    client.get(h, "/task-as-client")
  end,
}
