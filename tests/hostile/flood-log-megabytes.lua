-- expect: ERROR ^timeout: the check exceeded its 1 s limit at .+:\d+$
-- log: \[cut: \d+ bytes in all\]
-- Log lines of a megabyte each, as fast as possible: each line is cut,
-- and the whole report must stay bounded (the test allows 16 MiB for the
-- run), not grow by hundreds of megabytes in the runner's memory.
return {
  title = "a flood of megabyte log lines",
  timeout = 1,
  run = function(t)
    local big = string.rep("L", 1 << 20)
    while true do t:log(big) end
  end,
}
