-- Fields the table does not set come from the environment, looked up when
-- something reads them: STACK_LB for stack.lb, and so on.
return setmetatable({ name = "env-fallback", compose = { project = "demo" } }, {
  __index = function(t, k) return env("STACK_" .. tostring(k):upper()) end,
})
