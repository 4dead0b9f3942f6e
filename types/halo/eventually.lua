---@meta eventually
-- LuaCATS annotations for halo's `eventually` module (docs/modules.md#eventually).

---`eventually{ timeout = s, interval = s }(fn)` calls `fn` until it returns
---a truthy value or `timeout` passes (defaults 10 s, 0.1 s), and returns
---`ok, seconds, last_value, attempts`.
---@alias halo.eventually fun(opts?: { timeout?: number, interval?: number }): fun(fn: fun(): any): boolean, number, any, integer

---@type halo.eventually
local eventually

return eventually
