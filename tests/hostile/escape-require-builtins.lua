-- expect: PASS
-- require serves host modules, lib files and Lua's own pure libraries
-- (string, table, math, utf8, coroutine: the very tables the globals hold)
-- only: the names of the full os/debug the sandbox hides, of io and
-- package, of popular C modules and of paths all fail with a message, and
-- a host module cannot be swapped in for another by name.
return {
  title = "require refuses everything but host modules and Lua's pure libraries",
  timeout = 2,
  run = function(t)
    for _, name in ipairs { "string", "table", "math", "utf8", "coroutine" } do
      t:expect(rawequal(require(name), _ENV[name]), "require %q is not the global %s", name, name)
    end
    for _, name in ipairs { "io", "os", "debug", "package", "_G", "halo.os", "halo.debug",
                            "ffi", "lfs", "socket", "posix", "cjson", "context", "internal", "mod_docker" } do
      local ok, err = pcall(require, name)
      t:expect(not ok and tostring(err):match("module '" .. name:gsub("%p", "%%%0") .. "' not found"),
               "require %q gave %s", name, tostring(err))
    end
    for _, name in ipairs { "../etc/passwd", "/etc/passwd", "a/b", "x..y", "", ".hidden" } do
      local ok, err = pcall(require, name)
      t:expect(not ok and tostring(err):match("module names are dotted words"), "require %q gave %s", name, tostring(err))
    end
    local json = require "json"
    t:expect(type(json.encode) == "function" and require("json") == json, "require 'json' is not the host module")
  end,
}
