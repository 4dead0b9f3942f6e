-- expect: PASS
-- A task that returns many values: 100 must come back from join; 250000
-- must come back or be refused as too many -- never overrun the host's
-- stack when the task's results are moved into its handle.
local task = require "task"
return {
  title = "a task returning many values",
  timeout = 2,
  run = function(t)
    local big = {}
    for i = 1, 250000 do big[i] = i end
    local h = task.spawn(function() return table.unpack(big, 1, 100) end)
    local got = table.pack(h:join())
    t:expect(got.n == 100 and got[100] == 100, "join gave %d values", got.n)
    local h2 = task.spawn(function() return table.unpack(big) end)
    local ok, n = pcall(function() return select("#", h2:join()) end)
    t:expect((ok and n == 250000) or tostring(n):match("too many"), "join of 250000 values gave %s", tostring(n))
  end,
}
