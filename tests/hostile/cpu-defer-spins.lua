-- expect: ERROR cleanup registered at \S*cpu-defer-spins\.lua:11: failed: cleanup exceeded its 2 s grace
-- log: ^the earlier defer ran$
-- A defer that spins inside pcalls: it is stopped at the grace, the
-- check is an ERROR naming where the defer was registered, and the
-- defer registered before it still runs.
return {
  title = "a defer that spins",
  timeout = 1,
  run = function(t)
    t:defer(function() t:log("the earlier defer ran") end)
    t:defer(function() while true do pcall(function() while true do end end) end end)
  end,
}
