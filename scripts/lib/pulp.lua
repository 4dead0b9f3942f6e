-- A Pulp Engine client for the checks: one object per endpoint (the load
-- balancer or one replica), with the calls the HA checks make, each
-- returning what the API said — or nil and an error that names the
-- endpoint, the call and the status, ready for a check's message.
-- The API contract is docs/target-contract.md.
--
-- What a verdict may rest on: the routes, credentials and bytes of the
-- contract. /health, /health/ready and the X-Served-By header only steer
-- (when to probe next); nothing here turns them into a PASS.
--
-- What it creates it cleans up: every template, asset, schedule and tenant
-- created through here has its removal registered with the undo module
-- before the request that creates it is sent, so the check's end removes
-- it, and `halo cleanup` does after a kill -9; deleting it through here
-- cancels that (see "fixtures" below).
local http = require "http"
local undo = require "undo"

local format, type, tostring, pairs, setmetatable, error = string.format, type, tostring, pairs, setmetatable, error

local M = {}

-- Errors keep the kind the http module gave (connect, timeout, ...) or say
-- "status" (an unexpected HTTP status, in err.status) or "json", so a check
-- can tell a refused connection from a 401; tostring(err) is the message.
local errors = require "errors"

local function failure(kind, message, status)
  return errors.new(kind, message, { status = status })
end

local Endpoint = {}
Endpoint.__index = Endpoint

-- An endpoint: base URL, name for messages, and credentials (an API key
-- or an editor token) sent with every call; and the stack it is part of
-- (where the removal of a fixture goes, and with which key).
local function endpoint(name, url, auth, stack)
  if type(url) ~= "string" then error(format("pulp: no URL for %s in the stack file", name), 3) end
  local self = setmetatable({ name = name, url = url, auth = auth or {}, stack = stack }, Endpoint)
  self.client = http.client{ base = url, timeout = 15 }
  return self
end

-- pulp.lb(stack [, auth]) / pulp.replica(stack, "api1" [, auth])
-- auth: { key = api_key } or { token = editor_token, bearer = bool }; by
-- default the stack's admin key.
function M.lb(stack, auth)
  return endpoint("the LB", stack.lb, auth or { key = stack.keys and stack.keys.admin }, stack)
end

function M.replica(stack, name, auth)
  local r = stack.replicas and stack.replicas[name]
  if not r then error(format("pulp: the stack file has no replica '%s'", tostring(name)), 2) end
  return endpoint(name, r.url, auth or { key = stack.keys and stack.keys.admin }, stack)
end

-- The same endpoint with other credentials.
function Endpoint:with(auth)
  return endpoint(self.name, self.url, auth, self.stack)
end

function Endpoint:headers(extra)
  local h = {}
  if self.auth.key then h["x-api-key"] = self.auth.key end
  if self.auth.token then
    if self.auth.bearer then h["authorization"] = "Bearer " .. self.auth.token
    else h["x-editor-token"] = self.auth.token end
  end
  if self.auth.tenant then h["x-tenant-id"] = self.auth.tenant end
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

-- call(method, path, opts) -> res | nil, err (a network failure). Any
-- status is returned: the checks decide what a status means.
function Endpoint:call(method, path, opts)
  opts = opts or {}
  local req = { method = method, url = path, headers = self:headers(opts.headers) }
  for k, v in pairs(opts) do if k ~= "headers" then req[k] = v end end
  local res, err = self.client:request(req)
  if not res then
    return nil, failure(type(err) == "table" and err.kind or "error",
                        format("%s %s on %s: %s", method, path, self.name,
                               type(err) == "table" and err.message or tostring(err)))
  end
  return res
end

-- A transient answer: the endpoint cannot serve right now (a 5xx, or no
-- answer at all). Availability is check 4's property; a probe about
-- something else waits it out and notes it.
local function transient(res)
  return res == nil or res.status >= 500
end

-- call_settled(method, path [, opts [, patience]]) -> res, note | nil, err
-- Like call, but asks again (every 50 ms, for at most `patience` seconds,
-- default 30) while the answer is transient. `note` says what was waited
-- out ("2 transient answers over 0.4 s, first HTTP 503"), or nil when the
-- first answer was definite. A 4xx is definite: never asked again.
function Endpoint:call_settled(method, path, opts, patience)
  local time = require "time"
  local started = time.mono()
  local limit = started + (patience or 30)
  local waited, first = 0, nil
  while true do
    local res, err = self:call(method, path, opts)
    if not transient(res) then
      local note = waited > 0 and format("%d transient answer%s over %.2f s, first %s", waited, waited == 1 and "" or "s",
                                         time.mono() - started, first) or nil
      return res, note
    end
    waited = waited + 1
    first = first or (res and ("HTTP " .. res.status) or tostring(err.kind))
    if time.mono() >= limit then
      return nil, failure(res and "status" or err.kind,
                          format("%s %s on %s: no definite answer in %g s (%d transient, first %s, last %s)", method,
                                 path, self.name, patience or 30, waited, first,
                                 res and ("HTTP " .. res.status) or tostring(err)), res and res.status)
    end
    time.sleep(0.05)
  end
end

local CREATED = { [200] = true, [201] = true }
local GONE = { [200] = true, [204] = true, [404] = true }    -- a delete of what is already gone is done

-- ask(method, path, opts, want) -> res | nil, err: the call, whose status
-- must be want (a number or a set). Network failures keep their kind.
function Endpoint:ask(method, path, opts, want)
  local res, err = self:call(method, path, opts)
  if not res then return nil, err end
  if type(want) == "table" and want[res.status] or res.status == want then return res end
  local body = res.body or ""
  if #body > 200 then body = body:sub(1, 200) .. "…" end
  return nil, failure("status", format("%s %s on %s: HTTP %d %s", method, path, self.name, res.status, body), res.status)
end

-- ask_json(...) -> document, res | nil, err: the same, and the body as JSON.
function Endpoint:ask_json(method, path, opts, want)
  local res, err = self:ask(method, path, opts, want)
  if not res then return nil, err end
  local doc, jerr = res:json()
  if doc == nil then
    return nil, failure("json", format("%s %s on %s: the answer is not JSON (%s)", method, path, self.name, tostring(jerr)))
  end
  return doc, res
end

---------------------------------------------------------------- health

function Endpoint:health()
  return self:ask_json("GET", "/health", nil, 200)
end

-- ready([timeout]) -> ok, status | false, err: /health/ready (at most
-- timeout s, default 5)
function Endpoint:ready(timeout)
  local res, err = self:call("GET", "/health/ready", { timeout = timeout or 5 })
  return res and res.status == 200, res and res.status or err
end

---------------------------------------------------------------- fixtures

-- The removal of each fixture created through here, by what it is
-- ("template default/k", "asset default/f", "schedule <id>", "tenant t"),
-- until it runs at the end of the check or the check deletes the fixture.
local removals = {}
local tokens = {}   -- editor token -> its tenant (mint_editor_token's answer)

-- The tenant a call acts for, when it can be known before the answer.
local function tenant_of(self)
  if self.auth.tenant then return self.auth.tenant end
  if self.auth.token then return tokens[self.auth.token] end
  return "default"
end

-- The stack file's name for the key a removal authenticates with, never
-- the key itself: the admin key (it may remove anything), else the
-- endpoint's own key where the stack file has it.
local function credential(self)
  local keys = type(self.stack) == "table" and self.stack.keys
  if type(keys) ~= "table" then return nil end
  if type(keys.admin) == "string" then return "keys.admin" end
  for name, key in pairs(keys) do
    if type(name) == "string" and key == self.auth.key then return "keys." .. name end
  end
  return nil
end

-- register(self, what, path, tenant [, find [, settle]]) -> the undo
-- handle, or nil when the stack file has no key to remove it with. The
-- removal goes through the LB, which survives a replica being down, where
-- there is one. Registered before the creation is sent, the fixture may
-- not exist yet when its removal runs — or come to exist a moment later: a
-- server finishes a request its client stopped waiting for (Ctrl-C). So a
-- 404 is asked again for SETTLE seconds, until the creation is answered
-- (conclude).
local SETTLE = 3
local function register(self, what, path, tenant, find, settle)
  local secret = credential(self)
  if not secret then return nil end
  local base = type(self.stack.lb) == "string" and self.stack.lb or self.url
  local other = tenant and tenant ~= "default"
  if find then find.url = base .. find.url end
  return undo.http{
    method = "DELETE", url = base .. path, what = what .. (other and (" of tenant " .. tenant) or ""),
    auth = { secret = secret, header = "x-api-key" },
    headers = other and { ["x-tenant-id"] = tenant } or nil,
    expect = { 200, 204, 404 }, find = find, settle = settle,
  }
end

-- The removal of what a call was about to create, once it has answered:
-- kept if it created it (no more waiting on a 404), or may have (no
-- answer, a 5xx); cancelled if the call was refused or found it there
-- already (not the check's to remove).
local function conclude(handle, id, created, err)
  if not handle then return end
  if created then
    removals[id] = handle
    handle:created()
  elseif (err and err.kind ~= "status") or (err and err.status and err.status >= 500) then
    removals[id] = handle
  else
    handle:cancel()
  end
end

-- The fixture is gone (deleted through here, or was never there).
local function forget(id)
  local h = removals[id]
  if h then h:cancel() removals[id] = nil end
end

---------------------------------------------------------------- assets

local asset_names = {} -- asset id -> "asset <tenant>/<filename>" (an asset may be named by its id)

-- upload_asset(filename, bytes, content_type) -> { id, filename, size } | nil, err
function Endpoint:upload_asset(filename, bytes, content_type)
  local tenant = tenant_of(self)
  local id = tenant and ("asset " .. tenant .. "/" .. filename)
  local h = id and not removals[id] and register(self, "asset " .. filename, "/assets/" .. filename, tenant, nil, SETTLE)
  local doc, res = self:ask_json("POST", "/assets", {
    multipart = { { name = "file", filename = filename, content_type = content_type or "application/octet-stream",
                    data = bytes } },
    timeout = 60,
  }, CREATED)
  conclude(h, id, doc ~= nil, not doc and res)
  if doc and type(doc.filename) == "string" then
    local t = type(doc.tenantId) == "string" and doc.tenantId or tenant or "default"
    local stored = "asset " .. t .. "/" .. doc.filename
    if stored ~= id and not removals[stored] then        -- stored under another name or tenant than foreseen
      removals[stored] = register(self, "asset " .. doc.filename, "/assets/" .. doc.filename, t)
      forget(id)
    end
    if doc.id ~= nil then asset_names[tostring(doc.id)] = stored end
  end
  return doc, res
end

-- get_asset(filename) -> bytes, res | nil, err
function Endpoint:get_asset(filename)
  local res, err = self:ask("GET", "/assets/" .. filename, { timeout = 60 }, 200)
  if not res then return nil, err end
  return res.body, res
end

function Endpoint:delete_asset(filename)
  local res, err = self:ask("DELETE", "/assets/" .. filename, nil, GONE)
  if res then
    local tenant = tenant_of(self) or "default"
    forget(asset_names[filename] or ("asset " .. tenant .. "/" .. filename))
  end
  return res, err
end

---------------------------------------------------------------- templates

-- put_template(key, definition) -> the template | nil, err. A template it
-- creates (201) is removed at the end; one it replaces (200) was there
-- before and stays.
function Endpoint:put_template(key, definition)
  local tenant = tenant_of(self)
  local id = tenant and ("template " .. tenant .. "/" .. key)
  local h = id and not removals[id] and register(self, "template " .. key, "/templates/" .. key, tenant, nil, SETTLE)
  local doc, res = self:ask_json("PUT", "/templates/" .. key, { json = definition }, CREATED)
  conclude(h, id, doc ~= nil and res.status == 201, not doc and res)
  if not tenant and doc and res.status == 201 then
    -- a token minted elsewhere: its tenant is in the answer
    local t = type(doc.tenantId) == "string" and doc.tenantId or "default"
    id = "template " .. t .. "/" .. key
    if not removals[id] then removals[id] = register(self, "template " .. key, "/templates/" .. key, t) end
  end
  return doc, res
end

function Endpoint:get_template(key)
  return self:ask_json("GET", "/templates/" .. key, nil, 200)
end

function Endpoint:list_templates()
  return self:ask_json("GET", "/templates", nil, 200)
end

function Endpoint:delete_template(key)
  local res, err = self:ask("DELETE", "/templates/" .. key, nil, GONE)
  if res then
    local tenant = tenant_of(self)
    if tenant then
      forget("template " .. tenant .. "/" .. key)
    else -- a token minted elsewhere: the template of that key, whichever tenant
      for id in pairs(removals) do
        if id:match("^template [^/]+/(.*)$") == key then forget(id) end
      end
    end
  end
  return res, err
end

-- render{ template = key, data = {...} } -> pdf bytes, res | nil, err
function Endpoint:render(req)
  local res, err = self:ask("POST", "/render", { json = req, timeout = 60 }, 200)
  if not res then return nil, err end
  return res.body, res
end

---------------------------------------------------------------- auth

-- mint_editor_token{ actor = name } -> token, tenantId | nil, err
function Endpoint:mint_editor_token(req)
  local doc, res = self:ask_json("POST", "/auth/editor-token", { json = req }, CREATED)
  if not doc then return nil, res end
  if type(doc.token) ~= "string" then
    return nil, failure("json", format("POST /auth/editor-token on %s: no token in %s", self.name, res.body))
  end
  -- what the token creates belongs to its tenant: its removal says so
  tokens[doc.token] = type(doc.tenantId) == "string" and doc.tenantId or "default"
  return doc.token, doc.tenantId
end

function Endpoint:audit(limit)
  return self:ask_json("GET", "/audit", { query = { limit = limit or 50 } }, 200)
end

---------------------------------------------------------------- schedules

-- create_schedule{ template =, cron =, name = } -> id | nil, err. Its id is
-- the server's, so until the answer comes its removal finds it by name
-- and template: give it a name no other schedule has (the default is
-- pulp.unique's).
function Endpoint:create_schedule(req)
  local body = {}
  for k, v in pairs(req) do body[k] = v end
  body.name = body.name or M.unique("halo-schedule")
  local tenant = tenant_of(self)
  local h = register(self, "schedule " .. tostring(body.name), "/schedules/{id}", tenant,
                     { url = "/schedules", where = { name = body.name, template = body.template } }, SETTLE)
  local doc, res = self:ask_json("POST", "/schedules", { json = body }, CREATED)
  if h then
    if doc and doc.id ~= nil then
      -- now that it has an id: remove that one, and only that one (the
      -- new removal first: there is no moment with neither)
      local t = type(doc.tenantId) == "string" and doc.tenantId or tenant
      removals["schedule " .. tostring(doc.id)] =
        register(self, "schedule " .. tostring(body.name), "/schedules/" .. tostring(doc.id), t)
      h:cancel()
    else
      conclude(h, "schedule named " .. tostring(body.name), false, not doc and res)
    end
  end
  if not doc then return nil, res end
  return doc.id
end

function Endpoint:delete_schedule(id)
  local res, err = self:ask("DELETE", "/schedules/" .. tostring(id), nil, GONE)
  if res then forget("schedule " .. tostring(id)) end
  return res, err
end

-- executions(id) -> { { fireTime, replica }, ... } | nil, err
function Endpoint:executions(id)
  return self:ask_json("GET", "/schedules/" .. tostring(id) .. "/executions", nil, 200)
end

---------------------------------------------------------------- tenants

-- A tenant it creates is removed at the end, and with it everything in
-- it; one that exists already (409) is not the check's to remove.
function Endpoint:create_tenant(id)
  local key = "tenant " .. id
  local h = not removals[key] and register(self, "tenant " .. id, "/tenants/" .. id, nil, nil, SETTLE)
  local doc, res = self:ask_json("POST", "/tenants", { json = { id = id } }, CREATED)
  conclude(h, key, doc ~= nil, not doc and res)
  return doc, res
end

-- The fixtures in a tenant whose own removal takes them along (an archived
-- tenant refuses their removal one by one).
local function forget_contents(tenant)
  for id in pairs(removals) do
    local t = id:match("^%a+ ([^/]+)/")
    if t == tenant then forget(id) end
  end
end

function Endpoint:archive_tenant(id)
  local res, err = self:ask("POST", "/tenants/" .. id .. "/archive", nil, { [200] = true, [204] = true })
  if res and removals["tenant " .. id] then forget_contents(id) end
  return res, err
end

function Endpoint:delete_tenant(id)
  local res, err = self:ask("DELETE", "/tenants/" .. id, nil, GONE)
  if res then
    forget("tenant " .. id)
    forget_contents(id)
  end
  return res, err
end

---------------------------------------------------------------- readiness

-- M.wait_ready(stack, name [, timeout]) -> seconds | nil, why
-- The playbook's "wait for /health/ready to return 200": polls the
-- replica's own /health/ready every 50 ms, at most `timeout` s (90). It
-- only says when to probe next: a replica that reports ready has promised
-- nothing a client can use, so what a check concludes comes from the
-- requests it makes after this returns.
function M.wait_ready(stack, name, timeout)
  local time = require "time"
  local ep = M.replica(stack, name)
  local started = time.mono()
  timeout = timeout or 90
  while true do
    local ok, got = ep:ready(2)
    if ok then return time.mono() - started end
    if time.mono() - started >= timeout then
      return nil, format("%s did not report ready within %g s (/health/ready: %s)", name, timeout,
                         type(got) == "number" and ("HTTP " .. got) or tostring(got))
    end
    time.sleep(0.05)
  end
end

-- After a replica comes back, the LB may keep it out for a while (nginx
-- leaves a server that failed a request alone for its fail_timeout); a
-- check that then disturbs the other replica would leave the LB with none.
-- M.wait_rejoined(stack, name, settle) waits until a response through the
-- LB comes from that replica (its X-Served-By), or from each of a list of
-- names, at most twice the stack's lb_fail_timeout (or settle) plus five
-- seconds; a deployment whose responses name no replica (the real product
-- need not) is given `settle` seconds instead. It steers, it does not
-- judge: it always returns, with a line for the evidence. Whether the LB
-- really serves is what the check's own traffic shows.
function M.wait_rejoined(stack, name, settle)
  local time, eventually = require "time", require "eventually"
  local lb = M.lb(stack)
  local wanted = type(name) == "table" and name or { name }
  local label = table.concat(wanted, " and ")
  settle = settle or stack.lb_fail_timeout or 10
  local limit = 2 * (stack.lb_fail_timeout or settle) + 5
  local unmarked, served = false, {}
  local ok, took = eventually{ timeout = limit, interval = 0.1 }(function()
    local res = lb:call("GET", "/health", { timeout = 2 })
    if not res or res.status >= 500 then return false end     -- the LB's own error page names nobody
    local by = res.headers["x-served-by"]
    if by == nil then unmarked = true; return true end
    served[by] = true
    for _, n in ipairs(wanted) do
      if not served[n] then return false end
    end
    return true
  end)
  if unmarked then
    time.sleep(settle)
    return format("waited %g s for the LB to take %s back (its responses name no replica)", settle, label)
  end
  if not ok then
    return format("the LB did not serve from %s in %.0f s; going on", label, took)
  end
  return format("the LB served from %s again %.1f s later", label, took)
end

-- M.wait_serving(stack, name, timeout) -> ok, seconds, last, res
-- Asks replica `name` directly for a real route (GET /templates, the
-- stack's admin key) every 0.2 s until it answers 200, at most `timeout`
-- s: whether it serves, not whether it says it is ready. `last` is the
-- last answer ("HTTP 503", or the network error), `res` the 200.
function M.wait_serving(stack, name, timeout)
  local eventually = require "eventually"
  local ep = M.replica(stack, name)
  local last, served
  local ok, took = eventually{ timeout = timeout, interval = 0.2 }(function()
    local res, err = ep:call("GET", "/templates", { timeout = 3 })
    last = res and ("HTTP " .. res.status) or tostring(err and err.message)
    if res and res.status == 200 then served = res end
    return served ~= nil
  end)
  return ok, took, last, served
end

---------------------------------------------------------------- links

-- M.link(stack, name, which) -> a netfault link handle: the path to
-- replica `name` from the LB (which = "lb") or from it to the database
-- ("db"), through the stack's fault proxy (stack.proxy.control), as the
-- stack file names it in replicas.<name>.links.
function M.link(stack, name, which)
  local r = stack.replicas and stack.replicas[name]
  if not r then error(format("pulp: the stack file has no replica '%s'", tostring(name)), 2) end
  local l = r.links and r.links[which]
  if type(l) ~= "string" then
    error(format("pulp: the stack file names no %s link for %s (replicas.%s.links.%s): this check needs the " ..
                 "path through halo's fault proxy", which, name, name, which), 2)
  end
  return require("netfault").proxy():link(l)
end

---------------------------------------------------------------- helpers

-- The stack's replica names, sorted: checks visit them in a stable order.
function M.replica_names(stack)
  local names = {}
  for name in pairs(stack.replicas or {}) do names[#names + 1] = name end
  table.sort(names)
  if #names == 0 then error("pulp: the stack file names no replicas (stack.replicas)", 2) end
  return names
end

-- One failed request of a traffic run (traffic's first_failures), for a
-- message: "HTTP 502 at 12.3 s" or "connect: Connection refused at 4.0 s";
-- `offset` moves the time from the flow's start to another moment's.
function M.describe_failure(f, offset)
  if not f then return "none" end
  local what = f.status and ("HTTP " .. f.status) or tostring(f.message or f.error)
  if not f.status and f.message and f.error and f.message:sub(1, #f.error + 1) ~= f.error .. ":" then
    what = f.error .. ": " .. f.message
  end
  return format("first: %s at %.2f s", what, (f.at or 0) + (offset or 0))
end

-- An HTTP Date header ("Sun, 06 Dec 2026 07:08:25 GMT", RFC 9110's
-- IMF-fixdate) as seconds since 1970, or nil: what a server's clock said.
local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
                 Nov = 11, Dec = 12 }
function M.http_date(s)
  local d, mon, y, h, mi, sec = tostring(s):match("^%a+, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  local m = MONTHS[mon]
  if not m then return nil end
  y, m, d = tonumber(y), m, tonumber(d)
  -- days from 1970-01-01 to y-m-d (proleptic Gregorian, March-based year)
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
end

-- A name no other run uses: temporary fixtures never collide.
function M.unique(prefix)
  return format("%s-%d-%04d", prefix, math.floor(require("time").now() * 1000) % 100000000, math.random(0, 9999))
end

-- A template definition with a line of text; and one referencing an asset
-- (the render embeds every member named `asset`: docs/target-contract.md).
function M.plain_template(text)
  return { definition = { text = "halo " .. text } }
end

function M.asset_template(filename)
  return { definition = { text = "{{title}}", blocks = { { asset = filename } } } }
end

-- Token parts: "a.b.c.d" -> 4
function M.parts(token)
  local n = 1
  for _ in token:gmatch("%.") do n = n + 1 end
  return n
end

-- The token with one character of its signature changed.
function M.tamper(token)
  local last = token:sub(-1)
  local swapped = last == "A" and "B" or "A"
  return token:sub(1, -2) .. swapped
end

return M
