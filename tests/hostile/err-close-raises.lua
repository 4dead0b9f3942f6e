-- expect: ERROR err-close-raises\.lua:11: close handler failed
-- log: ^defer ran$
-- A to-be-closed value in the run whose __close raises as the run
-- returns: an ERROR with the close handler's message; defers run.
return {
  title = "a __close that raises",
  timeout = 2,
  run = function(t)
    t:defer(function() t:log("defer ran") end)
    local guard <close> = setmetatable({}, { __close = function()
      error("close handler failed")
    end })
  end,
}
