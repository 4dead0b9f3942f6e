-- expect: ERROR stack overflow
-- An error object whose __tostring calls tostring on itself: it breaks
-- when the host describes the error, and must still come out as a clear
-- ERROR (not a crash of the host's own error handling).
return {
  title = "a __tostring that recurses",
  timeout = 2,
  run = function(t)
    local obj = setmetatable({}, {})
    getmetatable(obj).__tostring = function(self) return "x" .. tostring(self) end
    local ok, err = pcall(tostring, obj)
    t:log("tostring: " .. tostring(err):sub(1, 120))
    error(err)
  end,
}
