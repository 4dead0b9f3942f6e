-- expect: ERROR gc-finalizer-http\.lua:11: setmetatable: __gc finalizers are not allowed in halo
-- A finalizer would run whenever the collector likes -- after the check
-- ended, on the host's own thread, with hooks off -- and here it would
-- send a request. setmetatable refuses a metatable with __gc; the
-- request is never sent (the test watches /forbidden on its server).
local http = require "http"
return {
  title = "a __gc that calls http",
  timeout = 2,
  run = function(t, stack)
    HALO_STASH = setmetatable({}, { __gc = function() http.get(stack.server .. "/forbidden/gc") end })
  end,
}
