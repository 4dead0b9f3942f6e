-- The HTML report's chart of events over time, drawn from any evidence
-- value of this shape (docs/writing-checks.md, "Charts"):
--
--   { chart = "events", title = "Fire times per replica",
--     lanes = { "api1", "api2" },                -- optional: the rows, in order
--     events = { { at = "2026-12-01T19:01:04Z", lane = "api1", kind = "fire", label = "…" }, … },
--     repeats = "double fire",                   -- optional: mark a time seen more than once
--     repeats_in = "chart" | "lane",             -- across the lanes (default) or within one
--     clock = "utc" | "elapsed" }                -- `at`: ISO time or epoch seconds (default),
--                                                --  or seconds since the check started
--
-- One row per lane, one mark per event (a shape and a colour per kind),
-- and, when the check names its repeats, a band marked ×N at every time
-- that occurs more than once. Nothing here knows what the events are: the
-- check says it all, so its wording elsewhere cannot change the chart.
--   require "html_chart" -> { parse = …, draw = …, css = … }
local u = require "html_util"

local format, concat, sort, floor, max, min = string.format, table.concat, table.sort, math.floor, math.max,
  math.min
local type, tonumber, ipairs, date = type, tonumber, ipairs, os.date
local esc, is_null, scalar_text, shape, nice_step = u.esc, u.is_null, u.scalar_text, u.shape, u.nice_step
local CHAR_PX = u.CHAR_PX

local M = {}

-- Past this many events the rest are counted in the caption, not drawn.
local EVENTS_MAX = 5000

-- A shape and a colour (Okabe–Ito) per kind of event, in the order the
-- kinds first appear; past six they come round again.
local KIND_SHAPES = { "tick", "circle", "triangle", "square", "diamond", "cross" }
local KIND_COLOURS = { "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9" }

-- Times os.date can print: years 1 to 9999, or a span of seconds since the check started.
local UTC_MIN, UTC_MAX, ELAPSED_MAX = -62135596800, 253402300799, 1e9

---------------------------------------------------------------- time

-- Seconds since 1970 of an ISO-8601 time ("2026-12-01T19:01:04.250Z",
-- "2026-12-01 20:01:04+01:00"; no zone is UTC), without os.time, which
-- would read it as local time. nil when it is not one.
local function epoch(iso)
  local y, mo, d, h, mi, s, zone = iso:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[T ](%d%d):(%d%d):(%d%d%.?%d*)(.*)$")
  if not y or tonumber(d) < 1 or tonumber(d) > 31 or tonumber(h) > 23 or tonumber(mi) > 59 or tonumber(s) >= 61 then
    return nil
  end
  local offset = 0
  if zone ~= "" and zone ~= "Z" and zone ~= "z" then
    local sign, oh, om = zone:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  y, mo = tonumber(y), tonumber(mo)
  if mo < 1 or mo > 12 then return nil end
  if mo <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local doy = floor((153 * (mo + (mo > 2 and -3 or 9)) + 2) / 5) + tonumber(d) - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s) - offset
end

-- An event's `at` as seconds on the chart's clock; nil when unusable.
local function seconds_of(at, clock)
  local t
  if type(at) == "number" then
    t = at
  elseif type(at) == "string" and clock == "utc" then
    t = epoch(at)
  end
  if not t or t ~= t then return nil end
  if clock == "utc" then return (t >= UTC_MIN and t <= UTC_MAX) and t or nil end
  return (t >= -ELAPSED_MAX and t <= ELAPSED_MAX) and t or nil
end

local function fraction_text(t)
  local ms = floor((t - floor(t)) * 1000 + 0.5)
  if ms == 0 then return "" end
  return format(".%03d", min(ms, 999))
end

-- Seconds with `decimals` places at most, without trailing zeros: "12.5 s".
local function seconds_text(t, decimals)
  local text = format("%." .. decimals .. "f", t)
  if decimals > 0 then text = text:gsub("0+$", ""):gsub("%.$", "") end
  return (text == "-0" and "0" or text) .. " s"
end

-- A time as a mark's title says it: "2026-12-01 19:01:04 UTC", "12.5 s".
local function time_text(t, clock)
  if clock == "elapsed" then return seconds_text(t, 6) end
  return date("!%Y-%m-%d %H:%M:%S", floor(t)) .. fraction_text(t) .. " UTC"
end

-- The time axis: about eight ticks at round times, and their labels.
local UTC_STEPS = { 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600,
                    900, 1800, 3600, 7200, 10800, 21600, 43200, 86400 }

local function ticks(lo, hi, clock)
  local span, step = hi - lo, nil
  if clock == "utc" then
    for _, s in ipairs(UTC_STEPS) do
      if span / s <= 8 then
        step = s
        break
      end
    end
    step = step or nice_step(span / 86400, 8) * 86400
  else
    step = nice_step(span, 8)
  end
  local list = {}
  local t = math.ceil(lo / step) * step
  while t <= hi + step * 1e-9 and #list < 40 do
    local label
    if clock == "elapsed" then
      label = seconds_text(t, max(0, -floor(u.log10(step) + 1e-9)))
    elseif step >= 86400 then
      label = date("!%Y-%m-%d", floor(t))
    elseif step >= 60 then
      label = date("!%H:%M", floor(t))
    else
      label = date("!%H:%M:%S", floor(t)) .. (step < 1 and fraction_text(t) or "")
    end
    list[#list + 1] = { t = t, label = label }
    t = t + step
  end
  return list
end

---------------------------------------------------------------- the shape

-- A name or a label: text as it is, a number as the JSON had it; else nil.
local function text_of(v)
  if type(v) == "string" or type(v) == "number" then return scalar_text(v) end
  return nil
end

-- The chart an evidence value describes: { title, clock, lanes, lane_of,
-- kinds, events (by time), repeats (the groups of one time), repeats_name,
-- per_lane, skipped }; or nil and why it cannot be drawn (a chart of
-- another kind). Not a chart at all: nil, nil.
function M.parse(v)
  if type(v) ~= "table" or is_null(v.chart) then return nil, nil end
  if v.chart ~= "events" then
    -- a `chart` key may be the check's own data; with events, it meant a chart
    if is_null(v.events) then return nil, nil end
    return nil, format('chart "%s" is not a kind halo draws (it draws "events")', scalar_text(v.chart))
  end
  if type(v.events) ~= "table" then return nil, "the chart has no list of events" end
  local clock = v.clock == "elapsed" and "elapsed" or "utc"
  local c = { title = text_of(v.title), clock = clock, lanes = {}, kinds = {},
              events = {}, repeats = {}, skipped = 0, per_lane = v.repeats_in == "lane",
              repeats_name = type(v.repeats) == "string" and v.repeats ~= "" and v.repeats or nil }
  local lane_of, kind_of = {}, {}
  local function add_lane(name)
    if not lane_of[name] then
      c.lanes[#c.lanes + 1] = name
      lane_of[name] = #c.lanes
    end
    return lane_of[name]
  end
  if type(v.lanes) == "table" then
    for _, name in ipairs(v.lanes) do
      if text_of(name) then add_lane(text_of(name)) end
    end
  end
  local extra = {}
  for _, e in ipairs(v.events) do
    local t = type(e) == "table" and seconds_of(e.at, clock)
    if t then
      local kind = text_of(e.kind) or ""
      if not kind_of[kind] then
        c.kinds[#c.kinds + 1] = { name = kind, n = 0 }
        kind_of[kind] = #c.kinds
      end
      local k = c.kinds[kind_of[kind]]
      k.n = k.n + 1
      local lane = text_of(e.lane) or ""
      if not lane_of[lane] then extra[#extra + 1] = lane; lane_of[lane] = 0 end
      c.events[#c.events + 1] = { t = t, lane = lane, kind = kind_of[kind], seq = #c.events + 1,
                                  label = text_of(e.label) }
    else
      c.skipped = c.skipped + 1
    end
  end
  -- lanes only the events name follow the given ones, sorted
  sort(extra)
  for _, name in ipairs(extra) do lane_of[name] = nil; add_lane(name) end
  c.lane_of = lane_of
  sort(c.events, function(a, b)
    if a.t ~= b.t then return a.t < b.t end
    return a.seq < b.seq
  end)
  if c.repeats_name then
    -- the same time to the millisecond, across the lanes or within one
    local groups, list = {}, {}
    for _, e in ipairs(c.events) do
      local key = format("%d", floor(e.t * 1000 + 0.5)) .. (c.per_lane and "\0" .. e.lane or "")
      local g = groups[key]
      if not g then
        g = { t = e.t, lane = c.per_lane and e.lane or nil, events = {} }
        groups[key] = g
        list[#list + 1] = g
      end
      g.events[#g.events + 1] = e
    end
    for _, g in ipairs(list) do
      if #g.events > 1 then c.repeats[#c.repeats + 1] = g end
    end
  end
  return c
end

local function plural(n, one, many) return format("%d %s", n, n == 1 and one or many) end

-- "4 events in 3 lanes; double fire at 1 time (…), marked ×N": the caption,
-- and what the evidence table says in the chart's place.
function M.summary(c)
  local parts = { plural(#c.events, "event", "events") .. " in " .. plural(#c.lanes, "lane", "lanes") }
  if c.repeats_name then
    if #c.repeats == 0 then
      parts[#parts + 1] = format("no %s: every time occurs once%s", c.repeats_name, c.per_lane and " in its lane" or "")
    else
      parts[#parts + 1] = format("%s at %s (more than one event at the same time%s), marked ×N", c.repeats_name,
                                 plural(#c.repeats, "time", "times"), c.per_lane and " in one lane" or "")
    end
  end
  if c.skipped > 0 then
    parts[#parts + 1] = format("%s without a usable time not drawn", plural(c.skipped, "event", "events"))
  end
  if #c.events > EVENTS_MAX then
    parts[#parts + 1] = format("only the first %d drawn", EVENTS_MAX)
  end
  return concat(parts, "; ")
end

---------------------------------------------------------------- drawing

local function event_title(c, e)
  local parts = { time_text(e.t, c.clock) }
  if e.lane ~= "" then parts[#parts + 1] = e.lane end
  local kind = c.kinds[e.kind].name
  if kind ~= "" then parts[#parts + 1] = kind end
  if e.label then parts[#parts + 1] = e.label end
  return esc(concat(parts, " · "))
end

local function repeat_title(c, g)
  local list = {}
  for i, e in ipairs(g.events) do list[i] = e end
  sort(list, function(a, b)
    if a.lane ~= b.lane then return c.lane_of[a.lane] < c.lane_of[b.lane] end
    return a.seq < b.seq
  end)
  local lanes = {}
  for _, e in ipairs(list) do lanes[#lanes + 1] = e.lane ~= "" and e.lane or "?" end
  return esc(format("%s: %d events at %s (%s)", c.repeats_name, #g.events, time_text(g.t, c.clock),
                    concat(lanes, ", ")))
end

local function kind_class(k) return format("event k%d", (k - 1) % #KIND_SHAPES + 1) end

local function kind_shape(k) return KIND_SHAPES[(k - 1) % #KIND_SHAPES + 1] end

-- A glyph and a word per kind (with its count), and the repeat band.
local function legend(c, out, y)
  local x = 10
  local function entry(symbol, text)
    out[#out + 1] = symbol
    out[#out + 1] = format('<text x="%.1f" y="%.1f">%s</text>', x + 10, y, esc(text))
    x = x + 26 + #text * CHAR_PX
  end
  if #c.kinds > 1 or (c.kinds[1] and c.kinds[1].name ~= "") then
    for i, k in ipairs(c.kinds) do
      entry(shape(kind_shape(i), x + 2, y - 4, (kind_class(i):gsub("^event ", "legend "))),
            format("%s (%d)", k.name ~= "" and k.name or "other", k.n))
    end
  end
  if c.repeats_name then
    entry(format('<g class="repeat-key"><rect x="%.1f" y="%.1f" width="8" height="12"/></g>', x - 2, y - 10),
          format("%s (%d)", c.repeats_name, #c.repeats))
  end
end

-- The chart of c as inline SVG, with its caption, into out.
function M.draw(c, out)
  local summary = M.summary(c)
  if #c.events == 0 then
    out[#out + 1] = '<p class="caption">' .. esc(summary) .. ".</p>"
    return
  end
  local widest = 0
  for _, name in ipairs(c.lanes) do widest = max(widest, utf8.len(name) or #name) end
  local W, right, row_h = 1000, 975, 30
  local left = 20 + min(max(widest, 4), 30) * 7.4
  local has_legend = c.repeats_name or #c.kinds > 1 or c.kinds[1].name ~= ""
  local top = has_legend and 50 or 34
  local bottom = top + #c.lanes * row_h
  local H = bottom + 40
  local t0, t1 = c.events[1].t, c.events[#c.events].t
  local pad = (t1 - t0) / 20
  if pad == 0 then pad = c.clock == "utc" and 1 or max(math.abs(t0) / 20, 0.5) end
  local lo, hi = t0 - pad, t1 + pad
  local function xof(t) return left + (t - lo) / (hi - lo) * (right - left) end
  local function yof(lane) return top + (c.lane_of[lane] - 0.5) * row_h end

  local what = c.title or "events over time"
  out[#out + 1] = format('<svg class="events-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" ' ..
                         'width="%d" height="%d" role="img" aria-label="%s">', W, H, W, H, esc(what))
  out[#out + 1] = "<title>" .. esc(what) .. "</title>"
  if has_legend then legend(c, out, 18) end
  for _, tick in ipairs(ticks(lo, hi, c.clock)) do
    local x = xof(tick.t)
    out[#out + 1] = format('<line class="grid" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>', x, top, x, bottom)
    out[#out + 1] = format('<text x="%.1f" y="%d" text-anchor="middle">%s</text>', x, bottom + 16, esc(tick.label))
  end
  for _, name in ipairs(c.lanes) do
    local y = yof(name)
    out[#out + 1] = format('<line class="grid" x1="%.1f" y1="%.1f" x2="%d" y2="%.1f"/>', left, y, right, y)
    out[#out + 1] = format('<text class="row-label" x="%.1f" y="%.1f" text-anchor="end">%s</text>', left - 8, y + 4,
                           esc(name == "" and "(no lane)" or (utf8.len(name) or 0) > 30 and
                               name:sub(1, utf8.offset(name, 30) - 1) .. "…" or name))
  end
  -- behind the marks: a band per repeated time, with its count
  for _, g in ipairs(c.repeats) do
    local x = xof(g.t)
    local y1, y2, tx, ty, anchor
    if g.lane then
      y1, y2 = yof(g.lane) - 14, yof(g.lane) + 14
      tx, ty, anchor = x + 10, yof(g.lane) + 5, "start"
    else
      y1, y2 = top - 4, bottom + 4
      tx, ty, anchor = x, top - 8, "middle"
    end
    out[#out + 1] = format('<g class="repeat"><title>%s</title><rect x="%.1f" y="%.1f" width="14" height="%.1f"/>' ..
                           '<text x="%.1f" y="%.1f" text-anchor="%s">×%d</text></g>', repeat_title(c, g), x - 7, y1,
                           y2 - y1, tx, ty, anchor, #g.events)
  end
  for i, e in ipairs(c.events) do
    if i > EVENTS_MAX then break end
    out[#out + 1] = shape(kind_shape(e.kind), xof(e.t), yof(e.lane), kind_class(e.kind), event_title(c, e))
  end
  local axis = "seconds since the check started"
  if c.clock == "utc" then
    local d0, d1 = date("!%Y-%m-%d", floor(t0)), date("!%Y-%m-%d", floor(t1))
    axis = "time (UTC), " .. (d0 == d1 and d0 or d0 .. " to " .. d1)
  end
  out[#out + 1] = format('<path class="axis" d="M%.1f %dH%d"/>', left, bottom, right)
  out[#out + 1] = format('<text x="%.1f" y="%d" text-anchor="middle">%s</text>', (left + right) / 2, bottom + 32,
                         esc(axis))
  out[#out + 1] = "</svg>"
  out[#out + 1] = '<p class="caption">' .. esc(summary) .. ".</p>"
end

-- The chart's styles: a colour per kind (a cross is drawn, not filled),
-- the repeat bands.
function M.css()
  local rules = {}
  for i, colour in ipairs(KIND_COLOURS) do
    local sel = format("svg .k%d", i)
    if KIND_SHAPES[i] == "cross" then
      rules[#rules + 1] = format("%s { fill: none; stroke: %s; stroke-width: 2; }", sel, colour)
    else
      rules[#rules + 1] = format("%s { fill: %s; stroke: none; }", sel, colour)
    end
  end
  return [[
svg .repeat rect, svg .repeat-key rect { fill: #D55E00; fill-opacity: .3; stroke: #D55E00; stroke-width: 2; }
svg .repeat text { font-weight: 700; font-size: 14px; }
svg .row-label { font-size: 13px; }
]] .. concat(rules, "\n") .. "\n"
end

return M
