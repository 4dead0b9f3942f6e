-- expect: PASS
-- Type confusion through a host metatable: with res.headers' metatable
-- reachable, its C __index could be called with something that is not a
-- headers table (a number read as a table crashed the worker). The host's
-- metatables are hidden: getmetatable gives false, and the route is closed.
-- (headers_index also refuses a non-table as a bad argument.)
local http = require "http"
return {
  title = "the headers' __index out of reach",
  timeout = 2,
  run = function(t, stack)
    local res = assert(http.get(stack.server .. "/fast"))
    t:expect(getmetatable(res.headers) == false, "the headers' metatable is reachable: %s",
             tostring(getmetatable(res.headers)))
    t:expect(res.headers["Content-Type"] ~= nil, "headers no longer read case-insensitively")
  end,
}
