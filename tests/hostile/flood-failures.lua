-- expect: FAIL ^\S*flood-failures\.lua:10: failure 1 x+ \(and \d+ more\)$
-- t:fail with long messages in a loop, for a second: FAIL with the
-- first failure and the count of the others; the report stays bounded.
return {
  title = "a flood of failures",
  timeout = 2,
  run = function(t)
    local pad, started = string.rep("x", 100 * 1024), t:elapsed()
    for i = 1, 1e9 do
      t:fail("failure %d %s", i, pad)
      if t:elapsed() - started > 1 then break end
    end
  end,
}
