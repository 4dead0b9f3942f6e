-- expect: ERROR ^memory limit of 64 MiB exceeded( at .+:\d+)?$
-- args: --max-mem 64M
-- string.rep by the megabyte, each kept, each inside a pcall.
return {
  title = "string.rep past --max-mem",
  timeout = 5,
  run = function(t)
    local keep = {}
    while true do
      pcall(function() keep[#keep + 1] = string.rep("x", 1 << 20, tostring(#keep)) end)
    end
  end,
}
