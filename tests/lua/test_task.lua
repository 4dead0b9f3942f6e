-- Unit tests of the task module as a script sees it: spawn, join, cancel,
-- status, id, current, errors through join, <close>, many tasks.
-- Run: build/halo exec --lib tests/lua/lib tests/lua/test_task.lua  (an error = a failure)

local unit = require "unit"
local test, eq, raises = unit.test, unit.eq, unit.raises

test("spawn passes arguments and join returns every result, nils included", function()
  local h = task.spawn(function(a, b, c) return a + b, nil, c, nil end, 1, 2, "c")
  local r = table.pack(h:join())
  eq(r.n, 4, "number of results")
  eq(r[1], 3, "first result")
  eq(r[2], nil, "second result")
  eq(r[3], "c", "third result")
end)

test("a task does not start until the spawner yields", function()
  local started = false
  local h = task.spawn(function() started = true end)
  eq(started, false, "started before the spawner yielded")
  eq(h:status(), "ready", "status right after spawn")
  h:join()
  eq(started, true, "started after join")
end)

test("status follows the task through its life", function()
  local seen
  local h = task.spawn(function()
    seen = task.current():status()
    time.sleep(0.02)
  end)
  eq(h:status(), "ready", "before it runs")
  time.sleep(0)
  eq(seen, "running", "seen from inside")
  eq(h:status(), "waiting", "while it sleeps")
  h:join()
  eq(h:status(), "done", "after it returned")
end)

test("ids are distinct integers and tostring names id and status", function()
  local a, b = task.spawn(function() end), task.spawn(function() end)
  eq(math.type(a:id()), "integer", "id type")
  assert(a:id() ~= b:id(), "two tasks share id " .. a:id())
  assert(b:id() > a:id(), "ids do not increase")
  assert(tostring(a):match("^task " .. a:id() .. " %(ready%)$"), "tostring gave '" .. tostring(a) .. "'")
  a:join()
  b:join()
  assert(tostring(a):match("%(done%)$"), "tostring after join gave '" .. tostring(a) .. "'")
end)

test("task.current() is the running task's own handle", function()
  local inner
  local h = task.spawn(function() inner = task.current() end)
  h:join()
  assert(rawequal(inner, h), "task.current() inside a task is not its handle")
  local me = task.current()
  assert(me ~= nil and me ~= h, "the script's own task is not distinct")
  eq(me:status(), "running", "status of the current task")
end)

test("join of a failed task re-raises its error", function()
  local h = task.spawn(function() error("boom-7f3a") end)
  local err = raises("boom%-7f3a", h.join, h)
  assert(tostring(err):find("test_task.lua:%d+:"), "the error lost its position: " .. tostring(err))
  eq(h:status(), "failed", "status of a failed task")
  raises("boom%-7f3a", h.join, h) -- and again
end)

test("join re-raises a non-string error value as the same value", function()
  local value = { code = 42 }
  local h = task.spawn(function() error(value) end)
  local ok, err = pcall(h.join, h)
  eq(ok, false, "join succeeded")
  assert(rawequal(err, value), "join raised a different value: " .. tostring(err))
end)

test("join of a task that fails later wakes the joiner with the error", function()
  local h = task.spawn(function() time.sleep(0.01) error("late failure") end)
  raises("late failure", h.join, h)
end)

test("join of a cancelled task raises 'cancelled'", function()
  local h = task.spawn(function() time.sleep(5) end)
  time.sleep(0)
  eq(h:cancel(), true, "cancel of a live task")
  eq(h:status(), "cancelled", "status after cancel")
  raises("cancelled", h.join, h)
end)

test("a joiner waiting on a task that gets cancelled sees 'cancelled'", function()
  local target = task.spawn(function() time.sleep(5) end)
  local joiner = task.spawn(function() return pcall(target.join, target) end)
  time.sleep(0.01)
  target:cancel()
  local ok, err = joiner:join()
  eq(ok, false, "join of the cancelled target")
  assert(tostring(err):find("cancelled"), "joiner got '" .. tostring(err) .. "'")
end)

test("cancel stops the task where it waits, and is false once it is over", function()
  local after = false
  local h = task.spawn(function() time.sleep(0.05) after = true end)
  time.sleep(0)
  eq(h:cancel(), true, "first cancel")
  eq(h:cancel(), false, "second cancel")
  time.sleep(0.1)
  eq(after, false, "the cancelled task went on after its sleep")
  local d = task.spawn(function() return 1 end)
  d:join()
  eq(d:cancel(), false, "cancel of a finished task")
  eq(d:status(), "done", "a finished task stays done after cancel")
end)

test("cancel closes the task's to-be-closed variables", function()
  local closed = false
  local h = task.spawn(function()
    local _guard <close> = setmetatable({}, { __close = function() closed = true end })
    time.sleep(5)
  end)
  time.sleep(0)
  h:cancel()
  eq(closed, true, "__close ran on cancel")
end)

test("a task that was never started can be cancelled", function()
  local ran = false
  local h = task.spawn(function() ran = true end)
  eq(h:cancel(), true, "cancel before start")
  time.sleep(0)
  eq(ran, false, "the cancelled task ran anyway")
end)

test("<close> on a handle cancels the task at the end of the scope", function()
  local h
  local after = false
  do
    local t <close> = task.spawn(function() time.sleep(0.05) after = true end)
    h = t
    time.sleep(0)
  end
  eq(h:status(), "cancelled", "status after the scope")
  time.sleep(0.1)
  eq(after, false, "the task ran on after its scope closed")
  do
    local done <close> = task.spawn(function() return "ok" end)
    eq(done:join(), "ok", "join inside the scope")
  end
end)

test("a task cannot join or cancel itself", function()
  local h = task.spawn(function()
    local me = task.current()
    local ok1, e1 = pcall(me.join, me)
    local ok2, e2 = pcall(me.cancel, me)
    return ok1, e1, ok2, e2
  end)
  local ok1, e1, ok2, e2 = h:join()
  eq(ok1, false, "self join")
  assert(tostring(e1):find("cannot join itself"), "self join said " .. tostring(e1))
  eq(ok2, false, "self cancel")
  assert(tostring(e2):find("cannot cancel itself"), "self cancel said " .. tostring(e2))
end)

test("several joiners all get the results", function()
  local target = task.spawn(function() time.sleep(0.01) return "shared", 2 end)
  local joiners = {}
  for i = 1, 5 do joiners[i] = task.spawn(function() return target:join() end) end
  for i = 1, 5 do
    local a, b = joiners[i]:join()
    eq(a, "shared", "joiner " .. i .. " first value")
    eq(b, 2, "joiner " .. i .. " second value")
  end
end)

test("tasks spawned by tasks are ordinary tasks", function()
  local h = task.spawn(function()
    local inner = task.spawn(function() time.sleep(0.01) return "inner" end)
    return inner:join() .. "+outer"
  end)
  eq(h:join(), "inner+outer", "nested result")
end)

test("bad arguments and wrong self raise 'bad argument'", function()
  raises("bad argument #1 .*function expected", task.spawn)
  raises("bad argument #1 .*function expected", task.spawn, 42)
  local h = task.spawn(function() end)
  raises("bad argument #1 .*halo%.task expected, got table", h.join, {})
  raises("bad argument #1 .*halo%.task expected, got no value", h.cancel)
  raises("bad argument #1 .*halo%.task expected, got string", h.status, "task")
  raises("bad argument #1 .*halo%.task expected, got light userdata", h.id, json.null)
  h:join()
end)

test("a task handle's metatable is hidden and fixed", function()
  local h = task.spawn(function() end)
  eq(getmetatable(h), false, "getmetatable(handle)")
  raises("table expected", setmetatable, h, {})
  h:join()
end)

test("join(timeout): nil, err of kind timeout when the task is slower; its result later", function()
  local slow = task.spawn(function() time.sleep(0.3) return "late", 2 end)
  local t0 = time.mono()
  local r, err = slow:join(0.05)
  local waited = time.mono() - t0
  eq(r, nil, "result of a join that timed out")
  eq(err.kind, "timeout", "err.kind")
  assert(tostring(err):find("did not finish within 0.05 s"), tostring(err))
  assert(waited >= 0.04 and waited < 0.25, "join(0.05) waited " .. waited .. " s")
  eq(slow:status(), "waiting", "the task goes on after a join timed out")
  local a, b = slow:join(5)
  eq(a, "late", "the result, joined again")
  eq(b, 2, "second result")
  -- a task that finishes in time: its results, and the timer is gone (no
  -- second wake: the next sleep sleeps its full time)
  local fast = task.spawn(function() time.sleep(0.02) return "in time" end)
  eq(fast:join(1), "in time", "a join within its timeout")
  local s0 = time.mono()
  time.sleep(0.1)
  assert(time.mono() - s0 >= 0.09, "a sleep after a join was cut short")
  -- a failing task raises through join(timeout) as through join()
  local bad = task.spawn(function() error("boom", 0) end)
  raises("boom", bad.join, bad, 1)
  raises("timeout must be a non%-negative number", slow.join, slow, -1)
  raises("number expected", slow.join, slow, "soon")
end)

test("1000 tasks run side by side", function()
  local t0 = time.mono()
  local hs = {}
  for i = 1, 1000 do
    hs[i] = task.spawn(function(n) time.sleep(0.05) time.sleep(0) return n end, i)
  end
  local sum = 0
  for i = 1, 1000 do sum = sum + hs[i]:join() end
  eq(sum, 1000 * 1001 / 2, "sum of results")
  local took = time.mono() - t0
  assert(took < 2, "1000 tasks sleeping 0.05 s took " .. took .. " s")
end)

unit.finish("test_task")
