-- The docker module's swarm nodes (mod/docker/swarm.lua loads this file
-- with internal.load): the nodes of a swarm, asked of a manager, and the
-- two ways a check takes one away. Its availability (drain, pause) asks the
-- manager to move or keep the node's tasks; stop ends the node's daemon
-- outright through the stack file's swarm.node_control, as a host that
-- goes away. Either is put back at the check's end, and journalled first,
-- so that `halo cleanup` puts it back after a kill -9.
local _, internal, s = ...
local sjson, scall, record, fail, describe_ep, may_inject = s.sjson, s.scall, s.record, s.fail, s.describe_ep,
  s.may_inject
local check_options = internal.check_options
local json = require "json"
local time = require "time"

local type, error, ipairs, tostring, setmetatable, assert = type, error, ipairs, tostring, setmetatable, assert
local format, sort, floor = string.format, table.sort, math.floor
local match = string.match

local Node = {}
Node.__index = Node
Node.__tostring = function(n) return format("node %s (%s, %s)", n.name, n.role, n.availability) end

local function wrap_node(raw, ep, label)
  local spec, desc, status = raw.Spec or {}, raw.Description or {}, raw.Status or {}
  local labels = spec.Labels or {}
  return setmetatable({
    id = raw.ID,
    hostname = desc.Hostname,
    name = (label and labels[label]) or desc.Hostname or raw.ID,
    role = spec.Role,
    availability = spec.Availability,
    state = status.State,
    labels = labels,
    leader = raw.ManagerStatus and raw.ManagerStatus.Leader or false,
    version = raw.Version and raw.Version.Index,
    raw = raw,
    ep = ep,
  }, Node)
end

local function node_label()
  local stack = internal.stack() or {}
  return type(stack.swarm) == "table" and stack.swarm.node_label or nil
end

-- nodes() -> { node, ... } sorted by name | nil, err
local function nodes_on(ep)
  local found, err = sjson(ep, "GET", "/nodes", { list = true })
  if not found then return nil, err end
  local list, label = {}, node_label()
  for _, raw in ipairs(found) do list[#list + 1] = wrap_node(raw, ep, label) end
  sort(list, function(a, b) return a.name < b.name end)
  return list
end

-- node(ref) -> node | nil, err: by id, hostname or label value
local function node_on(ep, ref)
  if type(ref) ~= "string" or ref == "" then error("bad argument #1 to 'node' (an id or name expected)", 3) end
  local list, err = nodes_on(ep)
  if not list then return nil, err end
  for _, n in ipairs(list) do
    if n.id == ref or n.name == ref or n.hostname == ref then return n end
  end
  return fail("not_found", format("docker: no swarm node '%s' on %s", ref, describe_ep(ep)))
end

function Node:inspect()
  local fresh, err = node_on(self.ep, self.id)
  if not fresh then return nil, err end
  self.availability, self.state, self.version, self.raw = fresh.availability, fresh.state, fresh.version, fresh.raw
  return self.raw
end

local function set_availability(n, availability)
  local raw, err = n:inspect()
  if not raw then return nil, err end
  if raw.Spec.Availability == availability then return true end
  local spec = json.decode(json.encode(raw.Spec))
  spec.Availability = availability
  local res
  res, err = scall(n.ep, "POST", "/nodes/" .. n.id .. "/update", { query = { version = tostring(floor(n.version)) },
                                                                   json = spec })
  if not res then return nil, err end
  record("node " .. availability, { node = n.name })
  return true
end

local pending_node = {}

-- n:drain{ undo = true } / n:pause{} -> true | nil, err: the swarm moves
-- (drain) or keeps (pause) the node's tasks; made active again at the
-- check's end. n:activate() -> true | nil, err
local function take_away(n, availability, opts)
  opts = opts or {}
  check_options(availability == "drain" and "drain" or "pause", 1, opts, { "undo" }, 3)
  may_inject(availability, "node " .. n.name)
  local before = n.availability
  local key = "node " .. n.id
  if opts.undo ~= false and not pending_node[n.id] and before ~= availability then
    local id
    id = internal.undo("make node " .. n.name .. " " .. before .. " again", function()
      if pending_node[n.id] == id then pending_node[n.id] = nil end
      assert(set_availability(n, before))
      internal.journal(key, nil)
    end, key, json.encode({ undo = "node availability", id = n.id, name = n.name, availability = before,
                            host = n.ep and n.ep.host or nil, tls = n.ep and n.ep.tls or nil }))
    pending_node[n.id] = id
  end
  return set_availability(n, availability)
end

function Node:drain(opts) return take_away(self, "drain", opts) end
function Node:pause(opts) return take_away(self, "pause", opts) end
function Node:activate()
  local ok, err = set_availability(self, "active")
  if not ok then return nil, err end
  local id = pending_node[self.id]
  if id then
    internal.cancel_undo(id)
    pending_node[self.id] = nil
  end
  return true
end


---------------------------------------------------------------- a node's daemon

-- The stack file's command that stops or starts a node's daemon
-- (swarm.node_control; the action and the node's name are added to it).
local function node_control()
  local stack = internal.stack() or {}
  local control = type(stack.swarm) == "table" and stack.swarm.node_control or nil
  if type(control) ~= "table" or #control == 0 then
    return nil, "the stack file names no command that stops and starts a node (swarm.node_control)"
  end
  local argv = {}
  for i, a in ipairs(control) do
    if type(a) ~= "string" then return nil, "swarm.node_control must be a list of strings" end
    argv[i] = a
  end
  return argv
end

local function seconds(fname, opts)
  if opts.timeout ~= nil and (type(opts.timeout) ~= "number" or opts.timeout <= 0) then
    error(format("bad argument #1 to '%s' (timeout must be a positive number of seconds)", fname), 3)
  end
  return opts.timeout
end

local function run_control(control, action, name, timeout)
  local argv = {}
  for i, a in ipairs(control) do argv[i] = a end
  argv[#argv + 1] = action
  argv[#argv + 1] = name
  local res, err = require("proc").run{ argv = argv, timeout = timeout or 120 }
  if not res then return nil, err end
  if res.code ~= 0 then
    local said = match(res.stderr or "", "([^\n]*)\n?$") or ""
    return fail("docker", format("docker: %s of node %s (swarm.node_control) ended with %s: %s", action, name,
                                 res.code and ("exit " .. res.code) or ("signal " .. tostring(res.signal)), said))
  end
  return true
end

-- Until the manager at ep sees node `id` in `state` ("ready", "down");
-- by id: `halo cleanup` has no stack file's node_label to name it by.
local function wait_state(ep, id, name, state, timeout)
  local started = time.mono()
  while true do
    local n, err = node_on(ep, id)
    if n and n.state == state then return time.mono() - started end
    local last = n and n.state or err.message
    if time.mono() - started >= timeout then
      return fail("timeout", format("docker: node %s not %s within %g s (last: %s)", name, state, timeout, last))
    end
    time.sleep(0.25)
  end
end

local pending_stop = {}

-- n:stop{ undo = true, timeout = 120 } -> true | nil, err: the node's
-- daemon stops (swarm.node_control stop NAME), its containers with it.
-- Started again at the check's end, and waited for until the manager has
-- it ready, unless n:start() did it first.
function Node:stop(opts)
  opts = opts or {}
  check_options("stop", 1, opts, { "undo", "timeout" })
  local timeout = seconds("stop", opts)
  may_inject("stop", "node " .. self.name)
  local control, why = node_control()
  if not control then return fail("docker", "docker: cannot stop node " .. self.name .. ": " .. why) end
  local key = "node stopped " .. self.id
  if opts.undo ~= false and not pending_stop[self.id] then
    local n, id = self, nil
    id = internal.undo("start node " .. n.name .. " again", function()
      if pending_stop[n.id] == id then pending_stop[n.id] = nil end
      assert(run_control(control, "start", n.name))
      assert(wait_state(n.ep, n.id, n.name, "ready", 90))
      internal.journal(key, nil)
    end, key, json.encode({ undo = "node stopped", id = n.id, name = n.name, control = control,
                            host = n.ep and n.ep.host or nil, tls = n.ep and n.ep.tls or nil }))
    pending_stop[n.id] = id
  end
  local ok, err = run_control(control, "stop", self.name, timeout)
  if not ok then return nil, err end
  record("node stopped", { node = self.name })
  return true
end

-- n:start{ timeout = 60 } -> seconds until the manager had it ready | nil, err
function Node:start(opts)
  opts = opts or {}
  check_options("start", 1, opts, { "timeout" })
  local timeout = seconds("start", opts) or 60
  local control, why = node_control()
  if not control then return fail("docker", "docker: cannot start node " .. self.name .. ": " .. why) end
  local ok, err = run_control(control, "start", self.name)
  if not ok then return nil, err end
  record("node started", { node = self.name })
  local took
  took, err = wait_state(self.ep, self.id, self.name, "ready", timeout)
  if not took then return nil, err end
  local id = pending_stop[self.id]
  if id then
    internal.cancel_undo(id) -- and its journal entry
    pending_stop[self.id] = nil
  end
  return took
end

---------------------------------------------------------------- cleanup

-- A journalled "node availability" or "node stopped" entry (mod/undo.lua
-- through swarm.lua's internal.restore_swarm), on the manager at ep.
local function restore(ep, e)
  if e.undo == "node stopped" then
    if type(e.control) ~= "table" or type(e.control[1]) ~= "string" then error("the entry names no command", 0) end
    -- the command the run's stack file named and allowed, as journalled
    -- (for this command only: the entries restored after it keep the
    -- list they had, the docker client for a compose recreate)
    local stack = internal.stack()
    local allowed = stack.allow_exec
    stack.allow_exec = { e.control[1] }
    local ok, err = run_control(e.control, "start", tostring(e.name))
    stack.allow_exec = allowed
    assert(ok, err)
    assert(wait_state(ep, tostring(e.id), tostring(e.name), "ready", 90))
    return format("started node %s again", tostring(e.name))
  end
  local n, err = node_on(ep, e.id)
  if not n then
    if err.kind == "not_found" then return tostring(e.name) .. " is gone: nothing to restore" end
    error(err, 0)
  end
  assert(set_availability(n, e.availability))
  return format("made node %s %s again", n.name, e.availability)
end

return { nodes_on = nodes_on, node_on = node_on, restore = restore }
