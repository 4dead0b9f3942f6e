-- expect: ERROR yield-close-parked-coroutine\.lua:16: cannot close a coroutine that halo is running
-- A user coroutine parked inside time.sleep (its task suspended through
-- it): resuming it by hand is refused, closing it raises -- the
-- scheduler's continuation is not the script's to destroy.
local task, time = require "task", require "time"
return {
  title = "close a user coroutine parked in a wait",
  timeout = 2,
  run = function(t)
    local co = coroutine.create(function() time.sleep(0.5) return "woke" end)
    task.spawn(function() coroutine.resume(co) end)
    time.sleep(0.05)
    local ok, err = coroutine.resume(co)
    t:expect(not ok and err == "cannot resume a coroutine that halo is running", "resume gave %s %s", tostring(ok), tostring(err))
    t:log("status while parked: " .. coroutine.status(co))
    coroutine.close(co)
  end,
}
