-- expect: ERROR ^timeout: the check exceeded its 1 s limit at .+:\d+ \(in step 'spin'\)$
-- log: ^defer ran$
-- A busy loop three pcalls deep, inside an xpcall whose handler restarts
-- it, all inside a loop that catches everything: the deadline error
-- cannot be caught, the check is ERROR "timeout" naming the step, and
-- its defers run.
return {
  title = "while true do end inside nested pcall",
  timeout = 1,
  run = function(t)
    t:defer(function() t:log("defer ran") end)
    t:step("spin", function()
      while true do
        xpcall(function()
          pcall(pcall, pcall, function() while true do end end)
        end, function(e) return pcall(error, e) end)
      end
    end)
  end,
}
