-- Check 11: `docker stop` of one replica while renders are in flight in
-- it. A graceful replica stops taking new connections (the LB sends them
-- to the other one) and finishes what it has; none of the renders may fail.
-- The renders are held inside the replica by latency on its database link
-- (halo's fault proxy), so that the stop surely lands while they run.
local pulp = require "pulp"
local docker = require "docker"
local task = require "task"
local time = require "time"

return {
  title = "A replica stopped with requests in flight finishes them",
  tags = { "failover", "shutdown" },
  exclusive = true,
  faults = true,
  timeout = 240,
  run = function(t, stack)
    local cfg = stack.graceful or {}
    local name = cfg.replica or pulp.replica_names(stack)[1]
    local renders, hold, stop_timeout = cfg.renders or 8, cfg.hold or 2, cfg.stop_timeout or 15
    local service = stack.replicas[name].service or name
    local lb = pulp.lb(stack)
    t:evidence("plan", string.format("%d renders through the LB, held in %s by %g s on each database answer; " ..
                                     "`docker stop` of %s (grace %g s) while they run", renders, name, hold, name,
                                     stop_timeout))

    local key = pulp.unique("halo-check-11-template")
    t:step("create a temporary template", function() assert(lb:put_template(key, pulp.plain_template("check 11"))) end)
    t:defer(function() assert(lb:delete_template(key)) end)
    local c = t:step("find " .. name .. "'s container", function() return assert(docker.container{ service = service }) end)
    local db_link, lb_link = pulp.link(stack, name, "db"), pulp.link(stack, name, "lb")

    -- each render on the replica is one query and a commit, on a pooled
    -- connection: opened now, so that no render has to open one under
    -- the latency (a connect has its own, shorter, timeout)
    t:step("open " .. name .. "'s database connections", function()
      local direct = pulp.replica(stack, name)
      local warm = {}
      for i = 1, renders do
        warm[i] = task.spawn(function() return direct:call("POST", "/render", { json = { template = key }, timeout = 10 }) end)
      end
      for _, w in ipairs(warm) do w:join() end
    end)
    t:step(string.format("slow %s's database answers by %g s", name, hold), function()
      assert(db_link:latency{ ms = hold * 1000, direction = "down" })
    end)
    local results, workers = {}, {}
    for i = 1, renders do
      workers[i] = task.spawn(function()
        local started = time.mono()
        local res, err = lb:call("POST", "/render", { json = { template = key, data = {} }, timeout = hold + stop_timeout + 30 })
        results[i] = { status = res and res.status, pdf = res and res.body:sub(1, 5) == "%PDF-", seconds = time.mono() - started,
                       error = not res and tostring(err and err.message) or nil }
      end)
      time.sleep(0.02)
    end
    time.sleep(math.min(0.5, hold / 3))
    local info = assert(lb_link:info())
    local in_flight = info.counters and info.counters.active or 0
    t:evidence("connections from the LB open in " .. name .. " at the stop", in_flight)
    t:assert(in_flight > 0, "no render was in flight in %s when it was to be stopped: the check would prove nothing", name)

    local stop_took = t:step("docker stop " .. name, function()
      local started = time.mono()
      assert(c:stop{ timeout = stop_timeout })
      return time.mono() - started
    end)
    t:evidence("stop took (s)", string.format("%.2f", stop_took))
    for _, w in ipairs(workers) do w:join() end
    t:step("heal " .. name .. "'s database link", function() assert(db_link:heal()) end)
    t:step("start " .. name, function() assert(c:start()) end)
    t:step("wait until " .. name .. " serves again", function()
      -- healthy as it was, for its container's healthcheck too (the next
      -- check, or the operator, finds it as it was)
      assert(c:wait{ state = "healthy", timeout = 90 })
      assert(pulp.wait_ready(stack, name, 90))
      return pulp.wait_rejoined(stack, name, stack.lb_fail_timeout)
    end)

    local failed, shown = 0, {}
    for i, r in ipairs(results) do
      local ok = r.status == 200 and r.pdf
      if not ok then failed = failed + 1 end
      shown[i] = string.format("%s after %.2f s", r.status and ("HTTP " .. r.status .. (r.pdf and " PDF" or ""))
                                                   or ("no answer: " .. tostring(r.error)), r.seconds)
    end
    t:evidence("renders", shown)
    t:expect(failed == 0, "%d of %d renders in flight failed when %s was stopped (first: %s): it drops requests " ..
                          "in flight instead of finishing them", failed, renders, name,
             (function() for _, r in ipairs(results) do if not (r.status == 200 and r.pdf) then
               return r.status and ("HTTP " .. r.status) or tostring(r.error) end end end)())
  end,
}
