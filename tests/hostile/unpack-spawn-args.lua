-- expect: PASS
-- task.spawn with many arguments: 100 (an ordinary table.unpack of a
-- list) must simply work; 250000 must work or be refused with an error
-- saying there are too many -- never overrun the new task's stack.
local task = require "task"
return {
  title = "task.spawn with many arguments",
  timeout = 2,
  run = function(t)
    local big = {}
    for i = 1, 250000 do big[i] = i end
    local h = task.spawn(function(...) return select("#", ...), (select(100, ...)) end, table.unpack(big, 1, 100))
    local n, last = h:join()
    t:expect(n == 100 and last == 100, "the task saw %s arguments, the last %s", tostring(n), tostring(last))
    local ok, h2 = pcall(task.spawn, function(...) return select("#", ...) end, table.unpack(big))
    if ok then
      local ok2, n2 = pcall(h2.join, h2)
      t:expect(ok2 and n2 == 250000, "the task saw %s arguments", tostring(n2))
    else
      t:expect(tostring(h2):match("too many"), "task.spawn with 250000 arguments raised %s", tostring(h2))
    end
  end,
}
