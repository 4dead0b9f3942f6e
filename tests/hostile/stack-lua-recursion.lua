-- expect: ERROR stack-lua-recursion\.lua:9: stack overflow
-- Unbounded recursion in Lua code (not a tail call): Lua's own stack
-- limit stops it with "stack overflow", a plain ERROR.
return {
  title = "deep Lua recursion",
  timeout = 2,
  run = function(t)
    local function dive(n)
      return 1 + dive(n + 1)
    end
    dive(1)
  end,
}
