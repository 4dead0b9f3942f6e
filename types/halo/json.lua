---@meta json
-- LuaCATS annotations for halo's `json` module (docs/modules.md#json).

---@class halo.jsonlib
local json = {}

---The value JSON `null` decodes to (and encodes from).
---@type lightuserdata
json.null = nil

---JSON text; raises for values JSON cannot hold (functions, userdata).
---@param value any
---@return string
function json.encode(value) end

---The value, or `nil, err` (kind `json`) when `text` is not JSON.
---@param text string
---@return any value
---@return halo.Error? err
function json.decode(text) end

return json
