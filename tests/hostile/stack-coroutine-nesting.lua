-- expect: ERROR C stack overflow
-- Coroutines resumed inside coroutines, each creating the next: every
-- level is a nested resume in C. The limit stops it with an error that
-- reaches the run (through coroutine.wrap, which re-raises).
return {
  title = "deeply nested coroutines",
  timeout = 2,
  run = function(t)
    local function dive(n)
      return coroutine.wrap(dive)(n + 1)
    end
    dive(1)
  end,
}
