-- The check context `t` that every check's run(t, stack) receives, and the
-- spec validation shared by `halo list` and the workers. Loaded once per
-- sandbox, before any check code runs, so the locals below are the real
-- library functions whatever a check later does to the globals.
local host = ...
-- emit.NAME(...) sends one of the events core/events.def lists, with
-- exactly its fields; status.NAME is a status of core/status.h. Both raise
-- on a name their table lacks.
local emit, status, where, elapsed_ms, encode = host.emit, host.status, host.where, host.elapsed_ms, host.encode

local format, tostring, type, select, error, pcall = string.format, tostring, type, select, error, pcall
local pack, unpack, concat, insert = table.pack, table.unpack, table.concat, table.insert
local match, floor = string.match, math.floor
local setmetatable, pairs, ipairs, math_type, rawequal = setmetatable, pairs, ipairs, math.type, rawequal

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

local SPEC_KEYS = { id = true, title = true, tags = true, timeout = true, requires = true, run = true,
                    description = true, exclusive = true }

-- Checks a check file's returned table; returns a normalised copy or raises
-- a message saying what is wrong.
function M.validate(spec, file)
  if type(spec) ~= "table" then
    error(format("must return a table with a run function (returned %s)", type(spec)), 0)
  end
  for k in pairs(spec) do
    if not SPEC_KEYS[k] then
      error(format("unknown key '%s' in the check table (known: id, title, tags, timeout, exclusive, requires, run, " ..
                   "description)",
                   tostring(k)), 0)
    end
  end
  if type(spec.run) ~= "function" then error("the check table has no run function", 0) end
  if spec.requires ~= nil and type(spec.requires) ~= "function" then
    error("requires must be a function(stack) returning ok, reason", 0)
  end
  local id = spec.id
  if id == nil then
    id = match(file, "([^/]+)$"):match("^(%d+)")
    id = id and tonumber(id) or match(file, "([^/]+)$"):gsub("%.lua$", "")
  elseif math_type(id) == "float" and id == floor(id) then
    id = floor(id)
  elseif math_type(id) ~= "integer" and type(id) ~= "string" then
    error("id must be an integer or a string", 0)
  end
  local tags = {}
  if spec.tags ~= nil then
    if type(spec.tags) ~= "table" then error("tags must be a list of strings", 0) end
    for _, tag in ipairs(spec.tags) do
      if type(tag) ~= "string" or not match(tag, "^[%w_%-%.]+$") then
        error("tags must be words (letters, digits, _ - .)", 0)
      end
      tags[#tags + 1] = tag
    end
  end
  -- exclusive = true: never alongside another check (a check that kills or
  -- recreates what others use). The tag "exclusive" said the same before
  -- and still does; either way the check carries the tag, as `halo list`
  -- shows it.
  if spec.exclusive ~= nil and type(spec.exclusive) ~= "boolean" then error("exclusive must be true or false", 0) end
  local tagged = false
  for _, tag in ipairs(tags) do tagged = tagged or tag == "exclusive" end
  if spec.exclusive and not tagged then tags[#tags + 1] = "exclusive" end
  local timeout = spec.timeout or 60
  if type(timeout) ~= "number" or timeout <= 0 then error("timeout must be a positive number of seconds", 0) end
  if spec.title ~= nil and type(spec.title) ~= "string" then error("title must be a string", 0) end
  return {
    id = id,
    title = spec.title or match(file, "([^/]+)$"):gsub("%.lua$", ""),
    tags = tags,
    timeout = timeout,
    requires = spec.requires,
    run = spec.run,
  }
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
  -- t:log(a, b, ...) otherwise joins its arguments with spaces, as print.
  function t:log(...)
    local n = select("#", ...)
    local first = ...
    if n > 1 and type(first) == "string" and first:find("%", 1, true) then
      emit.log("info", elapsed_ms(), message("", ...))
      return
    end
    local parts = {}
    for i = 1, n do parts[i] = tostring((select(i, ...))) end
    emit.log("info", elapsed_ms(), concat(parts, " "))
  end

  -- t:elapsed(): seconds since the check started.
  function t:elapsed() return elapsed_ms() / 1000 end

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
  return t, control
end

return M
