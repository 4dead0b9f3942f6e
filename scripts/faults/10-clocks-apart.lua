-- Check 10: one replica's clock runs a few seconds ahead (libfaketime,
-- through docker's compose skew). What must not care: a schedule still
-- fires once per tick and never before its time, an editor token minted on
-- either replica verifies on the other, and (multi-tenant) an archive still
-- reaches the other replica within the cache TTL plus the skew.
local pulp = require "pulp"
local docker = require "docker"
local eventually = require "eventually"
local time = require "time"

-- "2026-12-06T07:01:04Z" style timestamps from SQL, as epoch seconds (UTC)
local SQL_EPOCH = "extract(epoch FROM %s)::float8"

return {
  title = "Clocks apart: schedules, tokens and tenants still agree",
  tags = { "clocks", "schedules", "auth" },
  exclusive = true,   -- it recreates a replica
  faults = true,
  timeout = 300,
  run = function(t, stack)
    local cfg = stack.clocks or {}
    local names = pulp.replica_names(stack)
    if #names < 2 then error("this check needs two replicas in the stack file", 0) end
    local skewed = cfg.replica or names[1]
    local other = skewed == names[1] and names[2] or names[1]
    local skew, ticks = cfg.skew or 5, cfg.ticks or 4
    local sched = stack.schedule or {}
    local cron, interval = sched.cron or "*/2 * * * * *", sched.interval or 2
    if not stack.database then error("this check reads schedule_executions: the stack file gives no database", 0) end
    t:evidence("plan", string.format("%s's clock %+g s; a schedule (%s) for %d ticks; tokens both ways%s",
                                     skewed, skew, cron, ticks, stack.multi_tenant and "; a tenant archive" or ""))

    local skewing = t:step(string.format("set %s's clock %+g s", skewed, skew), function()
      return assert(docker.compose():skew{ service = stack.replicas[skewed].service or skewed, offset = skew })
    end)
    -- Put right within the check's own time: a heal recreates the service
    -- and waits for it, longer than the cleanup grace on a busy host (the
    -- automatic undo stays, for a check that stops early).
    local function put_right()
      t:step(string.format("put %s's clock right", skewed), function() assert(skewing:heal()) end)
    end
    local date = t:step("wait until " .. skewed .. " serves again", function()
      local ok, _, last, res = pulp.wait_serving(stack, skewed, 60)
      assert(ok, skewed .. " does not serve GET /templates after the skew: " .. tostring(last))
      return res.headers["date"]
    end)
    -- what the replica's clock says, from the Date header of its answer
    -- (whole seconds): the skew must be real, or nothing below is tested
    local said = pulp.http_date(date)
    local off = said and said - math.floor(time.now())
    t:evidence(skewed .. "'s clock (Date header)", said and string.format("%+d s", off) or tostring(date))
    t:assert(off and math.abs(off - skew) <= 1.5, "%s's clock is not %+g s off after the skew (its Date header says " ..
             "%s): the check would prove nothing", skewed, skew, off and string.format("%+d s", off) or tostring(date))

    -- tokens, both ways
    local keys = stack.keys or {}
    for _, pair in ipairs{ { skewed, other }, { other, skewed } } do
      local minter, verifier = pair[1], pair[2]
      local auth = { key = keys.editor or keys.admin }
      local token = t:step("mint an editor token on " .. minter, function()
        return assert(pulp.replica(stack, minter, auth):mint_editor_token{ actor = "halo-check-10" })
      end)
      local res, err = pulp.replica(stack, verifier, { token = token }):call("GET", "/templates", { timeout = 5 })
      t:expect(res and res.status == 200, "a token minted on %s (clock %s) was refused by %s: %s", minter,
               minter == skewed and string.format("%+g s", skew) or "right", verifier,
               res and ("HTTP " .. res.status .. " " .. res.body:sub(1, 120)) or tostring(err and err.message))
    end

    -- a schedule: every tick once, none early
    local lb = pulp.lb(stack)
    local key = pulp.unique("halo-check-10-template")
    t:step("create a temporary template", function() assert(lb:put_template(key, pulp.plain_template("check 10"))) end)
    t:defer(function() assert(lb:delete_template(key)) end)
    local id = t:step("create the schedule", function()
      return assert(lb:create_schedule{ template = key, cron = cron, name = key })
    end)
    t:defer(function() assert(lb:delete_schedule(id)) end)
    t:step(string.format("let it tick %d times", ticks), time.sleep, (ticks + 1) * interval + 1)

    local sql = require "sql"
    local db = assert(sql.connect(stack.database, { connect_timeout = 10 }))
    local rows = assert(db:query(
      "SELECT to_char(fire_time AT TIME ZONE 'UTC', 'HH24:MI:SS') AS fire, replica, " ..
      string.format(SQL_EPOCH, "fire_time") .. " AS fire_s, " ..
      string.format(SQL_EPOCH, "recorded_at") .. " AS recorded_s " ..
      "FROM schedule_executions WHERE schedule_id::text = $1 ORDER BY fire_time, recorded_at", tostring(id)))
    db:close()
    local shown, count, fires = {}, {}, {}
    for _, r in ipairs(rows) do
      local lag = r.recorded_s - r.fire_s
      shown[#shown + 1] = string.format("%s by %s, recorded %+.2f s", r.fire, tostring(r.replica), lag)
      count[r.fire] = (count[r.fire] or 0) + 1
      if count[r.fire] == 1 then fires[#fires + 1] = r end
      t:expect(lag >= -0.25, "fire time %s was recorded %.2f s before it came (by %s): a replica fires by its own " ..
                             "clock, not the time everyone shares", r.fire, -lag, tostring(r.replica))
    end
    t:evidence("schedule_executions", shown)
    t:expect(#fires >= ticks - 1, "only %d fire times recorded in %d s (every %g s expected)", #fires,
             (ticks + 1) * interval + 1, interval)
    for fire, n in pairs(count) do
      t:expect(n == 1, "fire time %s fired %d times with the clocks apart", fire, n)
    end
    for i = 2, #fires do
      local gap = fires[i].fire_s - fires[i - 1].fire_s
      t:expect(math.abs(gap - interval) < 0.01, "fire times %s and %s are %g s apart (every %g s expected)",
               fires[i - 1].fire, fires[i].fire, gap, interval)
    end

    -- a tenant archive through the skewed replica, seen by the other
    if not stack.multi_tenant then
      t:evidence("tenant archive", "not checked: a single-tenant stack")
      put_right()
      return
    end
    local ttl = (stack.tenant_cache_ttl_ms or 5000) / 1000
    local tenant = pulp.unique("halo-check-10")
    t:step("create a temporary tenant", function() assert(lb:create_tenant(tenant)) end)
    t:defer(function() assert(lb:delete_tenant(tenant)) end)
    local as_tenant = { key = keys.admin, tenant = tenant }
    local n = 0
    local function write(name)
      n = n + 1
      local res = pulp.replica(stack, name, as_tenant):call("PUT", "/templates/halo-check-10-" .. n,
                                                            { json = pulp.plain_template("check 10") })
      return res and res.status
    end
    t:step("write through " .. other .. " before the archive", function() return write(other) end)
    local archived_at = time.mono()
    t:step("archive the tenant through " .. skewed, function()
      assert(pulp.replica(stack, skewed, as_tenant):archive_tenant(tenant))
    end)
    local limit = ttl + math.abs(skew) + 0.5
    local last
    local ok = eventually{ timeout = limit, interval = 0.05 }(function()
      last = write(other)
      return last == 403
    end)
    t:evidence("archive reached " .. other .. " after (s)", string.format("%.2f", time.mono() - archived_at))
    t:expect(ok, "%s still accepted writes for the tenant archived through %s %.2f s later (TTL %g s + skew %g s; " ..
                 "last HTTP %s)", other, skewed, time.mono() - archived_at, ttl, math.abs(skew), tostring(last))
    put_right()
  end,
}
