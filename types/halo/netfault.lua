---@meta netfault
-- LuaCATS annotations for halo's `netfault` module (docs/modules.md#netfault):
-- network faults through `halo proxy`, each undone at the end of the check.

---What the proxy says of a link (LINK in docs/modules.md).
---@class halo.NetLinkInfo
---@field name string
---@field listen string
---@field upstream string
---@field listening boolean
---@field faults table[]
---@field counters { accepted: integer, active: integer, refused: integer, resets: integer, bytes_up: integer, bytes_down: integer }

---A fault on a link; to-be-closed (`<close>` removes it).
---@class halo.NetFault
---@field id string
---@field type string
local Fault = {}
---`true` once the fault is gone (again: `true`), or `nil, err`.
---@return true|nil ok
---@return halo.Error? err
function Fault:remove() end
---The same as remove.
---@return true|nil ok
---@return halo.Error? err
function Fault:close() end
---The fault as the proxy holds it, with `affected`.
---@return table? info
---@return halo.Error? err
function Fault:info() end

---@alias halo.NetDirection "up"|"down"|"both"

---A link handle (nothing is sent until a method is called).
---@class halo.NetLink
local Link = {}
---@return halo.NetLinkInfo? info
---@return halo.Error? err
function Link:info() end
---The link is down: new connections refused, existing ones reset.
---@param opts? table
---@return halo.NetFault? fault
---@return halo.Error? err
function Link:cut(opts) end
---@param opts? { probability?: number }
---@return halo.NetFault? fault
---@return halo.Error? err
function Link:reset(opts) end
---@param opts? { direction?: halo.NetDirection, probability?: number }
---@return halo.NetFault? fault
---@return halo.Error? err
function Link:blackhole(opts) end
---Each chunk delayed `ms` ± `jitter` milliseconds.
---@param opts { ms: number, jitter?: number, direction?: halo.NetDirection, probability?: number }
---@return halo.NetFault? fault
---@return halo.Error? err
function Link:latency(opts) end
---At most `kbps` kilobytes (1024 bytes) per second.
---@param opts { kbps: number, direction?: halo.NetDirection, probability?: number }
---@return halo.NetFault? fault
---@return halo.Error? err
function Link:bandwidth(opts) end
---Pieces of at most `bytes`, `delay` milliseconds apart.
---@param opts { bytes: integer, delay?: number, direction?: halo.NetDirection, probability?: number }
---@return halo.NetFault? fault
---@return halo.Error? err
function Link:slice(opts) end
---The connection closed after `bytes` more.
---@param opts { bytes: integer, direction?: halo.NetDirection, probability?: number }
---@return halo.NetFault? fault
---@return halo.Error? err
function Link:limit(opts) end
---Every fault removed and the listener open.
---@return halo.NetLinkInfo? info
---@return halo.Error? err
function Link:heal() end

---@class halo.NetProxy
local Proxy = {}
---@return halo.NetLinkInfo[]? links
---@return halo.Error? err
function Proxy:links() end
---@return true|nil ok
---@return halo.Error? err
function Proxy:health() end
---@param name string
---@return halo.NetLink
function Proxy:link(name) end
---Every link healed.
---@return halo.NetLinkInfo[]? links
---@return halo.Error? err
function Proxy:heal() end

---@class halo.netfaultlib
local netfault = {}

---A proxy handle (nothing is sent); by default `stack.proxy.control`.
---@param opts? { url?: string }
---@return halo.NetProxy
function netfault.proxy(opts) end

return netfault
