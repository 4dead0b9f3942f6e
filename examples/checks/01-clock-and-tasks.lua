-- Example check: the engine's clock and tasks behave — ten tasks sleeping
-- side by side take the time of one, not of ten.
local task = require "task"
local time = require "time"

return {
  title = "Ten tasks sleep side by side",
  tags = { "example" },
  timeout = 10,
  run = function(t)
    local started = time.mono()
    local tasks = t:step("spawn ten sleepers", function()
      local list = {}
      for i = 1, 10 do
        list[i] = task.spawn(function() time.sleep(0.2) return i end)
      end
      return list
    end)
    local sum = t:step("join them", function()
      local total = 0
      for _, tk in ipairs(tasks) do total = total + tk:join() end
      return total
    end)
    local took = time.mono() - started
    t:expect(sum == 55, "tasks returned %d, expected 55", sum)
    t:expect(took < 1.0, "ten 0.2 s sleeps took %.2f s: they did not run side by side", took)
    t:evidence("wall time (s)", string.format("%.3f", took))
  end,
}
