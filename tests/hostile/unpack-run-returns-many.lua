-- expect: PASS
-- The run function returns a hundred values (say, the last line is
-- `return table.unpack(list)`). What run returns is ignored: the check
-- passes, the worker does not crash moving the values around.
return {
  title = "run returns 100 values",
  timeout = 2,
  run = function(t)
    local list = {}
    for i = 1, 100 do list[i] = i end
    return table.unpack(list)
  end,
}
