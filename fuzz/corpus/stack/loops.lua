-- CPU until the deadline, then what pcall can do about it.
local n = 0
pcall(function() while true do n = n + 1 end end)
return { n = n, date = os.date("!%Y-%m-%dT%H:%M:%S", os.time()), s = string.rep("x", 1000) }
