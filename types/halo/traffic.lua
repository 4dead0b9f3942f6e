---@meta traffic
-- LuaCATS annotations for halo's `traffic` module (docs/modules.md#traffic).

---@class halo.TrafficOpts
---@field request halo.HttpOpts|fun(): (halo.HttpResponse?, halo.Error?)
---@field rate? number requests per second in all
---@field concurrency? integer worker tasks (default rate / 10, at least 1)
---@field ok? fun(res: halo.HttpResponse): boolean default: status below 400

---@class halo.TrafficStats
---@field sent integer
---@field ok integer
---@field failures integer
---@field by_status table<integer, integer>
---@field by_error table<string, integer>
---@field latency { p50: number, p95: number, p99: number, max: number }
---@field longest_failure_window? { start: number, ["end"]: number, seconds: number }
---@field first_failures table[]
---@field first_ok? number
---@field seconds number
---@field rate number
---@field late integer
---@field origin number the time.mono() at which the flow started

---A flow of requests; to-be-closed: stops at the end of the scope.
---@class halo.TrafficFlow
local Flow = {}

---Lets in-flight requests finish, then returns the summary.
---@return halo.TrafficStats
function Flow:stop() end

---The summary so far, without stopping; `since` (a time.mono() value)
---counts only the requests that started at or after it.
---@param opts? { since?: number }
---@return halo.TrafficStats
function Flow:stats(opts) end

---@class halo.trafficlib
local traffic = {}

---Starts requests flowing in background tasks.
---@param opts halo.TrafficOpts
---@return halo.TrafficFlow
function traffic.start(opts) end

return traffic
