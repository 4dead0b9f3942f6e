-- expect: PASS
-- Tampers with the host modules' tables: json, time, task, http. They
-- are this check's own (each check has its own state): the canary's
-- json, time and task must work.
local json, time, task, http = require "json", require "time", require "task", require "http"
return {
  title = "host module tables tampered",
  timeout = 2,
  run = function(t)
    local sleep = time.sleep
    json.encode = function() return '"tampered"' end
    json.decode = nil
    time.sleep = function() error("tampered time.sleep") end
    time.mono = function() return 0 end
    task.spawn = nil
    http.get = nil
    json.null = "not null"
    t:expect(require("json").encode(1) == '"tampered"', "require returned a fresh json")
    sleep(0.01)
  end,
}
