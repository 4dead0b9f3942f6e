-- tests/stack/probe.lua — quick probes of the reference stack's HA
-- properties, one per fault switch, for tests/engine/test_stack.py and for
-- an operator who wants to see a switch bite:
--
--   build/halo exec --stack tests/stack/stack.lua --lib scripts/lib tests/stack/probe.lua assets tokens
--
-- Properties (each cleans up what it created):
--   assets     upload through the LB, identical bytes from api1 and api2, a PDF from each embedding them
--   tokens     mint on api1, read (both header forms) and write on api2, audit credits the actor, tampered -> 401
--   schedule   a temporary schedule (stack.schedule), every fire time exactly once and none missing (API and SQL)
--   failover   traffic through the LB while api1 is killed and started again: no failed request
--   tenants    archive a temporary tenant on api1: api1 rejects writes at once, api2 within the TTL
--   rotation   check 6's playbook: recreate api1 then api2 with a new admin key and the old one as
--              previous while traffic with an old token flows; no failure, no 401 in the logs;
--              probes 200/200/401/401; then the original keys are restored
--   mint                          an editor token minted with the admin key (for keyrules)
--   keyrules TOKEN OLDKEY NEWKEY  the four probes of the rotation contract through the LB
--
-- Prints one JSON object: { property = { ok = true|false, ...what was seen } }.
-- A property that raised has ok = false and `error`.
local sha256 = require "sha256"
local png = require "png"
local eventually = require "eventually"
local traffic = require "traffic"

local ADMIN, EDITOR = stack.keys.admin, stack.keys.editor
local LB = stack.lb
local REPLICAS = { api1 = stack.replicas.api1.url, api2 = stack.replicas.api2.url }
local FAIL_TIMEOUT = stack.lb_fail_timeout or 5

local cleanups = {}
local function defer(fn) cleanups[#cleanups + 1] = fn end

local function unique(prefix)
  return string.format("%s-%d-%04d", prefix, math.floor(time.now() * 1000) % 100000000, math.random(0, 9999))
end

local function headers(key, extra)
  local h = { ["x-api-key"] = key }
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

-- request(method, url, opts) -> res; a network failure raises (the probes
-- below are about statuses, a dead endpoint is an error of the probe)
local function request(method, url, opts)
  opts = opts or {}
  opts.method, opts.url = method, url
  local res, err = http.request(opts)
  if not res then error(method .. " " .. url .. ": " .. tostring(err.message or err.kind), 2) end
  return res
end

local function admin_delete(path)
  defer(function() http.delete(LB .. path, { headers = headers(ADMIN) }) end)
end

local function epoch(iso)   -- "2026-11-28T13:40:12.000Z" -> seconds (differences only)
  local y, mo, d, h, mi, s = iso:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)")
  return os.time{ year = tonumber(y), month = tonumber(mo), day = tonumber(d),
                  hour = tonumber(h), min = tonumber(mi), sec = tonumber(s) }
end

local P = {}

function P.assets()
  local bytes = png.random{ width = 220, height = 220 }
  local want = sha256(bytes)
  local name = unique("probe") .. ".png"
  local up = request("POST", LB .. "/assets", { headers = headers(ADMIN),
    multipart = { { name = "file", filename = name, content_type = "image/png", data = bytes } } })
  if up.status ~= 201 then error("upload: HTTP " .. up.status .. " " .. up.body) end
  admin_delete("/assets/" .. name)
  local key = unique("probe-asset-tpl")
  local put = request("PUT", LB .. "/templates/" .. key, { headers = headers(ADMIN),
    json = { definition = { content = { { type = "text", text = "probe" }, { type = "image", asset = "{{logo}}" } } } } })
  if put.status >= 300 then error("template: HTTP " .. put.status) end
  admin_delete("/templates/" .. key)
  local out = { ok = true, size = #bytes, sha256 = want, uploaded_via = up.headers["X-Served-By"],
                upload_sha256 = up:json().sha256, replicas = {} }
  out.ok = out.upload_sha256 == want
  for replica, url in pairs(REPLICAS) do
    local got = request("GET", url .. "/assets/" .. name, { headers = headers(ADMIN) })
    local pdf = request("POST", url .. "/render", { headers = headers(ADMIN), json = { template = key, data = { logo = name } } })
    local r = {
      status = got.status, size = #got.body, same_bytes = got.status == 200 and got.body == bytes,
      render = pdf.status, pdf = pdf.status == 200 and pdf.headers["Content-Type"] == "application/pdf"
                             and pdf.body:sub(1, 5) == "%PDF-",
      pdf_embeds_asset = pdf.status == 200 and pdf.body:find(bytes, 1, true) ~= nil
                         and pdf.body:find(want, 1, true) ~= nil,
    }
    out.replicas[replica] = r
    out.ok = out.ok and r.same_bytes and r.pdf and r.pdf_embeds_asset
  end
  return out
end

function P.tokens()
  local actor = unique("probe-actor")
  local minted = request("POST", REPLICAS.api1 .. "/auth/editor-token", { headers = headers(EDITOR), json = { actor = actor } })
  if minted.status ~= 200 then error("mint on api1: HTTP " .. minted.status .. " " .. minted.body) end
  local doc = minted:json()
  local tok = doc.token
  local _, dots = tok:gsub("%.", "")
  local out = { parts = dots + 1, tenantId = doc.tenantId, minted_by = minted.headers["X-Served-By"] }
  local api2 = REPLICAS.api2
  out.read_x_editor_token = request("GET", api2 .. "/templates", { headers = { ["x-editor-token"] = tok } }).status
  out.read_bearer = request("GET", api2 .. "/templates", { headers = { authorization = "Bearer " .. tok } }).status
  local key = unique("probe-token-tpl")
  local w = request("PUT", api2 .. "/templates/" .. key, { headers = { authorization = "Bearer " .. tok },
                                                          json = { definition = { text = "by " .. actor } } })
  out.write, out.write_served_by = w.status, w.headers["X-Served-By"]
  if w.status < 300 then admin_delete("/templates/" .. key) end
  local audit = request("GET", LB .. "/audit", { headers = headers(ADMIN), query = { limit = 20, actor = actor } }):json() or {}
  out.audit_credits_actor = false
  for _, e in ipairs(audit) do
    if e.action == "template.put" and e.target == key and e.actor == actor then out.audit_credits_actor = true end
  end
  local last = tok:sub(-1)
  local tampered = tok:sub(1, -2) .. (last == "A" and "B" or "A")
  out.tampered = {
    api1 = request("GET", REPLICAS.api1 .. "/templates", { headers = { ["x-editor-token"] = tampered } }).status,
    api2 = request("GET", api2 .. "/templates", { headers = { ["x-editor-token"] = tampered } }).status,
  }
  out.ok = out.parts == 4 and out.read_x_editor_token == 200 and out.read_bearer == 200
           and (out.write == 200 or out.write == 201) and out.audit_credits_actor
           and out.tampered.api1 == 401 and out.tampered.api2 == 401
  return out
end

function P.schedule()
  local cron, ticks, interval = stack.schedule.cron, stack.schedule.ticks, stack.schedule.interval
  local key = unique("probe-sched-tpl")
  local put = request("PUT", LB .. "/templates/" .. key, { headers = headers(ADMIN), json = { definition = { text = "tick" } } })
  if put.status >= 300 then error("template: HTTP " .. put.status) end
  admin_delete("/templates/" .. key)
  local res = request("POST", LB .. "/schedules", { headers = headers(ADMIN), json = { template = key, cron = cron, name = key } })
  if res.status ~= 201 then error("schedule: HTTP " .. res.status .. " " .. res.body) end
  local id = res:json().id
  admin_delete("/schedules/" .. id)
  local function executions()
    return request("GET", LB .. "/schedules/" .. id .. "/executions", { headers = headers(ADMIN) }):json()
  end
  local function distinct(list)
    local seen, n = {}, 0
    for _, e in ipairs(list) do if not seen[e.fireTime] then seen[e.fireTime] = true n = n + 1 end end
    return n
  end
  eventually{ timeout = (ticks + 2) * interval + 2, interval = 0.25 }(function() return distinct(executions()) >= ticks end)
  time.sleep(0.8)        -- a second replica records within a scheduler tick or two
  local list = executions()
  local counts, order = {}, {}
  for _, e in ipairs(list) do
    if not counts[e.fireTime] then order[#order + 1] = e.fireTime counts[e.fireTime] = {} end
    table.insert(counts[e.fireTime], e.replica)
  end
  local out = { cron = cron, fire_times = #order, executions = #list, duplicates = {}, gaps = {}, by_replica = {} }
  for i, ft in ipairs(order) do
    if #counts[ft] > 1 then out.duplicates[ft] = table.concat(counts[ft], ",") end
    for _, r in ipairs(counts[ft]) do out.by_replica[r] = (out.by_replica[r] or 0) + 1 end
    if i > 1 and epoch(ft) - epoch(order[i - 1]) ~= interval then out.gaps[#out.gaps + 1] = order[i - 1] .. " -> " .. ft end
  end
  out.ok = #order >= ticks and next(out.duplicates) == nil and #out.gaps == 0
  if stack.database then
    local db = assert(sql.connect(stack.database))
    local rows = assert(db:query("SELECT count(*)::int AS n, count(DISTINCT fire_time)::int AS d " ..
                                 "FROM schedule_executions WHERE schedule_id = $1", id))
    db:close()
    out.sql_rows, out.sql_distinct_fire_times = rows[1].n, rows[1].d
    out.ok = out.ok and rows[1].n == rows[1].d and rows[1].d >= #order
  end
  return out
end

-- Waits until a request through the LB is served by `replica` (nginx leaves
-- a replica that failed out for lb_fail_timeout seconds, even once healthy).
local function lb_serves(replica, timeout)
  return eventually{ timeout = timeout or FAIL_TIMEOUT + 5, interval = 0.1 }(function()
    local res = http.get(LB .. "/health", { timeout = 2 })
    return res and res.status == 200 and res.headers["X-Served-By"] == replica
  end)
end

function P.failover()
  local victim = "api1"
  local flow <close> = traffic.start{ request = { url = LB .. "/health", timeout = 5 }, rate = 40 }
  time.sleep(1)
  local c = assert(docker.container{ service = victim })
  assert(c:kill())
  time.sleep(3)
  assert(c:start())
  local _, back = assert(c:wait{ state = "healthy", timeout = 60 })
  local served, took = lb_serves(victim)
  time.sleep(0.5)
  local seen = flow:stop()
  return { ok = seen.failures == 0 and served, sent = seen.sent, failures = seen.failures, by_status = seen.by_status,
           by_error = seen.by_error, longest_failure_window = seen.longest_failure_window and seen.longest_failure_window.seconds,
           healthy_after = back, lb_serves_again_after = took }
end

function P.tenants()
  if not stack.multi_tenant then return { ok = json.null, skipped = "single-tenant stack" } end
  local ttl = stack.tenant_cache_ttl_ms / 1000
  local margin = 0.5
  local tid = unique("probe-tenant")
  local c = request("POST", LB .. "/tenants", { headers = headers(ADMIN), json = { id = tid } })
  if c.status ~= 201 then error("create tenant: HTTP " .. c.status .. " " .. c.body) end
  admin_delete("/tenants/" .. tid)
  local function write(url, n)
    return request("PUT", url .. "/templates/probe", { headers = headers(ADMIN, { ["x-tenant-id"] = tid }),
                                                       json = { definition = { n = n } } }).status
  end
  local out = { ttl_ms = stack.tenant_cache_ttl_ms, margin_s = margin }
  out.api2_before = write(REPLICAS.api2, 0)            -- api2 now has the tenant in its cache, active
  local a = request("POST", REPLICAS.api1 .. "/tenants/" .. tid .. "/archive", { headers = headers(ADMIN) })
  if a.status ~= 200 then error("archive on api1: HTTP " .. a.status) end
  local archived, rejected = time.mono(), nil
  out.api1_at_once = write(REPLICAS.api1, 1)
  eventually{ timeout = ttl + margin + 1.5, interval = 0.05 }(function()
    if write(REPLICAS.api2, 2) == 403 then rejected = time.mono() - archived end
    return rejected
  end)
  out.api2_rejects_after = rejected or json.null       -- seconds since the archive answered
  out.ok = out.api1_at_once == 403 and rejected ~= nil and rejected <= ttl + margin
  return out
end

function P.mint()
  local res = request("POST", LB .. "/auth/editor-token", { headers = headers(ADMIN), json = { actor = "probe-rotation" } })
  if res.status ~= 200 then error("mint: HTTP " .. res.status .. " " .. res.body) end
  return { ok = true, token = res:json().token }
end

local function keyrules(token, old, new)
  local r = {
    new_key = request("GET", LB .. "/templates", { headers = headers(new) }).status,
    old_token = request("GET", LB .. "/templates", { headers = { ["x-editor-token"] = token } }).status,
    old_key = request("GET", LB .. "/templates", { headers = headers(old) }).status,
    old_key_mints = request("POST", LB .. "/auth/editor-token", { headers = headers(old),
                                                                  json = { actor = "probe-rotation" } }).status,
  }
  r.ok = r.new_key == 200 and r.old_token == 200 and r.old_key == 401 and r.old_key_mints == 401
  return r
end

function P.keyrules(token, old, new)
  return keyrules(token, old, new)
end

function P.rotation()
  local project = docker.compose{ files = stack.compose.files, project = stack.compose.project,
                                  env_file = stack.compose.env_file }
  local old, new = ADMIN, unique("rotated-admin-key")
  local token = P.mint().token
  local out = { steps = {} }
  local restored = false
  defer(function()
    if restored then return end
    for _, svc in ipairs(stack.rotation.services) do
      project:up{ services = { svc }, no_deps = true }
      docker.container{ service = svc }:wait{ state = "healthy", timeout = 60 }
    end
  end)
  local flow <close> = traffic.start{ request = { url = LB .. "/templates", headers = { ["x-editor-token"] = token } }, rate = 40 }
  local cutover = time.now()
  time.sleep(0.5)
  for _, svc in ipairs(stack.rotation.services) do
    local t0 = time.mono()
    assert(project:up{ services = { svc }, no_deps = true,
                       env = { [svc] = { [stack.rotation.variable] = new,
                                         [stack.rotation.variable .. "_PREVIOUS"] = old } } })
    assert(docker.container{ service = svc }:wait{ state = "healthy", timeout = 60 })
    local served = lb_serves(svc)
    out.steps[#out.steps + 1] = { service = svc, seconds = time.mono() - t0, lb_serves_again = served }
  end
  time.sleep(0.5)
  local seen = flow:stop()
  out.traffic = { sent = seen.sent, failures = seen.failures, by_status = seen.by_status }
  local auth_failures = 0
  for _, l in ipairs(assert(project:logs{ services = stack.rotation.services, since = cutover })) do
    if l.text:find('"msg":"Auth failure"', 1, true) or l.text:find('"statusCode":401', 1, true) then
      auth_failures = auth_failures + 1
    end
  end
  out.auth_failures_in_logs = auth_failures
  out.probes = keyrules(token, old, new)
  for _, svc in ipairs(stack.rotation.services) do
    assert(project:up{ services = { svc }, no_deps = true })
    assert(docker.container{ service = svc }:wait{ state = "healthy", timeout = 60 })
    lb_serves(svc)
  end
  restored = true
  out.restored = {
    original_key = request("GET", LB .. "/templates", { headers = headers(old) }).status,
    rotated_key = request("GET", LB .. "/templates", { headers = headers(new) }).status,
  }
  out.ok = seen.failures == 0 and auth_failures == 0 and out.probes.ok
           and out.restored.original_key == 200 and out.restored.rotated_key == 401
  return out
end

local results, args, i = {}, { ... }, 1
while i <= #args do
  local name = args[i]
  local fn = P[name]
  if not fn then error("unknown property '" .. tostring(name) .. "'", 0) end
  local params = {}
  if name == "keyrules" then params = { args[i + 1], args[i + 2], args[i + 3] } i = i + 3 end
  local ok, res = pcall(fn, table.unpack(params))
  for j = #cleanups, 1, -1 do pcall(cleanups[j]) end
  cleanups = {}
  results[name] = ok and res or { ok = false, error = tostring(res) }
  i = i + 1
end
print(json.encode(results))
