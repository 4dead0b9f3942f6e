-- The stack file for halo's reference HA stack in multi-tenant mode: stack.lua
-- with multi_tenant on, and a harness that brings the stack up with
-- MULTI_TENANT_ENABLED=true.
--
--   MULTI_TENANT_ENABLED=true tests/stack/up && build/halo run --stack tests/stack/stack-multi.lua
--   build/halo run --stack tests/stack/stack-multi.lua --up --down
local stack = include("stack.lua")
stack.name = stack.name .. ", multi-tenant"
stack.multi_tenant = true          -- the stack must run with MULTI_TENANT_ENABLED=true
stack.harness.up = { "env", "MULTI_TENANT_ENABLED=true", "./up" }
return stack
