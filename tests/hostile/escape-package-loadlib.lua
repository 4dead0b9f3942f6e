-- expect: ERROR escape-package-loadlib\.lua:8: attempt to index a nil value \(global 'package'\)
-- package.loadlib would load libc and call system(); there is no package
-- library at all.
return {
  title = "package.loadlib of libc",
  timeout = 2,
  run = function(t, stack)
    local system = package.loadlib("libc.so.6", "system")
    system("touch " .. stack.marker)
  end,
}
