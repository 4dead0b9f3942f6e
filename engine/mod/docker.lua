-- The docker module: the Docker Engine API over its Unix socket (or
-- DOCKER_HOST tcp://), on the http primitive. Containers are found by their
-- compose labels; actions are refused outside the stack's compose project;
-- every fault a check injects (kill, stop, pause) is undone at the end of
-- the check unless the script undid it or said { undo = false }.
local name_, internal = ...
local check_options = internal.check_options
local http = require "http"
local json = require "json"
local time = require "time"

local type, error, pairs, ipairs, tostring, tonumber, setmetatable = type, error, pairs, ipairs, tostring, tonumber, setmetatable
local format, sort = string.format, table.sort
-- string functions as locals, never methods: a check may change its string
-- metatable, and that must not change what the docker module does
local unpack_, byte, sub, find = string.unpack, string.byte, string.sub, string.find
local match, gsub, gmatch = string.match, string.gsub, string.gmatch

local M = {}

---------------------------------------------------------------- the daemons

-- An endpoint: { base = url, unix_socket = path, label = "unix:///...",
-- host = what docker.daemon{} was given (nil for the default daemon),
-- tls = { ca, cert, key } or nil, version = "1.41" once it answered }.
-- The default one is DOCKER_HOST's, or the usual socket.
local function locate()
  local dh = internal.getenv("DOCKER_HOST")
  if dh and dh ~= "" then
    local path = match(dh, "^unix://(.+)$")
    if path then return { base = "http://docker", unix_socket = path, label = dh } end
    local hostport = match(dh, "^tcp://([^/]+)/?$")
    if hostport then return { base = "http://" .. hostport, label = dh } end
    error("DOCKER_HOST " .. dh .. " is neither unix:// nor tcp://", 0)
  end
  local home = internal.getenv("HOME")
  local candidates = { "/var/run/docker.sock", home and home .. "/.docker/run/docker.sock" }
  for _, path in ipairs(candidates) do
    if internal.exists(path) then
      return { base = "http://docker", unix_socket = path, label = "unix://" .. path }
    end
  end
  return { base = "http://docker", unix_socket = candidates[1], label = "unix://" .. candidates[1] }
end

local default_ep -- located on first use; forgotten when it stops answering (it may be back, elsewhere)

local function fail(kind, message, extra)
  return nil, internal.error(kind, message, extra)
end

local function request(ep, args)
  args.unix_socket = ep.unix_socket
  if ep.tls then args.ca_file, args.cert, args.key = ep.tls.ca, ep.tls.cert, ep.tls.key end
  args.record = false -- the actions are the history; API calls would only crowd it
  return http.request(args)
end

-- One API call on opts.ep (default: the default daemon); nil, err when the
-- daemon is unreachable or says no. Tasks call side by side: each works
-- with the daemon it started with, and forgets the shared one only if no
-- other task has replaced it meanwhile.
local function call(method, path, opts)
  opts = opts or {}
  local ep = opts.ep or default_ep or locate()
  if not ep.version then
    local res, err = request(ep, { url = ep.base .. "/version", timeout = 10 })
    if not res then
      return fail("connect", format("docker: the daemon at %s does not answer: %s", ep.label, err.message))
    end
    local info = res:json()
    if type(info) ~= "table" or (info.ApiVersion ~= nil and type(info.ApiVersion) ~= "string") then
      return fail("docker", format("docker: %s does not answer /version as a Docker daemon (HTTP %d)", ep.label,
                                   res.status))
    end
    ep.version = info.ApiVersion or "1.41"
    ep.server = info.Version
    if not opts.ep then default_ep = ep end
  end
  local res, err = request(ep, {
    method = method,
    url = ep.base .. "/v" .. ep.version .. path,
    query = opts.query,
    json = opts.json,
    timeout = opts.timeout or 30,
  })
  if not res then
    if err.kind ~= "timeout" then
      if default_ep == ep then default_ep = nil end
      ep.version = nil -- ask again what it speaks: it may have been replaced
    end
    return fail(err.kind == "timeout" and "timeout" or "connect",
                format("docker: %s %s on the daemon at %s: %s", method, path, ep.label, err.message))
  end
  if res.status >= 400 then
    local body = res:json()
    local msg = type(body) == "table" and body.message or res.body
    return fail("docker", format("docker: %s %s: %d %s", method, path, res.status, tostring(msg)),
                { status = res.status })
  end
  return res, ep
end

-- The JSON answer of a call: an object, or with list = true an array of
-- objects. Anything else (a proxy's error page, another server on the
-- socket) is the environment failing, not the script: nil, err.
local function call_json(method, path, opts)
  local res, ep = call(method, path, opts)
  if not res then return nil, ep end
  local body = res:json()
  local ok = type(body) == "table"
  if ok and opts and opts.list then
    for _, item in ipairs(body) do
      if type(item) ~= "table" then ok = false break end
    end
  end
  if ok then return body, ep end
  local text = res.body or ""
  return fail("docker", format("docker: %s %s on %s: the answer is not the Engine API's JSON (%d bytes%s)", method,
                               path, ep.label, #text, #text > 0 and ": " .. format("%q", sub(text, 1, 60)) or ""))
end

local function version_of(ep)
  local res, got = call("GET", "/version", { ep = ep })
  if not res then return nil, got end
  return { api = got.version, server = got.server, host = got.label }
end

-- version() -> { api = "1.41", server = "20.10.24", host = "unix:///..." } | nil, err
function M.version()
  return version_of(nil)
end

-- The daemons named with docker.daemon{}, by host and TLS files: one
-- endpoint each, so a handle made twice shares what the daemon speaks.
local named = {}

-- called by endpoint, called by the module function: level 4 is the script
local function tls_files(tls, fname)
  if tls == nil then return nil end
  if type(tls) ~= "table" then error(format("bad argument #1 to '%s' (tls must be a table { ca, cert, key })", fname), 4) end
  check_options(fname .. " tls", 1, tls, { "ca", "cert", "key" }, 4)
  for _, k in ipairs { "ca", "cert", "key" } do
    if type(tls[k]) ~= "string" or tls[k] == "" then
      error(format("bad argument #1 to '%s' (tls.%s must be a file path)", fname, k), 4)
    end
  end
  return { ca = tls.ca, cert = tls.cert, key = tls.key }
end

-- The endpoint for host ("unix:///path" or "tcp://host:port") and TLS
-- client files; raises on a host of another form (a mistake in the script).
local function endpoint(host, tls, fname)
  if type(host) ~= "string" then error(format("bad argument #1 to '%s' (host must be a string)", fname), 3) end
  tls = tls_files(tls, fname)
  local key = host .. (tls and ("|" .. tls.ca .. "|" .. tls.cert .. "|" .. tls.key) or "")
  if named[key] then return named[key] end
  local ep
  local path = match(host, "^unix://(/.+)$")
  if path then
    if tls then error(format("bad argument #1 to '%s' (tls is for tcp:// hosts, not %s)", fname, host), 3) end
    ep = { base = "http://docker", unix_socket = path }
  else
    local hostport = match(host, "^tcp://([^/]+:%d+)/?$")
    if not hostport then
      error(format("bad argument #1 to '%s' (host '%s' is neither unix:///path nor tcp://host:port)", fname, host), 3)
    end
    ep = { base = (tls and "https://" or "http://") .. hostport, tls = tls }
  end
  ep.label, ep.host = host, host
  named[key] = ep
  return ep
end

---------------------------------------------------------------- scope

local function stack_project()
  local stack = internal.stack() or {}
  return type(stack.compose) == "table" and stack.compose.project or nil
end

local PROJECT_LABEL = "com.docker.compose.project"
local SERVICE_LABEL = "com.docker.compose.service"

---------------------------------------------------------------- log frames

-- demux(): a streaming demultiplexer for the 8-byte frame headers of a
-- non-TTY container's logs (stream byte, three zero bytes, big-endian
-- length). feed(chunk) takes bytes as they come, split anywhere; lines()
-- returns the complete { stream, text } lines so far; finish() flushes.
function M.demux()
  local buf, stream_of, carry = "", { [0] = "stdin", [1] = "stdout", [2] = "stderr" }, { stdout = "", stderr = "", stdin = "" }
  local out = {}
  local d = {}
  local function emit(stream, data)
    local text = carry[stream] .. data
    local start = 1
    while true do
      local nl = find(text, "\n", start, true)
      if not nl then break end
      out[#out + 1] = { stream = stream, text = sub(text, start, nl - 1) }
      start = nl + 1
    end
    carry[stream] = sub(text, start)
  end
  function d.feed(chunk)
    buf = buf .. chunk
    -- walk the frames by position and cut the buffer once at the end:
    -- cutting it after every frame copied the rest each time, quadratic
    -- in the size of a container's logs
    local pos, size = 1, #buf
    while size - pos + 1 >= 8 do
      local kind, len = byte(buf, pos), unpack_(">I4", buf, pos + 4)
      if size - pos + 1 < 8 + len then break end
      emit(stream_of[kind] or "stdout", sub(buf, pos + 8, pos + 7 + len))
      pos = pos + 8 + len
    end
    buf = sub(buf, pos)
  end
  function d.finish()
    for _, s in ipairs({ "stdout", "stderr", "stdin" }) do
      if carry[s] ~= "" then out[#out + 1] = { stream = s, text = carry[s] } carry[s] = "" end
    end
    if #buf > 0 then out[#out + 1] = { stream = "stdout", text = buf, partial = true } buf = "" end
  end
  function d.lines() return out end
  return d
end

-- "2026-11-28T12:00:00.123456789Z text" -> time, text
local function split_timestamp(line)
  local ts, rest = match(line.text, "^(%d%d%d%d%-%d%d%-%d%dT[%d:%.]+Z) (.*)$")
  if ts then line.time, line.text = ts, rest end
  return line
end

---------------------------------------------------------------- containers

local Container = {}
Container.__index = Container
Container.__tostring = function(c) return format("container %s (%s)", c.name, sub(c.id, 1, 12)) end

local NAMESPACE_LABEL = "com.docker.stack.namespace"
local SWARM_SERVICE_LABEL = "com.docker.swarm.service.name"
local SWARM_TASK_LABEL = "com.docker.swarm.task.id"

local function wrap(summary, ep)
  local labels = summary.Labels or (summary.Config and summary.Config.Labels) or {}
  local name = summary.Name or (summary.Names and summary.Names[1]) or summary.Id
  return setmetatable({
    id = summary.Id,
    name = (gsub(name or "", "^/", "")),
    project = labels[PROJECT_LABEL],
    namespace = labels[NAMESPACE_LABEL],
    service = labels[SERVICE_LABEL] or labels[SWARM_SERVICE_LABEL],
    task = labels[SWARM_TASK_LABEL],
    labels = labels,
    ep = ep,
  }, Container)
end

-- One call about container c, on the daemon that runs it.
local function ccall(c, method, path, opts)
  opts = opts or {}
  opts.ep = c.ep
  return call(method, path, opts)
end

local function record(action, c, extra)
  local entry = { at = time.mono() - internal.origin(), action = action, container = c.name,
                  service = c.service, id = sub(c.id, 1, 12), host = c.ep and c.ep.host or nil,
                  tls = c.ep and c.ep.tls or nil }
  if extra then for k, v in pairs(extra) do entry[k] = v end end
  internal.event("action", json.encode(entry))
end

-- A check may take the stack down (kill, stop, pause, restart, recreate)
-- only where the stack file says so (allow_faults = true) or the operator
-- ran with --allow-faults: pointed at a live stack by mistake, a check that
-- kills replicas must not. eval, exec and the REPL act for the operator
-- and are always allowed.
local function may_inject(action, target)
  internal.may_inject("docker", action, target, 3)
end

-- The stack's swarm stack name (stack.swarm.namespace), if it has one.
local function stack_namespace()
  local stack = internal.stack() or {}
  return type(stack.swarm) == "table" and stack.swarm.namespace or nil
end

-- A container is the stack's when it belongs to its compose project or to
-- its swarm stack: a check acts on nothing else.
local function in_scope(c, action)
  local project, namespace = stack_project(), stack_namespace()
  if namespace and c.namespace == namespace then return end
  if not project and not namespace then
    error(format("docker: refusing to %s %s: the stack file names no compose project (stack.compose.project) " ..
                 "and no swarm stack (stack.swarm.namespace)", action, c.name), 3)
  end
  if c.project ~= project or not project then
    local theirs = c.namespace and format("swarm stack '%s'", c.namespace) or format("project '%s'", tostring(c.project))
    local ours = project and format("the stack's '%s'", project) or format("the stack's swarm stack '%s'", namespace)
    error(format("docker: refusing to %s %s: it belongs to %s, not %s", action, c.name, theirs, ours), 3)
  end
end

-- containers{ project =, namespace =, service =, all = } on endpoint ep:
-- a compose project's (by default the stack's, on the default daemon) or
-- a swarm stack's (namespace; service is then the swarm service's name).
local function containers_on(ep, opts, fname)
  opts = opts or {}
  if type(opts) ~= "table" then error(format("bad argument #1 to '%s' (table expected)", fname), 3) end
  check_options(fname, 1, opts, { "project", "namespace", "service", "all" }, 3)
  local labels = {}
  if opts.namespace then
    labels[#labels + 1] = NAMESPACE_LABEL .. "=" .. opts.namespace
    if opts.service then labels[#labels + 1] = SWARM_SERVICE_LABEL .. "=" .. opts.service end
  else
    local project = opts.project or (not ep and stack_project() or nil)
    if project then labels[#labels + 1] = PROJECT_LABEL .. "=" .. project end
    if opts.service then labels[#labels + 1] = SERVICE_LABEL .. "=" .. opts.service end
  end
  local query = { all = opts.all and "1" or "0" }
  if #labels > 0 then query.filters = json.encode({ label = labels }) end
  local found, err = call_json("GET", "/containers/json", { query = query, ep = ep, list = true })
  if not found then return nil, err end
  local list = {}
  for _, s in ipairs(found) do list[#list + 1] = wrap(s, ep) end
  sort(list, function(a, b) return a.name < b.name end)
  return list
end

-- container(ref) on endpoint ep: ref is an id, a name, or { project =,
-- service = } (project defaults to the stack's)
local function container_on(ep, ref)
  if type(ref) == "table" then
    if not ref.service then error("bad argument #1 to 'container' (a table ref needs service)", 3) end
    local list, err = containers_on(ep, { project = ref.project, service = ref.service, all = true }, "container")
    if not list then return nil, err end
    if #list == 0 then
      return fail("not_found", format("docker: no container for service '%s' in project '%s'", ref.service,
                                      tostring(ref.project or stack_project())))
    end
    -- Remembered so the object follows the service when compose recreates
    -- its container (a new id after `up` with new environment).
    list[1].ref = { project = ref.project, service = ref.service }
    return list[1]
  end
  if type(ref) ~= "string" then error("bad argument #1 to 'container' (id, name or {service=} expected)", 3) end
  local body, err = call_json("GET", "/containers/" .. ref .. "/json", { ep = ep })
  if not body then
    if err.status == 404 then return fail("not_found", format("docker: no container '%s'", ref)) end
    return nil, err
  end
  return wrap(body, ep)
end

-- containers{ project =, namespace =, service =, all = } -> { container, ... } | nil, err
function M.containers(opts) return containers_on(nil, opts, "containers") end

-- container(ref) -> container | nil, err
function M.container(ref) return container_on(nil, ref) end

-- docker.daemon{ host = "unix:///path" | "tcp://host:port", tls = { ca, cert, key } }:
-- another daemon than the default one (a swarm node, a remote host), with
-- the same functions bound to it: containers, container, version, and the
-- swarm's (mod/docker/swarm.lua). Containers it returns act on it.
local Daemon = {}
Daemon.__index = Daemon
Daemon.__tostring = function(d) return "docker daemon " .. d.host end

function M.daemon(opts)
  if type(opts) ~= "table" then error("bad argument #1 to 'daemon' (table expected: { host = ..., tls = ... })", 2) end
  check_options("daemon", 1, opts, { "host", "tls" })
  if opts.host == nil then error("bad argument #1 to 'daemon' (host is required)", 2) end
  local ep = endpoint(opts.host, opts.tls, "daemon")
  return setmetatable({ host = ep.host, ep = ep }, Daemon)
end

function Daemon:version() return version_of(self.ep) end
function Daemon:containers(opts) return containers_on(self.ep, opts, "containers") end
function Daemon:container(ref) return container_on(self.ep, ref) end

function Container:inspect()
  local body, err = call_json("GET", "/containers/" .. self.id .. "/json", { ep = self.ep })
  if not body and err.status == 404 and self.ref then
    local again = container_on(self.ep, self.ref)
    if again then
      self.id, self.name = again.id, again.name
      body, err = call_json("GET", "/containers/" .. self.id .. "/json", { ep = self.ep })
    end
  end
  return body, err
end

-- The undo registered for this container's current fault, if any.
local pending_undo = {}

-- Before the fault is injected: its undo, registered and journalled (for
-- `halo cleanup` should this process be killed outright) in one call, so
-- that no moment — an interrupt lands between any two instructions — has
-- the fault without its undo. The undo looks before it acts: a fault that
-- never happened is nothing to undo. Returns what `unregister` takes.
local function register_fault(c, undo_action, opts)
  if opts and opts.undo == false then return nil end
  if pending_undo[c.id] then return nil end
  local key = "container " .. c.id
  local id
  id = internal.undo(undo_action .. " " .. c.name, function()
    if pending_undo[c.id] == id then pending_undo[c.id] = nil end
    local state = c:inspect()
    if undo_action == "unpause" then
      if state and state.State and state.State.Paused then assert(c:unpause()) end
    elseif state and state.State and not state.State.Running then
      assert(c:start())
    end
    internal.journal(key, nil) -- undone: nothing left for `halo cleanup`
  end, key, json.encode({ undo = undo_action, id = c.id, container = c.name, project = c.project,
                          namespace = c.namespace, service = c.service, host = c.ep and c.ep.host or nil,
                          tls = c.ep and c.ep.tls or nil }))
  pending_undo[c.id] = id
  return id
end

-- The fault was not injected after all: the daemon said no.
local function unregister(c, id, err)
  if id and err and err.kind == "docker" then
    internal.cancel_undo(id)
    if pending_undo[c.id] == id then pending_undo[c.id] = nil end
  end
end

local function injected(c, fault, undo_action, opts)
  -- `undo` tells the runner what to replay should this worker die before
  -- its own cleanup could run
  record(fault, c, { undo = not (opts and opts.undo == false) and undo_action or nil, full_id = c.id })
end

local function settle(c, undone_by)
  local id = pending_undo[c.id]
  if id and undone_by then
    internal.cancel_undo(id) -- and its journal entry
    pending_undo[c.id] = nil
  end
end

-- One form per call: no argument, or an option table. A bare value
-- (c:kill("SIGTERM")) raises and names the table form.
local function action_opts(arg, known, fname)
  if arg == nil then return {} end
  if type(arg) ~= "table" then
    error(format("bad argument #1 to '%s' (an option table, as in c:%s{ %s = %s })", fname, fname, known[1],
                 type(arg) == "string" and format("%q", arg) or tostring(arg)), 3)
  end
  check_options(fname, 1, arg, known, 3)
  return arg
end

-- c:kill{ signal = "SIGKILL", undo = true }
function Container:kill(arg)
  local opts = action_opts(arg, { "signal", "undo" }, "kill")
  local signal = opts.signal
  in_scope(self, "kill")
  may_inject("kill", self.name)
  local undo = register_fault(self, "start", opts)
  local res, err = ccall(self, "POST", "/containers/" .. self.id .. "/kill", { query = { signal = signal or "SIGKILL" } })
  if not res then unregister(self, undo, err) return nil, err end
  injected(self, "kill " .. (signal or "SIGKILL"), "start", opts)
  return true
end

-- Whether the daemon speaks Engine API major.minor or later.
local function api_at_least(ep, major, minor)
  local v, err = version_of(ep)
  if not v then return nil, err end
  local ma, mi = match(v.api, "^(%d+)%.(%d+)")
  ma, mi = tonumber(ma) or 0, tonumber(mi) or 0
  return ma > major or (ma == major and mi >= minor)
end

-- stop?signal= is API 1.42 (Docker 23); before it, the same by hand: the
-- signal, `grace` seconds for the container to exit, then SIGKILL.
local function stop_by_kill(c, signal, grace)
  local res, err = ccall(c, "POST", "/containers/" .. c.id .. "/kill", { query = { signal = signal } })
  if not res then
    if err.status == 409 then return true end -- not running: stopped already
    return nil, err
  end
  local started = time.mono()
  while time.mono() - started < grace do
    local info = c:inspect()
    if info and info.State and not info.State.Running then return true end
    time.sleep(0.1)
  end
  res, err = ccall(c, "POST", "/containers/" .. c.id .. "/kill", { query = { signal = "SIGKILL" } })
  if not res and err.status ~= 409 then return nil, err end
  return true
end

-- c:stop{ timeout = seconds, signal = "SIGTERM", undo = true }
function Container:stop(arg)
  local opts = action_opts(arg, { "timeout", "signal", "undo" }, "stop")
  local t, signal = opts.timeout, opts.signal
  if signal ~= nil and type(signal) ~= "string" then
    error("bad argument #1 to 'stop' (signal must be a name such as \"SIGINT\")", 2)
  end
  in_scope(self, "stop")
  may_inject("stop", self.name)
  local new_api = not signal or api_at_least(self.ep, 1, 42)
  local undo = register_fault(self, "start", opts)
  local res, err
  if new_api then
    res, err = ccall(self, "POST", "/containers/" .. self.id .. "/stop", { query = { t = t and tostring(t) or nil,
                                                                     signal = signal }, timeout = (t or 10) + 30 })
  else
    res, err = stop_by_kill(self, signal, t or 10)
  end
  if not res then unregister(self, undo, err) return nil, err end
  injected(self, signal and "stop " .. signal or "stop", "start", opts)
  return true
end

function Container:start()
  in_scope(self, "start")
  local res, err = ccall(self, "POST", "/containers/" .. self.id .. "/start")
  if not res then return nil, err end
  record("start", self, { full_id = self.id })
  settle(self, "start")
  return true
end

-- c:restart{ timeout = seconds }
function Container:restart(arg)
  local t = action_opts(arg, { "timeout" }, "restart").timeout
  in_scope(self, "restart")
  may_inject("restart", self.name)
  local res, err = ccall(self, "POST", "/containers/" .. self.id .. "/restart", { query = { t = t and tostring(t) or nil },
                                                                            timeout = (t or 10) + 30 })
  if not res then return nil, err end
  record("restart", self, { full_id = self.id })
  settle(self, "restart")
  return true
end

-- c:pause{ undo = true }
function Container:pause(arg)
  local opts = action_opts(arg, { "undo" }, "pause")
  in_scope(self, "pause")
  may_inject("pause", self.name)
  local undo = register_fault(self, "unpause", opts)
  local res, err = ccall(self, "POST", "/containers/" .. self.id .. "/pause")
  if not res then unregister(self, undo, err) return nil, err end
  injected(self, "pause", "unpause", opts)
  return true
end

function Container:unpause()
  in_scope(self, "unpause")
  local res, err = ccall(self, "POST", "/containers/" .. self.id .. "/unpause")
  if not res then return nil, err end
  record("unpause", self, { full_id = self.id })
  settle(self, "unpause")
  return true
end

-- c:wait{ state = "running"|"healthy"|"exited", timeout = s } -> true, seconds | nil, err
function Container:wait(opts)
  if type(opts) ~= "table" then error("bad argument #1 to 'wait' (table expected)", 2) end
  check_options("wait", 1, opts, { "state", "timeout", "interval" })
  local want = opts.state or "running"
  if want ~= "running" and want ~= "healthy" and want ~= "exited" then
    error("bad argument #1 to 'wait' (state must be running, healthy or exited)", 2)
  end
  local timeout, interval = opts.timeout or 60, opts.interval or 0.2
  local started = time.mono()
  local last = "unknown"
  while true do
    local info, err = self:inspect()
    if info then
      local st = info.State or {}
      if want == "running" then
        last = st.Status or "?"
        if st.Running and not st.Paused then break end
      elseif want == "exited" then
        last = st.Status or "?"
        if st.Status == "exited" or st.Status == "dead" then break end
      else
        last = st.Health and st.Health.Status or (st.Running and "running, no healthcheck" or (st.Status or "?"))
        if st.Health and st.Health.Status == "healthy" then break end
      end
    else
      last = err.message
    end
    if time.mono() - started >= timeout then
      return fail("timeout", format("docker: %s not %s after %g s (last: %s)", self.name, want, timeout, last))
    end
    time.sleep(interval)
  end
  local took = time.mono() - started
  record(want, self, { after = took })
  return true, took
end

-- c:logs{ since = t, ["until"] = t, tail = n } -> { { stream, time, text }, ... } | nil, err
-- since/until: epoch seconds (time.now()) or RFC 3339 strings.
function Container:logs(opts)
  opts = opts or {}
  check_options("logs", 1, opts, { "since", "until", "tail" })
  local query = { stdout = "1", stderr = "1", timestamps = "1" }
  if opts.since then query.since = type(opts.since) == "number" and format("%.9f", opts.since) or opts.since end
  if opts["until"] then query["until"] = type(opts["until"]) == "number" and format("%.9f", opts["until"]) or opts["until"] end
  if opts.tail then query.tail = tostring(opts.tail) end
  local info, err = self:inspect()
  if not info then return nil, err end
  local res
  res, err = ccall(self, "GET", "/containers/" .. self.id .. "/logs", { query = query })
  if not res then return nil, err end
  local lines = {}
  if info.Config and info.Config.Tty then
    for text in gmatch(res.body .. "\n", "(.-)\r?\n") do
      if text ~= "" then lines[#lines + 1] = split_timestamp({ stream = "tty", text = text }) end
    end
  else
    local d = M.demux()
    d.feed(res.body)
    d.finish()
    for _, line in ipairs(d.lines()) do lines[#lines + 1] = split_timestamp(line) end
  end
  return lines
end

-- docker.compose and its project handles (mod/docker/compose.lua)
local Compose, journalled = internal.load("mod/docker/compose")(M, internal, {
  fail = fail, may_inject = may_inject, stack_project = stack_project,
})

-- Swarm services, tasks and nodes (mod/docker/swarm.lua), on the default
-- daemon and on every docker.daemon{} handle
internal.load("mod/docker/swarm")(M, internal, {
  Daemon = Daemon, Container = Container, call = call, call_json = call_json, fail = fail, may_inject = may_inject,
  stack_namespace = stack_namespace, container_on = container_on, endpoint = endpoint,
})

-- Clock skew and resource limits (mod/docker/faults.lua), with what they share here
internal.load("mod/docker/faults")(M, internal, {
  Container = Container, Compose = Compose, call = call, call_json = call_json, fail = fail, record = record,
  may_inject = may_inject, in_scope = in_scope, action_opts = action_opts, journalled = journalled,
})

return M
