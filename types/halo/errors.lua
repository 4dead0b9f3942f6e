---@meta errors
-- LuaCATS annotations for halo's `errors` module (docs/modules.md#errors).

---The one error type every module returns as `nil, err`.
---@class halo.Error
---@field kind string a short word to branch on: connect, timeout, tls, too_large, json, corrupt, sql, closed, docker, spawn, ...
---@field message string a sentence naming what failed and where (secrets redacted)
---@field url? string
---@field status? integer
---@field sqlstate? string
---@field code? integer
---@field stderr? string
---@field [string] any fields of its module

---@class halo.errorslib
local errors = {}

---A new error: `err.kind`, `err.message`, `tostring(err)` the message, and
---`fields` copied in; a field named `kind` or `message` raises.
---@param kind string
---@param message string
---@param fields? table<string, any>
---@return halo.Error
function errors.new(kind, message, fields) end

---Whether `value` is an error of this type (and of that kind).
---@param value any
---@param kind? string
---@return boolean
function errors.is(value, kind) end

return errors
