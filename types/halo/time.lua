---@meta time
-- LuaCATS annotations for halo's `time` module (docs/modules.md#time), read
-- by lua-language-server; not loaded by halo. tests/engine/test_types.py
-- keeps every function docs/modules.md documents here.

---@class halo.timelib
local time = {}

---Sleeps `seconds` (a float) without blocking other tasks; `sleep(0)` lets
---every other ready task run first.
---@param seconds number
function time.sleep(seconds) end

---Seconds since the epoch, sub-millisecond (wall clock: for timestamps).
---@return number
function time.now() end

---Monotonic seconds (for measuring intervals: never jumps).
---@return number
function time.mono() end

return time
