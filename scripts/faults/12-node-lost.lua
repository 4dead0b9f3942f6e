-- Check 12: a whole node is lost while traffic flows through the LB — a
-- host that goes away with every replica on it, not one process. The
-- orchestrator must notice, run the lost replicas on the nodes left, and
-- the LB must keep serving the real route meanwhile. Measured: how long
-- the manager took to mark the node down, and how long until the service
-- had all its replicas running again. Only where replicas run on more
-- than one node (a swarm stack file); the node comes back at the end and
-- the replicas are spread over the nodes again.
local replicas = require "replicas"
local pulp = require "pulp"
local traffic = require "traffic"
local time = require "time"

local format, concat = string.format, table.concat

-- "node1: api1; node2: api2" for evidence
local function placement(nodes)
  local parts = {}
  for _, n in ipairs(nodes) do
    parts[#parts + 1] = format("%s (%s): %s", n.name, n.state, #n.replicas > 0 and concat(n.replicas, ", ") or "-")
  end
  return concat(parts, "; ")
end

return {
  title = "A node is lost: its replicas run elsewhere, the LB keeps serving",
  tags = { "failover", "nodes" },
  exclusive = true,   -- every replica moves or is disturbed
  faults = true,
  timeout = 360,
  grace = 120,        -- the lost node is brought back, and its daemon rejoins
  requires = function(stack)
    if (stack.backend or "compose") == "compose" then
      return false, "the stack runs on one machine (backend compose): there is no node to lose"
    end
    return true
  end,
  run = function(t, stack)
    local cfg = stack.node_lost or {}
    local rate, budget = cfg.rate or 50, cfg.budget or 0
    local detect, recover = cfg.detect or 60, cfg.recover or 60
    local set = replicas.of(stack)
    local names = set:names()

    local nodes = t:step("where the replicas run", function() return assert(set:nodes()) end)
    -- replicas left sharing a node (an earlier loss; the swarm does not move
    -- them back by itself) are spread first: a node to lose must run one
    local empty, shared = false, false
    for _, n in ipairs(nodes) do
      if n.state == "ready" and #n.replicas == 0 then empty = true end
      if #n.replicas > 1 then shared = true end
    end
    if empty and shared then
      t:evidence("spread first", t:step("spread the replicas over the nodes", function() return assert(set:spread()) end))
      assert(set:wait_replicas{ timeout = recover })
      nodes = assert(set:nodes())
    end
    t:evidence("before", placement(nodes))
    -- the node to lose: the stack file's, else a ready worker that runs a replica
    local victim
    for _, n in ipairs(nodes) do
      if cfg.node and n.name == cfg.node or not cfg.node and not victim and not n.manager and n.state == "ready"
         and #n.replicas > 0 then
        victim = n
      end
    end
    t:assert(victim, "no node to lose: %s", cfg.node and format("the stack file's node_lost.node '%s' is not a node " ..
             "of the cluster", cfg.node) or "no ready worker node runs a replica (" .. placement(nodes) .. ")")
    t:assert(not victim.manager, "node_lost.node '%s' is a manager: losing the only manager leaves nothing to " ..
             "reschedule the replicas", victim.name)
    local left = 0
    for _, n in ipairs(nodes) do
      if n ~= victim and n.state == "ready" and n.availability == "active" then left = left + 1 end
    end
    t:assert(left > 0, "no other ready node to run %s's replicas (%s)", victim.name, placement(nodes))
    t:evidence("plan", format("lose %s (replicas %s) with GET /templates through the LB at %g/s; the manager marks " ..
                              "it down within %g s, every replica runs again within %g s of the loss, at most %d " ..
                              "failed requests", victim.name, concat(victim.replicas, ", "), rate, detect, recover,
                              budget))

    local flow <close> = traffic.start{
      request = { url = stack.lb .. "/templates", headers = { ["x-api-key"] = stack.keys.admin }, timeout = 5 },
      rate = rate,
    }
    time.sleep(1)

    -- back at the end whatever happens (an assertion, an error, Ctrl-C, a
    -- kill -9 of halo: `halo cleanup`): docker's node:stop undoes itself
    local lost_at = t:step("lose " .. victim.name .. " (its daemon stops, with its containers)", function()
      assert(set:lose(victim.name))
      return time.mono()
    end)
    local marked, marked_after = t:step("wait until the manager marks " .. victim.name .. " down", set.wait_node, set,
                                        victim.name, "down", detect)
    t:evidence("marked down after (s)", marked and format("%.1f", time.mono() - lost_at) or nil)
    t:expect(marked, "the manager did not mark %s down within %g s of its loss: %s", victim.name, detect,
             tostring(marked_after))

    local back, why = t:step("wait until every replica runs again", set.wait_replicas, set,
                             { timeout = recover, lost = victim.name })
    local whole_after = time.mono() - lost_at
    local after = assert(set:nodes())
    t:evidence("after", placement(after))
    t:evidence("replicas running again after (s)", back and format("%.1f", whole_after) or nil)
    t:expect(back, "the service did not have all its replicas running %.0f s after %s was lost: its replicas were " ..
                   "not run on the nodes left (%s; %s)", whole_after, victim.name, placement(after), tostring(why))
    if back then
      for _, name in ipairs(names) do
        local served, took, status = t:step(name .. " serves GET /templates", pulp.wait_serving, stack, name, 30)
        t:expect(served, "%s did not serve GET /templates within 30 s of running again (last answer: %s)", name,
                 tostring(status))
        if served then t:evidence(name .. " serving after (s)", format("%.2f", took)) end
      end
    end
    local seen = flow:stop()
    t:evidence("requests through the LB", { sent = seen.sent, failures = seen.failures, by_status = seen.by_status })
    if next(seen.by_error) then t:evidence("by error", seen.by_error) end
    t:expect(seen.sent > 0, "no traffic went through the LB")
    t:expect(seen.failures <= budget, "%d of %d requests through the LB failed while %s was lost (budget %d); %s",
             seen.failures, seen.sent, victim.name, budget, pulp.describe_failure(seen.first_failures[1]))

    -- leave it as found: the node back, the replicas spread over the nodes again
    t:step("bring " .. victim.name .. " back", function()
      assert(set:regain(victim.name, 90))
    end)
    local moved = t:step("spread the replicas over the nodes again", function() return assert(set:spread()) end)
    if #moved > 0 then t:evidence("moved back", moved) end
    assert(set:wait_replicas{ timeout = recover })
    t:evidence("LB", t:step("let the LB serve from every replica", pulp.wait_rejoined, stack, names, cfg.settle))
  end,
}
