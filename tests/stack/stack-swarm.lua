-- The stack file for halo's reference HA stack on the two-node loopback
-- swarm (tools/swarm-up, tests/stack/swarm/): the same stand-in, settings
-- and fault switches as stack.lua, whose values this file takes; only how
-- the replicas are run differs. The checks see the difference through the
-- replica backend (scripts/lib/replicas/swarm.lua), nowhere else.
--
--   sudo tests/stack/swarm/up && build/halo run --stack tests/stack/stack-swarm.lua
--   sudo build/halo run --stack tests/stack/stack-swarm.lua --up --down
--
-- Multi-tenant: MULTI_TENANT_ENABLED=true for both (up and the run).
local stack = include("stack.lua")

local swarm_dir = env("SWARM_DIR", "/var/lib/halo-swarm")
local namespace = env("SWARM_STACK", "halo")
local prefix = env("API_PORT_PREFIX", "300")
local function node(n) return "unix://" .. swarm_dir .. "/node" .. n .. ".sock" end
local swarm_node = stack_dir .. "/../../tools/swarm-node"

stack.name = "halo reference stack on a two-node swarm (tests/stack/swarm)"
stack.multi_tenant = env("MULTI_TENANT_ENABLED", "false") == "true"

-- The replicas are the task slots of ONE swarm service (`api` of the stack
-- `namespace`), each slot listening on its own port (API_PORT_PREFIX .. slot).
stack.backend = "swarm"
stack.swarm = {
  manager = node(1),                     -- the Engine API of a manager: services, tasks, nodes
  namespace = namespace,                 -- `docker stack deploy ... <namespace>`
  service = "api",                       -- the replicas' service (<namespace>_api)
  -- where each node's daemon answers (a task's container is killed there),
  -- by the node label below (tools/swarm-up labels the nodes halo.node)
  node_label = "halo.node",
  nodes = { node1 = node(1), node2 = node(2) },
  -- how a node is taken away and brought back (check 12): "stop"|"start"
  -- and the node's name are added; tools/swarm-node stops the node's dockerd
  -- by the pid tools/swarm-up recorded, and starts it again
  node_control = { swarm_node, "--swarm-dir", swarm_dir },
}
-- check 12 (scripts/faults): a node lost under `rate` requests/s through
-- the LB; the manager marks it down within `detect` s, every replica runs
-- again within `recover` s of the loss, at most `budget` requests fail
stack.node_lost = { rate = 50, budget = 0, detect = 60, recover = 60 }
stack.replicas = {
  api1 = { url = "http://127.0.0.1:" .. prefix .. "1", slot = 1 },
  api2 = { url = "http://127.0.0.1:" .. prefix .. "2", slot = 2 },
}
stack.compose = nil                      -- nothing of it runs under compose
stack.proxy = nil                        -- no fault proxy on the swarm (yet)
stack.database_service = "db"            -- the swarm service <namespace>_db

-- check 6 on a swarm: the rolling `service update` an operator would run
-- (parallelism 1 when rolling, 2 together; stop-first: the old task of a slot goes before its new one)
stack.rotation.services = nil

stack.harness = { up = { "./swarm/up" }, down = { "./swarm/down" } }
stack.allow_exec = { "docker", swarm_node }

return stack
