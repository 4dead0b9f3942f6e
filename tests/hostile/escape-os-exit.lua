-- expect: ERROR escape-os-exit\.lua:10: attempt to call a nil value \(field 'exit'\)
-- log: ^defer ran$
-- os.exit(0) would end the worker with a clean exit status before it
-- reports, hoping to pass for PASS; there is no os.exit, the check is an
-- ERROR and its defers still run.
return {
  title = "os.exit(0) before the report",
  timeout = 2,
  run = function(t)
    t:defer(function() t:log("defer ran") end) os.exit(0, true)
  end,
}
