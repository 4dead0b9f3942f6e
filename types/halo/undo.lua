---@meta undo
-- LuaCATS annotations for halo's `undo` module (docs/modules.md#undo).

---@class halo.UndoHttp
---@field method string
---@field url string
---@field auth? { key?: string, secret?: string, header?: string, prefix?: string }
---@field headers? table<string, string>
---@field expect? integer[]
---@field what? string
---@field find? { url: string, where: table }
---@field settle? number
---@field first? boolean sent before the fixtures' removals by halo cleanup
---@field done? fun(ok: boolean, what: string)

---A pending removal.
---@class halo.UndoHandle
local Handle = {}

---`true` if it was pending: nothing runs at the end.
---@return boolean
function Handle:cancel() end

---`true` if it had a `settle`: a 404 from now on is final.
---@return boolean
function Handle:created() end

---@class halo.undolib
local undo = {}

---Registers the removal of what a check creates, as an HTTP request (also
---run by `halo cleanup` after a kill -9).
---@param opts halo.UndoHttp
---@return halo.UndoHandle
function undo.http(opts) end

---@param h halo.UndoHandle
---@return boolean
function undo.cancel(h) end

---The removals not yet run or cancelled, oldest first.
---@return { what: string, method: string, url: string }[]
function undo.pending() end

return undo
