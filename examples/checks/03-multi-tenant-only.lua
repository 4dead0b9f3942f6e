-- Example check: `requires` turns a check into N/A with the reason, the way
-- the tenant-archive check does on a single-tenant stack.
return {
  title = "Runs only on a multi-tenant stack",
  tags = { "example" },
  timeout = 5,
  requires = function(stack)
    if not stack.multi_tenant then
      return false, "single-tenant stack (MULTI_TENANT_ENABLED is not true)"
    end
    return true
  end,
  run = function(t, stack)
    t:evidence("tenants", stack.tenants or {})
  end,
}
