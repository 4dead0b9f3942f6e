-- expect: ERROR stack overflow
-- Recursion through string.gsub callbacks: each level is a C function
-- (gsub) calling Lua calling gsub again. The C stack limit stops it.
return {
  title = "recursion through gsub callbacks",
  timeout = 2,
  run = function(t)
    local function expand(s)
      return (s:gsub("x", function() return expand("xx") end))
    end
    expand("x")
  end,
}
