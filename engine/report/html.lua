-- The HTML report (--format html, --report html:FILE): one self-contained
-- page an operator opens after a run, drawn from the JSON report with every
-- request record (engine/report/html.c). The run summary as the md entry
-- has it; per check its steps, evidence, failures and logs; a timeline of
-- its requests and actions as inline SVG (html_timeline.lua); and a chart
-- of every evidence value a check gave the chart shape (html_chart.lua).
-- html.c's require finds those, and html_util.lua, as embedded sources.
--
-- The page is XHTML — every element closed, every attribute quoted, text
-- escaped — so it parses as XML as well as HTML. It has no script and loads
-- nothing: styles are inline, a mark's details are an SVG <title> (hover).
-- Colours are the Okabe–Ito palette, and every outcome also has a shape or
-- a word of its own, so nothing is told by red versus green alone.
--   (json_text, halo_version) -> html
local json_text, halo_version = ...
local json = require "json"
local u = require "html_util"
local timeline = require "html_timeline"
local chart = require "html_chart"

local format, concat, max, min = string.format, table.concat, math.max, math.min
local type, tostring, ipairs, pcall, next, tonumber = type, tostring, ipairs, pcall, next, tonumber
local esc, is_null, scalar_text, id_of, seconds = u.esc, u.is_null, u.scalar_text, u.id_of, u.seconds
local ordered_keys, is_array = u.ordered_keys, u.is_array

local STATUS_CLASS = { PASS = "pass", FAIL = "fail", ERROR = "error", ["N/A"] = "na", DEFERRED = "deferred" }
-- a symbol as well as a colour, so a badge reads in greyscale
local STATUS_SYMBOL = { PASS = "✓", FAIL = "✗", ERROR = "!", ["N/A"] = "–", DEFERRED = "…" }

---------------------------------------------------------------- styles

local function css()
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
.caption { font-size: .9em; color: #333; margin: 0 0 .5em; }
.chart-ref { margin: 0; }
footer { color: #555; font-size: .85em; margin-top: 2em; }
]] .. timeline.css() .. chart.css() .. [[

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

-- The charts among a check's evidence (html_chart.lua), by key: each
-- value of the chart shape, drawn or (when it cannot be) with why not.
local function evidence_charts(check, keys)
  local evidence, charts = check.evidence, {}
  for i, k in ipairs(keys) do
    local c, why = chart.parse(evidence[k])
    if c or why then
      charts[k] = { chart = c, why = why, heading = c and c.title or k,
                    id = format("chart-%s-%d", id_of(check.id), i) }
    end
  end
  return charts
end

local function draw_charts(keys, charts, out)
  for _, k in ipairs(keys) do
    local c = charts[k]
    if c and c.chart then
      out[#out + 1] = format('<h3 id="%s">%s</h3>', c.id, esc(c.heading))
      chart.draw(c.chart, out)
    end
  end
end

-- A chart's row says where it is drawn; one that cannot be drawn is shown
-- as the value it is, with why.
local function evidence_table(check, keys, charts, out)
  if #keys == 0 then return end
  out[#out + 1] = "<h3>Evidence</h3>"
  out[#out + 1] = '<table class="evidence">'
  for _, k in ipairs(keys) do
    out[#out + 1] = "<tr><th>" .. esc(k) .. "</th><td>"
    local c = charts[k]
    if c and c.chart then
      out[#out + 1] = format('<p class="chart-ref">drawn above: <a href="#%s">%s</a> (%s)</p>', c.id,
                             esc(c.heading), esc(chart.summary(c.chart)))
    else
      value_html(check.evidence[k], out)
      if c then out[#out + 1] = '<p class="caption">not drawn: ' .. esc(c.why) .. "</p>" end
    end
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
    timeline.draw(check, out)
  end
  if type(check.evidence) ~= "table" then check.evidence = {} end
  local keys = ordered_keys(check.evidence, order)
  local charts = evidence_charts(check, keys)
  draw_charts(keys, charts, out)
  evidence_table(check, keys, charts, out)
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
  for _, k in ipairs(u.fact_keys(json_text, facts)) do row(k, scalar_text(facts[k])) end
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
  local ok, orders = pcall(u.evidence_orders, json_text, #checks)
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
  local title = not is_null(doc.checks_title) and doc.checks_title ~= "" and doc.checks_title or nil
  out[#out + 1] = "</header>\n<main>\n<h2>Checks" .. (title and (" — " .. esc(title)) or "") .. "</h2>"
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
