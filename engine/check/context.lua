-- The check context `t` that every check's run(t, stack) receives, and the
-- spec validation shared by `halo list` and the workers. Loaded once per
-- sandbox, before any check code runs, so the locals below are the real
-- library functions whatever a check later does to the globals.
local host = ...
-- emit.NAME(...) sends one of the events core/events.def lists, with
-- exactly its fields; status.NAME is a status of core/status.h. Both raise
-- on a name their table lacks.
local emit, status, where, elapsed_ms, encode = host.emit, host.status, host.where, host.elapsed_ms, host.encode
local hide = host.secret

local format, tostring, type, select, error, pcall = string.format, tostring, type, select, error, pcall
-- print as the host gave it (a log line in a check), before a check can
-- replace the global: t:log without a format is this print
local host_print = print
local pack, unpack, concat, insert, sort = table.pack, table.unpack, table.concat, table.insert, table.sort
-- string functions as locals, never methods: the string metatable is the
-- check's to change, and a changed one must not change how it is reported
local match, gsub, find, sub, floor, tonumber = string.match, string.gsub, string.find, string.sub, math.floor, tonumber
local setmetatable, pairs, ipairs, math_type, rawequal = setmetatable, pairs, ipairs, math.type, rawequal
local rawget = rawget

-- Raised by t:assert and t:skip to end the run; recognised by identity, so
-- a check cannot fake them.
local ENDED = setmetatable({}, { __tostring = function() return "check ended by a failed t:assert" end })
local SKIPPED = setmetatable({}, { __tostring = function() return "check skipped" end })

local function message(default, fmt, ...)
  if fmt == nil then return default end
  if select("#", ...) == 0 then
    -- a message object whose __tostring raises is still a failure to record
    local ok, text = pcall(tostring, fmt)
    return ok and text or ("(message could not be formatted: " .. tostring(select(2, pcall(tostring, text))) .. ")")
  end
  local ok, text = pcall(format, fmt, ...)
  if ok then return text end
  local shown = select(2, pcall(tostring, fmt))
  return tostring(shown) .. " (message could not be formatted: " .. tostring(text) .. ")"
end

local M = {}

local SPEC_KEYS = { id = true, title = true, tags = true, timeout = true, grace = true, requires = true,
                    run = true, description = true, exclusive = true, faults = true }

-- Checks a check file's returned table; returns a normalised copy or raises
-- a message saying what is wrong: every problem, joined by "; " (one line,
-- as every report shows a message), which `halo lint` (run/lint.c) splits
-- to report each at its line.
function M.validate(spec, file)
  if type(spec) ~= "table" then
    error(format("must return a table with a run function (returned %s)", type(spec)), 0)
  end
  local problems = {}
  local function problem(text) problems[#problems + 1] = text end
  local unknown = {}
  for k in pairs(spec) do
    if not SPEC_KEYS[k] then unknown[#unknown + 1] = tostring(k) end
  end
  -- pairs' order is not the file's: sorted, the lines are the same every time
  sort(unknown)
  for _, k in ipairs(unknown) do
    problem(format("unknown key '%s' in the check table (known: id, title, tags, timeout, grace, exclusive, " ..
                   "faults, requires, run, description)", k))
  end
  if type(spec.run) ~= "function" then problem("the check table has no run function") end
  if spec.requires ~= nil and type(spec.requires) ~= "function" then
    problem("requires must be a function(stack) returning ok, reason")
  end
  local id = spec.id
  if id == nil then
    id = match(match(file, "([^/]+)$"), "^(%d+)")
    id = id and tonumber(id) or gsub(match(file, "([^/]+)$"), "%.lua$", "")
  elseif math_type(id) == "float" and id == floor(id) then
    id = floor(id)
  elseif math_type(id) ~= "integer" and type(id) ~= "string" then
    problem("id must be an integer or a string")
  end
  local tags = {}
  if spec.tags ~= nil then
    if type(spec.tags) ~= "table" then problem("tags must be a list of strings")
    else
      for _, tag in ipairs(spec.tags) do
        if type(tag) ~= "string" or not match(tag, "^[%w_%-%.]+$") then
          problem("tags must be words (letters, digits, _ - .)")
          break
        end
        tags[#tags + 1] = tag
      end
    end
  end
  -- exclusive = true: never alongside another check (a check that kills or
  -- recreates what others use). The tag "exclusive" said the same before
  -- and still does; either way the check carries the tag, as `halo list`
  -- shows it.
  if spec.exclusive ~= nil and type(spec.exclusive) ~= "boolean" then problem("exclusive must be true or false") end
  local tagged = false
  for _, tag in ipairs(tags) do tagged = tagged or tag == "exclusive" end
  if spec.exclusive and not tagged then tags[#tags + 1] = "exclusive" end
  -- faults = true: the check kills, stops, pauses or recreates part of the
  -- stack; it runs only where the stack file (allow_faults = true) or the
  -- operator (--allow-faults) allows that, and carries the tag "faults".
  if spec.faults ~= nil and type(spec.faults) ~= "boolean" then problem("faults must be true or false") end
  if spec.faults then
    local has = false
    for _, tag in ipairs(tags) do has = has or tag == "faults" end
    if not has then tags[#tags + 1] = "faults" end
  end
  local timeout = spec.timeout or 60
  if type(timeout) ~= "number" or timeout <= 0 then problem("timeout must be a positive number of seconds") end
  -- grace: the time its cleanup (defers, undos) needs, when more than the
  -- run's --grace (a rolling restore of every replica takes a while)
  if spec.grace ~= nil and (type(spec.grace) ~= "number" or spec.grace <= 0) then
    problem("grace must be a positive number of seconds")
  end
  if spec.title ~= nil and type(spec.title) ~= "string" then problem("title must be a string") end
  if #problems > 0 then error(concat(problems, "; "), 0) end
  return {
    id = id,
    title = spec.title or gsub(match(file, "([^/]+)$"), "%.lua$", ""),
    tags = tags,
    timeout = timeout,
    grace = spec.grace,
    requires = spec.requires,
    faults = spec.faults or false,
    run = spec.run,
  }
end

-- Chart evidence (docs/writing-checks.md, "Charts"; drawn by
-- engine/report/html_chart.lua): a value with chart = "events" is checked
-- here, so that a chart the HTML report could not draw is the check's
-- error at once, not a chart missing later; and it is encoded with its
-- keys in a fixed order, so that the text and md reports, which show it as
-- JSON, read from what it is down to its events.
local CHART_KEYS = { "chart", "title", "clock", "repeats", "repeats_in", "lanes", "events" }
local EVENT_KEYS = { "at", "lane", "kind", "label" }
local CHART_CHOICES = { clock = { utc = true, elapsed = true }, repeats_in = { chart = true, lane = true } }

-- Seconds since 1970 a chart may hold (years 1 to 9999), and seconds
-- since the check started.
local UTC_MIN, UTC_MAX, ELAPSED_MAX = -62135596800, 253402300799, 1e9

-- An ISO-8601 time as html_chart.lua reads it: "2026-12-01T19:01:04Z",
-- with fractions of a second, "Z", an offset ("+01:00") or no zone (UTC).
local function is_time(s)
  local mo, d, h, mi, sec, zone = match(s, "^%d%d%d%d%-(%d%d)%-(%d%d)[T ](%d%d):(%d%d):(%d%d)%.?%d*(.*)$")
  if not mo or not (zone == "" or zone == "Z" or zone == "z" or match(zone, "^[+-]%d%d:?%d%d$")) then return false end
  mo, d, h, mi, sec = tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  return mo >= 1 and mo <= 12 and d >= 1 and d <= 31 and h <= 23 and mi <= 59 and sec <= 60
end

local function is_name(v) return type(v) == "string" or type(v) == "number" end

local function chart_problem(v)
  local known = {}
  for _, k in ipairs(CHART_KEYS) do known[k] = true end
  for k in pairs(v) do
    if not known[k] then
      return format("unknown key '%s' in a chart (known: %s)", tostring(k), concat(CHART_KEYS, ", "))
    end
  end
  for _, k in ipairs({ "title", "repeats" }) do
    if v[k] ~= nil and type(v[k]) ~= "string" then return k .. " must be a string" end
  end
  for k, choices in pairs(CHART_CHOICES) do
    if v[k] ~= nil and not choices[v[k]] then
      return format("%s must be %s", k, k == "clock" and '"utc" or "elapsed"' or '"chart" or "lane"')
    end
  end
  if v.lanes ~= nil then
    if type(v.lanes) ~= "table" then return "lanes must be a list of names" end
    for i, name in pairs(v.lanes) do
      if math_type(i) ~= "integer" or not is_name(name) then return "lanes must be a list of names" end
    end
  end
  if type(v.events) ~= "table" then return "events must be a list of events" end
  local n = #v.events
  for i in pairs(v.events) do
    if math_type(i) ~= "integer" or i < 1 or i > n then return "events must be a list of events" end
  end
  local elapsed = v.clock == "elapsed"
  for i, e in ipairs(v.events) do
    if type(e) ~= "table" then return format("events[%d] must be a table { at = …, lane = … }", i) end
    for k, x in pairs(e) do
      if k ~= "at" and k ~= "lane" and k ~= "kind" and k ~= "label" then
        return format("unknown key '%s' in events[%d] (known: %s)", tostring(k), i, concat(EVENT_KEYS, ", "))
      end
      if k ~= "at" and not is_name(x) then return format("events[%d].%s must be a string or a number", i, k) end
    end
    local at = e.at
    local lo, hi = elapsed and -ELAPSED_MAX or UTC_MIN, elapsed and ELAPSED_MAX or UTC_MAX
    if not ((type(at) == "number" and at >= lo and at <= hi) or
            (not elapsed and type(at) == "string" and is_time(at))) then
      return format("events[%d].at must be %s", i, elapsed and "seconds since the check started (a number)"
                    or "an ISO-8601 time (\"2026-12-01T19:01:04Z\") or seconds since 1970")
    end
  end
  return nil
end

-- The chart as JSON, its keys in CHART_KEYS' order and each event's in
-- EVENT_KEYS'; `whole` is encode(v), whose length it keeps.
local function chart_json(v, whole)
  if sub(whole, 1, 1) ~= "{" then return whole end -- cut to text: too big to keep
  local parts = {}
  for _, k in ipairs(CHART_KEYS) do
    if k == "events" then
      local events = {}
      for i, e in ipairs(v.events) do
        local fields = {}
        for _, ek in ipairs(EVENT_KEYS) do
          if e[ek] ~= nil then fields[#fields + 1] = encode(ek) .. ":" .. encode(e[ek]) end
        end
        events[i] = "{" .. concat(fields, ",") .. "}"
      end
      parts[#parts + 1] = '"events":[' .. concat(events, ",") .. "]"
    elseif v[k] ~= nil then
      parts[#parts + 1] = encode(k) .. ":" .. (k == "lanes" and #v.lanes == 0 and "[]" or encode(v[k]))
    end
  end
  return "{" .. concat(parts, ",") .. "}"
end

-- A new context for one run of a check. Returns t and the host's view of it.
function M.new(info)
  local t = { id = info.id, title = info.title, timeout = info.timeout }
  local failures, skipped, first_failure = 0, nil, nil
  local error_step -- the innermost step a script error went through
  local defers = {}
  local step_stack = {}

  local function record_failure(level, default, fmt, ...)
    failures = failures + 1
    local text = where(level) .. message(default, fmt, ...)
    first_failure = first_failure or text
    emit.fail(text)
    return text
  end

  -- t:expect(cond, fmt, ...): records a failure and goes on; returns cond.
  function t:expect(cond, fmt, ...)
    if not cond then record_failure(3, "expectation failed", fmt, ...) end
    return cond
  end

  -- t:assert(cond, fmt, ...): records a failure and ends the check.
  function t:assert(cond, fmt, ...)
    if not cond then
      record_failure(3, "assertion failed", fmt, ...)
      error(ENDED, 0)
    end
    return cond
  end

  -- t:fail(fmt, ...): an unconditional failure; the check goes on.
  function t:fail(fmt, ...)
    record_failure(3, "failed", fmt, ...)
  end

  -- t:step(name, fn, ...): a named, timed step; passes fn's results through.
  function t:step(name, fn, ...)
    if type(name) ~= "string" then error("bad argument #1 to 'step' (string expected)", 2) end
    if type(fn) ~= "function" then error("bad argument #2 to 'step' (function expected)", 2) end
    local started = elapsed_ms()
    local before = failures
    insert(step_stack, name)
    emit.step_begin(name, started)
    local r = pack(pcall(fn, ...))
    step_stack[#step_stack] = nil
    local outcome
    if r[1] then outcome = failures > before and status.FAIL or status.PASS
    elseif rawequal(r[2], ENDED) then outcome = status.FAIL
    elseif rawequal(r[2], SKIPPED) then outcome = status.NA
    else
      outcome = status.ERROR
      error_step = error_step or name
    end
    emit.step_end(name, outcome, elapsed_ms() - started)
    if not r[1] then error(r[2], 0) end
    return unpack(r, 2, r.n)
  end

  -- t:evidence(key, value): lands in the report's detail for this check,
  -- in the order recorded. A string is shown as it is; anything else
  -- travels as JSON.
  function t:evidence(key, value)
    if type(key) ~= "string" then error("bad argument #1 to 'evidence' (string expected)", 2) end
    local kind = type(value)
    if kind ~= "string" and kind ~= "number" and kind ~= "boolean" and kind ~= "table" and kind ~= "nil" then
      -- a function or a handle would show as an address: nothing a reader can use
      error(format("bad argument #2 to 'evidence' (a string, number, boolean or table, not a %s)", kind), 2)
    end
    if type(value) == "table" and rawget(value, "chart") == "events" then
      local problem = chart_problem(value)
      if problem then error("bad argument #2 to 'evidence' (" .. problem .. ")", 2) end
      emit.evidence_json(key, chart_json(value, encode(value)))
      return value
    end
    if type(value) == "string" then emit.evidence_text(key, value)
    else emit.evidence_json(key, encode(value)) end
    return value
  end

  -- t:defer(fn): cleanup, run last-in first-out whatever the outcome.
  function t:defer(fn)
    if type(fn) ~= "function" then error("bad argument #1 to 'defer' (function expected)", 2) end
    defers[#defers + 1] = { fn = fn, label = "cleanup registered at " .. where(2) }
  end

  -- t:skip(reason): the check does not apply here (N/A).
  function t:skip(reason)
    skipped = reason and tostring(reason) or "skipped"
    emit.skip(skipped)
    error(SKIPPED, 0)
  end

  -- t:log(fmt, ...): a line in the check's log, formatted as t:expect's
  -- message when the first argument is a string with a % and more follow;
  -- t:log(a, b, ...) otherwise is print: tab-joined, a NUL shown as \0.
  function t:log(...)
    local n = select("#", ...)
    local first = ...
    if n > 1 and type(first) == "string" and find(first, "%", 1, true) then
      emit.log("info", elapsed_ms(), message("", ...))
      return
    end
    host_print(...)
  end

  -- t:elapsed(): seconds since the check started.
  function t:elapsed() return elapsed_ms() / 1000 end

  -- t:secret(value): a value the check made up or was handed (a key it
  -- generates, a token) hidden as *** from everything halo writes from now
  -- on, as the stack file's secret()s are; returns the value.
  function t:secret(value)
    local problem = hide(value)
    if problem then error("bad argument #1 to 'secret' (" .. problem .. ")", 2) end
    return value
  end

  local control = {}
  function control.failures() return failures, first_failure end
  function control.skipped() return skipped end
  -- The step running now; after the run, the step a script error left.
  function control.current_step() return step_stack[#step_stack] or error_step end
  -- Defers newest first, each labelled with where it was registered.
  function control.defers()
    local list = {}
    for i = #defers, 1, -1 do list[#list + 1] = defers[i] end
    defers = {}
    return list
  end
  -- "assert", "skip" or nil for an error value that ended the run; by
  -- identity, so no __eq of a script's error object can pass for them.
  function control.classify(err)
    if rawequal(err, ENDED) then return "assert" end
    if rawequal(err, SKIPPED) then return "skip" end
    return nil
  end

  -- A method called with a dot, t.expect(1 == 2, "..."), takes the
  -- condition for self and the message for the condition: it would pass,
  -- silently. Every method refuses a first argument that is not t, as an
  -- error at the caller's line. The call to the method is a tail call, so
  -- the levels the methods count from (where, error(..., 2)) stay the same.
  for name, method in pairs(t) do
    if type(method) == "function" then
      t[name] = function(self, ...)
        if not rawequal(self, t) then
          error(format("t.%s(...) called with a dot: call it as t:%s(...)", name, name), 2)
        end
        return method(self, ...)
      end
    end
  end
  return t, control
end

return M
