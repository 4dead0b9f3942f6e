-- The docker module's slower faults (mod/docker.lua loads this file with
-- internal.load): a service's clock skewed with libfaketime, and a
-- container's resource limits lowered. Like kill, stop and pause, each is
-- undone at the end of the check unless the script undid it or said
-- { undo = false }, and journalled meanwhile so that `halo cleanup` (and
-- the runner, for a worker it saw die) restores it after a kill -9:
--   * a skew is a recreate of the service with an override file (the
--     library preloaded, FAKETIME set); a plain `up -d --no-deps SERVICE`
--     undoes it, journalled as the "compose up" entry Compose:up writes;
--   * limits are an Engine API update; the undo ("update" entry) puts back
--     the limits read before the change.
local M, internal, d = ...
local Container, Compose = d.Container, d.Compose
local call, call_json, fail, record, may_inject, in_scope = d.call, d.call_json, d.fail, d.record, d.may_inject, d.in_scope
local action_opts, journalled = d.action_opts, d.journalled
local check_options = internal.check_options
local json = require "json"

local type, error, ipairs, tostring, tonumber, setmetatable, assert = type, error, ipairs, tostring, tonumber, setmetatable, assert
local format, concat = string.format, table.concat
-- string functions as locals, never methods (see docker.lua)
local match, gsub, lower, find = string.match, string.gsub, string.lower, string.find
local tointeger, floor = math.tointeger, math.floor

---------------------------------------------------------------- clock skew

-- Where Debian's libfaketime package puts the library, by architecture
local TRIPLETS = { "x86_64-linux-gnu", "aarch64-linux-gnu", "arm-linux-gnueabihf", "i386-linux-gnu",
                   "powerpc64le-linux-gnu", "s390x-linux-gnu", "riscv64-linux-gnu" }

-- The library's path: the stack file's docker.faketime, else Debian's
-- multiarch path on this host (the reference stack's containers run the
-- host's /usr, so the same path is there inside them).
local function faketime_library()
  local stack = internal.stack() or {}
  local conf = type(stack.docker) == "table" and stack.docker.faketime or nil
  if conf ~= nil then
    if type(conf) ~= "string" then error("docker: the stack file's docker.faketime must be a path", 3) end
    if not internal.exists(conf) then
      return fail("docker", format("docker: no libfaketime at %s (the stack file's docker.faketime)", conf))
    end
    return conf
  end
  local tried = {}
  for _, triplet in ipairs(TRIPLETS) do
    local path = "/usr/lib/" .. triplet .. "/faketime/libfaketime.so.1"
    if internal.exists(path) then return path end
    tried[#tried + 1] = path
  end
  return fail("docker", format("docker: no libfaketime on this host (install the Debian package libfaketime, or " ..
                               "set docker.faketime in the stack file); looked for %s", concat(tried, ", ")))
end

-- 5 -> "+5s", -0.25 -> "-0.25s", with a rate: "+5s x1.5"
local function describe_skew(offset, rate)
  local s = format("%+.3f", offset)
  s = gsub(gsub(s, "0+$", ""), "%.$", "") .. "s"
  if rate then s = s .. " x" .. gsub(gsub(format("%.3f", rate), "0+$", ""), "%.$", "") end
  return s
end

local function env_value(info, name)
  for _, kv in ipairs(info and info.Config and info.Config.Env or {}) do
    local k, v = match(kv, "^([^=]*)=(.*)$")
    if k == name then return v end
  end
  return nil
end

local function wait_ready(c, timeout)
  local info, err = c:inspect()
  if not info then return nil, err end
  return c:wait{ state = info.Config and info.Config.Healthcheck and "healthy" or "running", timeout = timeout }
end

local Skew = {}
Skew.__index = Skew
Skew.__tostring = function(s) return format("skew %s of %s", s.spec, s.service) end

-- Back to the service's own configuration: a plain up, then running
-- (healthy where it has a healthcheck)
local function heal_service(p, service, timeout)
  local ok, err = p:up{ services = { service }, no_deps = true, timeout = timeout }
  if not ok then return nil, err end
  local c
  c, err = M.container{ project = p.project, service = service }
  if not c then return nil, err end
  ok, err = wait_ready(c, timeout)
  if not ok then return nil, err end
  return c
end

-- p:skew{ service = "api1", offset = seconds, rate = 1.5, monotonic = false, timeout = s, undo = true }
--   -> skew handle | nil, err
function Compose:skew(opts)
  if type(opts) ~= "table" then error("bad argument #1 to 'skew' (an option table, as in p:skew{ service = \"api1\", offset = 5 })", 2) end
  check_options("skew", 1, opts, { "service", "offset", "rate", "monotonic", "timeout", "undo" })
  local service, offset, rate = opts.service, opts.offset, opts.rate
  if type(service) ~= "string" or service == "" then error("bad argument #1 to 'skew' (service must be a service name)", 2) end
  if offset ~= nil and (type(offset) ~= "number" or offset ~= offset or offset == 1 / 0 or offset == -1 / 0) then
    error("bad argument #1 to 'skew' (offset must be a number of seconds)", 2)
  end
  if rate ~= nil and (type(rate) ~= "number" or not (rate > 0) or rate == 1 / 0) then
    error("bad argument #1 to 'skew' (rate must be a positive number, the clock's speed)", 2)
  end
  if offset == nil and rate == nil then error("bad argument #1 to 'skew' (give offset, rate or both)", 2) end
  local timeout = opts.timeout or 120
  may_inject("skew the clock of", "service " .. service .. " of project " .. self.project)
  local library, err = faketime_library()
  if not library then return nil, err end
  offset = offset or 0
  local spec = describe_skew(offset, rate)
  local faketime = format("%+.6f", offset) .. (rate and format(" x%.6f", rate) or "")
  -- whatever the service preloads already, it still does
  local before = M.container{ project = self.project, service = service }
  local preload = before and env_value(before:inspect(), "LD_PRELOAD")
  local preloads = library
  if preload and preload ~= "" then
    -- skewed already (undo = false): the library once
    preloads = find(":" .. preload .. ":", ":" .. library .. ":", 1, true) and preload or library .. ":" .. preload
  end
  local env = { LD_PRELOAD = preloads, FAKETIME = faketime }
  -- The monotonic clock stays real unless asked for: faked, libfaketime
  -- 0.9.10 reads it on the wall clock's scale (1.8e9 s and counting), so
  -- every timed wait computed from a monotonic deadline (Python's
  -- Event.wait, pthread_cond_timedwait on CLOCK_MONOTONIC) waits for
  -- decades, and a skewed service hangs in its first one. (Real, libfaketime
  -- fails absolute clock_nanosleep on it, EINVAL from Python 3.11's
  -- time.sleep: docs/modules.md.) Both spellings, old and new.
  if not opts.monotonic then
    env.FAKETIME_DONT_FAKE_MONOTONIC = "1"
    env.DONT_FAKE_MONOTONIC = "1"
  end

  local key = "compose " .. self.project .. " " .. service
  local undo_id
  local p = self
  if opts.undo ~= false then
    -- registered and journalled before the recreate (a recreate cut short
    -- is restored too); it looks before it acts: a service recreated since
    -- (healed, skewed otherwise, taken down) is left as it is
    undo_id = internal.undo("heal skew " .. spec .. " of " .. service, function()
      local c = M.container{ project = p.project, service = service }
      local info = c and c:inspect()
      if info and env_value(info, "FAKETIME") == faketime then assert(heal_service(p, service, timeout)) end
      internal.journal(key, nil)
    end, key, json.encode({ undo = "compose up", project = self.project, files = self.files, service = service,
                            cwd = self.cwd, env_file = self.env_file }))
    journalled[self.project] = journalled[self.project] or {}
    journalled[self.project][key] = true
  end
  local ok
  ok, err = self:up{ services = { service }, no_deps = true, env = { [service] = env }, timeout = timeout }
  if not ok then return nil, err end
  local c
  c, err = M.container{ project = self.project, service = service }
  if not c then return nil, err end
  record("skew " .. spec, c, { offset = offset, rate = rate, faketime = faketime })
  ok, err = wait_ready(c, timeout)
  if not ok then return nil, err end
  return setmetatable({ service = service, project = self.project, offset = offset, rate = rate, spec = spec,
                        container = c, compose = self, undo_id = undo_id, timeout = timeout }, Skew)
end

-- skew:heal() -> true | nil, err: the service recreated with its own
-- configuration (and so without any skew); idempotent
function Skew:heal()
  if self.healed then return true end
  local c, err = heal_service(self.compose, self.service, self.timeout)
  if not c then return nil, err end
  self.healed = true
  if self.undo_id then internal.cancel_undo(self.undo_id) end
  record("heal skew " .. self.spec, c, {})
  return true
end

---------------------------------------------------------------- limits

local UNITS = { [""] = 1, b = 1, k = 1024, m = 1024 ^ 2, g = 1024 ^ 3, t = 1024 ^ 4 }

-- 268435456, "256m", "1g", "512k" -> bytes; raises naming the option
local function bytes_of(v, what)
  if type(v) == "number" and tointeger(v) and v > 0 then return tointeger(v) end
  if type(v) == "string" then
    local n, unit = match(lower(v), "^%s*(%d+%.?%d*)%s*([bkmgt]?)b?%s*$")
    n = tonumber(n)
    if n and n > 0 and UNITS[unit] then return floor(n * UNITS[unit]) end
  end
  error(format("bad argument #1 to 'update' (%s must be bytes or a size such as \"256m\", not %s)", what,
               type(v) == "string" and format("%q", v) or tostring(v)), 3)
end

local function show_bytes(n)
  for _, u in ipairs({ { "g", 1024 ^ 3 }, { "m", 1024 ^ 2 }, { "k", 1024 } }) do
    if n % u[2] == 0 then return format("%d%s", n // u[2], u[1]) end
  end
  return format("%d", n)
end

local function limits_now(info)
  local hc = info.HostConfig or {}
  local function num(v) return type(v) == "number" and v or 0 end
  return { NanoCpus = num(hc.NanoCpus), Memory = num(hc.Memory), MemorySwap = num(hc.MemorySwap),
           PidsLimit = num(hc.PidsLimit) }
end

-- POST /containers/{id}/update; an id (the journal's) or a container
local function update(id, body)
  local res, err = call("POST", "/containers/" .. id .. "/update", { json = body })
  if not res then return nil, err end
  return true
end

-- What puts back `before` for the fields `body` changes. The Engine API
-- reads 0 as "leave as it is", so a limit the container did not have
-- cannot be removed again: it gets the host's size instead (every CPU,
-- all the memory, memory+swap twice that), which limits nothing.
local function restoring(body, before)
  local back = {}
  local host
  local function host_info()
    if not host then
      local info, err = call_json("GET", "/info")
      if not info then return nil, err end
      host = info
    end
    return host
  end
  if body.NanoCpus then
    if before.NanoCpus > 0 then back.NanoCpus = before.NanoCpus else
      local h, err = host_info()
      if not h then return nil, err end
      back.NanoCpus = floor((tonumber(h.NCPU) or 1) * 1e9)
    end
  end
  if body.Memory or body.MemorySwap then
    if before.Memory > 0 then back.Memory = before.Memory else
      local h, err = host_info()
      if not h then return nil, err end
      back.Memory = floor(tonumber(h.MemTotal) or 0)
    end
    back.MemorySwap = before.MemorySwap > 0 and before.MemorySwap or 2 * back.Memory
  end
  if body.PidsLimit then back.PidsLimit = before.PidsLimit > 0 and before.PidsLimit or 0 end
  return back
end

local pending_limits = {} -- container id -> the undo holding its original limits

local Limits = {}
Limits.__index = Limits

-- c:update{ cpus = 0.5, memory = "256m" | bytes, memory_swap = "512m" | bytes | -1, pids = n, undo = true }
--   -> limits handle | nil, err
function Container:update(arg)
  local opts = action_opts(arg, { "cpus", "memory", "memory_swap", "pids", "undo" }, "update")
  local body, said = {}, {}
  if opts.cpus ~= nil then
    if type(opts.cpus) ~= "number" or not (opts.cpus > 0) or opts.cpus == 1 / 0 then
      error("bad argument #1 to 'update' (cpus must be a positive number of CPUs, such as 0.5)", 2)
    end
    body.NanoCpus = floor(opts.cpus * 1e9 + 0.5)
    said[#said + 1] = "cpus=" .. gsub(gsub(format("%.3f", opts.cpus), "0+$", ""), "%.$", "")
  end
  if opts.memory ~= nil then
    body.Memory = bytes_of(opts.memory, "memory")
    said[#said + 1] = "memory=" .. show_bytes(body.Memory)
  end
  if opts.memory_swap ~= nil then
    body.MemorySwap = opts.memory_swap == -1 and -1 or bytes_of(opts.memory_swap, "memory_swap")
    said[#said + 1] = "memory_swap=" .. (body.MemorySwap == -1 and "-1" or show_bytes(body.MemorySwap))
  elseif body.Memory then
    -- as `docker run --memory` does; the daemon refuses a memory limit
    -- above the memory+swap one the container has (0 on one without)
    body.MemorySwap = 2 * body.Memory
  end
  if opts.pids ~= nil then
    if not tointeger(opts.pids) or opts.pids < 1 then
      error("bad argument #1 to 'update' (pids must be a positive whole number of processes)", 2)
    end
    body.PidsLimit = tointeger(opts.pids)
    said[#said + 1] = "pids=" .. body.PidsLimit
  end
  if #said == 0 then error("bad argument #1 to 'update' (give cpus, memory, memory_swap or pids)", 2) end
  in_scope(self, "update")
  may_inject("update the limits of", self.name)
  local info, err = self:inspect()
  if not info then return nil, err end
  local before = limits_now(info)
  local back
  back, err = restoring(body, before)
  if not back then return nil, err end
  local key, undo_id = "limits " .. self.id, nil
  local c = self
  if opts.undo ~= false and not pending_limits[self.id] then
    -- the first change holds the limits to go back to; it looks before it
    -- acts (a container that is gone has nothing to restore)
    undo_id = internal.undo("restore the limits of " .. self.name, function()
      if pending_limits[c.id] == undo_id then pending_limits[c.id] = nil end
      if c:inspect() then
        assert(update(c.id, back))
        record("update restored", c, { limits = back })
      end
      internal.journal(key, nil)
    end, key, json.encode({ undo = "update", id = self.id, container = self.name, project = self.project,
                            service = self.service, limits = back }))
    pending_limits[self.id] = undo_id
  end
  local ok
  ok, err = update(self.id, body)
  if not ok then
    if undo_id then
      internal.cancel_undo(undo_id)
      pending_limits[self.id] = nil
    end
    return nil, err
  end
  record("update " .. concat(said, " "), self, { limits = body })
  return setmetatable({ container = self, before = before, limits = body, restore_to = back, undo_id = undo_id }, Limits)
end

-- limits:restore() -> true | nil, err: the limits as they were (see restoring)
function Limits:restore()
  if self.restored then return true end
  local ok, err = update(self.container.id, self.restore_to)
  if not ok then return nil, err end
  self.restored = true
  if self.undo_id then
    internal.cancel_undo(self.undo_id)
    if pending_limits[self.container.id] == self.undo_id then pending_limits[self.container.id] = nil end
  end
  record("update restored", self.container, { limits = self.restore_to })
  return true
end

-- For `halo cleanup` (mod/undo.lua): a journalled "update" entry
function internal.restore_limits(e)
  local c, err = M.container(e.id)
  if not c then
    if err.kind == "not_found" then return tostring(e.container) .. " is gone: nothing to restore" end
    error(err, 0)
  end
  assert(update(c.id, e.limits))
  return "restored the limits of " .. c.name
end
