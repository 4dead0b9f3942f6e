-- expect: ERROR escape-os-remove\.lua:8: attempt to call a nil value \(field 'remove'\)
-- Removes the victim file the test created; there is no os.remove, so
-- the file stays (the test checks it after every run).
return {
  title = "os.remove on the victim file",
  timeout = 2,
  run = function(t, stack)
    assert(os.remove(stack.victim))
  end,
}
