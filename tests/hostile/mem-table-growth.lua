-- expect: ERROR ^memory limit of 64 MiB exceeded( at .+:\d+)? \(in step 'grow'\)$
-- args: --max-mem 64M
-- log: ^defer ran$
-- Table growth past the cap, each batch inside a pcall inside a
-- coroutine that tries to keep going after the memory error: the check
-- is stopped for good with the cap in the message, and its defers run.
return {
  title = "table growth past --max-mem",
  timeout = 5,
  run = function(t)
    t:defer(function() t:log("defer ran") end)
    local keep = {}
    t:step("grow", function()
      while true do
        coroutine.resume(coroutine.create(function()
          pcall(function() for i = 1, 1e5 do keep[#keep + 1] = { i, tostring(i) } end end)
        end))
      end
    end)
  end,
}
