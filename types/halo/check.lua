---@meta
-- LuaCATS annotations for a check file (docs/writing-checks.md): the table
-- it returns (halo.CheckSpec) and the context `t` its run receives
-- (halo.T, engine/check/context.lua). Annotate a check's table with
-- `---@type halo.CheckSpec` to have an editor complete and check its keys.

---What a check file returns. Any other key is an error (`halo lint` says
---which and where).
---@class halo.CheckSpec
---@field id? integer|string default: the file name's leading number (else its name)
---@field title? string one line: `halo list` and the reports show it
---@field description? string
---@field tags? string[] words (letters, digits, _ - .) to select it by: --tag
---@field timeout? number seconds, positive (default 60)
---@field grace? number seconds its cleanup may take, when more than the run's --grace
---@field exclusive? boolean never alongside another check (the tag "exclusive" says the same)
---@field faults? boolean it kills, stops, pauses or recreates part of the stack: runs only where allowed
---@field requires? fun(stack: halo.Stack): boolean, string? false, reason: the check is N/A
---@field run fun(t: halo.T, stack: halo.Stack) the check itself

---The stack file's table as the check gets it (whatever the stack file
---returns: URLs, keys, compose, ...).
---@class halo.Stack
---@field compose? { files?: string[], project?: string, env_file?: string|string[] }
---@field allow_faults? boolean
---@field allow_exec? string[]
---@field harness? { up?: string[], down?: string[] }
---@field proxy? { control?: string }
---@field backend? "compose"|"swarm" what runs the replicas (require "replicas")
---@field swarm? { manager?: string, namespace: string, service: string, node_label?: string, nodes?: table<string, string|{ host: string, tls?: { ca: string, cert: string, key: string } }>, node_control?: string[] }
---@field [string] any

---The check context: every call is a method call, with a colon
---(`t:expect(...)`); `t.expect(...)` is an ERROR at that line.
---@class halo.T
---@field id integer|string the check's id
---@field title string
---@field timeout number seconds
local T = {}

---If `cond` is false, records a failure (message formatted like
---string.format, with the file and line) and goes on; returns `cond`.
---@generic V
---@param cond V
---@param fmt? string
---@param ... any
---@return V
function T:expect(cond, fmt, ...) end

---The same as expect, then ends the check (FAIL).
---@generic V
---@param cond V
---@param fmt? string
---@param ... any
---@return V
function T:assert(cond, fmt, ...) end

---Records a failure unconditionally and goes on.
---@param fmt? string
---@param ... any
function T:fail(fmt, ...) end

---Runs `fn(...)` as a named, timed step shown in the progress and the
---report; returns what `fn` returns, re-raises what it raises.
---@param name string
---@param fn fun(...): ...
---@param ... any
---@return any ...
function T:step(name, fn, ...) end

---Puts a value in the report's detail for this check, in the order
---recorded; a table with `chart = "events"` is also drawn as a chart.
---@generic V: string|number|boolean|table|nil
---@param key string
---@param value V
---@return V
function T:evidence(key, value) end

---Registers cleanup: run last-in first-out after the check, whatever its outcome.
---@param fn fun()
function T:defer(fn) end

---Ends the check as N/A with the reason.
---@param reason? string
function T:skip(reason) end

---A line in the check's log: formatted like expect's message when the
---first argument is a string with `%` and more follow, else what print shows.
---@param ... any
function T:log(...) end

---Seconds since the check started.
---@return number
function T:elapsed() end

---Hides a value the check made up (a key it generates, a token) as `***`
---in everything halo writes from now on, as the stack file's secret()s are.
---@param value string at least 4 characters
---@return string value
function T:secret(value) end
