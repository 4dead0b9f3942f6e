-- Unit tests of the time module as a script sees it: sleep ordering and
-- yielding, the two clocks, argument checks, and many concurrent sleepers.
-- Run: build/halo exec --lib tests/lua/lib tests/lua/test_time.lua  (an error = a failure)

local unit = require "unit"
local test, eq, raises = unit.test, unit.eq, unit.raises

test("sleepers wake in order of their deadlines, not of their spawning", function()
  local order = {}
  local hs = {}
  for _, d in ipairs({ 0.06, 0.02, 0.04, 0.0, 0.01 }) do
    hs[#hs + 1] = task.spawn(function() time.sleep(d) order[#order + 1] = d end)
  end
  for _, h in ipairs(hs) do h:join() end
  eq(table.concat(order, ","), "0.0,0.01,0.02,0.04,0.06", "wake order")
end)

test("sleep(s) waits at least s and not much longer", function()
  local t0 = time.mono()
  time.sleep(0.05)
  local took = time.mono() - t0
  assert(took >= 0.049, "sleep(0.05) returned after " .. took .. " s")
  assert(took < 0.5, "sleep(0.05) took " .. took .. " s")
end)

test("sleep(0) lets every other ready task run, then returns", function()
  local ran = false
  task.spawn(function() ran = true end)
  assert(not ran, "a spawned task ran before the spawner yielded")
  local t0 = time.mono()
  time.sleep(0)
  assert(ran, "sleep(0) did not let the ready task run")
  assert(time.mono() - t0 < 0.05, "sleep(0) waited")
end)

test("two tasks alternating with sleep(0) interleave", function()
  local log = {}
  local function worker(tag)
    for i = 1, 3 do
      log[#log + 1] = tag .. i
      time.sleep(0)
    end
  end
  local a, b = task.spawn(worker, "a"), task.spawn(worker, "b")
  a:join()
  b:join()
  eq(table.concat(log, " "), "a1 b1 a2 b2 a3 b3", "interleaving")
end)

test("sleep returns nothing", function()
  eq(select("#", time.sleep(0)), 0, "values returned by sleep(0)")
  eq(select("#", time.sleep(0.001)), 0, "values returned by sleep(0.001)")
end)

test("mono never goes backwards", function()
  local last = time.mono()
  for i = 1, 2000 do
    local now = time.mono()
    assert(now >= last, "mono went backwards at call " .. i)
    last = now
    if i % 500 == 0 then time.sleep(0) end
  end
end)

test("now is the wall clock, with sub-second precision", function()
  local now = time.now()
  assert(math.abs(now - os.time()) <= 2, "time.now() " .. now .. " is far from os.time() " .. os.time())
  local a = time.now()
  time.sleep(0.003)
  local b = time.now()
  assert(b - a >= 0.002 and b - a < 1, "now() moved " .. (b - a) .. " s across a 3 ms sleep")
  local fractional = false
  for _ = 1, 20 do
    local v = time.now()
    if v ~= math.floor(v) then fractional = true break end
  end
  assert(fractional, "time.now() has no fractional part")
end)

test("mono and now advance together across a sleep", function()
  local m0, w0 = time.mono(), time.now()
  time.sleep(0.02)
  local dm, dw = time.mono() - m0, time.now() - w0
  assert(math.abs(dm - dw) < 0.01, string.format("mono moved %.4f s, now %.4f s", dm, dw))
end)

test("bad arguments raise 'bad argument'", function()
  -- (called through pcall the function shows as '?'; called directly it is named)
  raises("bad argument #1 to 'sleep' %(seconds must be a non%-negative number%)",
         function() time.sleep(-1) end)
  raises("bad argument #1 .*non%-negative", time.sleep, -1)
  raises("bad argument #1 .*number expected, got string", time.sleep, "soon")
  raises("bad argument #1 .*non%-negative", time.sleep, 0 / 0)
  raises("bad argument #1 .*number expected, got no value", time.sleep)
  raises("bad argument #1 .*number expected, got table", time.sleep, {})
end)

test("200 tasks sleeping 0.5 s each finish together in about 0.5 s", function()
  local t0 = time.mono()
  local hs = {}
  for i = 1, 200 do hs[i] = task.spawn(function() time.sleep(0.5) return i end) end
  local sum = 0
  for _, h in ipairs(hs) do sum = sum + h:join() end
  local took = time.mono() - t0
  eq(sum, 200 * 201 / 2, "sum of results")
  assert(took >= 0.49, "200 sleeps of 0.5 s ended after " .. took .. " s")
  assert(took < 1.5, "200 sleeps of 0.5 s took " .. took .. " s: they did not run side by side")
end)

unit.finish("test_time")
