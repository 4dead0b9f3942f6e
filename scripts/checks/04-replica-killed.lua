-- Check 4: with steady traffic through the load balancer, kill one replica,
-- keep going for a window, start it and wait until it is healthy; then the
-- same for the other. No request through the LB may fail (or no more than
-- the stack file's budget), and both replicas serve again at the end.
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
    local names = {}
    for name in pairs(stack.replicas) do names[#names + 1] = name end
    table.sort(names)

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
      recovered[name] = string.format("%.1f s", took)
      time.sleep(cfg.settle or 6) -- the LB keeps a failed replica out for its fail_timeout
    end
    local seen = flow:stop()

    t:evidence("requests", seen.sent)
    t:evidence("failures", seen.failures)
    t:evidence("by status", seen.by_status)
    if next(seen.by_error) then t:evidence("by error", seen.by_error) end
    t:evidence("latency (s)", seen.latency)
    t:evidence("time to healthy", recovered)
    if seen.longest_failure_window then t:evidence("longest failure window", seen.longest_failure_window) end
    local first = seen.first_failures[1]
    t:expect(seen.failures <= budget,
             "%d of %d requests through the LB failed while a replica was down (budget %d); longest failure window %.2f s; first: %s",
             seen.failures, seen.sent, budget,
             seen.longest_failure_window and seen.longest_failure_window.seconds or 0,
             first and (first.status and ("HTTP " .. first.status) or (first.message or first.error)) or "-")
    t:expect(seen.sent > 0, "no traffic went through the LB")

    for _, name in ipairs(names) do
      local ok, status = pulp.replica(stack, name):ready()
      t:expect(ok, "%s does not serve again at the end (/health/ready: %s)", name, tostring(status))
    end
  end,
}
