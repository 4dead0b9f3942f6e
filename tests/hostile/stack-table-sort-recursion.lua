-- expect: ERROR stack overflow
-- A table.sort comparator that sorts again: each level is the C sort
-- calling Lua calling sort.
return {
  title = "recursion through table.sort",
  timeout = 2,
  run = function(t)
    local function cmp(a, b)
      table.sort({ 3, 2, 1 }, cmp)
      return a < b
    end
    table.sort({ 3, 2, 1 }, cmp)
  end,
}
