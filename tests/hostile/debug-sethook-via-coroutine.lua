-- expect: ERROR debug-sethook-via-coroutine\.lua:10: attempt to call a nil value \(field 'sethook'\)
-- A hook would outlive the instruction counter the sandbox sets (and
-- could turn the deadline off); debug.sethook on a coroutine of its own
-- is as absent as on the main thread.
return {
  title = "debug.sethook on a coroutine",
  timeout = 2,
  run = function(t)
    local co = coroutine.create(function() while true do coroutine.yield() end end)
    debug.sethook(co, function() end, "", 0)
  end,
}
