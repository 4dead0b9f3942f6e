-- expect: ERROR stack overflow
-- pcall inside pcall inside pcall, without end, each level re-raising
-- what the deeper one caught: Lua's limits turn it into an error that
-- reaches the top as a plain ERROR.
return {
  title = "pcall nested without end",
  timeout = 2,
  run = function(t)
    local function nest()
      local ok, err = pcall(nest)
      error(err, 0)
    end
    nest()
  end,
}
