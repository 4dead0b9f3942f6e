-- Check 2: a schedule fires exactly once per tick across the replicas —
-- every fire time appears once, none twice, none missing — read through
-- the API and, when the stack file gives a database, from
-- schedule_executions itself.
local pulp = require "pulp"
local eventually = require "eventually"
local time = require "time"

-- Seconds between ticks: the stack may say; else read from the cron
-- ("*/2 * * * * *" with seconds first, or "*/5 * * * *" in minutes).
local function tick_seconds(cron, given)
  if given then return given end
  local fields = {}
  for f in cron:gmatch("%S+") do fields[#fields + 1] = f end
  local step = tonumber(fields[1]:match("^%*/(%d+)$") or (fields[1] == "*" and "1"))
  if not step then error("cannot tell the tick interval of cron '" .. cron .. "': set stack.schedule.interval", 0) end
  return #fields == 6 and step or step * 60
end

return {
  title = "Schedule fires exactly once across replicas",
  tags = { "schedules" },
  timeout = 300,
  run = function(t, stack)
    local lb = pulp.lb(stack)
    local cfg = stack.schedule or {}
    local cron = cfg.cron or "*/2 * * * * *"
    local ticks = cfg.ticks or 3
    local interval = tick_seconds(cron, cfg.interval)
    t:evidence("schedule", { cron = cron, ticks = ticks, interval_s = interval })

    local key = pulp.unique("halo-check-2-template")
    t:step("create a temporary template", function() assert(lb:put_template(key, pulp.plain_template("check 2"))) end)
    t:defer(function() assert(lb:delete_template(key)) end)
    local id = t:step("create the schedule", function()
      return assert(lb:create_schedule{ template = key, cron = cron, name = key })
    end)
    t:defer(function() assert(lb:delete_schedule(id)) end)

    -- Wait for N distinct fire times, then one more interval so that a
    -- second replica's late duplicate of the last tick has time to land.
    local executions
    local ok, took = t:step(string.format("observe %d ticks", ticks), function()
      return eventually{ timeout = (ticks + 2) * interval + 10, interval = math.min(1, interval / 4) }(function()
        executions = assert(lb:executions(id))
        local distinct = {}
        for _, e in ipairs(executions) do distinct[e.fireTime] = true end
        local n = 0
        for _ in pairs(distinct) do n = n + 1 end
        return n >= ticks
      end)
    end)
    t:assert(ok, "only %d executions after %.0f s: the schedule did not fire %d times", #(executions or {}), took, ticks)
    time.sleep(math.min(interval, 5))
    executions = assert(lb:executions(id))

    local count, by, times = {}, {}, {}
    for _, e in ipairs(executions) do
      if not count[e.fireTime] then times[#times + 1] = e.fireTime; by[e.fireTime] = {} end
      count[e.fireTime] = (count[e.fireTime] or 0) + 1
      table.insert(by[e.fireTime], tostring(e.replica))
    end
    table.sort(times)
    local table_rows = {}
    for _, e in ipairs(executions) do table_rows[#table_rows + 1] = e.fireTime .. " " .. tostring(e.replica) end
    table.sort(table_rows)
    t:evidence("executions (API)", table_rows)
    -- the same executions as a chart (docs/writing-checks.md, "Charts"),
    -- which the HTML report draws: a row per replica, a band at a fire
    -- time recorded more than once
    local fires = {}
    for _, e in ipairs(executions) do fires[#fires + 1] = { at = e.fireTime, lane = tostring(e.replica) } end
    local lanes = {}
    for name in pairs(stack.replicas or {}) do lanes[#lanes + 1] = name end
    table.sort(lanes)
    t:evidence("fire times", { chart = "events", title = "Fire times per replica", lanes = lanes, events = fires,
                               repeats = "double fire" })
    for _, ft in ipairs(times) do
      table.sort(by[ft])
      t:expect(count[ft] == 1, "fire time %s fired %d times (by %s): the replicas do not share the claim on a tick",
               ft, count[ft], table.concat(by[ft], ", "))
    end
    -- none missing: consecutive fire times one interval apart
    local function epoch(iso)
      local y, mo, d, h, mi, s = iso:match("^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+)")
      return os.time{ year = y, month = mo, day = d, hour = h, min = mi, sec = s }
    end
    for i = 2, #times do
      local gap = epoch(times[i]) - epoch(times[i - 1])
      t:expect(gap == interval, "tick missing between %s and %s (%d s apart, every %d s expected)",
               times[i - 1], times[i], gap, interval)
    end

    if stack.database then
      local sql = require "sql"
      local db = t:step("read schedule_executions", function()
        return assert(sql.connect(stack.database, { connect_timeout = 10 }))
      end)
      local rows = assert(db:query(
        "SELECT to_char(fire_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS fire_time, count(*) AS n," ..
        " string_agg(replica, ',' ORDER BY replica) AS replicas FROM schedule_executions" ..
        " WHERE schedule_id::text = $1 GROUP BY fire_time ORDER BY fire_time", tostring(id)))
      db:close()
      local shown = {}
      for _, r in ipairs(rows) do
        shown[#shown + 1] = string.format("%s  x%d  %s", r.fire_time, r.n, r.replicas)
        t:expect(r.n == 1, "schedule_executions holds fire time %s %d times (by %s)", r.fire_time, r.n, r.replicas)
      end
      t:evidence("schedule_executions", shown)
      t:expect(#rows >= #times, "the API shows %d fire times, schedule_executions %d", #times, #rows)
    end
    -- the defer deletes the schedule, and with it its executions
  end,
}
