---@meta proc
-- LuaCATS annotations for halo's `proc` module (docs/modules.md#proc).

---@class halo.ProcOpts
---@field argv string[] the program (on the stack file's allow_exec list) and its arguments
---@field env? table<string, string> added to halo's environment
---@field cwd? string
---@field stdin? string
---@field timeout? number seconds (default 60)
---@field max_output? integer bytes per stream (default 16 MiB)

---@class halo.ProcResult
---@field code? integer
---@field signal? integer
---@field stdout string
---@field stderr string
---@field duration number
---@field timed_out boolean
---@field truncated boolean

---@class halo.proclib
local proc = {}

---Runs a command; `nil, err` (kind `spawn`) if it could not start.
---@param opts halo.ProcOpts
---@return halo.ProcResult? result
---@return halo.Error? err
function proc.run(opts) end

return proc
