-- expect: ERROR ^memory limit of 64 MiB exceeded( at .+:\d+)?$
-- args: --max-mem 64M
-- A string doubled with .. until it cannot be: the last doubling asks
-- for more than the cap has left while only half of it is in use. That
-- refusal is still the memory limit, and the message must say so with
-- the cap -- not a bare "not enough memory".
return {
  title = "s = s .. s past --max-mem",
  timeout = 5,
  run = function(t)
    local s = "halo"
    while true do s = s .. s end
  end,
}
