-- Check 9: one replica goes silent for the LB — connections are accepted,
-- nothing ever comes back (a hung process, a half-dead host, a dropped
-- route). Unlike a dead replica, nothing is refused: only the LB's own
-- upstream timeout can tell. Clients must see their requests answered
-- (by the other replica, late) within the budget, and the LB's time to
-- give up on the silent one is measured.
local pulp = require "pulp"
local traffic = require "traffic"
local time = require "time"

return {
  title = "The LB gives up on a silent replica within its timeout",
  tags = { "failover" },
  exclusive = true,
  faults = true,
  timeout = 180,
  run = function(t, stack)
    local cfg = stack.silent_replica or {}
    local name = cfg.replica or pulp.replica_names(stack)[1]
    local window, rate, budget = cfg.window or 12, cfg.rate or 20, cfg.budget or 0
    local lb_timeout = stack.lb_upstream_timeout
    if type(lb_timeout) ~= "number" then
      error("the stack file gives no lb_upstream_timeout (how long the LB waits on a replica that does not answer)", 0)
    end
    local client_timeout = lb_timeout + (cfg.margin or 4)
    local link = pulp.link(stack, name, "lb")
    t:evidence("plan", string.format("the LB's link to %s silent for %g s, GET /templates through the LB at %g/s, " ..
                                     "clients waiting %g s (the LB's upstream timeout %g s plus %g)",
                                     name, window, rate, client_timeout, lb_timeout, cfg.margin or 4))

    -- every request waits at most client_timeout, so rate * client_timeout
    -- workers keep the pace while some of them hang
    local flow <close> = traffic.start{
      request = { url = stack.lb .. "/templates", headers = { ["x-api-key"] = stack.keys.admin },
                  timeout = client_timeout },
      rate = rate, concurrency = math.ceil(rate * client_timeout) + 2,
    }
    time.sleep(1)
    local silent_at, silent_elapsed = t:step("make the LB's link to " .. name .. " silent", function()
      assert(link:blackhole())
      return time.mono(), t:elapsed()
    end)
    t:step(string.format("traffic for %g s with %s silent", window, name), time.sleep, window)
    local healed_at = t:step("restore the link", function()
      assert(link:heal())
      return time.mono()
    end)
    -- the requests that met the silence are answered up to one LB timeout later
    time.sleep(math.min(client_timeout, lb_timeout + 1))
    local seen = flow:stop()
    local during = flow:stats{ since = silent_at }
    t:evidence("LB", t:step("let the LB take " .. name .. " back", pulp.wait_rejoined, stack, name, cfg.settle))

    -- The LB gave up on the silent replica when the slowest request that
    -- still succeeded was answered: it waited that long before trying the
    -- other replica.
    local waited = during.latency and during.latency.max
    t:evidence("requests through the LB", { sent = seen.sent, failures = seen.failures, by_status = seen.by_status })
    if next(seen.by_error) then t:evidence("by error", seen.by_error) end
    t:evidence("latency while silent (s)", during.latency)
    t:evidence("LB gave up after (s)", waited)
    local info = link:info()
    if info and info.counters then t:evidence("link " .. link.name, info.counters) end
    local events = {
      { at = silent_elapsed, lane = "link " .. link.name, kind = "silent", label = name .. " silent for the LB" },
      { at = silent_elapsed + (healed_at - silent_at), lane = "link " .. link.name, kind = "healed", label = "healed" },
    }
    if waited then
      events[#events + 1] = { at = silent_elapsed + waited, lane = "clients", kind = "LB gave up",
                              label = string.format("the slowest answered request waited %.2f s", waited) }
    end
    t:evidence("detection", { chart = "events", title = "The LB and a silent replica", clock = "elapsed",
                              lanes = { "link " .. link.name, "clients" }, events = events })
    t:expect(seen.sent > 0, "no traffic went through the LB")
    t:expect(seen.failures <= budget,
             "%d of %d requests through the LB failed while %s was silent (budget %d; clients wait %g s, the LB's " ..
             "upstream timeout is %g s): the LB keeps waiting on a replica that accepts and never answers; %s",
             seen.failures, seen.sent, name, budget, client_timeout, lb_timeout,
             pulp.describe_failure(seen.first_failures[1]))
    if waited then
      t:expect(waited <= lb_timeout + 1.5,
               "a request through the LB took %.2f s while %s was silent: more than the LB's upstream timeout " ..
               "(%g s)", waited, name, lb_timeout)
    end
  end,
}
