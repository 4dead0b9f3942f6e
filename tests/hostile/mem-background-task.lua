-- expect: ERROR ^memory limit of 64 MiB exceeded
-- args: --max-mem 64M
-- log: ^defer ran$
-- nolog: ^the run slept through it$
-- A background task fills memory while the run sleeps; the whole check
-- is stopped at once -- the run's sleep too, so the run's next line
-- never runs -- ERROR with the cap, and the defers run.
local task, time = require "task", require "time"
return {
  title = "a background task past --max-mem",
  timeout = 5,
  run = function(t)
    t:defer(function() t:log("defer ran") end)
    task.spawn(function()
      local keep = {}
      while true do keep[#keep + 1] = { #keep } end
    end)
    time.sleep(4)
    t:log("the run slept through it")
  end,
}
