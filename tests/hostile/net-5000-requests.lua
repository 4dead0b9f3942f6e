-- expect: PASS
-- margin: 8
-- 5000 tasks, each an http.get against the test's server at once. The
-- host copes (it queues past its connection cap): every request comes
-- back, the check passes, and no connection outlives the run.
local http, task = require "http", require "task"
return {
  title = "5000 concurrent requests",
  timeout = 10,
  run = function(t, stack)
    local tasks, ok, failed = {}, 0, {}
    for i = 1, 5000 do
      tasks[i] = task.spawn(function() return http.get(stack.server .. "/fast?i=" .. i, { timeout = 8 }) end)
    end
    for i = 1, 5000 do
      local res, err = tasks[i]:join()
      if res and res.status == 200 then ok = ok + 1
      else failed[err and err.kind or "status"] = (failed[err and err.kind or "status"] or 0) + 1 end
    end
    t:evidence("failed by kind", failed)
    t:expect(ok == 5000, "%d of 5000 requests came back", ok)
  end,
}
