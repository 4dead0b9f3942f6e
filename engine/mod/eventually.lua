-- eventually{ timeout = s, interval = s }(fn): call fn until it returns a
-- truthy value or the timeout passes; for "within the cache TTL" checks.
-- Returns ok, seconds it took, fn's last result, attempts.
local _, internal = ...
local time = require "time"
local type, error, pairs, tostring = type, error, pairs, tostring

local KNOWN = { "timeout", "interval" }

return function(opts)
  if type(opts) ~= "table" then error("bad argument #1 to 'eventually' (table expected)", 2) end
  internal.check_options("eventually", 1, opts, KNOWN)
  local timeout = opts.timeout or 10
  local interval = opts.interval or 0.1
  if type(timeout) ~= "number" or timeout < 0 then error("bad argument #1 to 'eventually' (timeout must be seconds)", 2) end
  if type(interval) ~= "number" or interval <= 0 then error("bad argument #1 to 'eventually' (interval must be positive seconds)", 2) end
  return function(fn)
    if type(fn) ~= "function" then error("bad argument #1 to 'eventually(...)' (function expected)", 2) end
    local started = time.mono()
    local attempts = 0
    while true do
      attempts = attempts + 1
      local value = fn()
      local took = time.mono() - started
      if value then return true, took, value, attempts end
      if took >= timeout then return false, took, value, attempts end
      -- the last attempt lands on the timeout, not past it
      local pause = interval
      if took + pause > timeout then pause = timeout - took end
      time.sleep(pause)
    end
  end
end
