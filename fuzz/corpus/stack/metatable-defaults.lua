-- Defaults through a metatable: the host reads fields (compose, harness)
-- of the table the file returns.
local defaults = { timeout = 30, compose = { project = "demo", files = { "compose.yml", "/abs/compose.override.yml" } } }
return setmetatable({ name = "demo" }, { __index = defaults })
