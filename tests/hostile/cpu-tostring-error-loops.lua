-- expect: ERROR ^timeout: the check exceeded its 1 s limit at .+:\d+$
-- The run raises an error object whose __tostring spins. The host calls
-- it to describe the error -- on its own thread, after the task ended --
-- and must not hang there: the deadline stops it and the check is an
-- ERROR "timeout".
return {
  title = "an error object whose __tostring never returns",
  timeout = 1,
  run = function(t)
    error(setmetatable({}, { __tostring = function() while true do end end }))
  end,
}
