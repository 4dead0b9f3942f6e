-- The netfault module: network faults between the parts of a stack,
-- through `halo proxy` (docs/operator-guide.md), a TCP proxy the stack runs
-- on each link worth breaking (api1 -> db, lb -> api2). A check slows,
-- throttles, slices, blackholes, limits, resets or cuts a link through the
-- proxy's control API:
--
--   local netfault = require "netfault"
--   local link = netfault.proxy():link("api1-db")
--   local f = assert(link:cut())
--   ...
--   f:remove()          -- or link:heal(); or nothing: the check's end heals
--
-- The first fault a check adds on a link registers an automatic undo (an
-- undo.http request, journalled) that heals the link at the end of the
-- check whatever its outcome, and after a kill -9 `halo cleanup` sends it.
-- So a fault handle that is collected does NOT remove its fault: a fault
-- lives until it is removed or its link healed.
local _, internal = ...
local check_options = internal.check_options
local http = require "http"
local json = require "json"
local time = require "time"
local undo = require "undo"

local type, error, tostring, setmetatable, getmetatable, pairs, ipairs = type, error, tostring, setmetatable,
  getmetatable, pairs, ipairs
local format, match, gsub, byte = string.format, string.match, string.gsub, string.byte

local M = {}

local TIMEOUT = 10 -- seconds for one call to the control API

local function fail(message, extra)
  return nil, internal.error("netfault", message, extra)
end

local function bad(fname, fmt, ...)
  error(format("bad argument #1 to '%s' (%s)", fname, format(fmt, ...)), 3)
end

local function percent(s)
  return (gsub(s, "[^%w%-%._~]", function(c) return format("%%%02X", byte(c)) end))
end

-- A check may break the network only where the stack file says so
-- (allow_faults = true) or the operator ran with --allow-faults: the same
-- rule as the docker module's.
local function may_inject(action, target)
  internal.may_inject("netfault", action, target, 4)
end

local function record(action, link, extra)
  local entry = { at = time.mono() - internal.origin(), action = "netfault " .. action, link = link }
  if extra then for k, v in pairs(extra) do entry[k] = v end end
  internal.event("action", json.encode(entry))
end

---------------------------------------------------------------- the API

local Proxy = {}
Proxy.__index = Proxy
Proxy.__tostring = function(p) return "netfault proxy (" .. p.url .. ")" end

-- One call: the decoded answer (true for a 204), or nil, err. A status
-- other than `want` is an error carrying the proxy's own words.
local function call(p, method, path, body, want)
  local res, err = http.request{ method = method, url = p.url .. path, json = body, timeout = TIMEOUT,
                                 record = false }
  if not res then
    return fail(format("netfault: the proxy at %s does not answer: %s", p.url, tostring(err and err.message or err)),
                { cause = err })
  end
  if res.status ~= want then
    local doc = res:json()
    local why = type(doc) == "table" and type(doc.error) == "string" and doc.error or res.body
    return fail(format("netfault: %s %s: HTTP %d: %s", method, path, res.status, tostring(why)), { status = res.status })
  end
  if res.status == 204 then return true end
  local doc, jerr = res:json()
  if type(doc) ~= "table" then return fail(format("netfault: %s %s: not JSON: %s", method, path, tostring(jerr))) end
  return doc
end

-- netfault.proxy([{ url = "http://127.0.0.1:8474" }]): the stack file's
-- proxy.control by default. A handle; nothing is sent.
function M.proxy(opts)
  if opts ~= nil then check_options("proxy", 1, opts, { "url" }) end
  local url = opts and opts.url
  if url == nil then
    local stack = internal.stack()
    local p = type(stack) == "table" and stack.proxy
    url = type(p) == "table" and p.control or nil
    if url == nil then
      error("bad argument #1 to 'proxy' (no proxy: give { url = ... }, or proxy = { control = URL } in the " ..
            "stack file)", 2)
    end
  end
  if type(url) ~= "string" or not match(url, "^https?://[^/]+") then
    error(format("bad argument #1 to 'proxy' (url must be an http URL, got %s)", tostring(url)), 2)
  end
  return setmetatable({ url = (gsub(url, "/+$", "")) }, Proxy)
end

-- proxy:links() -> { LINK, ... } | nil, err
function Proxy:links()
  local doc, err = call(self, "GET", "/links", nil, 200)
  if not doc then return nil, err end
  return doc.links
end

-- proxy:health() -> true | nil, err
function Proxy:health()
  local doc, err = call(self, "GET", "/health", nil, 200)
  if not doc then return nil, err end
  return true
end

---------------------------------------------------------------- undo

-- The heals registered by this process, by URL: one per link, pending
-- until it ran at the end of the check or the check healed the link.
local heals = {}

local function heal_pending(url)
  local h = heals[url]
  if not h then return false end
  for _, p in ipairs(undo.pending()) do
    if p.url == url then return true end
  end
  heals[url] = nil
  return false
end

-- Before the first fault on a link: its heal, registered and journalled
-- before the fault exists, so no interrupt can leave the fault behind.
local function ensure_heal(link)
  local url = link.proxy.url .. "/links/" .. percent(link.name) .. "/heal"
  if heal_pending(url) then return end
  local name = link.name
  heals[url] = undo.http{
    method = "POST", url = url, expect = { 200, 404 }, what = "heal link " .. name, first = true,
    done = function(ok) if ok then record("heal", name, { automatic = true }) end end,
  }
end

local function forget_heal(link)
  local url = link.proxy.url .. "/links/" .. percent(link.name) .. "/heal"
  if heals[url] then heals[url]:cancel() end
  heals[url] = nil
end

---------------------------------------------------------------- links

local Link = {}
Link.__index = Link
Link.__tostring = function(l) return "netfault link " .. l.name end

local Fault = {}
Fault.__index = Fault
Fault.__tostring = function(f) return format("netfault %s fault %d on %s", f.type, f.id, f.link.name) end

-- proxy:link(name) -> a handle (nothing is sent)
function Proxy:link(name)
  if type(name) ~= "string" or not match(name, "^[%w%-_.]+$") then
    error("bad argument #1 to 'link' (a link name expected: letters, digits, - _ .)", 2)
  end
  return setmetatable({ proxy = self, name = name, path = "/links/" .. percent(name) }, Link)
end

-- link:info() -> LINK (listen, upstream, listening, faults, counters) | nil, err
function Link:info()
  return call(self.proxy, "GET", self.path, nil, 200)
end

-- link:heal() -> LINK | nil, err: every fault removed, the listener open
function Link:heal()
  local doc, err = call(self.proxy, "POST", self.path .. "/heal", nil, 200)
  if not doc then return nil, err end
  forget_heal(self)
  record("heal", self.name)
  return doc
end

-- proxy:heal() -> { LINK, ... } | nil, err: every link healed
function Proxy:heal()
  local doc, err = call(self, "POST", "/heal", nil, 200)
  if not doc then return nil, err end
  for _, l in ipairs(doc.links or {}) do
    forget_heal(self:link(l.name))
    record("heal", l.name)
  end
  return doc.links
end

-- Each fault type: its options (beyond direction and probability) and
-- how each maps to the control API's parameter.
local TYPES = {
  cut = {}, blackhole = {}, reset = {},
  latency = { ms = "ms", jitter = "jitter_ms" },
  bandwidth = { kbps = "kbps" },
  slice = { bytes = "bytes", delay = "delay_ms" },
  limit = { bytes = "bytes" },
}
local REQUIRED = { latency = "ms", bandwidth = "kbps", slice = "bytes", limit = "bytes" }

local function add(link, kind, opts)
  local params = TYPES[kind]
  local known = { "direction", "probability" }
  for k in pairs(params) do known[#known + 1] = k end
  if opts == nil then opts = {} end
  check_options(kind, 1, opts, known, 3)
  local body = { type = kind }
  if opts.direction ~= nil then
    local d = opts.direction
    if d ~= "up" and d ~= "down" and d ~= "both" then bad(kind, "direction must be \"up\", \"down\" or \"both\"") end
    body.direction = d
  end
  if opts.probability ~= nil then
    local p = opts.probability
    if type(p) ~= "number" or not (p >= 0 and p <= 1) then bad(kind, "probability must be a number from 0 to 1") end
    body.probability = p
  end
  for k, api in pairs(params) do
    local v = opts[k]
    if v ~= nil then
      if type(v) ~= "number" or not (v >= 0) then bad(kind, "%s must be a number of at least 0", k) end
      body[api] = v
    end
  end
  if REQUIRED[kind] and opts[REQUIRED[kind]] == nil then bad(kind, "%s is required", REQUIRED[kind]) end
  may_inject(kind, "link " .. link.name)
  ensure_heal(link)
  local doc, err = call(link.proxy, "POST", link.path .. "/faults", body, 201)
  if not doc then return nil, err end
  local extra = { fault = doc.id, direction = doc.direction, probability = doc.probability }
  for _, api in pairs(params) do extra[api] = doc[api] end
  record(kind, link.name, extra)
  return setmetatable({ link = link, id = doc.id, type = kind }, Fault)
end

for kind in pairs(TYPES) do
  Link[kind] = function(self, opts)
    if getmetatable(self) ~= Link then error(format("bad argument #1 to '%s' (a netfault link expected)", kind), 2) end
    return add(self, kind, opts)
  end
end

-- f:remove() -> true | nil, err. Idempotent: a fault already removed (or
-- healed away) is done.
function Fault:remove()
  if self.removed then return true end
  local ok, err = call(self.link.proxy, "DELETE", self.link.path .. "/faults/" .. self.id, nil, 204)
  if not ok and not (err.status == 404) then return nil, err end
  self.removed = true
  record("remove " .. self.type, self.link.name, { fault = self.id })
  return true
end

-- f:close() and <close>: remove. No __gc: a fault outlives its handle
-- until it is removed or healed (the check's end heals it).
Fault.close = Fault.remove
Fault.__close = function(f) f:remove() end

-- f:info() -> the fault as the proxy holds it (with `affected`) | nil, err
function Fault:info()
  local doc, err = self.link:info()
  if not doc then return nil, err end
  for _, f in ipairs(doc.faults or {}) do
    if f.id == self.id then return f end
  end
  return fail(format("netfault: link %s has no fault %d (removed or healed)", self.link.name, self.id))
end

return M
