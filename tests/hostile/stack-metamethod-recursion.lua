-- expect: ERROR stack overflow
-- Recursion through metamethods: an __index that indexes itself, and an
-- __add that adds itself, each level a C call inside Lua's VM. The C
-- stack limit stops it; a plain ERROR, no crash.
return {
  title = "recursion through __index",
  timeout = 2,
  run = function(t)
    local loop = setmetatable({}, {})
    getmetatable(loop).__index = function(self, k) return self[k .. "x"] end
    local ok, err = pcall(function() return loop.a end)
    t:log("__index: " .. tostring(err):sub(1, 200))
    local num = setmetatable({}, {})
    getmetatable(num).__add = function(a, b) return a + b end
    return num + 1
  end,
}
