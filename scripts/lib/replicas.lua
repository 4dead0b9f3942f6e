-- The replica backend: what the checks do to replicas, whatever runs them.
-- A check asks the stack for its replicas and acts on them through here,
-- never through compose or a swarm directly, so that the same check runs
-- on one machine (compose) and on an orchestrator (swarm):
--
--   local replicas = require "replicas"
--   local set = replicas.of(stack)
--   for _, name in ipairs(set:names()) do
--     local r = set:replica(name)
--     assert(r:kill())                 -- the replica's process dies, as in a crash
--     assert(r:revive())               -- started again (compose) or replaced (swarm)
--     assert(r:wait_healthy{ timeout = 90 })
--   end
--
-- The stack file chooses the backend: `backend = "compose"` (the default;
-- replicas are compose services, stack.replicas[name].service) or, once
-- it exists, "swarm". Every backend offers what this file documents; each
-- lives in replicas/<kind>.lua.
--
-- A replica handle (set:replica(name)):
--   r.name, r.url                      its name in stack.replicas and its own URL
--   r:kill()          -> true | nil, err   SIGKILL to its process (undone at the check's end if not revived)
--   r:revive()        -> how | nil, err    back after a kill: "started" (compose starts the same
--                                         container) or what replaced it (a swarm starts a new task)
--   r:wait_healthy{ timeout = s } -> seconds | nil, err   until the platform's healthcheck says healthy
--   r:logs{ since = t } -> { { text =, time = }, ... } | nil, err   its log lines since t (time.now())
--   r:node()          -> where it runs ("local": the one host compose runs on)
--   r:id()            -> what runs it now (a container id, 12 characters)
--
-- The whole set:
--   set:names()       -> the replicas' names, sorted
--   set:roll{ env = { K = v } | nil, mode = "rolling" | "together", each = function(group, replace) ... end }
--                       replace the replicas with new environment (nil: their own configuration):
--                       `each` is called for every group of replicas in turn (one replica at a
--                       time when rolling, all at once together) and calls replace() to have the
--                       group replaced, then does what it wants before the next group (probe it,
--                       wait until the LB takes it back). A replica replaced with other environment
--                       stays so until a roll with env = nil: the docker module journals the change
--                       and undoes it at the check's end or in `halo cleanup`, like a kill.
--   set:restore()     -> true | nil, err   every replica back to its own configuration at once
--
-- Nodes (a backend on one machine has one, "local", which cannot be lost):
--   set:nodes()       -> { { name =, state = "ready"|"down", availability =, manager =, replicas = { names } }, ... }
--   set:lose(node)    -> true | nil, err   the node goes away as a host does (swarm: its daemon
--                                         stops, with its containers; the stack file's
--                                         swarm.node_control says how; back at the check's end,
--                                         or by `halo cleanup`, unless regained); compose: nil, err
--   set:regain(node, timeout) -> seconds | nil, err   back, and ready for the manager again
--   set:wait_node(node, state, timeout) -> seconds | nil, err   until the manager says "down"/"ready"
--   set:wait_replicas{ timeout = s, lost = node } -> seconds | nil, err   until every replica runs again
--                       (not counting what the lost node was said to run)
--   set:spread()      -> { moved } | nil, err   replicas that share a node moved to an empty one
local format, type, tostring, error, pairs, setmetatable = string.format, type, tostring, error, pairs, setmetatable

local M = {}

local BACKENDS = { compose = true, swarm = true }

-- replicas.of(stack) -> the stack's replica set
function M.of(stack)
  if type(stack) ~= "table" then error("bad argument #1 to 'of' (the stack table expected)", 2) end
  local kind = stack.backend or "compose"
  if not BACKENDS[kind] then
    local known = {}
    for k in pairs(BACKENDS) do known[#known + 1] = k end
    table.sort(known)
    error(format("replicas: the stack file's backend '%s' is not one halo has (%s)", tostring(kind),
                 table.concat(known, ", ")), 2)
  end
  if type(stack.replicas) ~= "table" or next(stack.replicas) == nil then
    error("replicas: the stack file names no replicas (stack.replicas)", 2)
  end
  return require("replicas." .. kind).new(stack)
end

-- A roll's option table, checked the same way by every backend (level: the
-- caller of set:roll).
function M.check_roll(opts, level)
  if type(opts) ~= "table" then error("bad argument #1 to 'roll' (table expected)", level) end
  for k in pairs(opts) do
    if k ~= "env" and k ~= "mode" and k ~= "each" then
      error(format("bad argument #1 to 'roll' (unknown option '%s'; known: env, mode, each)", tostring(k)), level)
    end
  end
  if type(opts.each) ~= "function" then error("bad argument #1 to 'roll' (each must be a function)", level) end
end

-- set:replica(name) for every backend: one handle per name, made from the
-- stack file's entry with the backend's own fields(r, name) added; raises
-- (at the caller of set:replica) for a name the stack file lacks.
function M.replica_handle(set, name, Replica, fields)
  local r = set.stack.replicas[name]
  if type(r) ~= "table" then error(format("replicas: the stack file has no replica '%s'", tostring(name)), 3) end
  if not set.handles[name] then
    local handle = fields(r, name)
    handle.name, handle.url = name, r.url
    set.handles[name] = setmetatable(handle, Replica)
  end
  return set.handles[name]
end

-- The groups a roll replaces in turn: one replica at a time, or all at once.
function M.groups(names, mode)
  if mode ~= "rolling" and mode ~= "together" then
    error(format("roll: mode is \"rolling\" or \"together\", not '%s'", tostring(mode)), 3)
  end
  if mode == "together" then return { names } end
  local groups = {}
  for i, name in ipairs(names) do groups[i] = { name } end
  return groups
end

return setmetatable(M, { __index = function(_, k) error("replicas: no function '" .. tostring(k) .. "'", 2) end })
