---@meta
-- LuaCATS annotations for the globals of `halo eval`, `halo exec` and the
-- REPL: every module, the stack file as `stack`, `show`, exec's `arg`, and
-- the REPL's `t`. Not in scripts/.luarc.json's library: a check file has
-- none of them (it requires what it uses), and an editor should say so.
-- For a folder of exec scripts, add "../types/adhoc" to workspace.library.

time = require "time"
task = require "task"
json = require "json"
zlib = require "zlib"
proc = require "proc"
errors = require "errors"
http = require "http"
sql = require "sql"
docker = require "docker"
traffic = require "traffic"
eventually = require "eventually"
netfault = require "netfault"
undo = require "undo"

---The stack file's table (`--stack FILE`), or an empty table.
---@type halo.Stack
stack = {}

---exec's arguments (also `...`).
---@type string[]
arg = {}

---The REPL's check context (expect, evidence, step, defer).
---@type halo.T
t = nil

---Prints values the way the REPL does.
---@param ... any
function show(...) end
