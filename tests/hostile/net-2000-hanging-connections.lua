-- expect: ERROR ^timeout: the check exceeded its 2 s limit at .+:\d+$
-- 2000 requests to an endpoint that never answers, each in its own task,
-- with http's default 30 s timeout: the check's timeout cuts them all
-- off, the check is ERROR "timeout", and every connection is closed (the
-- server sees them go).
local http, task = require "http", require "task"
return {
  title = "2000 connections that hang",
  timeout = 2,
  run = function(t, stack)
    local tasks = {}
    for i = 1, 2000 do tasks[i] = task.spawn(http.get, stack.server .. "/hang?i=" .. i) end
    for i = 1, 2000 do tasks[i]:join() end
  end,
}
