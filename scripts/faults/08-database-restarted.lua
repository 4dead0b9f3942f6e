-- Check 8: PostgreSQL restarts under traffic. While it is down every
-- replica may fail; once it is back, each replica must serve the real
-- route again by itself, within the stated time, with the connections it
-- held all broken by the restart.
local pulp = require "pulp"
local docker = require "docker"
local traffic = require "traffic"
local time = require "time"

return {
  title = "Every replica reconnects after PostgreSQL restarts",
  tags = { "database" },
  exclusive = true,   -- every other check needs the database
  faults = true,
  timeout = 180,
  run = function(t, stack)
    local cfg = stack.database_restart or {}
    local recover, rate = cfg.recover or 30, cfg.rate or 20
    local service = stack.database_service
    if type(service) ~= "string" then
      error("the stack file names no database_service (the compose service of PostgreSQL)", 0)
    end
    local names = pulp.replica_names(stack)
    t:evidence("plan", string.format("restart %s under GET /templates through the LB at %g/s; every replica " ..
                                     "serving again within %g s of it being back", service, rate, recover))

    for _, name in ipairs(names) do
      t:step(name .. " serves GET /templates before the restart", function()
        assert(pulp.replica(stack, name):ask("GET", "/templates", { timeout = 5 }, 200))
      end)
    end
    local flow <close> = traffic.start{
      request = { url = stack.lb .. "/templates", headers = { ["x-api-key"] = stack.keys.admin }, timeout = 5 },
      rate = rate,
    }
    local db = t:step("find the database's container", function() return assert(docker.container{ service = service }) end)
    time.sleep(1)
    t:step("restart " .. service, function() assert(db:restart{ timeout = 10 }) end)
    local back_at = t:step("wait until " .. service .. " is healthy", function()
      assert(db:wait{ state = "healthy", timeout = 60 })
      return time.mono()
    end)

    -- each replica, asked directly, one after the other
    local recovered = {}
    for _, name in ipairs(names) do
      local ok, _, last = pulp.wait_serving(stack, name, recover)
      recovered[name] = ok and string.format("serving %.2f s after the database was back", time.mono() - back_at)
                        or string.format("not serving after %g s (last: %s)", recover, tostring(last))
      t:expect(ok, "%s did not serve GET /templates within %g s of PostgreSQL being back (last answer: %s): " ..
                   "it does not reconnect after losing its database connections", name, recover, tostring(last))
    end
    t:evidence("replicas", recovered)
    -- steering: the LB left out the replicas that failed while the
    -- database was down; the next check finds it sending to all of them
    t:evidence("LB", t:step("let the LB take the replicas back", pulp.wait_rejoined, stack, names, cfg.settle))
    local seen = flow:stop()
    t:evidence("requests through the LB", { sent = seen.sent, failures = seen.failures, by_status = seen.by_status })
    t:evidence("after the database was back",
               (function() local s = flow:stats{ since = back_at } return { sent = s.sent, failures = s.failures } end)())
    t:expect(seen.sent > 0, "no traffic went through the LB")
  end,
}
