-- The halo side of bench/http.sh.
--
--   halo exec bench/http_load.lua URL [CONCURRENCY=50] [SECONDS=10]
-- Closed-loop load: CONCURRENCY tasks share one http.client (the engine's
-- curl multi handle pools the connections, so 50 tasks keep ~50 keep-alive
-- connections busy); each task sends GET URL back to back until SECONDS
-- have passed since the start. 2xx responses count as requests, anything
-- else (another status, or nil, err) as errors.
--
--   halo exec bench/http_load.lua URL CONCURRENCY once
-- One shot: CONCURRENCY tasks each send one GET URL (timeout 30 s) at the
-- same moment and wait for it: the in-flight memory test against
-- bench/slow_server.py.
--
-- A fourth argument `norecord` sends the requests with record = false (kept
-- out of the per-request history), to show what the history costs.
--
-- Either way it prints one JSON object:
--   {"requests":N,"errors":E,"seconds":S,"rps":R,"concurrency":C,"first_error":"..."}
-- or {"unsupported":"..."} when this halo lacks an option asked for.
local url, conc, secs, mode = ...
assert(url, "usage: halo exec bench/http_load.lua URL [CONCURRENCY] [SECONDS|once] [norecord]")
conc = math.tointeger(tonumber(conc or "50")) or error("CONCURRENCY must be an integer")
local once = secs == "once"
secs = once and 0 or tonumber(secs or "10") or error("SECONDS must be a number or 'once'")
assert(mode == nil or mode == "norecord", "the fourth argument can only be 'norecord'")

local opts = { base = url, timeout = once and 30 or 10 }
if mode == "norecord" then opts.record = false end
local made, client = pcall(http.client, opts)
if not made then return json.encode { unsupported = tostring(client) } end
local t0 = time.mono()
local stop = t0 + secs
local ok_total, err_total, first_error = 0, 0, nil

local function count(res, err)
  if res and res.status >= 200 and res.status < 300 then return 1, 0 end
  first_error = first_error or (res and ("HTTP " .. res.status) or tostring(err))
  return 0, 1
end

local function loop_worker()
  local ok, bad = 0, 0
  local get, mono = client.get, time.mono
  while mono() < stop do
    local a, b = count(get(client, ""))
    ok, bad = ok + a, bad + b
  end
  ok_total, err_total = ok_total + ok, err_total + bad
end

local function once_worker()
  local a, b = count(client:get(""))
  ok_total, err_total = ok_total + a, err_total + b
end

local tasks = {}
for i = 1, conc do tasks[i] = task.spawn(once and once_worker or loop_worker) end
for i = 1, conc do tasks[i]:join() end
local elapsed = time.mono() - t0

return json.encode {
  requests = ok_total,
  errors = err_total,
  seconds = elapsed,
  rps = ok_total / elapsed,
  concurrency = conc,
  first_error = first_error,
}
