-- Check 5: archiving a tenant through api1 stops writes through api2 within
-- TENANT_STATUS_CACHE_TTL_MS (plus a stated margin), and api1 at once.
-- Only on a multi-tenant stack.
local pulp = require "pulp"
local eventually = require "eventually"
local time = require "time"

local MARGIN = 0.5 -- seconds past the TTL: request latency and polling

return {
  title = "Tenant archive propagation within TENANT_STATUS_CACHE_TTL_MS",
  tags = { "tenants" },
  timeout = 120,
  requires = function(stack)
    if not stack.multi_tenant then return false, "single-tenant stack (MULTI_TENANT_ENABLED is not true)" end
    return true
  end,
  run = function(t, stack)
    local ttl = (stack.tenant_cache_ttl_ms or 5000) / 1000
    local admin = pulp.lb(stack)
    local tenant = pulp.unique("halo-check-5")
    t:step("create a temporary tenant", function() assert(admin:create_tenant(tenant)) end)
    t:defer(function() assert(admin:delete_tenant(tenant)) end)

    local keys = stack.keys or {}
    local as_tenant = { key = keys.admin, tenant = tenant }
    local api1 = pulp.replica(stack, "api1", as_tenant)
    local api2 = pulp.replica(stack, "api2", as_tenant)
    local n = 0
    local function write(api)
      n = n + 1
      local res, err = api:call("PUT", "/templates/halo-check-5-" .. n, { json = pulp.plain_template("check 5") })
      return res and res.status, err
    end

    -- a write through api2 first, so api2 has the tenant's status cached
    local before = t:step("write through api2 before the archive", function() return write(api2) end)
    t:assert(before == 200 or before == 201, "api2 refused a write for the new tenant before the archive: %s", tostring(before))

    local archived_at = time.mono()
    t:step("archive the tenant through api1", function() assert(api1:archive_tenant(tenant)) end)
    local at_once = write(api1)
    t:expect(at_once == 403, "api1 accepted a write right after archiving the tenant itself (HTTP %s)", tostring(at_once))

    local last
    local ok = eventually{ timeout = ttl + MARGIN, interval = 0.05 }(function()
      last = write(api2)
      return last == 403
    end)
    local took = time.mono() - archived_at
    t:evidence("TTL (s)", ttl)
    t:evidence("margin (s)", MARGIN)
    t:evidence("propagation to api2 (s)", string.format("%.2f", took))
    t:expect(ok, "api2 still accepted writes for the archived tenant %.2f s after the archive (TTL %g s + %g s margin; last HTTP %s)",
             took, ttl, MARGIN, tostring(last))
  end,
}
