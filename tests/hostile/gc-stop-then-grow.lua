-- expect: ERROR gc-stop-then-grow\.lua:9: collectgarbage\('stop'\) is not allowed in halo
-- Stopping the collector would let garbage pile up to the cap; the call
-- itself is refused, unprotected here, so the check is an ERROR.
return {
  title = "collectgarbage('stop') and grow",
  timeout = 2,
  run = function(t)
    local keep = {}
    collectgarbage("stop")
    for i = 1, 1e7 do keep[i % 10] = {} end
  end,
}
