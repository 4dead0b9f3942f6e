-- expect: ERROR ^memory limit of 64 MiB exceeded
-- args: --max-mem 64M
-- Millions of coroutines, each suspended and kept: every one costs a Lua
-- thread and its stack, inside the cap.
return {
  title = "millions of coroutines",
  timeout = 5,
  run = function(t)
    local keep = {}
    for i = 1, 1e7 do
      local co = coroutine.create(function(x) coroutine.yield(x) end)
      coroutine.resume(co, i)
      keep[i] = co
    end
    t:log("made " .. #keep .. " coroutines")
  end,
}
