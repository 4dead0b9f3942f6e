-- Check 4: with steady traffic through the load balancer on a real,
-- authenticated API route, kill one replica, keep going for a window,
-- start it again; then the same for the other. No request through the LB
-- may fail (or no more than the stack file's budget), and a restarted
-- replica that reports healthy must serve that same route, asked directly,
-- from then on: a health endpoint saying 200 is a promise, the route is
-- the proof.
local pulp = require "pulp"
local replicas = require "replicas"
local http = require "http"
local traffic = require "traffic"
local time = require "time"

-- The route the traffic uses: the stack file's failover.request, by
-- default GET /templates with the admin key.
local function route(stack, cfg)
  local req = cfg.request or {}
  for k in pairs(req) do
    if k ~= "method" and k ~= "path" and k ~= "key" then
      error(string.format("failover.request: unknown field '%s' (method, path, key)", tostring(k)), 0)
    end
  end
  local keyname = req.key or "admin"
  local key = (stack.keys or {})[keyname]
  if type(key) ~= "string" then error("failover.request: the stack file gives no keys." .. keyname, 0) end
  return req.method or "GET", req.path or "/templates", { key = key }
end

-- An http.request option table for that route on one endpoint.
local function request_on(base, method, path, auth, record)
  return { method = method, url = base .. path, headers = { ["x-api-key"] = auth.key }, timeout = 5, record = record }
end

return {
  title = "Graceful degradation when one replica is killed",
  tags = { "failover" },
  exclusive = true,   -- it kills what every other check uses
  faults = true,      -- so it runs only where the stack file allows faults
  timeout = 240,
  grace = 120,        -- a replica killed and not revived is waited for at the end (a swarm replaces it)
  run = function(t, stack)
    local cfg = stack.failover or {}
    local window = cfg.window or 5
    local budget = cfg.budget or 0
    local grace = cfg.grace or 0
    local rate = cfg.rate or 200
    local direct_rate = cfg.direct_rate or 50
    local method, path, auth = route(stack, cfg)
    local set = replicas.of(stack)
    local names = set:names()
    local what = method .. " " .. path
    t:evidence("route", string.format("%s with the %s key, %g requests/s through the LB, %g/s to each restarted replica",
                                      what, (cfg.request or {}).key or "admin", rate, direct_rate))

    local flow <close> = traffic.start{ request = request_on(stack.lb, method, path, auth), rate = rate }
    local direct, recovered = {}, {}
    local revived = {}
    for _, name in ipairs(names) do
      local r = set:replica(name)
      local node = r:node()
      t:step("kill " .. name, function() assert(r:kill()) end)
      t:step(string.format("traffic for %g s with %s down", window, name), time.sleep, window)
      revived[name] = "killed on " .. node .. ", " .. t:step("bring " .. name .. " back", function()
        return assert(r:revive())
      end)
      local started = time.mono()
      -- From the start on, so the evidence can say when it first served;
      -- kept in the request history (the report's timeline) only once the
      -- replica says it is healthy: from then on each one is the verdict.
      local quiet = request_on(stack.replicas[name].url, method, path, auth, false)
      local judged = request_on(stack.replicas[name].url, method, path, auth)
      local healthy = false
      direct[name] = traffic.start{ request = function() return http.request(healthy and judged or quiet) end,
                                    rate = direct_rate }
      local ok, took = t:step("wait until " .. name .. " reports healthy", function()
        return r:wait_healthy{ timeout = 90 }
      end)
      t:assert(ok, "%s did not report healthy again: %s", name, tostring(took))
      healthy = true
      recovered[name] = { started = started, healthy = time.mono() }
      -- Steering only: killing the next replica before the LB takes this
      -- one back would leave it none. Meanwhile the direct traffic runs.
      recovered[name].lb = t:step("let the LB take " .. name .. " back", pulp.wait_rejoined, stack, name, cfg.settle)
    end
    local seen = flow:stop()

    t:evidence("requests", seen.sent)
    t:evidence("failures", seen.failures)
    t:evidence("by status", seen.by_status)
    if next(seen.by_error) then t:evidence("by error", seen.by_error) end
    t:evidence("rate (requests/s)", string.format("%.0f", seen.rate))
    t:evidence("latency (s)", seen.latency)
    if seen.longest_failure_window then t:evidence("longest failure window", seen.longest_failure_window) end
    t:expect(seen.failures <= budget,
             "%d of %d requests through the LB failed while a replica was down (budget %d); longest failure window %.2f s; %s",
             seen.failures, seen.sent, budget,
             seen.longest_failure_window and seen.longest_failure_window.seconds or 0,
             pulp.describe_failure(seen.first_failures[1]))
    t:expect(seen.sent > 0, "no traffic went through the LB")

    -- Each restarted replica, asked directly from the moment it reported
    -- healthy (plus the stack's grace) until the end of the check.
    local served = {}
    for _, name in ipairs(names) do
      local r = recovered[name]
      local all = direct[name]:stop()
      local after = direct[name]:stats{ since = r.healthy + grace }
      local first_ok = all.first_ok and (all.origin + all.first_ok - r.started)
      served[name] = string.format(
        "%s; healthy %.2f s after its start, first real 200 %s; after healthy %d requests straight to it, %d failed; %s",
        revived[name], r.healthy - r.started, first_ok and string.format("%.2f s after its start", first_ok) or "never",
        after.sent, after.failures, r.lb)
      t:expect(after.sent > 0, "no request reached %s directly after it reported healthy", name)
      t:expect(after.failures == 0,
               "%s reported healthy %.2f s after its start but did not serve %s: %d of %d requests straight to it " ..
               "failed after that (grace %g s); %s; first real 200 %s",
               name, r.healthy - r.started, what, after.failures, after.sent, grace,
               pulp.describe_failure(after.first_failures[1], all.origin - r.started),
               first_ok and string.format("%.2f s after its start", first_ok) or "never")
    end
    t:evidence("restarted replicas", served)
  end,
}
