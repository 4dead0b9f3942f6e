-- expect: ERROR ^timeout: the check exceeded its 1 s limit at .+:\d+$
-- log: ^defer ran$
-- The busy loop moves into an xpcall message handler when the deadline
-- error arrives: Lua runs the handler while it unwinds that error. The
-- handler is the check's code like any other: the soft deadline must
-- stop it (ERROR "timeout", defers run), not only the hard deadline's
-- kill of the whole worker.
return {
  title = "a message handler that never returns",
  timeout = 1,
  run = function(t)
    t:defer(function() t:log("defer ran") end)
    xpcall(function() while true do end end, function() while true do end end)
  end,
}
