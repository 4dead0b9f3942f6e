-- expect: PASS
-- Evidence under new keys in a loop, for a second, each value 100 KB:
-- the report stays bounded.
return {
  title = "a flood of evidence",
  timeout = 2,
  run = function(t)
    local pad, started = string.rep("e", 100 * 1024), t:elapsed()
    for i = 1, 1e9 do
      t:evidence("key " .. i, pad)
      if t:elapsed() - started > 1 then break end
    end
  end,
}
