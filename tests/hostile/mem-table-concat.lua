-- expect: ERROR memory limit of 64 MiB exceeded
-- args: --max-mem 64M
-- table.concat builds its result in a buffer of its own: 48 MiB of
-- pieces joined into one more 48 MiB string does not fit a 64 MiB cap.
return {
  title = "table.concat past --max-mem",
  timeout = 5,
  run = function(t)
    local piece = string.rep("y", 1 << 20)
    local parts = {}
    for i = 1, 48 do parts[i] = piece .. i end
    local all = table.concat(parts)
    t:log("joined " .. #all .. " bytes")
  end,
}
