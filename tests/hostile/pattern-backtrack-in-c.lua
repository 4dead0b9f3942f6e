-- expect: ERROR ^hard deadline: the worker did not finish within 3 s \(timeout 1 s \+ grace 2 s\) and was killed \(in step 'match'\)$
-- A pattern match that backtracks for ages inside C, where the
-- instruction counter cannot see it: only the runner's hard deadline
-- (timeout + grace) ends it, by killing the worker's process group.
return {
  title = "a runaway pattern match",
  timeout = 1,
  run = function(t)
    t:step("match", function()
      return string.rep("a", 30000):find(string.rep("a*", 30) .. "b")
    end)
  end,
}
