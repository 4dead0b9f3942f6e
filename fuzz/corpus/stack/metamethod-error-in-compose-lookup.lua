return setmetatable({}, { __index = function(t, k) error("no field " .. k) end })
