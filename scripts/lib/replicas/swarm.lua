-- The swarm replica backend (replicas.lua documents the interface): the
-- replicas are the task slots of one swarm service (stack.swarm.service of
-- the swarm stack stack.swarm.namespace), replica `slot = N` being slot N.
-- Everything goes through the manager's Engine API (stack.swarm.manager),
-- except a kill, which goes to the daemon of the node that runs the task
-- (stack.swarm.nodes): the swarm then replaces the task, which is what
-- revive() waits for. A roll is the `service update` an operator would run:
-- one replica at a time (parallelism 1) or all together, stop-first, with
-- the stack's settle time as the delay between replicas; the docker module
-- journals the spec it changed and restores it at the check's end.
local docker = require "docker"
local pulp = require "pulp"
local shared = require "replicas"
local time = require "time"

local format, type, tostring, error, ipairs, pairs, setmetatable, sort =
  string.format, type, tostring, error, ipairs, pairs, setmetatable, table.sort

local Set, Replica = {}, {}
Set.__index, Replica.__index = Set, Replica

local M = {}

-- How long a replacement task may take to be scheduled and started (an
-- image already on the node; PostgreSQL may be restarting meanwhile).
local REPLACE_TIMEOUT = 120

function M.new(stack)
  local conf = stack.swarm
  if type(conf) ~= "table" or type(conf.namespace) ~= "string" or type(conf.service) ~= "string" then
    error("replicas: a swarm stack file needs swarm = { manager =, namespace =, service =, nodes = }", 3)
  end
  for name, r in pairs(stack.replicas) do
    if type(r) ~= "table" or math.type(r.slot) ~= "integer" then
      error(format("replicas: replica '%s' of a swarm stack needs slot = N (its task slot)", tostring(name)), 3)
    end
  end
  return setmetatable({ stack = stack, kind = "swarm", handles = {} }, Set)
end

-- The manager: a docker.daemon handle, or the default daemon with the same
-- method calls.
local default_daemon = {
  service = function(_, ...) return docker.service(...) end,
  node = function(_, ...) return docker.node(...) end,
}

function Set:manager()
  if not self.daemon then
    local host = self.stack.swarm.manager
    self.daemon = host and docker.daemon{ host = host } or default_daemon
  end
  return self.daemon
end

function Set:service()
  if not self.svc then
    local s, err = self:manager():service(self.stack.swarm.service)
    if not s then return nil, err end
    self.svc = s
  end
  return self.svc
end

function Set:names()
  return pulp.replica_names(self.stack)
end

function Set:replica(name)
  return shared.replica_handle(self, name, Replica, function(r) return { slot = r.slot, set = self } end)
end

-- The slot's task that the swarm wants running, newest first; nil, err
-- when there is none (between a task's end and its replacement).
function Replica:task()
  local svc, err = self.set:service()
  if not svc then return nil, err end
  local tasks
  tasks, err = svc:tasks{ desired = "running", slot = self.slot }
  if not tasks then return nil, err end
  if #tasks == 0 then return nil, format("no task of %s wants to run in slot %d", svc.name, self.slot) end
  return tasks[1]
end

-- A node's name as the stack file knows it (its label), else its id.
function Set:node_name(node_id)
  if not node_id or node_id == "" then return "(no node)" end
  self.node_names = self.node_names or {}
  if not self.node_names[node_id] then
    local n = self:manager():node(node_id)
    self.node_names[node_id] = n and n.name or node_id:sub(1, 12)
  end
  return self.node_names[node_id]
end

function Replica:kill()
  local t, err = self:task()
  if not t then return nil, err end
  local c
  c, err = t:container()
  if not c then return nil, err end
  local ok
  ok, err = c:kill()
  if not ok then return nil, err end
  self.killed, self.killed_on = t, self.set:node_name(t.node_id)
  return true
end

-- Polls the slot until `accept(task)` holds for its newest task that the
-- swarm wants running; returns that task.
local function wait_for_task(self, what, accept, timeout)
  local started = time.mono()
  while true do
    local last
    local t, err = self:task()
    if t then
      if accept(t) then return t end
      last = format("task %s: %s%s", t.id:sub(1, 12), tostring(t.state), t.message and ("; " .. t.message) or "")
    else
      last = type(err) == "table" and err.message or tostring(err)
    end
    if time.mono() - started >= timeout then
      return nil, format("%s: %s not within %g s (last: %s)", self.name, what, timeout, last)
    end
    time.sleep(0.25)
  end
end

-- The swarm replaces a killed task by itself: wait for the new one to run.
function Replica:revive()
  local killed = self.killed and self.killed.id
  local t, err = wait_for_task(self, "no replacement task running", function(t)
    return t.id ~= killed and t.state == "running"
  end, REPLACE_TIMEOUT)
  if not t then return nil, err end
  self.killed, self.killed_on = nil, nil
  return format("replaced by task %s on %s", t.id:sub(1, 12), self.set:node_name(t.node_id))
end

-- Healthy: the task runs (a task with a healthcheck runs once healthy) and
-- its container's own healthcheck says so.
function Replica:wait_healthy(opts)
  opts = opts or {}
  local started = time.mono()
  local timeout = opts.timeout or 90
  local t, err = wait_for_task(self, "not running", function(t) return t.state == "running" end, timeout)
  if not t then return nil, err end
  local c
  c, err = t:container()
  if not c then return nil, err end
  local ok
  ok, err = c:wait{ state = "healthy", timeout = math.max(1, timeout - (time.mono() - started)) }
  if not ok then return nil, err end
  return time.mono() - started
end

-- The log lines of every task container the slot had since `since` (a
-- replaced task's container stays on its node, with its logs), in time order.
function Replica:logs(opts)
  opts = opts or {}
  local svc, err = self.set:service()
  if not svc then return nil, err end
  local tasks
  tasks, err = svc:tasks{ desired = "all", slot = self.slot }
  if not tasks then return nil, err end
  local lines = {}
  for _, t in ipairs(tasks) do
    local c = t.container_id and t:container()
    local got = c and c:logs{ since = opts.since }
    for _, l in ipairs(got or {}) do lines[#lines + 1] = l end
  end
  sort(lines, function(a, b) return (a.time or "") < (b.time or "") end)
  return lines
end

function Replica:node()
  local t = self.killed or self:task()
  if self.killed_on then return self.killed_on end
  return t and self.set:node_name(t.node_id) or "?"
end

function Replica:id()
  local t = self:task()
  return t and t.container_id and t.container_id:sub(1, 12) or "?"
end

---------------------------------------------------------------- rolls

local function task_ids(svc)
  local ids = {}
  for _, t in ipairs(svc:tasks{ desired = "all" } or {}) do ids[t.id] = true end
  return ids
end

-- One `service update`: the swarm replaces the tasks `parallelism` at a
-- time, waiting `delay` after each group runs. `each(group, replace)` is
-- called for the groups in the order the swarm takes them; replace() waits
-- until the group's new tasks have started (the old ones stopped first),
-- so that what follows in `each` meets the new replicas.
function Set:roll(opts)
  shared.check_roll(opts, 3)
  local names = self:names()
  local groups = shared.groups(names, opts.mode or "rolling")
  local svc, err = self:service()
  if not svc then return nil, err end
  if opts.env == nil and not svc:changed() then
    -- back to its own configuration, which it has: nothing is replaced (as
    -- compose's `up` of an unchanged service)
    for _, group in ipairs(groups) do opts.each(group, function() return true end) end
    return true
  end
  local by_slot = {}
  for _, name in ipairs(names) do by_slot[self:replica(name).slot] = name end
  local before = task_ids(svc)
  local settle = (self.stack.rotation or {}).settle or self.stack.lb_fail_timeout or 5
  local ok
  ok, err = svc:update{
    env = opts.env, original = opts.env == nil or nil,
    update = { parallelism = #groups[1], delay = settle, order = "stop-first", failure_action = "pause" },
  }
  if not ok then return nil, err end
  local done = {}
  for _ = 1, #groups do
    -- the next group: the slots whose new task exists now
    local group, started = {}, time.mono()
    while #group == 0 do
      for _, t in ipairs(svc:tasks{ desired = "running" } or {}) do
        local name = by_slot[t.slot]
        if name and not before[t.id] and not done[name] then group[#group + 1] = name end
      end
      if #group == 0 then
        if time.mono() - started > REPLACE_TIMEOUT then
          return nil, format("roll: the swarm replaced no further replica of %s within %g s", svc.name, REPLACE_TIMEOUT)
        end
        time.sleep(0.2)
      end
    end
    sort(group)
    for _, name in ipairs(group) do done[name] = true end
    opts.each(group, function()
      for _, name in ipairs(group) do
        local r = self:replica(name)
        local t, werr = wait_for_task(r, "its new task did not start", function(t)
          return not before[t.id] and (t.state == "starting" or t.state == "running")
        end, REPLACE_TIMEOUT)
        if not t then return nil, werr end
      end
      return true
    end)
  end
  local took
  took, err = svc:converge{ timeout = REPLACE_TIMEOUT }
  if not took then return nil, err end
  return true
end

---------------------------------------------------------------- nodes

-- The nodes of the swarm, by the names the stack file uses: { name =,
-- state = "ready"|"down", availability =, manager = bool, replicas = { names } }
function Set:nodes()
  local list, err = self:manager():nodes()
  if not list then return nil, err end
  local on, unplaced = {}, {}
  for _, name in ipairs(self:names()) do
    local t = self:replica(name):task()
    if t and t.node_id and t.node_id ~= "" then
      local node = self:node_name(t.node_id)
      on[node] = on[node] or {}
      on[node][#on[node] + 1] = name
    else
      unplaced[#unplaced + 1] = name
    end
  end
  local nodes = {}
  for _, n in ipairs(list) do
    nodes[#nodes + 1] = { name = n.name, state = n.state, availability = n.availability, manager = n.role == "manager",
                          replicas = on[n.name] or {} }
  end
  -- replicas the swarm wants to run but has put on no node (no node fits)
  if #unplaced > 0 then
    nodes[#nodes + 1] = { name = "(no node)", state = "pending", availability = "-", manager = false,
                          replicas = unplaced }
  end
  return nodes
end

-- Polls until the manager sees node `name` in `state` ("down", "ready").
function Set:wait_node(name, state, timeout)
  local started = time.mono()
  while true do
    local last
    local n, err = self:manager():node(name)
    if n then
      if n.state == state then return time.mono() - started end
      last = n.state
    else
      last = err.message
    end
    if time.mono() - started >= timeout then
      return nil, format("node %s not %s within %g s (last: %s)", name, state, timeout, last)
    end
    time.sleep(0.25)
  end
end

-- set:lose(node) -> true | nil, err: the node's daemon stops, as a host
-- that goes away (its containers stop with it), through the stack file's
-- swarm.node_control; docker's node:stop brings it back at the check's end
-- (and `halo cleanup` after a kill -9) unless set:regain(node) did, which
-- waits until the manager has it ready again.
function Set:lose(node)
  local n, err = self:manager():node(node)
  if not n then return nil, err end
  return n:stop()
end

function Set:regain(node, timeout)
  local n, err = self:manager():node(node)
  if not n then return nil, err end
  return n:start{ timeout = timeout or 60 }
end

-- set:wait_replicas{ timeout =, lost = node } -> seconds | nil, err:
-- until every replica has a running task (on whichever node); the tasks
-- on a lost node do not count, though the manager may still list them as
-- running for a while after marking the node down.
function Set:wait_replicas(opts)
  opts = opts or {}
  local svc, err = self:service()
  if not svc then return nil, err end
  local gone = {}
  if opts.lost then
    local n
    n, err = self:manager():node(opts.lost)
    if not n then return nil, err end
    for _, t in ipairs(svc:tasks{ desired = "running" } or {}) do
      if t.node_id == n.id then gone[#gone + 1] = t.id end
    end
  end
  return svc:converge{ timeout = opts.timeout or REPLACE_TIMEOUT, replacing = gone }
end

-- set:spread() -> { moved replica names } | nil, err: a replica sharing a
-- node while another ready node has none is replaced, and the swarm puts
-- the replacement on the empty node (the service spreads over the nodes).
-- After a node came back the swarm does not do this by itself.
function Set:spread()
  local nodes, err = self:nodes()
  if not nodes then return nil, err end
  local moved = {}
  local empty = 0
  for _, n in ipairs(nodes) do
    if n.state == "ready" and n.availability == "active" and #n.replicas == 0 then empty = empty + 1 end
  end
  for _, n in ipairs(nodes) do
    for i = 2, n.state == "ready" and #n.replicas or 0 do
      if empty == 0 then break end
      local r = self:replica(n.replicas[i])
      local ok
      ok, err = r:kill()
      if not ok then return nil, err end
      ok, err = r:revive()
      if not ok then return nil, err end
      moved[#moved + 1] = format("%s %s", r.name, ok)
      empty = empty - 1
    end
  end
  return moved
end

function Set:restore()
  local svc, err = self:service()
  if not svc then return nil, err end
  return svc:restore()
end

return M
