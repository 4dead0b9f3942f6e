-- The undo module: how to remove what a check creates in the target (a
-- template, a schedule, a tenant), registered as data. undo.http{...} is
-- one HTTP request, usually a DELETE, that is
--   * run at the end of the check with the other automatic undos (after the
--     check's defers, newest first) unless it was cancelled — the script
--     removed the fixture itself;
--   * journalled meanwhile (core/undo.c), as data: the method, the URL, the
--     headers, and the credential only by its name in the stack file
--     ("keys.admin"), never its value; so `halo cleanup` can send it after a
--     kill -9, resolving the credential from the run's stack file.
-- A credential is only ever sent to an origin the stack file names.
local name_, internal = ...
local http = require "http"
local json = require "json"
local time = require "time"

local type, pairs, ipairs, tostring, tonumber, error, pcall, assert, setmetatable, getmetatable, rawget, next =
  type, pairs, ipairs, tostring, tonumber, error, pcall, assert, setmetatable, getmetatable, rawget, next
-- string functions as locals, never methods: the check may have changed its
-- string metatable, and its fixtures must still be removed
local format, concat, find, sub, gsub = string.format, table.concat, string.find, string.sub, string.gsub
local match, gmatch, lower, byte = string.match, string.gmatch, string.lower, string.byte
local tointeger = math.tointeger

local M = {}

local DEFAULT_EXPECT = { 200, 204, 404 } -- removed, or already gone
local PATIENCE = 5                       -- seconds a removal waits out a target that cannot answer

---------------------------------------------------------------- data

-- The value at a dotted path of the stack table: "keys.admin".
local function lookup(stack, path)
  local v = stack
  for part in gmatch(path, "[^.]+") do
    if type(v) ~= "table" then return nil end
    v = rawget(v, part)
  end
  return v
end

-- "http://127.0.0.1:3000/x" -> "http://127.0.0.1:3000" (default port made explicit)
local function origin_of(url)
  if type(url) ~= "string" then return nil end
  local scheme, authority = match(url, "^(%a[%w+.-]*)://([^/?#]*)")
  if not scheme then return nil end
  scheme = lower(scheme)
  if scheme ~= "http" and scheme ~= "https" then return nil end
  authority = lower((gsub(authority, "^.*@", "")))
  if authority == "" then return nil end
  if not find(authority, ":%d+$") then authority = authority .. (scheme == "https" and ":443" or ":80") end
  return scheme .. "://" .. authority
end

-- Every origin a URL in the stack file names (lb, replicas, ...).
local function stack_origins(stack)
  local out, seen = {}, {}
  local function walk(t, depth)
    if depth > 8 or seen[t] then return end
    seen[t] = true
    for _, v in next, t do
      if type(v) == "string" then
        local o = origin_of(v)
        if o then out[o] = true end
      elseif type(v) == "table" then
        walk(v, depth + 1)
      end
    end
  end
  if type(stack) == "table" then walk(stack, 0) end
  return out
end

local function holds_secret(s)
  return type(s) == "string" and internal.redact(s) ~= s
end

local function percent(s)
  return (gsub(s, "[^%w%-%._~]", function(c) return format("%%%02X", byte(c)) end))
end

---------------------------------------------------------------- running one

-- The stack file a record names: the one this process runs on, else (halo
-- cleanup) loaded once per path.
local loaded = {} -- path -> { stack = table } or { err = message }
local function stack_for(record)
  local path = record.stack
  if path == nil or path == internal.stack_file() then return internal.stack() end
  if type(path) ~= "string" then return nil, "the record names no stack file" end
  if not loaded[path] then
    local stack, err = internal.load_stack(path)
    loaded[path] = { stack = stack, err = err }
  end
  return loaded[path].stack, loaded[path].err
end

local function snippet(body)
  body = gsub(tostring(body or ""), "%s+", " ")
  if #body > 200 then body = sub(body, 1, 200) .. "…" end
  return body
end

-- One request, asked again while the target cannot answer (no connection,
-- a timeout, a 5xx) for at most PATIENCE seconds.
local function ask(method, url, headers)
  local limit = time.mono() + PATIENCE
  while true do
    local res, err = http.request{ method = method, url = url, headers = headers, timeout = 10 }
    if res and res.status < 500 then return res end
    if time.mono() >= limit then
      -- the http module's message names the method and the URL already
      return nil, res and format("%s %s: HTTP %d %s", method, url, res.status, snippet(res.body))
                      or tostring(err and err.message or err)
    end
    time.sleep(0.2)
  end
end

-- restore(record) -> true, what it did | nil, why. A record comes from a
-- journal file as well as from undo.http: every field is checked again.
local function restore(record)
  if type(record) ~= "table" or type(record.method) ~= "string" or not origin_of(record.url) then
    return nil, "not an http undo record (method and url)"
  end
  local headers = {}
  if type(record.headers) == "table" then
    for k, v in pairs(record.headers) do
      if type(k) == "string" and type(v) == "string" then headers[k] = v end
    end
  end
  local finder = type(record.find) == "table" and record.find or nil
  local settle = tonumber(record.settle) or 0
  if settle > 60 then settle = 60 end
  if finder and not origin_of(finder.url) then return nil, "find.url is not an http URL" end
  if record.auth ~= nil then
    local auth = record.auth
    if type(auth) ~= "table" or type(auth.secret) ~= "string" then return nil, "auth names no secret" end
    local stack, err = stack_for(record)
    if not stack then return nil, "cannot read the stack file for its credential: " .. tostring(err) end
    local value = lookup(stack, auth.secret)
    if type(value) ~= "string" then
      return nil, format("the stack file %s has no %s", tostring(record.stack or internal.stack_file()), auth.secret)
    end
    -- the credential goes only where the stack file points
    local origins = stack_origins(stack)
    for _, url in ipairs({ record.url, finder and finder.url }) do
      if not origins[origin_of(url)] then
        return nil, format("refusing to send %s to %s: the stack file names no URL there", auth.secret, origin_of(url))
      end
    end
    headers[type(auth.header) == "string" and auth.header or "x-api-key"] =
      (type(auth.prefix) == "string" and auth.prefix or "") .. value
  end
  local expect = {}
  for _, s in ipairs(type(record.expect) == "table" and record.expect or DEFAULT_EXPECT) do expect[s] = true end

  local started = time.mono()
  local targets = { record.url }
  if finder then
    local field = type(finder.field) == "string" and finder.field or "id"
    local placeholder = "{" .. field .. "}"
    local at = find(record.url, placeholder, 1, true)
    if not at then return nil, "url has no " .. placeholder end
    while true do
      local res, why = ask("GET", finder.url, headers)
      if not res then return nil, why end
      if res.status ~= 200 then return nil, format("GET %s: HTTP %d %s", finder.url, res.status, snippet(res.body)) end
      local list = res:json()
      if type(list) ~= "table" then return nil, format("GET %s: not a JSON list", finder.url) end
      targets = {}
      for _, item in ipairs(list) do
        local match = type(item) == "table" and (type(item[field]) == "string" or type(item[field]) == "number")
        for k, v in pairs(type(finder.where) == "table" and finder.where or {}) do
          if not match then break end
          match = item[k] == v
        end
        if match then
          targets[#targets + 1] = sub(record.url, 1, at - 1) .. percent(tostring(item[field])) ..
                                  sub(record.url, at + #placeholder)
        end
      end
      -- none yet: its creation may still be under way (settle, below)
      if #targets > 0 or time.mono() - started >= settle then break end
      time.sleep(0.2)
    end
    if #targets == 0 then return true, "none found: nothing to remove" end
  end
  local said = {}
  for _, url in ipairs(targets) do
    local res, why = ask(record.method, url, headers)
    -- not there (yet)? Its creation may still be under way on the server
    -- (a request the check stopped waiting for is finished all the same)
    while res and res.status == 404 and time.mono() - started < settle do
      time.sleep(0.2)
      res, why = ask(record.method, url, headers)
    end
    if not res then return nil, why end
    if not expect[res.status] then
      return nil, format("%s %s: HTTP %d %s", record.method, url, res.status, snippet(res.body))
    end
    said[#said + 1] = "HTTP " .. res.status
  end
  return true, concat(said, ", ")
end

---------------------------------------------------------------- journals

-- What a dead process's journal holds is restored from here: by `halo
-- cleanup` (check/leftovers.lua) and by the runner for a worker it saw die
-- (run/runner.c). A fixture is removed by the same code as at the end of a
-- check.

local function describe(e)
  if type(e) ~= "table" then return "restore " .. tostring(e) end
  if e.undo == "http" then
    return format("%s %s (%s)", tostring(e.method), tostring(e.what), tostring(e.url))
  end
  if e.undo == "compose up" then
    return format("recreate service %s of project %s with its own configuration", tostring(e.service), tostring(e.project))
  end
  if e.undo == "update" then
    return format("restore the resource limits of container %s (project %s)", tostring(e.container), tostring(e.project))
  end
  if e.undo == "service spec" then
    return format("restore the spec of swarm service %s and wait for it", tostring(e.name))
  end
  if e.undo == "node availability" then
    return format("make swarm node %s %s again", tostring(e.name), tostring(e.availability))
  end
  if e.undo == "node stopped" then return format("start swarm node %s again", tostring(e.name)) end
  if e.host then
    return format("%s container %s (%s on %s)", tostring(e.undo), tostring(e.container),
                  e.namespace and ("swarm stack " .. tostring(e.namespace)) or ("project " .. tostring(e.project)), e.host)
  end
  return format("%s container %s (project %s)", tostring(e.undo), tostring(e.container), tostring(e.project))
end

-- restore_entry(e) -> what was done; raises when it could not be done
local function restore_entry(e)
  if type(e) ~= "table" then error("not a journal entry", 0) end
  if e.undo == "http" then
    local ok, what = restore(e)
    if not ok then error(what, 0) end
    return format("%s %s: %s", tostring(e.method), tostring(e.what), what)
  end
  local docker = require "docker"
  -- the docker module acts only inside the stack's project: this entry's
  local stack = internal.stack()
  stack.compose = { project = e.project, files = e.files }
  stack.swarm = e.namespace and { namespace = e.namespace } or nil
  if e.undo == "compose up" then
    local compose = docker.compose{ files = e.files, project = e.project, cwd = e.cwd,
                                    env_file = (type(e.env_file) == "string" or type(e.env_file) == "table")
                                               and e.env_file or nil }
    assert(compose:up{ services = { e.service }, no_deps = true })
    return "recreated " .. e.service .. " with its own configuration"
  end
  if e.undo == "update" then return internal.restore_limits(e) end -- mod/docker/faults.lua
  if e.undo == "service spec" or e.undo == "node availability" or e.undo == "node stopped" then
    return internal.restore_swarm(e) -- mod/docker/swarm.lua
  end
  local c, err
  if e.host then c, err = docker.daemon{ host = e.host, tls = e.tls }:container(e.id) else c, err = docker.container(e.id) end
  if not c then
    -- only a container the daemon no longer has is nothing to restore; a
    -- daemon that does not answer keeps the entry for the next cleanup
    if err.kind == "not_found" then return tostring(e.container) .. " is gone: nothing to restore" end
    error(err, 0)
  end
  local info = assert(c:inspect())
  local state = info.State or {}
  if e.undo == "unpause" then
    if not state.Paused then return c.name .. " is not paused" end
    assert(c:unpause())
    return "unpaused " .. c.name
  end
  if state.Running then return c.name .. " is running" end
  assert(c:start())
  return "started " .. c.name
end

-- The order to restore a journal's entries in: swarm nodes first (back,
-- and active: a
-- service's spec restored while a node is still drained would place every
-- task on the others, and making the node active later moves none back),
-- then containers and services, so the stack serves the requests that
-- remove fixtures; fixtures newest first, as the run itself would have
-- removed them.
local function ordered(entries)
  local list = {}
  for i, e in ipairs(type(entries) == "table" and entries or {}) do
    -- a heal of the network (netfault) goes with the containers: the
    -- fixtures' removals travel through the links it heals
    local fixture = type(e) == "table" and e.undo == "http" and e.first ~= true
    local node = type(e) == "table" and (e.undo == "node availability" or e.undo == "node stopped")
    list[#list + 1] = { e = e, group = type(e) ~= "table" and 2 or fixture and 1 or node and -1 or 0,
                        seq = fixture and -(tonumber(e.seq) or 0) or 0, i = i }
  end
  table.sort(list, function(a, b)
    if a.group ~= b.group then return a.group < b.group end
    if a.seq ~= b.seq then return a.seq < b.seq end
    return a.i < b.i
  end)
  for i, item in ipairs(list) do list[i] = item.e end
  return list
end

-- restore_journal(path, say) -> how many entries could not be restored;
-- say(line) for each. A file that is not a journal counts as one.
local function restore_journal(path, say)
  local doc = json.decode(internal.read_head(path, 1 << 20) or "")
  if type(doc) ~= "table" or type(doc.entries) ~= "table" then
    say(path .. ": not a halo journal")
    return 1
  end
  local failed = 0
  for _, e in ipairs(ordered(doc.entries)) do
    local ok, what = pcall(restore_entry, e)
    if ok then say(what) else
      failed = failed + 1
      say(format("could not %s: %s", describe(e), tostring(what)))
    end
  end
  return failed
end

internal.restore_http = restore
internal.restore_entry, internal.describe_entry, internal.ordered_entries = restore_entry, describe, ordered
internal.restore_journal = restore_journal

---------------------------------------------------------------- registering

local Handle = {}
Handle.__index = Handle
Handle.__tostring = function(h) return "undo (" .. h.what .. ")" end

local pending = {} -- handle -> true, until run or cancelled
local seq = 0

local function bad(fmt, ...) error("bad argument #1 to 'http' (" .. format(fmt, ...) .. ")", 3) end

local KNOWN = { method = true, url = true, auth = true, headers = true, expect = true, what = true, find = true,
                settle = true, first = true, done = true }

local function checked_url(url, what)
  if not origin_of(url) then bad("%s must be an http or https URL", what) end
  if holds_secret(url) then bad("%s holds a secret: name it in auth = { secret = ... } instead", what) end
  return url
end

-- undo.http{ method = "DELETE", url = ..., auth = { secret = "keys.admin",
-- header = "x-api-key", prefix = "" }, headers = {...}, expect = { 200,
-- 204, 404 }, what = "template k", find = { url = ..., where = {...},
-- field = "id" } } -> handle
function M.http(spec)
  if type(spec) ~= "table" then bad("table expected, got %s", type(spec)) end
  for k in pairs(spec) do
    if not KNOWN[k] then bad("unknown option '%s'", tostring(k)) end
  end
  local method = spec.method or "DELETE"
  if type(method) ~= "string" or not match(method, "^%u+$") then bad("method must be an HTTP method like DELETE") end
  local url = checked_url(spec.url, "url")
  local headers = {}
  if spec.headers ~= nil then
    if type(spec.headers) ~= "table" then bad("headers must be a table") end
    for k, v in pairs(spec.headers) do
      if type(k) ~= "string" or type(v) ~= "string" then bad("headers must map names to strings") end
      if holds_secret(v) then bad("header %s holds a secret: name it in auth = { secret = ... } instead", k) end
      headers[k] = v
    end
  end
  local expect = {}
  local given = spec.expect == nil and DEFAULT_EXPECT or spec.expect
  if type(given) == "number" then given = { given } end
  if type(given) ~= "table" or #given == 0 then bad("expect must be a status or a list of them") end
  for i, s in ipairs(given) do
    s = tointeger(s)
    if not s or s < 100 or s > 599 then bad("expect[%d] is not an HTTP status", i) end
    expect[i] = s
  end
  local finder
  if spec.find ~= nil then
    local f = spec.find
    if type(f) ~= "table" then bad("find must be a table") end
    for k in pairs(f) do
      if k ~= "url" and k ~= "where" and k ~= "field" then bad("unknown option 'find.%s'", tostring(k)) end
    end
    local field = f.field or "id"
    if type(field) ~= "string" then bad("find.field must be a string") end
    if not find(url, "{" .. field .. "}", 1, true) then bad("url must hold {%s} where find puts what it found", field) end
    local where = {}
    for k, v in pairs(f.where or {}) do
      if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number" and type(v) ~= "boolean") then
        bad("find.where must map field names to strings, numbers or booleans")
      end
      if holds_secret(v) then bad("find.where.%s holds a secret", k) end
      where[k] = v
    end
    if next(where) == nil then bad("find.where must say what to look for") end
    finder = { url = checked_url(f.url, "find.url"), where = where, field = field }
  end
  local auth
  if spec.auth ~= nil then
    local a = spec.auth
    if type(a) ~= "table" then bad("auth must be a table") end
    for k in pairs(a) do
      if k ~= "secret" and k ~= "header" and k ~= "prefix" then
        bad("unknown option 'auth.%s' (auth names a secret of the stack file: auth = { secret = \"keys.admin\" }, " ..
            "never its value)", tostring(k))
      end
    end
    if type(a.secret) ~= "string" or not match(a.secret, "^[%w_]+[%w_.]*$") then
      bad("auth.secret must name a value of the stack file, like \"keys.admin\"")
    end
    if holds_secret(a.secret) then bad("auth.secret is a secret's value: give its name in the stack file") end
    if a.header ~= nil and type(a.header) ~= "string" then bad("auth.header must be a header name") end
    if a.prefix ~= nil and (type(a.prefix) ~= "string" or holds_secret(a.prefix)) then bad("auth.prefix must be a string") end
    local stack = internal.stack()
    if type(lookup(stack, a.secret)) ~= "string" then bad("the stack file has no %s", a.secret) end
    local origins = stack_origins(stack)
    for _, u in ipairs({ url, finder and finder.url }) do
      if not origins[origin_of(u)] then bad("the stack file names no URL at %s: %s is not sent there", origin_of(u), a.secret) end
    end
    auth = { secret = a.secret, header = a.header or "x-api-key", prefix = a.prefix }
  end
  local what = spec.what or url
  if type(what) ~= "string" then bad("what must be a string") end
  if holds_secret(what) then bad("what holds a secret") end
  local settle = spec.settle
  if settle ~= nil and (type(settle) ~= "number" or settle < 0 or settle > 60) then
    bad("settle must be seconds (0 to 60)")
  end
  if spec.first ~= nil and type(spec.first) ~= "boolean" then bad("first must be a boolean") end
  local done = spec.done
  if done ~= nil and type(done) ~= "function" then bad("done must be a function") end

  seq = seq + 1
  local record = { undo = "http", seq = seq, what = what, method = method, url = url,
                   headers = next(headers) and headers or nil, auth = auth, expect = expect, find = finder,
                   settle = settle and settle > 0 and settle or nil, first = spec.first or nil,
                   stack = internal.stack_file() }
  local key = "http " .. seq
  local h = setmetatable({ what = what, method = method, url = url, key = key, record = record }, Handle)
  -- registered and on disk in one call, before the check goes on: from
  -- here on the end of the check removes it, or `halo cleanup` does
  h.id = internal.undo(method .. " " .. what, function()
    pending[h] = nil
    local ok, why = restore(record)
    -- the caller's note of it (an event), not journalled: cleanup has none
    if done then pcall(done, ok, why) end
    -- a removal that failed stays journalled: `halo cleanup` tries again
    if not ok then error(why .. " (journalled: `halo cleanup` tries again)", 0) end
    internal.journal(key, nil)
  end, key, json.encode(record))
  pending[h] = true
  return h
end

-- h:cancel() / undo.cancel(h): the fixture is gone (the script removed it)
-- or never came to be; nothing to do at the end. True if it was pending.
function Handle:cancel()
  if not pending[self] then return false end
  internal.cancel_undo(self.id) -- and its journal entry, in the same call
  pending[self] = nil
  return true
end

-- h:created(): the request that creates the fixture was answered: a 404
-- from now on means it is gone, no need to wait for it (settle).
function Handle:created()
  if not pending[self] or not self.record.settle then return false end
  self.record.settle = nil
  internal.journal(self.key, json.encode(self.record))
  return true
end

function M.cancel(h)
  if getmetatable(h) ~= Handle then error("bad argument #1 to 'cancel' (an undo handle expected)", 2) end
  return h:cancel()
end

-- undo.pending() -> { { what =, method =, url = }, ... }: the registered
-- removals not yet run or cancelled, oldest first
function M.pending()
  local list = {}
  for h in pairs(pending) do list[#list + 1] = h end
  table.sort(list, function(a, b) return a.id < b.id end)
  local out = {}
  for i, h in ipairs(list) do out[i] = { what = h.what, method = h.method, url = h.url } end
  return out
end

return M
