-- A variant that includes its base; here the base is the file itself, so
-- include() must stop at its nesting limit.
local stack = include("stack.lua")
stack.name = stack.name .. ", multi-tenant"
return stack
