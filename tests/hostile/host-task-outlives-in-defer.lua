-- expect: PASS
-- log: ^defer ran$
-- A defer spawns a task that would keep sending requests after the
-- cleanup; the cleanup's own tasks end with it, so nothing reaches the
-- server after halo exits.
local http, time, task = require "http", require "time", require "task"
return {
  title = "a task spawned by a defer",
  timeout = 2,
  run = function(t, stack)
    t:defer(function()
      task.spawn(function()
        while true do http.get(stack.server .. "/fast?from=defer") time.sleep(0.01) end
      end)
      time.sleep(0.05)
      t:log("defer ran")
    end)
  end,
}
