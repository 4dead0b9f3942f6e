-- A rolling restart under traffic (the recipe in docs/writing-checks.md):
-- each replica restarted in turn while requests flow through the LB; the
-- verdict is what the clients saw.
--   build/halo run 5 --checks examples/checks --stack tests/stack/stack.lua
local docker, traffic, pulp = require "docker", require "traffic", require "pulp"

return {
  title = "A rolling restart loses no request",
  exclusive = true,   -- it restarts what other checks use
  faults = true,      -- runs only where the stack file allows faults
  timeout = 180,
  run = function(t, stack)
    local flow <close> = traffic.start{
      request = { url = stack.lb .. "/templates", headers = { ["x-api-key"] = stack.keys.admin } },
      rate = 100,
    }
    for name, replica in pairs(stack.replicas) do
      t:step("restart " .. name, function()
        local c = assert(docker.container{ service = replica.service or name })
        assert(c:restart{ timeout = 10 })
        t:log(pulp.wait_rejoined(stack, name))   -- steers: waits until the LB serves from it again
      end)
    end
    local seen = flow:stop()
    t:evidence("traffic", seen)
    t:expect(seen.failures == 0, "%d of %d requests failed during the rolling restart", seen.failures, seen.sent)
  end,
}
