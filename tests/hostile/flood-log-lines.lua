-- expect: ERROR ^timeout: the check exceeded its 1 s limit at .+:\d+$
-- log: more log lines, failures or evidence were dropped \(the report keeps 5000 lines
-- Log lines as fast as the check can make them, until its timeout: the
-- report keeps the first few thousand and says how many it dropped.
return {
  title = "a flood of log lines",
  timeout = 1,
  run = function(t)
    local i = 0
    while true do
      i = i + 1
      t:log("line", i)
      print("print line", i)
    end
  end,
}
