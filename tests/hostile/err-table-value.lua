-- expect: ERROR ^\S*err-table-value\.lua:8: error object: \{code = 42\}$
-- error() with a table that has no __tostring: an ERROR that says what
-- was raised.
return {
  title = "error({ code = 42 })",
  timeout = 2,
  run = function(t)
    error({ code = 42 })
  end,
}
