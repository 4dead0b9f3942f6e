-- expect: ERROR escape-io-lines\.lua:8: attempt to index a nil value \(global 'io'\)
-- Reads a file the test owns, the direct way. There is no io: a clear
-- ERROR naming the line, and the file is untouched.
return {
  title = "io.lines on the victim file",
  timeout = 2,
  run = function(t, stack)
    for line in io.lines(stack.victim) do t:log(line) end
  end,
}
