-- expect: PASS
-- Ways to smuggle another program past an allow list that names only
-- sleep: an absolute path to a shell, a relative path, a path ending in
-- /sleep that is something else, env PATH and cwd games, env as a
-- launcher, an argv[0] with a NUL. Each is refused (or runs sleep);
-- nothing creates the marker file.
local proc = require "proc"
return {
  title = "proc.run allow-list tricks",
  timeout = 2,
  run = function(t, stack)
    local tries = {
      { argv = { "/bin/sh", "-c", "touch " .. stack.marker } },
      { argv = { "./sleep", "0" }, cwd = "/bin" },
      { argv = { "../../bin/sh", "-c", "touch " .. stack.marker } },
      { argv = { "/tmp/sleep", "0" } },
      { argv = { "sh", "-c", "touch " .. stack.marker }, env = { PATH = "/nonexistent" } },
      { argv = { "env", "sh", "-c", "touch " .. stack.marker } },
    }
    for i, opts in ipairs(tries) do
      local ok, res, err = pcall(proc.run, opts)
      t:expect(not ok or res == nil, "try %d (%s) ran: %s", i, opts.argv[1], tostring(res and res.code))
    end
    -- a NUL in argv[0]: refused, or it runs what the part before the NUL
    -- names (sleep), never sh
    local ok, res = pcall(proc.run, { argv = { "sleep\0sh", "0" } })
    t:expect(not ok or (res and res.code == 0), "sleep\\0sh ran something else: %s", tostring(res and res.code))
    res = proc.run { argv = { "sleep", "0" } }
    t:expect(res and res.code == 0, "the allowed sleep did not run")
  end,
}
