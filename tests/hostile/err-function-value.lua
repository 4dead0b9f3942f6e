-- expect: ERROR ^\S*err-function-value\.lua:8: \(error object is a function value\)$
-- error(print): an error value that is a function -- a host function at
-- that -- is described, never called.
return {
  title = "error(print)",
  timeout = 2,
  run = function(t)
    error(print)
  end,
}
