-- expect: PASS
-- 50 sql connections opened and never closed -- some stashed in a
-- global, some dropped, one to-be-closed in a task that is cancelled.
-- The check passes; all of them are closed when it ends (the fake
-- server sees every one go).
local sql, task, time = require "sql", require "task", require "time"
return {
  title = "sql connections left open",
  timeout = 2,
  run = function(t, stack)
    HALO_STASH = {}
    for i = 1, 50 do
      local conn = assert(sql.connect(stack.pg))
      if i % 2 == 0 then HALO_STASH[#HALO_STASH + 1] = conn end
    end
    task.spawn(function()
      local conn <close> = assert(sql.connect(stack.pg))
      time.sleep(60)
    end)
    time.sleep(0.1)
    local rows, err = HALO_STASH[1]:query("SELECT 1")
    t:expect(rows == nil and err.kind == "sql", "the fake server answered a query: %s", tostring(err))
  end,
}
