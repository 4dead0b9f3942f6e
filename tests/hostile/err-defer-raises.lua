-- expect: ERROR ^cleanup registered at \S*err-defer-raises\.lua:14: failed: \S*err-defer-raises\.lua:14: defer exploded; cleanup registered at \S*err-defer-raises\.lua:13: failed: \S*err-defer-raises\.lua:13: error object: \{\}$
-- log: ^the first defer ran$
-- Defers that raise: a string, then an error object whose __tostring
-- raises too. Each failure is reported with where the defer was
-- registered, the check is an ERROR, and the defer registered first
-- (run last) still runs.
return {
  title = "defers that raise",
  timeout = 2,
  run = function(t)
    t:defer(function() t:log("the first defer ran") end)
    local obj = setmetatable({}, { __tostring = function() error("tostring exploded") end })
    t:defer(function() error(obj) end)
    t:defer(function() error("defer exploded") end)
  end,
}
