-- Check 4: with steady traffic through the load balancer, kill one replica,
-- keep going for a window, start it and wait until it is healthy and the
-- LB serves from it again; then the same for the other. No request through
-- the LB may fail (or no more than the stack file's budget), and both
-- replicas serve again at the end.
local pulp = require "pulp"
local docker = require "docker"
local traffic = require "traffic"
local time = require "time"

return {
  title = "Graceful degradation when one replica is killed",
  tags = { "failover", "exclusive" },
  timeout = 240,
  run = function(t, stack)
    local cfg = stack.failover or {}
    local window = cfg.window or 5
    local budget = cfg.budget or 0
    local names = pulp.replica_names(stack)

    local flow <close> = traffic.start{ request = { url = stack.lb .. "/health", timeout = 5 }, rate = cfg.rate or 20 }
    local recovered = {}
    for _, name in ipairs(names) do
      local service = stack.replicas[name].service or name
      local c = t:step("find " .. name .. "'s container", function() return assert(docker.container{ service = service }) end)
      t:step("kill " .. name, function() assert(c:kill()) end)
      t:step(string.format("traffic for %g s with %s down", window, name), time.sleep, window)
      t:step("start " .. name, function() assert(c:start()) end)
      local ok, took = t:step("wait until " .. name .. " is healthy", function() return c:wait{ state = "healthy", timeout = 90 } end)
      t:assert(ok, "%s did not become healthy again: %s", name, tostring(took))
      -- Killing the next replica before the LB takes this one back would
      -- leave it none: that is the stack's fail_timeout, not its HA.
      local back, why = t:step("wait until the LB serves from " .. name, pulp.wait_rejoined, stack, name, cfg.settle)
      t:assert(back, "%s", why)
      recovered[name] = string.format("healthy %.1f s after start; %s", took, back)
    end
    local seen = flow:stop()

    t:evidence("requests", seen.sent)
    t:evidence("failures", seen.failures)
    t:evidence("by status", seen.by_status)
    if next(seen.by_error) then t:evidence("by error", seen.by_error) end
    t:evidence("latency (s)", seen.latency)
    t:evidence("time to recover", recovered)
    if seen.longest_failure_window then t:evidence("longest failure window", seen.longest_failure_window) end
    t:expect(seen.failures <= budget,
             "%d of %d requests through the LB failed while a replica was down (budget %d); longest failure window %.2f s; %s",
             seen.failures, seen.sent, budget,
             seen.longest_failure_window and seen.longest_failure_window.seconds or 0,
             pulp.describe_failure(seen.first_failures[1]))
    t:expect(seen.sent > 0, "no traffic went through the LB")

    for _, name in ipairs(names) do
      local ok, status = pulp.replica(stack, name):ready()
      t:expect(ok, "%s does not serve again at the end (/health/ready: %s)", name, tostring(status))
    end
  end,
}
