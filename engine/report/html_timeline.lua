-- The HTML report's timeline of a check's requests and actions
-- (report/html.lua draws the page): latency on a log scale over time, one
-- mark per request (a shape and a colour per outcome), past MARKS_MAX
-- requests buckets instead, a marker per action and the longest failure
-- window shaded.
--   require "html_timeline" -> { draw = function(check, out), css = function() }
local u = require "html_util"

local format, concat, sort, floor, ceil, max, min = string.format, table.concat, table.sort, math.floor,
  math.ceil, math.max, math.min
local type, tostring, pairs, ipairs, tonumber = type, tostring, pairs, ipairs, tonumber
local esc, is_null, scalar_text, number_text = u.esc, u.is_null, u.scalar_text, u.number_text
local seconds, latency_text, shape, log10, nice_step = u.seconds, u.latency_text, u.shape, u.log10, u.nice_step
local CHAR_PX = u.CHAR_PX

-- Past this many requests a timeline draws buckets, not one mark each: an
-- SVG with tens of thousands of <title>s is megabytes and slow to open.
local MARKS_MAX = 3000
local BUCKET_PX = 2            -- width of a bucket's column, in SVG units

-- The longest failure window's fill; tests count its pixels in a
-- screenshot, so nothing else on the page may use it.
local SHADE = "#fadbc8"

-- Okabe–Ito, and a shape per outcome (drawn by `shape` below).
local OUTCOMES = {
  { class = "ok", label = "2xx/3xx", colour = "#009E73", shape = "circle" },
  { class = "client-error", label = "4xx", colour = "#E69F00", shape = "triangle" },
  { class = "server-error", label = "5xx", colour = "#D55E00", shape = "square" },
  { class = "conn-error", label = "connection error", colour = "#CC79A7", shape = "cross" },
  { class = "timeout", label = "timeout", colour = "#0072B2", shape = "diamond" },
}
local OK, CLIENT_ERROR, SERVER_ERROR, CONN_ERROR, TIMEOUT = 1, 2, 3, 4, 5

-- Actions that take a replica down: a solid marker line; the rest (start,
-- unpause, a wait reaching "healthy") are dashed. Recreating a service
-- (compose up) takes its replica down too.
local FAULTS = { kill = true, stop = true, pause = true, restart = true, compose = true }

-- A network fault (the netfault module: "netfault cut" on a link) is a
-- fault marker; its removal and the link's heal are recovery markers.
local function is_fault(action)
  local what = scalar_text(action)
  local net = what:match("^netfault (%S+)")
  if net then return net ~= "heal" and net ~= "remove" end
  return FAULTS[what:match("^%S+")] or false
end

local function outcome(r)
  if is_null(r.status) then return r.error == "timeout" and TIMEOUT or CONN_ERROR end
  if r.status >= 500 then return SERVER_ERROR end
  if r.status >= 400 then return CLIENT_ERROR end
  return OK
end

local function failed_requests(n) return format(n == 1 and "%d failed request" or "%d failed requests", n) end

local function is_failure(r) return is_null(r.status) or r.status >= 400 end

local function latency(r) return max(0, r["end"] - r.start) end

-- The longest run of consecutive failures by start time, as traffic.lua
-- measures it: from its first start to its last end. nil when none failed.
local function longest_failure_window(sorted)
  local best, run = nil, nil
  for _, r in ipairs(sorted) do
    if is_failure(r) then
      if run then
        run.finish, run.count = max(run.finish, r["end"]), run.count + 1
      else
        run = { start = r.start, finish = r["end"], count = 1 }
      end
      if not best or run.finish - run.start > best.finish - best.start then best = run end
    else
      run = nil
    end
  end
  return best
end

-- How an action reads on its marker: "kill api1", "api1 healthy", "compose up api1".
local function action_label(a)
  local what = scalar_text(a.action)
  -- "cut api1-db", "heal api1-db": the link is the lane's subject
  if not is_null(a.link) and what:match("^netfault ") then return what:sub(10) .. " " .. tostring(a.link) end
  local who = not is_null(a.service) and a.service or not is_null(a.container) and a.container
  if type(a.services) == "table" and #a.services > 0 then who = concat(a.services, ",") end
  if not who then return what end
  who = tostring(who)
  local signal = what:match("^kill (%S+)$")
  if signal then return signal == "SIGKILL" and ("kill " .. who) or format("kill %s (%s)", who, signal) end
  -- a wait (it says how long it took): the state reached
  if not is_null(a.after) then return who .. " " .. what end
  return what .. " " .. who
end

-- Latency is drawn on a log scale: the 502s of a dead replica take a
-- millisecond, a timeout seconds, and both must stay readable.
local function log_scale(records, top, bottom)
  local lo, hi = math.huge, 0
  for _, r in ipairs(records) do
    local l = latency(r)
    if l > 0 then lo = min(lo, l) end
    hi = max(hi, l)
  end
  local dlo = floor(log10(lo < math.huge and max(lo, 1e-4) or 1e-3))
  local dhi = max(ceil(log10(max(hi, 1e-4))), dlo + 2)
  local function y(l)
    local d = log10(min(max(l, 10 ^ dlo), 10 ^ dhi))
    return bottom - (d - dlo) / (dhi - dlo) * (bottom - top)
  end
  return y, dlo, dhi
end

local function decade_label(d)
  if d < -3 then return format("%g ms", 10 ^ (d + 3)) end
  if d < 0 then return format("%d ms", floor(10 ^ (d + 3) + 0.5)) end
  return format("%d s", floor(10 ^ d + 0.5))
end

local function request_title(r, o)
  local result
  if not is_null(r.status) then
    result = "HTTP " .. number_text(r.status)
    if not is_null(r.error) then result = result .. " then " .. tostring(r.error) end
  else
    result = is_null(r.error) and "no response" or tostring(r.error)
  end
  local replica = is_null(r.replica) and "no replica header" or ("served by " .. tostring(r.replica))
  return esc(format("%s %s → %s in %s, %s (at %.3f s; %s)", scalar_text(r.method), scalar_text(r.url), result,
                    latency_text(latency(r)), replica, r.start, OUTCOMES[o].label))
end

-- Each action's label gets a lane above the plot: a label that would
-- overlap the one before it goes a line lower (up to LANES_MAX lines).
local LANES_MAX = 6
local LANE_PX = 15

local function place_labels(actions, xof, right)
  local placed, lane_end, nlanes = {}, {}, 0
  for _, a in ipairs(actions) do
    local label = action_label(a)
    local x = xof(a.at)
    local w = #label * CHAR_PX
    local anchor_end = x + 3 + w > right
    local from, to = anchor_end and x - 3 - w or x, anchor_end and x or x + 3 + w
    local lane = 1
    while lane <= LANES_MAX and lane_end[lane] and lane_end[lane] > from - 4 do lane = lane + 1 end
    if lane > LANES_MAX then lane = LANES_MAX end
    lane_end[lane] = max(lane_end[lane] or -math.huge, to)
    nlanes = max(nlanes, lane)
    placed[#placed + 1] = { action = a, label = label, x = x, lane = lane, anchor_end = anchor_end }
  end
  return placed, nlanes
end

-- A symbol and a word per outcome (with its count), per kind of marker,
-- and for the failure window when there is one.
local function legend(out, y, counts, has_window)
  local x = 64
  local function entry(symbol, text)
    out[#out + 1] = symbol
    out[#out + 1] = format('<text x="%.1f" y="%.1f">%s</text>', x + 10, y, esc(text))
    x = x + 26 + #text * CHAR_PX
  end
  for i, o in ipairs(OUTCOMES) do
    entry(shape(o.shape, x + 2, y - 4, o.class), format("%s (%d)", o.label, counts[i]))
  end
  for _, kind in ipairs({ { "legend-fault", "fault" }, { "legend-recovery", "recovery" } }) do
    entry(format('<g class="%s"><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/></g>', kind[1], x + 2, y - 11,
                 x + 2, y + 2), kind[2])
  end
  if has_window then
    entry(format('<rect x="%.1f" y="%.1f" width="8" height="12" fill="%s"/>', x - 2, y - 10, SHADE),
          "longest failure window")
  end
end

local function axes(out, xof, tmax, y, dlo, dhi, left, right, top, bottom)
  local step = nice_step(tmax, 12)
  for t = 0, tmax + 1e-9, step do
    local x = xof(t)
    out[#out + 1] = format('<line class="grid" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>', x, top, x, bottom)
    out[#out + 1] = format('<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>', x, bottom + 14,
                           esc(format("%g s", t)))
  end
  for d = dlo, dhi do
    local yy = y(10 ^ d)
    out[#out + 1] = format('<line class="grid" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>', left, yy, right, yy)
    out[#out + 1] = format('<text x="%.1f" y="%.1f" text-anchor="end">%s</text>', left - 5, yy + 4,
                           esc(decade_label(d)))
  end
  out[#out + 1] = format('<path class="axis" d="M%.1f %.1fV%.1fH%.1f"/>', left, top, bottom, right)
  out[#out + 1] = format('<text x="%.1f" y="%.1f" text-anchor="middle">time since the check started</text>',
                         (left + right) / 2, bottom + 30)
  out[#out + 1] = format('<text transform="translate(14 %.1f) rotate(-90)" text-anchor="middle">' ..
                         "latency (log scale)</text>", (top + bottom) / 2)
end

-- One mark per request, failures drawn last so none hides under a success.
local function draw_marks(out, records, outcomes, xof, y)
  for pass = OK, TIMEOUT do
    local o = OUTCOMES[pass]
    for i, r in ipairs(records) do
      if outcomes[i] == pass then
        out[#out + 1] = shape(o.shape, xof(r.start), y(latency(r)), "req " .. o.class, request_title(r, pass))
      end
    end
  end
end

-- Past MARKS_MAX requests: per column of BUCKET_PX and outcome, one line
-- from the fastest to the slowest request, with the count in its title;
-- failing outcomes also carry their shape at the top, so a bucket's
-- outcome shows without colour too.
local function draw_buckets(out, records, outcomes, xof, y)
  local buckets = {}
  for i, r in ipairs(records) do
    local col = floor(xof(r.start) / BUCKET_PX)
    local key = col * 8 + outcomes[i]
    local b = buckets[key]
    local l = latency(r)
    if not b then
      buckets[key] = { col = col, outcome = outcomes[i], n = 1, lo = l, hi = l, first = r.start, last = r.start }
    else
      b.n, b.lo, b.hi = b.n + 1, min(b.lo, l), max(b.hi, l)
      b.first, b.last = min(b.first, r.start), max(b.last, r.start)
    end
  end
  local list = {}
  for _, b in pairs(buckets) do list[#list + 1] = b end
  sort(list, function(a, b)
    if a.outcome ~= b.outcome then return a.outcome < b.outcome end
    return a.col < b.col
  end)
  for _, b in ipairs(list) do
    local o = OUTCOMES[b.outcome]
    local x = b.col * BUCKET_PX + BUCKET_PX / 2
    local y1, y2 = y(b.hi), y(b.lo)
    if y2 - y1 < 1 then y1, y2 = y1 - 0.5, y2 + 0.5 end -- one request, or all alike: still a visible tick
    local title = esc(format("%d × %s started %.3f–%.3f s, latency %s–%s", b.n, o.label, b.first, b.last,
                             latency_text(b.lo), latency_text(b.hi)))
    out[#out + 1] = format('<g class="bucket %s"><title>%s</title><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>',
                           o.class, title, x, y1, x, y2)
    if b.outcome ~= OK then out[#out + 1] = shape(o.shape, x, y1) end
    out[#out + 1] = "</g>"
  end
end

local function draw_window(out, w, xof, top, bottom)
  -- a window of one fast request would be narrower than a pixel
  local x1, x2 = xof(w.start), xof(w.finish)
  if x2 - x1 < 6 then x1, x2 = (x1 + x2) / 2 - 3, (x1 + x2) / 2 + 3 end
  out[#out + 1] = format('<rect class="failure-window" x="%.1f" y="%.1f" width="%.1f" height="%.1f">' ..
                         '<title>longest failure window: %s in a row, %.3f–%.3f s (%.2f s)</title></rect>',
                         x1, top, x2 - x1, bottom - top, failed_requests(w.count), w.start, w.finish,
                         w.finish - w.start)
end

local function draw_actions(out, placed, top, bottom, label_top)
  for _, p in ipairs(placed) do
    local a = p.action
    local ly = label_top + (p.lane - 1) * LANE_PX
    local details = { scalar_text(a.action) }
    if not is_null(a.container) then details[#details + 1] = tostring(a.container) end
    if not is_null(a.link) then details[#details + 1] = "link " .. tostring(a.link) end
    if not is_null(a.after) then details[#details + 1] = format("after %.2f s", a.after) end
    out[#out + 1] = format('<g class="action-marker%s"><title>%s at %.2f s</title>', is_fault(a.action) and "" or " recovery",
                           esc(concat(details, " ")), a.at)
    out[#out + 1] = format('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>', p.x, ly + 2, p.x, bottom)
    out[#out + 1] = format('<text x="%.1f" y="%.1f"%s>%s</text></g>', p.anchor_end and p.x - 3 or p.x + 3, ly,
                           p.anchor_end and ' text-anchor="end"' or "", esc(p.label))
  end
end

local function timeline(check, out)
  local records = {}
  for _, r in ipairs(check.request_records or {}) do
    if type(r) == "table" and type(r.start) == "number" then
      if type(r["end"]) ~= "number" then r["end"] = r.start end
      records[#records + 1] = r
    end
  end
  if #records == 0 then return end
  sort(records, function(a, b) return a.start < b.start end)
  local actions = {}
  for _, a in ipairs(check.actions or {}) do
    if type(a) == "table" and type(a.at) == "number" then actions[#actions + 1] = a end
  end
  sort(actions, function(a, b) return a.at < b.at end)

  local tmax = is_null(check.duration_ms) and 0 or check.duration_ms / 1000
  local outcomes, counts = {}, { 0, 0, 0, 0, 0 }
  for i, r in ipairs(records) do
    tmax = max(tmax, r["end"])
    outcomes[i] = outcome(r)
    counts[outcomes[i]] = counts[outcomes[i]] + 1
  end
  for _, a in ipairs(actions) do tmax = max(tmax, a.at) end
  tmax = max(tmax, 0.01) -- requests that all started at once still get an axis

  -- 1000 units wide: its 12 px text is still legible on a printed page
  local W, left, right = 1000, 64, 985
  local function xof(t) return left + t / tmax * (right - left) end
  local placed, nlanes = place_labels(actions, xof, right)
  local label_top = 44
  local top = label_top + nlanes * LANE_PX
  local bottom = top + 240
  local H = bottom + 40
  local y, dlo, dhi = log_scale(records, top, bottom)
  local window = longest_failure_window(records)

  out[#out + 1] = format('<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" ' ..
                         'width="%d" height="%d" role="img" aria-label="%s">', W, H, W, H,
                         esc(format("requests of check %s over time, with the actions", scalar_text(check.id))))
  out[#out + 1] = format("<title>%d requests and %d actions of check %s</title>", #records, #actions,
                         esc(scalar_text(check.id)))
  legend(out, 18, counts, window ~= nil)
  if window then draw_window(out, window, xof, top, bottom) end
  axes(out, xof, tmax, y, dlo, dhi, left, right, top, bottom)
  if #records > MARKS_MAX then
    draw_buckets(out, records, outcomes, xof, y)
  else
    draw_marks(out, records, outcomes, xof, y)
  end
  draw_actions(out, placed, top, bottom, label_top)
  out[#out + 1] = "</svg>"

  local caption = { format("%d requests", #records) }
  if #records > MARKS_MAX then
    caption[#caption + 1] = format("more than %d, so drawn in buckets: per narrow column and outcome, a line " ..
                                   "from the fastest request to the slowest (hover for the count)", MARKS_MAX)
  else
    caption[#caption + 1] = "one mark each (hover for the request)"
  end
  if window then
    caption[#caption + 1] = format("longest failure window %s (%s in a row, from %.2f s)",
                                   seconds(window.finish - window.start), failed_requests(window.count), window.start)
  else
    caption[#caption + 1] = "no request failed"
  end
  local dropped = tonumber(check.dropped_requests) or 0
  if dropped > 0 then
    caption[#caption + 1] = format("%d more requests were not kept and are not drawn", dropped)
  end
  out[#out + 1] = '<p class="caption">' .. esc(concat(caption, "; ")) .. ".</p>"
end

-- The timeline's styles: a rule per outcome (the class is on the mark
-- itself, or on a bucket's group), the failure window, the markers.
local function css()
  local rules = {}
  for _, o in ipairs(OUTCOMES) do
    if o.shape == "cross" then
      rules[#rules + 1] = format(".%s, .%s * { fill: none; stroke: %s; stroke-width: 2; }", o.class, o.class, o.colour)
    else
      rules[#rules + 1] = format(".%s, .%s * { fill: %s; stroke: %s; }", o.class, o.class, o.colour, o.colour)
    end
  end
  return [[
svg .failure-window { fill: ]] .. SHADE .. [[; stroke: none; }
svg .action-marker line, svg .legend-fault line, svg .legend-recovery line { stroke: #000; stroke-width: 1.5; }
svg .action-marker.recovery line, svg .legend-recovery line { stroke-dasharray: 5 3; }
svg .action-marker text { paint-order: stroke; stroke: #fff; stroke-width: 3px; }
svg .bucket line { stroke-width: 2; }
]] .. concat(rules, "\n") .. "\n"
end

return { draw = timeline, css = css }
