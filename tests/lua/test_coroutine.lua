-- Unit tests of coroutines inside halo tasks: the scheduler's own yields
-- (time.sleep, task:join) pass through user coroutines, and user yields
-- stay the user's.
-- Run: build/halo exec --lib tests/lua/lib tests/lua/test_coroutine.lua  (an error = a failure)

local unit = require "unit"
local test = unit.test
local function eq(got, want, what)
  if got ~= want then
    error(string.format("%s: got %s, want %s", what, tostring(got), tostring(want)), 2)
  end
end

test("coroutine.resume around time.sleep: the sleep suspends the task, not the resume", function()
  local co = coroutine.create(function(a)
    time.sleep(0.01)
    local b = coroutine.yield(a + 1)
    time.sleep(0.01)
    return b * 2
  end)
  local t0 = time.mono()
  local ok, v = coroutine.resume(co, 1)
  eq(ok, true, "first resume ok")
  eq(v, 2, "first yielded value")
  eq(coroutine.status(co), "suspended", "status after a user yield")
  local ok2, v2 = coroutine.resume(co, 5)
  eq(ok2, true, "second resume ok")
  eq(v2, 10, "returned value")
  eq(coroutine.status(co), "dead", "status at the end")
  assert(time.mono() - t0 >= 0.019, "the two sleeps did not wait")
end)

test("a generator yields user values while sleeping between them", function()
  local gen = coroutine.wrap(function()
    for i = 1, 4 do
      time.sleep(0.005)
      coroutine.yield(i * i)
    end
    return "end"
  end)
  local got = {}
  for _ = 1, 5 do got[#got + 1] = tostring(gen()) end
  eq(table.concat(got, ","), "1,4,9,16,end", "generated values")
end)

test("generators in two tasks interleave without crossing values", function()
  local function run(tag)
    local out = {}
    local gen = coroutine.wrap(function()
      for i = 1, 5 do
        time.sleep(0.01)
        coroutine.yield(tag .. i)
      end
    end)
    for _ = 1, 5 do out[#out + 1] = gen() end
    return table.concat(out, ",")
  end
  local t0 = time.mono()
  local a, b = task.spawn(run, "a"), task.spawn(run, "b")
  eq(a:join(), "a1,a2,a3,a4,a5", "task a's values")
  eq(b:join(), "b1,b2,b3,b4,b5", "task b's values")
  assert(time.mono() - t0 < 0.09, "the two generators did not run side by side")
end)

test("task:join inside a wrapped coroutine", function()
  local h = task.spawn(function() time.sleep(0.01) return "joined" end)
  local f = coroutine.wrap(function()
    local v = h:join()
    coroutine.yield(v .. "!")
    return "after"
  end)
  eq(f(), "joined!", "value yielded after join")
  eq(f(), "after", "value returned")
end)

test("join and sleep three coroutines deep", function()
  local h = task.spawn(function() time.sleep(0.01) return 7 end)
  local outer = coroutine.wrap(function()
    local middle = coroutine.wrap(function()
      local inner = coroutine.wrap(function()
        time.sleep(0.005)
        coroutine.yield(h:join())
        time.sleep(0.005)
        return 1
      end)
      local a = inner()
      local b = inner()
      coroutine.yield(a + b)
    end)
    return middle() * 2
  end)
  eq(outer(), 16, "value through three coroutines")
end)

test("pcall inside a coroutine around a sleep and an error", function()
  local co = coroutine.wrap(function()
    local ok, err = pcall(function()
      time.sleep(0.005)
      error("inside", 0)
    end)
    coroutine.yield(ok, err)
    return "done"
  end)
  local ok, err = co()
  eq(ok, false, "pcall result")
  eq(err, "inside", "pcall error")
  eq(co(), "done", "after")
end)

test("an error after a sleep in a wrapped coroutine propagates with its position", function()
  local f = coroutine.wrap(function()
    time.sleep(0.005)
    error("gen failed")
  end)
  local ok, err = pcall(f)
  eq(ok, false, "pcall of the generator")
  assert(tostring(err):find("test_coroutine.lua:%d+: gen failed"), "error was " .. tostring(err))
end)

test("an error after a sleep in a created coroutine comes back from resume", function()
  local co = coroutine.create(function()
    time.sleep(0.005)
    error({ kind = "mine" })
  end)
  local ok, err = coroutine.resume(co)
  eq(ok, false, "resume result")
  eq(type(err) == "table" and err.kind, "mine", "error value")
  eq(coroutine.status(co), "dead", "status")
end)

test("isyieldable: false at a task's root, true inside a coroutine", function()
  eq(coroutine.isyieldable(), false, "at the script's root")
  local h = task.spawn(function() return coroutine.isyieldable() end)
  eq(h:join(), false, "at a spawned task's root")
  local inside = coroutine.wrap(function() return coroutine.isyieldable() end)()
  eq(inside, true, "inside a coroutine")
end)

test("running: a task's root counts as main, a coroutine does not", function()
  local co, ismain = coroutine.running()
  eq(type(co), "thread", "running() type")
  eq(ismain, true, "ismain at the root")
  local h = task.spawn(function() return select(2, coroutine.running()) end)
  eq(h:join(), true, "ismain at a spawned task's root")
  local c
  c = coroutine.create(function()
    local me, main = coroutine.running()
    coroutine.yield(rawequal(me, c), main)
  end)
  local _, same, main = coroutine.resume(c)
  eq(same, true, "running() inside is the coroutine")
  eq(main, false, "ismain inside")
end)

test("coroutine.yield at a task's root is refused", function()
  local ok, err = pcall(coroutine.yield, 1)
  eq(ok, false, "yield at the root")
  assert(tostring(err):find("outside a coroutine"), "error was " .. tostring(err))
end)

test("a coroutine parked in a sleep cannot be resumed or closed by another task", function()
  local co = coroutine.create(function() time.sleep(0.05) return "finished" end)
  local owner = task.spawn(function() return coroutine.resume(co) end)
  time.sleep(0)
  local ok, err = coroutine.resume(co)
  eq(ok, false, "resume of a parked coroutine")
  assert(tostring(err):find("cannot resume a coroutine that halo is running"), "resume said " .. tostring(err))
  local okc, errc = pcall(coroutine.close, co)
  eq(okc, false, "close of a parked coroutine")
  assert(tostring(errc):find("cannot close a coroutine that halo is running"), "close said " .. tostring(errc))
  local rok, rv = owner:join()
  eq(rok, true, "the owner's resume")
  eq(rv, "finished", "the owner's result")
end)

test("a wrapped generator parked in a sleep cannot be re-entered by another task", function()
  local gen = coroutine.wrap(function() time.sleep(0.05) coroutine.yield("first") end)
  local owner = task.spawn(function() return gen() end)
  time.sleep(0)
  local ok, err = pcall(gen)
  eq(ok, false, "second entry")
  assert(tostring(err):find("cannot resume"), "second entry said " .. tostring(err))
  eq(owner:join(), "first", "the owner's value")
end)

test("coroutine.close of a user-suspended coroutine runs its __close", function()
  local closed = false
  local co = coroutine.create(function()
    local _g <close> = setmetatable({}, { __close = function() closed = true end })
    time.sleep(0.001)
    coroutine.yield()
  end)
  assert(coroutine.resume(co))
  eq(coroutine.close(co), true, "close result")
  eq(closed, true, "__close ran")
  eq(coroutine.status(co), "dead", "status after close")
end)

test("cancelling a task with a coroutine parked in a sleep", function()
  local reached = false
  local h = task.spawn(function()
    local gen = coroutine.wrap(function() time.sleep(0.05) reached = true end)
    gen()
  end)
  time.sleep(0)
  eq(h:cancel(), true, "cancel")
  time.sleep(0.08)
  eq(reached, false, "the coroutine ran on after its task was cancelled")
end)

test("many coroutines, each sleeping, inside many tasks", function()
  local t0 = time.mono()
  local hs = {}
  for i = 1, 50 do
    hs[i] = task.spawn(function()
      local sum = 0
      for j = 1, 3 do
        local g = coroutine.wrap(function() time.sleep(0.01) return i * j end)
        sum = sum + g()
      end
      return sum
    end)
  end
  local total = 0
  for i = 1, 50 do total = total + hs[i]:join() end
  eq(total, 6 * (50 * 51 / 2), "total")
  assert(time.mono() - t0 < 0.5, "took " .. (time.mono() - t0) .. " s")
end)

unit.finish("test_coroutine")
