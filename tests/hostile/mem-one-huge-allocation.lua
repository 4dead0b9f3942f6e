-- expect: ERROR memory limit of 64 MiB exceeded
-- args: --max-mem 64M
-- One string of 1 GiB, far past a 64 MiB cap: refused at once (nothing
-- is allocated), and the message names the cap, so the operator knows it
-- was halo's limit and not the machine running out.
return {
  title = "one 1 GiB string",
  timeout = 5,
  run = function(t)
    local s = string.rep("x", 1 << 30)
    t:log("got " .. #s .. " bytes")
  end,
}
