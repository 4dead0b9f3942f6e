-- The docker module's swarm part (mod/docker.lua loads this file with
-- internal.load): services, tasks and nodes of a Docker Swarm, through a
-- manager's Engine API, on the default daemon (docker.services{}) and on
-- any docker.daemon{} handle (d:services{}).
--
-- A service changed by a check (an update with new environment or update
-- settings) is put back at the check's end: the spec read before the first
-- change is journalled, then restored and waited for (converged) by the
-- undo, or by `halo cleanup` after a kill -9. A drained node is made active
-- again the same way. A task's container killed on its node needs no undo
-- of its own (the swarm replaces it); the check's end waits until the
-- service has all its replicas running again.
local M, internal, d = ...
local Daemon, Container, call, call_json, fail, may_inject = d.Daemon, d.Container, d.call, d.call_json, d.fail, d.may_inject
local stack_namespace, container_on, endpoint = d.stack_namespace, d.container_on, d.endpoint
local check_options = internal.check_options
local json = require "json"
local time = require "time"

local type, error, ipairs, pairs, tostring, setmetatable, assert, pcall =
  type, error, ipairs, pairs, tostring, setmetatable, assert, pcall
local format, concat, sort = string.format, table.concat, table.sort
-- string functions as locals, never methods (see docker.lua)
local match, sub, find = string.match, string.sub, string.find
local tointeger, floor, max = math.tointeger, math.floor, math.max

local NAMESPACE_LABEL = "com.docker.stack.namespace"

local Service, Task = {}, {}
Service.__index, Task.__index = Service, Task
Service.__tostring = function(s) return format("service %s (%s)", s.name, sub(s.id, 1, 12)) end
Task.__tostring = function(t) return format("task %s.%d (%s on %s)", t.service_name, t.slot or 0, t.state, t.node_id) end

local function record(action, extra)
  local entry = { at = time.mono() - internal.origin(), action = action }
  for k, v in pairs(extra) do entry[k] = v end
  internal.event("action", json.encode(entry))
end

-- The swarm calls go to a manager: ep nil is the default daemon.
local function scall(ep, method, path, opts)
  opts = opts or {}
  opts.ep = ep
  return call(method, path, opts)
end

-- scall's decoded JSON (call_json): an object, or with list = true an array of them
local function sjson(ep, method, path, opts)
  opts = opts or {}
  opts.ep = ep
  return call_json(method, path, opts)
end

local function describe_ep(ep) return ep and ep.host or "the default daemon" end

---------------------------------------------------------------- services

local function wrap_service(raw, ep)
  local spec = raw.Spec or {}
  local mode = spec.Mode or {}
  return setmetatable({
    id = raw.ID,
    name = spec.Name,
    namespace = (spec.Labels or {})[NAMESPACE_LABEL],
    replicas = mode.Replicated and tointeger(mode.Replicated.Replicas) or nil,
    version = raw.Version and raw.Version.Index,
    raw = raw,
    ep = ep,
  }, Service)
end

local function in_scope(s, action)
  local namespace = stack_namespace()
  if not namespace then
    error(format("docker: refusing to %s %s: the stack file names no swarm stack (stack.swarm.namespace)",
                 action, tostring(s.name)), 3)
  end
  if s.namespace ~= namespace then
    error(format("docker: refusing to %s %s: it belongs to swarm stack '%s', not the stack's '%s'", action,
                 tostring(s.name), tostring(s.namespace), namespace), 3)
  end
end

-- services{ namespace = } -> { service, ... } sorted by name | nil, err
-- (namespace defaults to the stack's swarm stack; false lists all)
local function services_on(ep, opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("bad argument #1 to 'services' (table expected)", 3) end
  check_options("services", 1, opts, { "namespace" }, 3)
  local namespace = opts.namespace
  if namespace == nil then namespace = stack_namespace() end
  local query = {}
  if namespace then query.filters = json.encode({ label = { NAMESPACE_LABEL .. "=" .. namespace } }) end
  local found, err = sjson(ep, "GET", "/services", { query = query, list = true })
  if not found then return nil, err end
  local list = {}
  for _, raw in ipairs(found) do list[#list + 1] = wrap_service(raw, ep) end
  sort(list, function(a, b) return a.name < b.name end)
  return list
end

-- service(name_or_id) -> service | nil, err. A name without the stack's
-- prefix ("api") is looked up as "<namespace>_api".
local function service_on(ep, ref)
  if type(ref) ~= "string" or ref == "" then error("bad argument #1 to 'service' (a name or id expected)", 3) end
  local raw, err = sjson(ep, "GET", "/services/" .. ref)
  local namespace = stack_namespace()
  if not raw and err.status == 404 and namespace and not find(ref, namespace .. "_", 1, true) then
    raw, err = sjson(ep, "GET", "/services/" .. namespace .. "_" .. ref)
  end
  if not raw then
    if err.status == 404 then
      return fail("not_found", format("docker: no service '%s' on %s", ref, describe_ep(ep)))
    end
    return nil, err
  end
  return wrap_service(raw, ep)
end

-- s:inspect() -> the service as the manager has it now (refreshes s)
function Service:inspect()
  local raw, err = sjson(self.ep, "GET", "/services/" .. self.id)
  if not raw then return nil, err end
  local fresh = wrap_service(raw, self.ep)
  self.raw, self.version, self.replicas = fresh.raw, fresh.version, fresh.replicas
  return self.raw
end

-- The service's environment as a table (from its spec now).
function Service:env()
  local raw, err = self:inspect()
  if not raw then return nil, err end
  local env = {}
  local cs = ((raw.Spec or {}).TaskTemplate or {}).ContainerSpec or {}
  for _, kv in ipairs(cs.Env or {}) do
    local k, v = match(kv, "^([^=]*)=(.*)$")
    if k then env[k] = v else env[kv] = "" end
  end
  return env
end

---------------------------------------------------------------- tasks

local function wrap_task(raw, service)
  local status = raw.Status or {}
  local cs = status.ContainerStatus or {}
  return setmetatable({
    id = raw.ID,
    slot = tointeger(raw.Slot),
    node_id = raw.NodeID,
    state = status.State,
    desired = raw.DesiredState,
    message = status.Err or status.Message,
    container_id = cs.ContainerID,
    updated = raw.UpdatedAt,
    service_id = raw.ServiceID,
    service_name = service and service.name or raw.ServiceID,
    env = ((raw.Spec or {}).ContainerSpec or {}).Env,
    ep = service and service.ep,
  }, Task)
end

-- s:tasks{ desired = "running" | "all", slot = n } -> { task, ... } by slot, newest first
function Service:tasks(opts)
  opts = opts or {}
  check_options("tasks", 1, opts, { "desired", "slot" })
  local filters = { service = { self.id } }
  local desired = opts.desired or "running"
  if desired ~= "all" then filters["desired-state"] = { desired } end
  local found, err = sjson(self.ep, "GET", "/tasks", { query = { filters = json.encode(filters) }, list = true })
  if not found then return nil, err end
  local list = {}
  for _, raw in ipairs(found) do
    local t = wrap_task(raw, self)
    if not opts.slot or t.slot == opts.slot then list[#list + 1] = t end
  end
  sort(list, function(a, b)
    if (a.slot or 0) ~= (b.slot or 0) then return (a.slot or 0) < (b.slot or 0) end
    return (a.updated or "") > (b.updated or "")
  end)
  return list
end

-- Where a node's daemon is: the stack file's swarm.nodes maps a node's id,
-- its label value (swarm.node_label) or its hostname to a host (or to
-- { host =, tls = }); the manager itself needs no entry.
-- A manager's own node id, asked once per endpoint (nil: the default daemon).
local own_node = {}

-- A stack file's daemon entry: a host, or { host =, tls = }; nil for none.
local function entry_endpoint(entry, what)
  if type(entry) == "string" then return endpoint(entry, nil, what) end
  if type(entry) == "table" then return endpoint(entry.host, entry.tls, what) end
end

local function node_endpoint(manager_ep, node_id)
  local stack = internal.stack() or {}
  local conf = type(stack.swarm) == "table" and stack.swarm or {}
  local key = manager_ep or "default"
  if own_node[key] == nil then
    local info = sjson(manager_ep, "GET", "/info")
    own_node[key] = info and type(info.Swarm) == "table" and info.Swarm.NodeID or nil
  end
  if own_node[key] == node_id then return manager_ep end
  local nodes = type(conf.nodes) == "table" and conf.nodes or {}
  local entry = nodes[node_id]
  if entry == nil then
    local raw, err = sjson(manager_ep, "GET", "/nodes/" .. node_id)
    if not raw then return nil, err end
    local labels = (raw.Spec or {}).Labels or {}
    local label = conf.node_label and labels[conf.node_label]
    entry = (label and nodes[label]) or nodes[(raw.Description or {}).Hostname or ""]
    if entry == nil then
      return fail("not_found", format("docker: no daemon endpoint for swarm node %s (%s): name it in the stack " ..
                                      "file's swarm.nodes", sub(node_id, 1, 12), tostring(label or
                                      (raw.Description or {}).Hostname)))
    end
  end
  if type(entry) == "string" or type(entry) == "table" then return entry_endpoint(entry, "swarm.nodes") end
  error("docker: the stack file's swarm.nodes entries are hosts or { host =, tls = }", 0)
end

-- task:container() -> the task's container, on the daemon of the node
-- that runs it | nil, err
function Task:container()
  if not self.container_id then
    return fail("not_found", format("docker: %s has no container (yet)", tostring(self)))
  end
  local ep, err = node_endpoint(self.ep, self.node_id)
  if not ep then return nil, err end
  local c
  c, err = container_on(ep, self.container_id)
  if not c then return nil, err end
  c.from_task, c.manager_ep, c.service_id = true, self.ep, self.service_id
  return c
end

---------------------------------------------------------------- convergence

-- s:converge{ timeout = s, interval = s, replacing = { task, ... } } ->
-- seconds | nil, err: until no update is in progress and every replica's
-- task is running (a task with a healthcheck runs only once healthy) on
-- the service's current spec; none of the tasks `replacing` names counts
-- (a task whose container was just killed may still say running).
function Service:converge(opts)
  opts = opts or {}
  check_options("converge", 1, opts, { "timeout", "interval", "replacing" })
  local replaced = {}
  for _, t in ipairs(opts.replacing or {}) do replaced[type(t) == "table" and t.id or t] = true end
  local timeout, interval = opts.timeout or 120, opts.interval or 0.5
  local started, last = time.mono(), "?"
  while true do
    local raw, err = self:inspect()
    if raw then
      local us = raw.UpdateStatus or {}
      local tasks
      tasks, err = self:tasks{ desired = "running" }
      if tasks then
        local running, by_slot = 0, {}
        local cs = ((raw.Spec or {}).TaskTemplate or {}).ContainerSpec or {}
        local want_env = concat(cs.Env or {}, "\0")
        for _, t in ipairs(tasks) do
          if t.state == "running" and not replaced[t.id] and concat(t.env or {}, "\0") == want_env
             and not by_slot[t.slot or t.id] then
            by_slot[t.slot or t.id] = true
            running = running + 1
          end
        end
        local state = us.State
        last = format("%d of %s replicas running%s", running, tostring(self.replicas),
                      state and (", update " .. state .. (us.Message and (": " .. us.Message) or "")) or "")
        local all = running == (self.replicas or running)
        local paused = state == "paused" or state == "rollback_paused"
        -- waiting for killed tasks' replacements, an update that paused
        -- before (another check's, a restore cut short) is not this wait's
        -- concern once every replica runs again
        if all and state ~= "updating" and state ~= "rollback_started" and (not paused or opts.replacing) then
          break
        end
        if paused then
          return fail("docker", format("docker: %s: the update stopped (%s)", self.name, last))
        end
      else
        last = err.message
      end
    else
      last = err.message
    end
    if time.mono() - started >= timeout then
      return fail("timeout", format("docker: %s did not converge in %g s (%s)", self.name, timeout, last))
    end
    time.sleep(interval)
  end
  local took = time.mono() - started
  record("converged", { service = self.name, after = took })
  return took
end

---------------------------------------------------------------- updates

local pending_spec = {} -- service id -> { undo = id, spec = the spec to go back to }

local function post_spec(s, spec, query)
  query = query or {}
  query.version = tostring(floor(s.version))
  local res, err = scall(s.ep, "POST", "/services/" .. s.id .. "/update", { query = query, json = spec })
  if not res then return nil, err end
  local answer = res:json()
  local warnings = type(answer) == "table" and answer.Warnings or nil
  return true, warnings
end

local function update_stopped(raw)
  local state = (raw.UpdateStatus or {}).State
  return state == "paused" or state == "rollback_paused"
end

-- How often a restore whose own update paused is posted again.
local RESTORE_ATTEMPTS = 3

-- Puts the saved spec back (if the service still exists and differs) and
-- waits for it: the undo, and `halo cleanup`'s replay of the journal. An
-- update that paused (failure_action pause: a task that failed or ended
-- within the monitor window, e.g. one of an update cut short by the
-- restore, or a slow start on a busy host) is resumed by posting the spec
-- again (the manager clears a paused status on any update); without that a
-- paused service could never be restored, not even by `halo cleanup` again.
local function restore_spec(s, spec, timeout)
  local raw, gone = s:inspect()
  if not raw then
    -- only a service the manager no longer has is nothing to restore; a
    -- manager that does not answer keeps the undo (and its journal entry)
    if gone.status == 404 then return format("%s is gone: nothing to restore", tostring(s.name)) end
    error(gone, 0)
  end
  -- the attempts share one deadline: the check's grace is what its undo has
  local deadline = time.mono() + (timeout or 180)
  for attempt = 1, RESTORE_ATTEMPTS do
    if json.encode(raw.Spec) ~= json.encode(spec) or update_stopped(raw) then
      assert(post_spec(s, spec))
      record("service restored", { service = s.name, attempt = attempt > 1 and attempt or nil })
    end
    local ok, err = s:converge{ timeout = max(1, deadline - time.mono()) }
    if ok then return "restored the spec of " .. s.name end
    raw = s:inspect()
    if attempt == RESTORE_ATTEMPTS or not raw or not update_stopped(raw) or time.mono() >= deadline then
      error(err, 0)
    end
  end
end

local function journal_entry(s, spec)
  return json.encode({ undo = "service spec", id = s.id, name = s.name, namespace = s.namespace,
                       host = s.ep and s.ep.host or nil, tls = s.ep and s.ep.tls or nil, spec = spec })
end

-- Before the first change: the spec to go back to, registered and
-- journalled in one call (docker.lua's register_fault says why).
local function register_spec(s)
  if pending_spec[s.id] then return nil end
  local spec = s.raw.Spec
  local key = "service " .. s.id
  local pending = { spec = spec }
  pending.undo = internal.undo("restore service " .. s.name, function()
    if pending_spec[s.id] == pending then pending_spec[s.id] = nil end
    restore_spec(s, spec)
    internal.journal(key, nil)
  end, key, journal_entry(s, spec))
  pending_spec[s.id] = pending
  return pending.undo
end

-- Posts spec after its undo was registered (undo nil: none). Only a "no"
-- from the manager drops the undo: a timeout or a lost connection may have
-- changed the service all the same.
local function post_registered(s, spec, query, undo)
  local ok, err = post_spec(s, spec, query)
  if not ok and undo and err.kind == "docker" then
    internal.cancel_undo(undo)
    pending_spec[s.id] = nil
  end
  return ok, err
end

local UPDATE_KEYS = { parallelism = "Parallelism", delay = "Delay", order = "Order",
                      failure_action = "FailureAction", monitor = "Monitor" }

-- s:update{ env = { K = "v" | false }, update = { parallelism, delay, order, failure_action, monitor },
--           original = true, undo = true } -> true | nil, err
-- The service's tasks are replaced as its update settings say (delay and
-- monitor in seconds); returns once the manager took the new spec (call
-- s:converge{} to wait for the replacement). env false removes a variable.
-- original = true (instead of env): back to the task spec it had before the
-- check first changed it, replaced as `update` says (a rolling restore);
-- nothing to do when the check changed nothing.
function Service:update(opts)
  if type(opts) ~= "table" then error("bad argument #1 to 'update' (table expected)", 2) end
  check_options("update", 1, opts, { "env", "update", "original", "undo" })
  if opts.env ~= nil and type(opts.env) ~= "table" then error("bad argument #1 to 'update' (env must be a table)", 2) end
  if opts.original and opts.env then error("bad argument #1 to 'update' (env or original, not both)", 2) end
  if opts.original and not pending_spec[self.id] then return true end
  if opts.update ~= nil then
    if type(opts.update) ~= "table" then error("bad argument #1 to 'update' (update must be a table)", 2) end
    for k in pairs(opts.update) do
      if not UPDATE_KEYS[k] then
        error(format("bad argument #1 to 'update' (unknown update setting '%s'; known: parallelism, delay, order, " ..
                     "failure_action, monitor)", tostring(k)), 2)
      end
    end
    local order = opts.update.order
    if order ~= nil and order ~= "stop-first" and order ~= "start-first" then
      error("bad argument #1 to 'update' (update.order is \"stop-first\" or \"start-first\")", 2)
    end
  end
  in_scope(self, "update")
  may_inject("update", self.name)
  local raw, err = self:inspect()
  if not raw then return nil, err end
  local spec = json.decode(json.encode(opts.original and pending_spec[self.id].spec or raw.Spec)) -- a copy to change
  local said = opts.original and { "the original task spec" } or {}
  if opts.env then
    local cs = spec.TaskTemplate.ContainerSpec
    local env, seen = {}, {}
    for _, kv in ipairs(cs.Env or {}) do
      local k = match(kv, "^([^=]*)") or kv
      local v = opts.env[k]
      if v == nil then env[#env + 1] = kv
      elseif v ~= false then env[#env + 1] = k .. "=" .. tostring(v) end
      seen[k] = true
    end
    local added = {}
    for k, v in pairs(opts.env) do
      if not seen[k] and v ~= false then added[#added + 1] = k .. "=" .. tostring(v) end
      said[#said + 1] = k -- names only: values may be secrets
    end
    sort(added)
    for _, kv in ipairs(added) do env[#env + 1] = kv end
    cs.Env = env
    -- a spec equal to the current one would not replace any task
    spec.TaskTemplate.ForceUpdate = (spec.TaskTemplate.ForceUpdate or 0) + 1
  end
  if opts.update then
    spec.UpdateConfig = spec.UpdateConfig or {}
    for k, v in pairs(opts.update) do
      if k == "delay" or k == "monitor" then v = floor(v * 1e9) end -- nanoseconds
      spec.UpdateConfig[UPDATE_KEYS[k]] = v
      said[#said + 1] = k .. "=" .. tostring(opts.update[k])
    end
  end
  sort(said)
  local undo = opts.undo ~= false and register_spec(self) or nil
  local ok
  ok, err = post_registered(self, spec, nil, undo)
  if not ok then return nil, err end
  record("service update", { service = self.name, changed = concat(said, " "), undo = undo and "service spec" or nil })
  return true
end

-- s:changed() -> whether the check changed the spec (the end puts it back)
function Service:changed() return pending_spec[self.id] ~= nil end

-- s:rollback() -> true | nil, err: the manager's own rollback to the
-- previous spec (as `docker service rollback`)
function Service:rollback()
  in_scope(self, "roll back")
  may_inject("roll back", self.name)
  local raw, err = self:inspect()
  if not raw then return nil, err end
  if not raw.PreviousSpec then return fail("docker", format("docker: %s has no previous spec", self.name)) end
  local undo = register_spec(self) -- a rollback changes the spec too
  local ok
  ok, err = post_registered(self, raw.Spec, { rollback = "previous" }, undo)
  if not ok then return nil, err end
  record("service rollback", { service = self.name })
  return true
end

-- s:restore{ timeout = s } -> true | nil, err: back to the spec it had
-- before the check first changed it, converged; the undo is then done.
function Service:restore(opts)
  opts = opts or {}
  check_options("restore", 1, opts, { "timeout" })
  local pending = pending_spec[self.id]
  if not pending then return true end
  local ok, err = pcall(restore_spec, self, pending.spec, opts.timeout)
  if not ok then return nil, internal.error("docker", tostring(err)) end
  internal.cancel_undo(pending.undo) -- and its journal entry
  pending_spec[self.id] = nil
  return true
end

---------------------------------------------------------------- nodes

-- Nodes, and taking one away (mod/docker/nodes.lua)
local nodes = internal.load("mod/docker/nodes")(M, internal, {
  sjson = sjson, scall = scall, record = record, fail = fail, describe_ep = describe_ep, may_inject = may_inject,
})
local nodes_on, node_on = nodes.nodes_on, nodes.node_on

---------------------------------------------------------------- task containers

-- A swarm task's container is not started again after a kill or a stop:
-- the swarm replaces the task (starting the old container by hand would
-- only fight it). What the check's end waits for instead is the service
-- having all its replicas running again; nothing is journalled, since the
-- swarm restores them without halo.
local waiting_for = {} -- service id -> { undo = id, tasks = { killed task ids } }

-- The manager to ask about c's service: the one its task was found
-- through; for a container found on a node's daemon directly, the stack
-- file's swarm.manager, else that daemon itself (a manager too, or it says so).
local function manager_of(c)
  if c.from_task then return c.manager_ep end
  local stack = internal.stack() or {}
  return entry_endpoint(type(stack.swarm) == "table" and stack.swarm.manager or nil, "swarm.manager") or c.ep
end

local function wait_for_replacement(c)
  local service_id = c.service_id or c.labels["com.docker.swarm.service.id"]
  if not service_id then return end
  local manager = manager_of(c)
  local waiting = waiting_for[service_id]
  if waiting then
    waiting.tasks[#waiting.tasks + 1] = c.task
    return
  end
  waiting = { tasks = { c.task } }
  waiting.undo = internal.undo("wait until service " .. tostring(c.service) .. " has its replicas again", function()
    if waiting_for[service_id] == waiting then waiting_for[service_id] = nil end
    local s = assert(service_on(manager, service_id))
    assert(s:converge{ timeout = 120, replacing = waiting.tasks })
  end)
  waiting_for[service_id] = waiting
end

for _, action in ipairs { "kill", "stop" } do
  local plain = Container[action]
  Container[action] = function(self, arg)
    -- not a task's, or a bare argument (which raises there, naming the form)
    if not self.task or (arg ~= nil and type(arg) ~= "table") then return plain(self, arg) end
    local opts = {}
    if type(arg) == "table" then for k, v in pairs(arg) do opts[k] = v end end
    local undo = opts.undo
    opts.undo = false -- no start of the old container: see above
    local ok, err = plain(self, opts)
    if ok and undo ~= false then wait_for_replacement(self) end
    return ok, err
  end
end

---------------------------------------------------------------- the handles

for name, fn in pairs {
  services = services_on, service = service_on, nodes = nodes_on, node = node_on,
} do
  M[name] = function(...) return fn(nil, ...) end
  Daemon[name] = function(self, ...) return fn(self.ep, ...) end
end

-- For `halo cleanup` (mod/undo.lua): a journalled "service spec", "node
-- availability" or "node stopped" entry, on the manager it was made through.
function internal.restore_swarm(e)
  local ep = e.host and endpoint(e.host, e.tls, "cleanup") or nil
  if e.undo ~= "service spec" then return nodes.restore(ep, e) end
  local s, err = service_on(ep, e.id)
  if not s then
    if err.kind == "not_found" then return tostring(e.name) .. " is gone: nothing to restore" end
    error(err, 0)
  end
  return restore_spec(s, e.spec)
end
