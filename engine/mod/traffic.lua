-- traffic.start{ request = fn | spec, rate = per_second, concurrency = n, ok = fn }
-- keeps requests flowing in background tasks while a check breaks things,
-- and :stop() says what happened: counts, latency, and the longest window
-- in which requests failed.
local _, internal = ...
local http = require "http"
local task = require "task"
local time = require "time"

local type, error, pairs, tostring, floor, sort, insert = type, error, pairs, tostring, math.floor, table.sort, table.insert
local max = math.max
local match, find = string.match, string.find

local KNOWN = { "request", "rate", "concurrency", "ok", "keep" }
local FIRST_FAILURES = 10

-- A request counts as failed when it raised, got no response, or a status
-- of 400 or more; `ok = function(res) ... end` says otherwise.
local function default_ok(res) return res.status < 400 end

local function percentile(sorted, p)
  if #sorted == 0 then return nil end
  local i = math.ceil(p * #sorted)
  if i < 1 then i = 1 end
  return sorted[i]
end

-- Lua's own wording for misuse ("bad argument #1 to 'get' (...)"), which
-- every halo module uses: such an error is a bug in the check.
local function misuse(err)
  return type(err) == "string" and find(err, "bad argument #%d+ to '") ~= nil
end

local M = {}

function M.start(opts)
  if type(opts) ~= "table" then error("bad argument #1 to 'start' (table expected)", 2) end
  internal.check_options("start", 1, opts, KNOWN)
  local request = opts.request
  if type(request) == "table" then
    local spec = request
    -- A typo in the spec is the check's bug, not an outage: it raises here,
    -- at the caller's line, before a single request is counted.
    local valid, why = pcall(http.validate, spec)
    if not valid then
      why = match(tostring(why), "^bad argument #%d+ to '[^']*' %((.*)%)$") or tostring(why)
      error("bad argument #1 to 'start' (request: " .. why .. ")", 2)
    end
    request = function() return http.request(spec) end
  elseif type(request) ~= "function" then
    error("bad argument #1 to 'start' (request must be a function or an http.request option table)", 2)
  end
  local rate = opts.rate
  if rate ~= nil and (type(rate) ~= "number" or rate <= 0) then
    error("bad argument #1 to 'start' (rate must be requests per second)", 2)
  end
  local concurrency = opts.concurrency or (rate and max(1, floor(rate / 10)) or 1)
  if type(concurrency) ~= "number" or concurrency < 1 then
    error("bad argument #1 to 'start' (concurrency must be at least 1)", 2)
  end
  local is_ok = opts.ok or default_ok

  local origin = time.mono()
  local records = {}      -- { start, finish, ok, status, err }, in start order per worker
  local next_ticket = 0   -- shared pacing: request k may start at origin + k / rate
  local late = 0
  local stopping = false
  local ended = nil       -- when stop() returned: later stats() describe the same span
  local workers = {}
  local misused = nil     -- the first misuse a request function raised

  local function one_request()
    local started = time.mono() - origin
    local ok_call, res, err = pcall(request)
    local finished = time.mono() - origin
    local rec = { start = started, finish = finished }
    if not ok_call and misuse(res) then
      -- a bad argument inside the request function is the check's bug: the
      -- traffic stops and stop()/stats() raise it, instead of counting it
      misused = misused or res
      stopping = true
      return
    elseif not ok_call then
      rec.ok, rec.err = false, "raised: " .. tostring(res)
    elseif not res then
      rec.ok = false
      rec.err = type(err) == "table" and (err.kind or "error") or tostring(err)
      rec.message = type(err) == "table" and err.message or tostring(err)
    else
      rec.status = res.status
      local judged, verdict = pcall(is_ok, res)
      rec.ok = judged and verdict and true or false
    end
    records[#records + 1] = rec
  end

  local function worker()
    while not stopping do
      if rate then
        local slot = next_ticket / rate
        next_ticket = next_ticket + 1
        local wait = slot - (time.mono() - origin)
        if wait > 0 then time.sleep(wait) elseif wait < -1 / rate then late = late + 1 end
        if stopping then break end
      end
      one_request()
      if not rate then time.sleep(0) end
    end
  end

  for i = 1, concurrency do workers[i] = task.spawn(worker) end

  local handle = {}

  -- stats([{ since = mono }]): what happened so far (only the requests
  -- started at or after `since`, a time.mono() value); stop() ends the
  -- traffic first.
  function handle:stats(opts)
    if misused then error(misused, 0) end
    local since = nil
    if opts ~= nil then
      if type(opts) ~= "table" then error("bad argument #1 to 'stats' (table expected)", 2) end
      internal.check_options("stats", 1, opts, { "since" })
      since = opts.since
      if since ~= nil and type(since) ~= "number" then
        error("bad argument #1 to 'stats' (since must be a time.mono() value)", 2)
      end
    end
    local from = since and since - origin or -math.huge
    local by_status, by_error, latencies = {}, {}, {}
    local failures, first_failures = 0, {}
    local sorted = {}
    for i = 1, #records do
      if records[i].start >= from then sorted[#sorted + 1] = records[i] end
    end
    local n = #sorted
    sort(sorted, function(a, b) return a.start < b.start end)
    local window, longest, first_ok = nil, nil, nil
    for _, r in ipairs(sorted) do
      latencies[#latencies + 1] = r.finish - r.start
      if r.status then by_status[r.status] = (by_status[r.status] or 0) + 1 end
      if r.err then by_error[r.err] = (by_error[r.err] or 0) + 1 end
      if r.ok then
        window = nil
        if not first_ok or r.finish < first_ok then first_ok = r.finish end
      else
        failures = failures + 1
        if #first_failures < FIRST_FAILURES then
          insert(first_failures, { at = r.start, status = r.status, error = r.err, message = r.message })
        end
        if window then
          window.finish = max(window.finish, r.finish)
        else
          window = { start = r.start, finish = r.finish }
        end
        -- by reference: the window keeps growing while failures continue
        if not longest or (window.finish - window.start) > (longest.finish - longest.start) then
          longest = window
        end
      end
    end
    sort(latencies)
    local elapsed = (ended or time.mono()) - origin - max(0, from)
    return {
      sent = n,
      ok = n - failures,
      failures = failures,
      by_status = by_status,
      by_error = by_error,
      latency = {
        p50 = percentile(latencies, 0.50),
        p95 = percentile(latencies, 0.95),
        p99 = percentile(latencies, 0.99),
        max = latencies[#latencies],
      },
      longest_failure_window = longest and {
        start = longest.start, ["end"] = longest.finish, seconds = longest.finish - longest.start,
      } or nil,
      first_failures = first_failures,
      first_ok = first_ok,
      origin = origin,
      seconds = elapsed,
      rate = elapsed > 0 and n / elapsed or 0,
      late = late,
    }
  end

  function handle:stop()
    if not stopping then
      stopping = true
      -- In-flight requests finish: cancelling them would count as failures
      -- that the stack never caused.
      for _, w in ipairs(workers) do w:join() end
      ended = time.mono()
    end
    if misused then error(misused, 0) end
    return self:stats()
  end

  -- A check that forgets to stop its traffic has it stopped at the end.
  setmetatable(handle, { __close = function(h) h:stop() end })
  return handle
end

return M
