-- expect: ERROR escape-os-execute\.lua:8: attempt to call a nil value \(field 'execute'\)
-- os.execute would create the marker file the test watches; it does not
-- exist in the sandbox. (os.execute is on line 8.)
return {
  title = "os.execute creates the marker",
  timeout = 2,
  run = function(t, stack)
    os.execute("touch " .. stack.marker)
  end,
}
