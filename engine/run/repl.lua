-- The REPL's Lua half (engine/run/repl.c the loop, run/repl/ the terminal and `host`): what a
-- line means — an expression, a statement, an unfinished chunk, a command —
-- how its values print, tab completion, and the session kept for .save.
-- feed(line) returns "more", "exit", or a function the host runs as a task.
local host, internal, show = ...
local json = require "json"
local time = require "time"

local format, concat, sort, type, tostring, pairs, ipairs = string.format, table.concat, table.sort, type,
  tostring, pairs, ipairs
local pack, unpack = table.pack, table.unpack
local match, select = string.match, select

local M = {}

local pending = nil    -- the lines of an unfinished chunk
local chunks = 0       -- inputs run so far, for chunk names
local session = {}     -- inputs that ran without error, for .save: { source =, expression = }
local defers = {}      -- t:defer(fn) of the session, run when it ends

local function out(text)
  if text ~= nil and text ~= "" then host.write(text .. "\n") end
end

---------------------------------------------------------------- t

-- The check context's everyday calls, for trying a check's lines by hand.
local t = {}
M.t = t

function t:expect(cond, fmt, ...)
  if not cond then
    out("expectation failed: " .. (fmt and format(fmt, ...) or "(no message)"))
  end
  return cond, fmt
end

function t:assert(cond, fmt, ...)
  if not cond then error("assertion failed: " .. (fmt and format(fmt, ...) or "(no message)"), 2) end
  return cond
end

function t:evidence(key, value)
  out(tostring(key) .. ": " .. show.value(value))
end

function t:log(...)
  local parts = pack(...)
  for i = 1, parts.n do parts[i] = tostring(parts[i]) end
  out(concat(parts, " ", 1, parts.n))
end

function t:step(name, fn, ...)
  local started = time.mono()
  local results = pack(fn(...))
  out(format("step %s: %.3f s", tostring(name), time.mono() - started))
  return unpack(results, 1, results.n)
end

function t:defer(fn)
  if type(fn) ~= "function" then error("bad argument #1 to 'defer' (function expected)", 2) end
  defers[#defers + 1] = fn
end

function t:elapsed() return time.mono() - host.started end

function t:secret(value)
  local problem = internal.secret(value)
  if problem then error("bad argument #1 to 'secret' (" .. problem .. ")", 2) end
  return value
end

---------------------------------------------------------------- lines

-- Lua's own test for "the chunk goes on": the error is at <eof>.
local function incomplete(err)
  return type(err) == "string" and err:sub(-5) == "<eof>"
end

-- Each input is a chunk of its own, so a `local` would end with its line;
-- an operator who types `local x = 1` means to use x next. A chunk that
-- starts with `local NAMES =` or `local function NAME` declares session
-- globals instead (what lua.c users learn to do by hand). Locals with an
-- attribute (<close>, <const>) stay what they are.
local function session_declaration(source)
  local rest = source:match("^%s*local%s+(.*)$")
  if not rest then return nil end
  if rest:match("^function[%s(]") then return rest end
  local names = rest:match("^([%a_][%w_%s,]*)=")
  if names and not names:find("<", 1, true) and rest:sub(#names + 2, #names + 2) ~= "=" then return rest end
  return nil
end

-- compile(source, name) -> fn, is_expression, nil, source as run | nil, err, incomplete.
-- An expression prints its values without `return`, as in lua.c.
-- `return f(x)` would be a tail call, and an error f raises at level 2
-- (t:assert, luaL_argerror's kin) would name the REPL's own file, not the
-- line: a first value of nil makes it an ordinary call, dropped again here.
local function load_returning(head, expression, name)
  local fn = load(head .. "return nil, " .. expression .. "\n", name, "t")
  if not fn then return nil end
  return function() return select(2, fn()) end
end

local function compile(source, name)
  local fn = load_returning("", source, name)
  if fn then return fn, true, nil, source end
  local declared = session_declaration(source)
  if declared then
    fn = load(declared, name, "t")
    if fn then return fn, false, nil, declared end
  end
  -- `time.sleep(2); flow:stats()`: statements, then an expression whose
  -- value the operator wants to see, as for a bare expression. Only where
  -- the statements stand alone and the rest is an expression: a `;` inside
  -- a function body must not end that body early.
  local head, last = match(source, "^(.*[;\n])%s*([^;\n]-)%s*;?%s*$")
  if head and last ~= "" and load(head, name, "t") and load("return " .. last, name, "t") then
    local both = load_returning(head .. "\n", last, name)
    if both then return both, true, nil, head .. "\nreturn " .. last end
  end
  local err
  fn, err = load(source, name, "t")
  if fn then return fn, false, nil, source end
  return nil, err, incomplete(err)
end

-- A task body: run fn, show what it returns, remember the input.
local function runner(fn, source, expression, timed)
  return function()
    local started = time.mono()
    local results = pack(fn())
    local took = time.mono() - started
    -- a statement that returns values shows them too, as in lua.c
    if expression or results.n > 0 then out(show.render(results, true)) end
    if timed then out(format("(%.3f s)", took)) end
    session[#session + 1] = { source = source, expression = expression, returns = results.n > 0 }
  end
end

---------------------------------------------------------------- commands

local commands = {}
local command_help = {}

local function command(name, args, help, fn)
  commands[name] = fn
  command_help[#command_help + 1] = { format(".%s%s", name, args), help }
end

command("help", "", "this list", function()
  local lines = { "Lua, with every module as a global (http, sql, docker, ...), stack, json, show(...) and t." }
  lines[#lines + 1] = "An expression prints its value; an unfinished chunk continues on the next line (>>)."
  lines[#lines + 1] = "Tab completes names, module members and methods; Ctrl-C stops the running line; Ctrl-D leaves."
  lines[#lines + 1] = ""
  for _, h in ipairs(command_help) do lines[#lines + 1] = format("  %-12s %s", h[1], h[2]) end
  out(concat(lines, "\n"))
end)

command("exit", "", "undo every fault of the session (a killed or paused container comes back) and leave",
        function() return "exit" end)

command("list", "", "the checks in the checks directory", function()
  host.halo({ "list" })
end)

command("run", " ID", "run one check with its report, as `halo run ID`", function(arg)
  if not arg:match("^[%w_%-%.]+$") then error(".run needs a check id (see .list)", 0) end
  host.halo({ "run", arg, "-v" })
end)

command("tasks", "", "the tasks lines left running in the background", function()
  local list = host.tasks()
  if #list == 0 then out("no tasks running") return end
  local lines = {}
  for _, tk in ipairs(list) do
    lines[#lines + 1] = format("  %-4d %-9s %s", tk.id, tk.state, tk.where or "")
  end
  out(concat(lines, "\n"))
end)

command("stop", " N", "stop background task N", function(arg)
  local id = math.tointeger(tonumber(arg))
  if not id then error(".stop needs a task number (see .tasks)", 0) end
  if host.stop(id) then out(format("task %d stopped", id)) else error(format("no task %d running", id), 0) end
end)

command("time", " EXPR", "evaluate and say how long it took", nil)  -- run by feed: it is code

command("load", " FILE", "run a Lua file here (its globals stay)", nil)

command("save", " FILE", "write the session's successful inputs as a script `halo exec` runs", function(arg)
  if arg == "" then error(".save needs a file name", 0) end
  local lines = {
    "-- halo repl session, saved " .. os.date("!%Y-%m-%d %H:%M UTC"),
    "-- run it with: halo exec" .. (host.stack_file and (" --stack " .. host.stack_file) or "") .. " " .. arg,
  }
  for _, input in ipairs(session) do
    if input.expression then
      lines[#lines + 1] = "show(" .. input.source .. ")"
    elseif input.returns then
      lines[#lines + 1] = "show((function()\n" .. input.source .. "\nend)())"
    else
      -- each input its own block: a local stays as local as it was
      lines[#lines + 1] = "do\n" .. input.source .. "\nend"
    end
  end
  local ok, err = host.write_file(arg, concat(lines, "\n") .. "\n")
  if not ok then error(err, 0) end
  out(format("%d input%s saved to %s", #session, #session == 1 and "" or "s", arg))
end)

local function run_command(line)
  local name, arg = line:match("^%.(%a+)%s*(.-)%s*$")
  if not name or not command_help then return nil, "not a command" end
  if name == "time" then
    local fn, expression, _, as_run = compile(arg, "=time")
    if not fn then error(expression, 0) end
    return runner(fn, as_run, expression, true)
  end
  if name == "load" then
    local source, err = host.read_file(arg)
    if not source then error(err, 0) end
    local fn, lerr = load(source, "@" .. arg, "t")
    if not fn then error(lerr, 0) end
    return runner(fn, source, false, false)
  end
  local fn = commands[name]
  if not fn then error(format("unknown command .%s (.help lists them)", name), 0) end
  return function() return fn(arg) end
end

---------------------------------------------------------------- feeding

-- feed(line) -> "more" | "exit" | fn (a task body) | nil, message
function M.feed(line)
  if not pending and line:match("^%s*%.%a") then
    if line:match("^%s*%.exit%s*$") then return "exit" end
    local ok, fn = pcall(run_command, line:match("^%s*(.-)$"))
    if not ok then return nil, tostring(fn) end
    return fn
  end
  local source = pending and (pending .. "\n" .. line) or line
  if source:match("^%s*$") then return nil end
  chunks = chunks + 1
  local fn, expression, more, as_run = compile(source, format("=[%d]", chunks))
  if more then
    chunks = chunks - 1
    pending = source
    return "more"
  end
  pending = nil
  if not fn then return nil, expression end
  return runner(fn, as_run, expression, false)
end

function M.reset() pending = nil end
function M.continuing() return pending ~= nil end

---------------------------------------------------------------- completion

local KEYWORDS = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
                   "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" }

-- The value a dotted name stands for, looked up without calling anything
-- but __index (which is how module globals load).
local function resolve(path)
  local value = _G
  for name in path:gmatch("[^%.]+") do
    if type(value) ~= "table" and type(value) ~= "userdata" then return nil end
    local ok, v = pcall(function() return value[name] end)
    if not ok or v == nil then return nil end
    value = v
  end
  return value
end

local function members(value, methods_only)
  local names, seen = {}, {}
  local function add(k, v)
    -- metamethods (__index, __tostring) are not what an operator calls
    if type(k) == "string" and k:match("^[%a_][%w_]*$") and k:sub(1, 2) ~= "__" and not seen[k] and
       (not methods_only or v == nil or type(v) == "function") then
      seen[k] = true
      names[#names + 1] = k
    end
  end
  if type(value) == "table" then
    local ok = pcall(function() for k, v in pairs(value) do add(k, v) end end)
    if not ok then for k, v in next, value do add(k, v) end end
  end
  for _, k in ipairs(internal.members(value)) do add(k, nil) end
  return names
end

-- complete(line, word) -> candidates for `word` (the text before the
-- cursor back to a space or an operator): "http.ge" -> { "http.get" }.
function M.complete(line, word)
  local found = {}
  if line:match("^%s*%.%a*$") then
    for name in pairs(commands) do
      if ("." .. name):sub(1, #word) == word then found[#found + 1] = "." .. name end
    end
    sort(found)
    return found
  end
  local base, sep, partial = word:match("^(.*)([%.:])([%w_]*)$")
  if base then
    if not base:match("^[%a_][%w_]*[%w_%.]*$") then return found end
    local value = resolve(base)
    if value == nil then return found end
    for _, name in ipairs(members(value, sep == ":")) do
      if name:sub(1, #partial) == partial then found[#found + 1] = base .. sep .. name end
    end
  else
    local names = {}
    for _, k in ipairs(members(_G, false)) do names[#names + 1] = k end
    for _, k in ipairs(host.modules) do names[#names + 1] = k end
    for _, k in ipairs(KEYWORDS) do names[#names + 1] = k end
    local seen = {}
    for _, name in ipairs(names) do
      if not seen[name] and name:sub(1, #word) == word then
        seen[name] = true
        found[#found + 1] = name
      end
    end
  end
  sort(found)
  return found
end

---------------------------------------------------------------- the end

-- The session's t:defer functions, newest first; errors are reported and
-- the others still run.
function M.run_defers()
  for i = #defers, 1, -1 do
    local ok, err = pcall(defers[i])
    if not ok then out("cleanup failed: " .. tostring(err)) end
    defers[i] = nil
  end
end

return M
