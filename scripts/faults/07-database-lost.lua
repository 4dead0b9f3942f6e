-- Check 7: one replica loses its database while traffic flows through the
-- LB. Its readiness must say so (503) within the stated time, the LB must
-- keep serving the real route from the other replica, and once the link
-- is back the replica must serve again by itself, without a restart.
-- The database link is cut in halo's fault proxy (require "netfault"):
-- refused for new connections, reset for the ones the replica holds.
local pulp = require "pulp"
local traffic = require "traffic"
local eventually = require "eventually"
local time = require "time"

return {
  title = "Database lost on one replica: out of rotation, then back",
  tags = { "failover", "database" },
  exclusive = true,   -- it takes a replica's database away from every other check too
  faults = true,
  timeout = 180,
  run = function(t, stack)
    local cfg = stack.database_lost or {}
    local name = cfg.replica or pulp.replica_names(stack)[1]
    local notice, window, recover = cfg.notice or 10, cfg.window or 5, cfg.recover or 30
    local rate, budget = cfg.rate or 50, cfg.budget or 0
    local replica = pulp.replica(stack, name)
    local db_link = pulp.link(stack, name, "db")
    t:evidence("plan", string.format("cut %s's database link for %g s with GET /templates through the LB at %g/s; " ..
                                     "readiness 503 within %g s, serving again within %g s of the heal",
                                     name, window, rate, notice, recover))

    t:step(name .. " serves GET /templates before the cut", function()
      assert(replica:ask("GET", "/templates", { timeout = 5 }, 200))
    end)
    local flow <close> = traffic.start{
      request = { url = stack.lb .. "/templates", headers = { ["x-api-key"] = stack.keys.admin }, timeout = 5 },
      rate = rate,
    }
    time.sleep(1)

    local cut_at = t:step("cut " .. name .. "'s database link", function()
      assert(db_link:cut())
      return time.mono()
    end)
    local last
    local noticed, took = t:step("wait for " .. name .. "'s readiness to say 503", function()
      return eventually{ timeout = notice, interval = 0.1 }(function()
        local res, err = replica:call("GET", "/health/ready", { timeout = 2 })
        last = res and ("HTTP " .. res.status) or tostring(err and err.message)
        return res and res.status == 503
      end)
    end)
    t:evidence("time to notice (s)", noticed and took or nil)
    t:expect(noticed, "%s's /health/ready still said %s %.1f s after its database link was cut: a readiness " ..
                      "that ignores the database keeps a replica that cannot serve in rotation",
             name, tostring(last), took)
    local direct = replica:call("GET", "/templates", { timeout = 5 })
    t:evidence(name .. " asked directly while cut", direct and ("HTTP " .. direct.status) or "no answer")
    t:step(string.format("traffic for %g s with %s's database cut", window, name), time.sleep, window)

    local healed_at = t:step("restore the link", function()
      assert(db_link:heal())
      return time.mono()
    end)
    local served, back, status = t:step(name .. " serves GET /templates again", pulp.wait_serving, stack, name,
                                        recover)
    t:evidence("time to recover (s)", served and back or nil)
    t:expect(served, "%s did not serve GET /templates within %g s of its database link being restored " ..
                     "(last answer: %s): it does not reconnect by itself", name, recover, tostring(status))
    -- steering: the next check finds the LB sending to both replicas again
    t:evidence("LB", t:step("let the LB take " .. name .. " back", pulp.wait_rejoined, stack, name, cfg.settle))
    local seen = flow:stop()
    local during = flow:stats{ since = cut_at }
    t:evidence("requests through the LB", { sent = seen.sent, failures = seen.failures, by_status = seen.by_status,
                                            while_cut_or_after = during.sent })
    if next(seen.by_error) then t:evidence("by error", seen.by_error) end
    t:evidence("cut for (s)", string.format("%.2f", healed_at - cut_at))
    t:expect(seen.sent > 0, "no traffic went through the LB")
    t:expect(seen.failures <= budget,
             "%d of %d requests through the LB failed while %s had no database (budget %d); %s",
             seen.failures, seen.sent, name, budget, pulp.describe_failure(seen.first_failures[1]))
  end,
}
