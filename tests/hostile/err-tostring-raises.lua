-- expect: ERROR ^\S*err-tostring-raises\.lua:8: error object: \{\}
-- error(setmetatable({}, { __tostring = function() error("x") end })):
-- describing the error fails too; the host copes and says what it can.
return {
  title = "an error object whose __tostring raises",
  timeout = 2,
  run = function(t)
    error(setmetatable({}, { __tostring = function() error("x") end }))
  end,
}
