-- expect: ERROR ^cleanup registered at \S*err-defer-yields-in-sort\.lua:9: failed: .*attempt to yield across a C-call boundary
-- A defer whose cleanup sleeps inside a table.sort comparator: a clear
-- ERROR naming the defer and the C-call boundary.
local time = require "time"
return {
  title = "a defer that waits inside table.sort",
  timeout = 2,
  run = function(t)
    t:defer(function() table.sort({ 3, 1, 2 }, function(a, b) time.sleep(0.01) return a < b end) end)
  end,
}
