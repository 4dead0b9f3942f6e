-- expect: ERROR ^\(error object is a table value\)$
-- error() with a table that has no __tostring: an ERROR that says what
-- was raised.
return {
  title = "error({ code = 42 })",
  timeout = 2,
  run = function(t)
    error({ code = 42 })
  end,
}
