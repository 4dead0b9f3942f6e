-- expect: ERROR ^\S*err-tostring-wrong-type\.lua:9: error object: \{\}
-- An error object whose __tostring returns a table, then one returning
-- nothing: Lua refuses those as descriptions; the host copes.
return {
  title = "an error object whose __tostring returns a table",
  timeout = 2,
  run = function(t)
    local ok = pcall(error, setmetatable({}, { __tostring = function() end }))
    error(setmetatable({}, { __tostring = function() return {} end }))
  end,
}
