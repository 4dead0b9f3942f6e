-- The HTML report (--format html, --report html:FILE): one self-contained
-- page an operator opens after a run, drawn from the JSON report with every
-- request record (engine/report/html.c). The run summary as the md entry
-- has it; per check its steps, evidence, failures and logs; a timeline of
-- its requests and actions as inline SVG; and for the schedule check its
-- fire times per replica.
--
-- The page is XHTML — every element closed, every attribute quoted, text
-- escaped — so it parses as XML as well as HTML. It has no script and loads
-- nothing: styles are inline, a mark's details are an SVG <title> (hover).
-- Colours are the Okabe–Ito palette, and every outcome also has a shape or
-- a word of its own, so nothing is told by red versus green alone.
--   (json_text, halo_version) -> html
local json_text, halo_version = ...
local json = require "json"

local format, concat, sort, floor, ceil, max, min = string.format, table.concat, table.sort, math.floor,
  math.ceil, math.max, math.min
local type, tostring, pairs, ipairs, pcall = type, tostring, pairs, ipairs, pcall
local null = json.null
local function log10(x) return math.log(x, 10) end

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

local STATUS_CLASS = { PASS = "pass", FAIL = "fail", ERROR = "error", ["N/A"] = "na", DEFERRED = "deferred" }
-- a symbol as well as a colour, so a badge reads in greyscale
local STATUS_SYMBOL = { PASS = "✓", FAIL = "✗", ERROR = "!", ["N/A"] = "–", DEFERRED = "…" }

-- Actions that take a replica down: a solid marker line; the rest (start,
-- unpause, a wait reaching "healthy") are dashed. Recreating a service
-- (compose up) takes its replica down too.
local FAULTS = { kill = true, stop = true, pause = true, restart = true, compose = true }

-- The md entry's order for what halo detected; images and anything else follow.
local FACT_ORDER = { ["App version"] = 1, PostgreSQL = 2, Docker = 3 }

---------------------------------------------------------------- text

-- XML has no place for invalid UTF-8 or most control characters.
local function clean(s)
  s = tostring(s)
  if not utf8.len(s) then
    local parts, i = {}, 1
    while i <= #s do
      local ok_to, bad = utf8.len(s, i)
      if ok_to then
        parts[#parts + 1] = s:sub(i)
        break
      end
      parts[#parts + 1] = s:sub(i, bad - 1) .. "\u{FFFD}"
      i = bad + 1
    end
    s = concat(parts)
  end
  -- control characters, and U+FFFE/U+FFFF, are not characters XML 1.0 allows
  s = s:gsub("[\0-\8\11\12\14-\31\127]", "\u{FFFD}")
  return (s:gsub("\xEF\xBF[\xBE\xBF]", "\u{FFFD}"))
end

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }

-- Text or an attribute value, escaped for XML and HTML alike.
local function esc(s)
  return (clean(s):gsub('[&<>"]', ESCAPES))
end

local function is_null(v) return v == nil or v == null end

local function seconds(s) return format("%.2f s", s) end

local function latency_text(s)
  if s < 1 then return format("%.1f ms", s * 1000) end
  return format("%.2f s", s)
end

-- Numbers as the JSON had them (every decoded number is a float here).
local function number_text(v)
  if v == floor(v) and v > -1e15 and v < 1e15 then return format("%d", v) end
  return format("%.14g", v)
end

local function scalar_text(v)
  if is_null(v) then return "null" end
  if type(v) == "number" then return number_text(v) end
  return tostring(v)
end

-- A value usable as an XML id.
local function id_of(v)
  return (clean(scalar_text(v)):gsub("[^%w_.-]", "_"))
end

---------------------------------------------------------------- key order

-- A decoded JSON object has lost its key order, yet the evidence and the
-- facts read best in the order the check (and halo) wrote them. The JSON
-- report has no whitespace, so the order is read back from its text.

local function skip_string(text, pos) -- pos: the opening quote
  local i = pos + 1
  while true do
    local q = assert(text:find('["\\]', i))
    if text:byte(q) == 34 then return q + 1 end
    i = q + 2
  end
end

local function skip_value(text, pos)
  local c = text:byte(pos)
  if c == 34 then return skip_string(text, pos) end
  if c ~= 123 and c ~= 91 then return assert(text:find("[,}%]]", pos)) end
  local depth, i = 0, pos
  while true do
    local j = assert(text:find('[][{}"]', i))
    local b = text:byte(j)
    if b == 34 then
      i = skip_string(text, j)
    else
      depth = depth + ((b == 123 or b == 91) and 1 or -1)
      i = j + 1
      if depth == 0 then return i end
    end
  end
end

-- The keys of the object at pos ('{'), in order; and the position after it.
local function object_keys(text, pos)
  local keys, i = {}, pos + 1
  while text:byte(i) == 34 do
    local after = skip_string(text, i)
    keys[#keys + 1] = json.decode(text:sub(i, after - 1))
    i = skip_value(text, after + 1)
    if text:byte(i) == 44 then i = i + 1 end
  end
  return keys, i + 1
end

-- The keys of t: those in `order` first, as they come there, then the rest sorted.
local function ordered_keys(t, order)
  local keys, seen = {}, {}
  for _, k in ipairs(order or {}) do
    if t[k] ~= nil and not seen[k] then
      keys[#keys + 1], seen[k] = k, true
    end
  end
  local rest = {}
  for k in pairs(t) do
    if not seen[k] then rest[#rest + 1] = tostring(k) end
  end
  sort(rest)
  for _, k in ipairs(rest) do keys[#keys + 1] = k end
  return keys
end

-- Each check's evidence keys, in the order the check recorded them, by
-- check index: engine/report/html.c hands them over as the global
-- evidence_keys, built from the result model, so nothing is read back
-- from the JSON text.
local function evidence_orders(text, nchecks)
  local orders = {}
  for i = 1, nchecks do
    local keys = type(evidence_keys) == "table" and evidence_keys[i]
    orders[i] = type(keys) == "table" and keys or nil
  end
  return orders
end

-- The run's facts in the md entry's order: known ones first, the rest as written.
local function fact_keys(text, facts)
  local last, pos = nil, 1
  while true do
    local at = text:find('"facts":{', pos, true)
    if not at then break end
    last, pos = at, at + 1
  end
  local written = {}
  if last then
    local ok, keys = pcall(object_keys, text, last + #'"facts":')
    if ok then written = keys end -- else no order to follow: sorted, then
  end
  local rank = {}
  for i, k in ipairs(written) do rank[k] = (FACT_ORDER[k] or 100) * 1e6 + i end
  local keys = ordered_keys(facts, written)
  sort(keys, function(a, b) return (rank[a] or 1e12) < (rank[b] or 1e12) end)
  return keys
end

---------------------------------------------------------------- styles

local function css()
  local rules = {}
  for _, o in ipairs(OUTCOMES) do
    -- the class is on the mark itself, or on a bucket's group
    if o.shape == "cross" then
      rules[#rules + 1] = format(".%s, .%s * { fill: none; stroke: %s; stroke-width: 2; }", o.class, o.class, o.colour)
    else
      rules[#rules + 1] = format(".%s, .%s * { fill: %s; stroke: %s; }", o.class, o.class, o.colour, o.colour)
    end
  end
  return [[
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 1.5em auto;
       max-width: 1300px; padding: 0 1em; color: #111; background: #fff; line-height: 1.4; }
h1 { font-size: 1.5em; margin: 0 0 .4em; }
h2 { font-size: 1.2em; margin: 1em 0 .5em; }
.check h2 { margin-top: 0; }
h3 { font-size: 1em; margin: 1.2em 0 .4em; }
table { border-collapse: collapse; }
th, td { text-align: left; vertical-align: top; padding: .25em .6em; border-bottom: 1px solid #ddd; }
th { background: #f3f3f3; }
td.num, th.num { text-align: right; white-space: nowrap; }
a { color: #0057a0; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; font-size: .9em; }
.run-facts th { background: none; font-weight: 600; white-space: nowrap; }
.summary { width: 100%; }
.check { border: 1px solid #ccc; border-radius: 6px; padding: 1em 1.2em; margin: 1.5em 0; }
.check-meta { color: #444; font-size: .9em; margin: 0 0 .6em; }
.message { background: #fff3ec; border-left: 4px solid #D55E00; padding: .5em .8em; margin: .6em 0; }
.failures { margin: .4em 0; padding-left: 1.4em; }
.badge { display: inline-block; padding: 0 .45em; border: 2px solid; border-radius: 4px; font-weight: 700;
         font-size: .85em; white-space: nowrap; }
.badge.pass { border-color: #009E73; background: #e0f4ee; }
.badge.fail { border-color: #D55E00; background: #fbe6d9; }
.badge.error { border-color: #CC79A7; background: #f7e6ef; border-style: double; border-width: 3px; }
.badge.na { border-color: #888; background: #f0f0f0; }
.badge.deferred { border-color: #0072B2; background: #e0eef7; border-style: dashed; }
.badge.pending { border-color: #888; background: #fff; border-style: dotted; }
.steps { width: 100%; }
.steps td.bar { width: 35%; }
.steps .bar span { display: block; height: .7em; margin-top: .35em; min-width: 2px; background: #56B4E9; }
.evidence { width: 100%; }
.evidence th { width: 14em; background: none; }
.evidence .kv th { width: auto; }
.kv td, .kv th { border: none; padding: 0 .6em 0 0; }
ul.values { margin: 0; padding-left: 1.2em; }
.logs td { font-size: .9em; }
svg { display: block; width: 100%; height: auto; margin: .5em 0; font-family: inherit; }
svg text { fill: #111; stroke: none; font-size: 12px; }
svg .axis { stroke: #333; stroke-width: 1; fill: none; }
svg .grid { stroke: #e4e4e4; stroke-width: 1; }
svg .failure-window { fill: ]] .. SHADE .. [[; stroke: none; }
svg .action-marker line, svg .legend-fault line, svg .legend-recovery line { stroke: #000; stroke-width: 1.5; }
svg .action-marker.recovery line, svg .legend-recovery line { stroke-dasharray: 5 3; }
svg .action-marker text { paint-order: stroke; stroke: #fff; stroke-width: 3px; }
svg .bucket line { stroke-width: 2; }
svg .fire { fill: #0072B2; }
svg .double-fire rect { fill: #D55E00; fill-opacity: .3; stroke: #D55E00; stroke-width: 2; }
svg .double-fire text { font-weight: 700; font-size: 14px; }
svg .row-label { font-size: 13px; }
.caption { font-size: .9em; color: #333; margin: 0 0 .5em; }
footer { color: #555; font-size: .85em; margin-top: 2em; }
]] .. concat(rules, "\n") .. [[

@media print {
  @page { size: landscape; margin: 12mm; }
  body { max-width: none; margin: 0; padding: 0; background: #fff; color: #000; font-size: 10pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .check { break-inside: auto; border: none; border-top: 1px solid #999; border-radius: 0; padding: .5em 0; }
  svg, tr { break-inside: avoid; }
  pre, td, th { overflow: visible; }
  a { color: #000; text-decoration: none; }
}
]]
end

---------------------------------------------------------------- pieces

local function badge(status)
  status = scalar_text(status)
  local class = STATUS_CLASS[status] or "pending"
  return format('<span class="badge %s">%s %s</span>', class, STATUS_SYMBOL[status] or "?", esc(status))
end

local function ms_text(ms)
  if is_null(ms) then return "—" end
  return seconds(ms / 1000)
end

local function is_array(t)
  local n = #t
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n then return false end
  end
  return n > 0
end

-- An evidence value: text as it is, a list as a list, an object as a small table.
local function value_html(v, out)
  if type(v) ~= "table" then
    out[#out + 1] = "<pre>" .. esc(scalar_text(v)) .. "</pre>"
  elseif next(v) == nil then
    out[#out + 1] = "<pre>(empty)</pre>"
  elseif is_array(v) then
    out[#out + 1] = '<ul class="values">'
    for _, item in ipairs(v) do
      out[#out + 1] = "<li>"
      value_html(item, out)
      out[#out + 1] = "</li>"
    end
    out[#out + 1] = "</ul>"
  else
    out[#out + 1] = '<table class="kv">'
    for _, k in ipairs(ordered_keys(v)) do
      out[#out + 1] = "<tr><th>" .. esc(k) .. "</th><td>"
      value_html(v[k], out)
      out[#out + 1] = "</td></tr>"
    end
    out[#out + 1] = "</table>"
  end
end

---------------------------------------------------------------- the timeline

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

-- 1, 2 or 5 times a power of ten: about `n` steps across `span`.
local function nice_step(span, n)
  local raw = span / n
  local p = 10 ^ floor(log10(raw))
  for _, m in ipairs({ 1, 2, 5 }) do
    if raw <= m * p then return m * p end
  end
  return 10 * p
end

-- The SVG path or element of one shape centred on x, y.
local function shape(kind, x, y, class, title)
  local body = title and ("<title>" .. title .. "</title>") or ""
  local cls = class and format(' class="%s"', class) or ""
  if kind == "circle" then
    return format('<circle%s cx="%.1f" cy="%.1f" r="3.5">%s</circle>', cls, x, y, body)
  elseif kind == "square" then
    return format('<rect%s x="%.1f" y="%.1f" width="7" height="7">%s</rect>', cls, x - 3.5, y - 3.5, body)
  elseif kind == "triangle" then
    return format('<path%s d="M%.1f %.1fl4.5 8h-9z">%s</path>', cls, x, y - 4.5, body)
  elseif kind == "diamond" then
    return format('<path%s d="M%.1f %.1fl5 5-5 5-5-5z">%s</path>', cls, x, y - 5, body)
  end
  return format('<path%s d="M%.1f %.1fl8 8m0-8l-8 8">%s</path>', cls, x - 4, y - 4, body) -- cross
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
local CHAR_PX = 6.8 -- a 12 px sans-serif character, roughly

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
    local verb = scalar_text(a.action):match("^%S+")
    local ly = label_top + (p.lane - 1) * LANE_PX
    local details = { scalar_text(a.action) }
    if not is_null(a.container) then details[#details + 1] = tostring(a.container) end
    if not is_null(a.after) then details[#details + 1] = format("after %.2f s", a.after) end
    out[#out + 1] = format('<g class="action-marker%s"><title>%s at %.2f s</title>', FAULTS[verb] and "" or " recovery",
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

---------------------------------------------------------------- the schedule

-- Seconds since 1970 of an ISO-8601 UTC time ("2026-12-01T19:01:04.000Z"),
-- without os.time, which would read it as local time.
local function epoch(iso)
  local y, mo, d, h, mi, s = iso:match("^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+%.?%d*)Z?$")
  if not y then return nil end
  y, mo = tonumber(y), tonumber(mo)
  if mo <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local doy = floor((153 * (mo + (mo > 2 and -3 or 9)) + 2) / 5) + tonumber(d) - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
end

-- Fire times from the check's evidence: "executions (API)" lines
-- ("<time> api2", one per execution) and "schedule_executions" lines
-- ("<time>  x2  api1,api2", one per fire time). A fire time recorded more
-- than once in either is a double fire.
local function fire_times(evidence)
  local fires, list = {}, {}
  local function fire(iso)
    local t = epoch(iso)
    if not t then return nil end
    if not fires[t] then
      fires[t] = { t = t, iso = iso, api = {}, api_n = 0, db_n = 0, db = "", replicas = {} }
      list[#list + 1] = fires[t]
    end
    return fires[t]
  end
  for _, line in ipairs(type(evidence["executions (API)"]) == "table" and evidence["executions (API)"] or {}) do
    local iso, replica = tostring(line):match("^(%S+)%s+(%S+)")
    local f = iso and fire(iso)
    if f then
      f.api_n = f.api_n + 1
      f.api[#f.api + 1] = replica
      f.replicas[replica] = true
    end
  end
  for _, line in ipairs(type(evidence.schedule_executions) == "table" and evidence.schedule_executions or {}) do
    local iso, n, replicas = tostring(line):match("^(%S+)%s+x(%d+)%s*(%S*)")
    local f = iso and fire(iso)
    if f then
      f.db_n, f.db = f.db_n + tonumber(n), replicas
      for r in replicas:gmatch("[^,]+") do f.replicas[r] = true end
    end
  end
  sort(list, function(a, b) return a.t < b.t end)
  for _, f in ipairs(list) do f.times = max(f.api_n, f.db_n) end
  return list
end

local function fire_title(f, replica)
  local parts = { format("%s UTC", f.iso:match("T(%d+:%d+:%d+)") or f.iso) }
  if replica then parts[#parts + 1] = "by " .. replica end
  if f.api_n > 0 then parts[#parts + 1] = format("API: %d × (%s)", f.api_n, concat(f.api, ", ")) end
  if f.db_n > 0 then parts[#parts + 1] = format("schedule_executions: x%d (%s)", f.db_n, f.db) end
  return esc(concat(parts, "; "))
end

local function schedule_chart(check, out)
  local evidence = type(check.evidence) == "table" and check.evidence or {}
  local list = fire_times(evidence)
  if #list == 0 then return end
  local rows, seen = {}, {}
  for _, f in ipairs(list) do
    for r in pairs(f.replicas) do
      if not seen[r] then rows[#rows + 1], seen[r] = r, true end
    end
  end
  sort(rows)

  local W, left, right, top, row_h = 1000, 100, 975, 34, 30
  local bottom = top + #rows * row_h
  local H = bottom + 36
  local t0, t1 = list[1].t, list[#list].t
  local pad = max((t1 - t0) / 20, 1)
  local function xof(t) return left + (t - t0 + pad) / (t1 - t0 + 2 * pad) * (right - left) end

  out[#out + 1] = format('<svg class="schedule" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" ' ..
                         'width="%d" height="%d" role="img" aria-label="fire times per replica">', W, H, W, H)
  out[#out + 1] = "<title>the schedule's fire times per replica</title>"
  local doubles = 0
  for _, f in ipairs(list) do
    if f.times > 1 then
      -- behind the ticks: a band across every row, with the count above it
      doubles = doubles + 1
      local x = xof(f.t)
      out[#out + 1] = format('<g class="double-fire"><title>recorded %d times: %s</title>' ..
                             '<rect x="%.1f" y="%.1f" width="14" height="%.1f"/>' ..
                             '<text x="%.1f" y="%.1f" text-anchor="middle">×%d</text></g>',
                             f.times, fire_title(f), x - 7, top - 4, bottom - top + 8, x, top - 8, f.times)
    end
  end
  for i, r in ipairs(rows) do
    local yy = top + (i - 0.5) * row_h
    out[#out + 1] = format('<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>', left, yy, right, yy)
    out[#out + 1] = format('<text class="row-label" x="%d" y="%.1f" text-anchor="end">%s</text>', left - 8, yy + 4,
                           esc(r))
  end
  -- a label per fire time, as many as fit side by side
  local every = ceil(#list / ((right - left) / 70))
  for i, f in ipairs(list) do
    local x = xof(f.t)
    for i_row, r in ipairs(rows) do
      if f.replicas[r] then
        local yy = top + (i_row - 0.5) * row_h
        out[#out + 1] = format('<rect class="fire" x="%.1f" y="%.1f" width="4" height="20"><title>%s</title></rect>',
                               x - 2, yy - 10, fire_title(f, r))
      end
    end
    if (i - 1) % every == 0 then
      out[#out + 1] = format('<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>', x, bottom + 16,
                             esc(f.iso:match("T(%d+:%d+:%d+)") or f.iso))
    end
  end
  out[#out + 1] = format('<path class="axis" d="M%d %.1fH%d"/>', left, bottom, right)
  out[#out + 1] = format('<text x="%.1f" y="%.1f" text-anchor="middle">fire time (UTC)</text>', (left + right) / 2,
                         bottom + 32)
  out[#out + 1] = "</svg>"
  local summary = format("%d fire times; ", #list) ..
    (doubles == 0 and "each recorded once" or format("%d recorded more than once (the bands marked ×N)", doubles))
  out[#out + 1] = '<p class="caption">' .. esc(summary) .. ".</p>"
end

---------------------------------------------------------------- a check

local function steps_table(check, out)
  local steps = check.steps or {}
  if #steps == 0 then return end
  local span = max(is_null(check.duration_ms) and 0 or check.duration_ms, 1)
  out[#out + 1] = "<h3>Steps</h3>"
  out[#out + 1] = '<table class="steps"><tr><th>step</th><th class="num">started</th><th class="num">took</th>' ..
                  "<th>status</th><th>when</th></tr>"
  for _, s in ipairs(steps) do
    local started = is_null(s.started_ms) and 0 or s.started_ms
    local took = is_null(s.duration_ms) and 0 or s.duration_ms
    -- a bar for where the step falls in the check's time
    local bar = format('<span style="margin-left:%.1f%%;width:%.1f%%"></span>', min(started / span, 1) * 100,
                       min(took / span, 1 - min(started / span, 1)) * 100)
    out[#out + 1] = format('<tr><td>%s</td><td class="num">%s</td><td class="num">%s</td><td>%s</td>' ..
                           '<td class="bar">%s</td></tr>', esc(scalar_text(s.name)), ms_text(s.started_ms),
                           is_null(s.duration_ms) and "running" or ms_text(s.duration_ms), badge(s.status), bar)
  end
  out[#out + 1] = "</table>"
end

local function evidence_table(check, order, out)
  local evidence = type(check.evidence) == "table" and check.evidence or {}
  if next(evidence) == nil then return end
  out[#out + 1] = "<h3>Evidence</h3>"
  out[#out + 1] = '<table class="evidence">'
  for _, k in ipairs(ordered_keys(evidence, order)) do
    out[#out + 1] = "<tr><th>" .. esc(k) .. "</th><td>"
    value_html(evidence[k], out)
    out[#out + 1] = "</td></tr>"
  end
  out[#out + 1] = "</table>"
end

local function logs_table(check, out)
  local logs = check.logs or {}
  if #logs == 0 then return end
  out[#out + 1] = "<h3>Log</h3>"
  out[#out + 1] = '<table class="logs"><tr><th class="num">at</th><th>level</th><th>text</th></tr>'
  for _, l in ipairs(logs) do
    out[#out + 1] = format('<tr><td class="num">%s</td><td>%s</td><td><pre>%s</pre></td></tr>', ms_text(l.at_ms),
                           esc(scalar_text(l.level)), esc(scalar_text(l.text)))
  end
  out[#out + 1] = "</table>"
end

local function check_section(check, order, out)
  local id = scalar_text(check.id)
  out[#out + 1] = format('<section class="check" id="check-%s">', id_of(check.id))
  out[#out + 1] = format("<h2>%s %s. %s</h2>", badge(check.status), esc(id), esc(scalar_text(check.title)))
  local meta = { "took " .. ms_text(check.duration_ms) }
  if not is_null(check.file) then meta[#meta + 1] = tostring(check.file) end
  if type(check.tags) == "table" and #check.tags > 0 then meta[#meta + 1] = "tags: " .. concat(check.tags, ", ") end
  if not is_null(check.current_step) then meta[#meta + 1] = "in step: " .. tostring(check.current_step) end
  out[#out + 1] = '<p class="check-meta">' .. esc(concat(meta, " · ")) .. "</p>"
  if not is_null(check.message) then
    out[#out + 1] = '<div class="message"><pre>' .. esc(check.message) .. "</pre></div>"
  end
  local failures = check.failures or {}
  if #failures > 1 or (#failures == 1 and failures[1] ~= check.message) then
    out[#out + 1] = '<h3>Failures</h3><ol class="failures">'
    for _, f in ipairs(failures) do out[#out + 1] = "<li><pre>" .. esc(f) .. "</pre></li>" end
    out[#out + 1] = "</ol>"
  end
  steps_table(check, out)
  if type(check.request_records) == "table" and #check.request_records > 0 then
    out[#out + 1] = "<h3>Requests and actions</h3>"
    timeline(check, out)
  end
  local evidence = type(check.evidence) == "table" and check.evidence or {}
  if evidence["executions (API)"] or evidence.schedule_executions then
    out[#out + 1] = "<h3>Schedule executions</h3>"
    schedule_chart(check, out)
  end
  evidence_table(check, order, out)
  logs_table(check, out)
  out[#out + 1] = "</section>"
end

---------------------------------------------------------------- the run

-- "2/3 PASS, 1/3 FAIL", as the md entry's heading counts.
local function counts_text(summary, total)
  local parts = { format("%d/%d PASS", summary.pass or 0, total) }
  for _, k in ipairs({ { "fail", "FAIL" }, { "error", "ERROR" }, { "deferred", "deferred" }, { "na", "N/A" } }) do
    local n = summary[k[1]] or 0
    if n > 0 then parts[#parts + 1] = format("%d/%d %s", n, total, k[2]) end
  end
  return concat(parts, ", ")
end

local function run_facts(doc, out)
  local rows = {}
  local function row(k, v) rows[#rows + 1] = "<tr><th>" .. esc(k) .. "</th><td>" .. esc(v) .. "</td></tr>" end
  if not is_null(doc.started_at) then row("Started", (tostring(doc.started_at):gsub("T", " "):gsub("Z$", " UTC"))) end
  row("Operator", (is_null(doc.operator) or doc.operator == "") and "unknown" or doc.operator)
  local facts = type(doc.facts) == "table" and doc.facts or {}
  for _, k in ipairs(fact_keys(json_text, facts)) do row(k, scalar_text(facts[k])) end
  row("Host OS", (is_null(doc.host_os) or doc.host_os == "") and "unknown" or doc.host_os)
  if not is_null(doc.stack) then row("Stack", doc.stack) end
  if not is_null(doc.duration_ms) then row("Run time", format("%.1f s", doc.duration_ms / 1000)) end
  out[#out + 1] = '<table class="run-facts">' .. concat(rows) .. "</table>"
end

local function summary_table(checks, out)
  out[#out + 1] = '<table class="summary"><tr><th>ID</th><th>status</th><th class="num">time</th><th>check</th>' ..
                  "<th>message</th></tr>"
  for _, c in ipairs(checks) do
    local first_line = is_null(c.message) and "" or tostring(c.message):match("^[^\n]*")
    out[#out + 1] = format('<tr><td>%s</td><td>%s</td><td class="num">%s</td><td><a href="#check-%s">%s</a></td>' ..
                           "<td>%s</td></tr>", esc(scalar_text(c.id)), badge(c.status), ms_text(c.duration_ms),
                           id_of(c.id), esc(scalar_text(c.title)), esc(first_line))
  end
  out[#out + 1] = "</table>"
end

local function page(doc)
  local checks = type(doc.checks) == "table" and doc.checks or {}
  local summary = type(doc.summary) == "table" and doc.summary or {}
  local total = tonumber(summary.total) or #checks
  local date = is_null(doc.started_at) and "" or tostring(doc.started_at):match("^[%d-]+") or ""
  local heading = format("Run — %s (%s)", date, counts_text(summary, total))
  local ok, orders = pcall(evidence_orders, json_text, #checks)
  if not ok then orders = {} end -- the keys sorted, then

  local out = {
    '<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml" lang="en">\n<head>\n<meta charset="utf-8"/>\n',
    '<meta name="viewport" content="width=device-width, initial-scale=1"/>\n',
    "<title>halo — " .. esc(heading) .. "</title>\n",
    "<style>\n" .. css() .. "</style>\n</head>\n<body>\n",
    "<header><h1>" .. esc(heading) .. "</h1>",
  }
  run_facts(doc, out)
  if doc.interrupted == true then
    out[#out + 1] = '<p class="message"><strong>The run was interrupted (SIGINT/SIGTERM); ' ..
                    "unfinished checks have no result.</strong></p>"
  end
  out[#out + 1] = "</header>\n<main>\n<h2>Checks</h2>"
  summary_table(checks, out)
  for i, c in ipairs(checks) do
    out[#out + 1] = "\n"
    check_section(c, orders[i], out)
  end
  out[#out + 1] = "\n</main>\n<footer>Written by halo " .. esc(halo_version or "?") ..
                  "; self-contained: no script, nothing loaded from elsewhere.</footer>\n</body>\n</html>\n"
  return concat(out)
end

return page(json.decode(json_text))
