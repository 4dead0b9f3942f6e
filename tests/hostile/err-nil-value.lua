-- expect: ERROR ^\S*err-nil-value\.lua:7: \(error object is nil\)$
-- error(nil): still an ERROR, and the message says what happened.
return {
  title = "error(nil)",
  timeout = 2,
  run = function(t)
    error(nil)
  end,
}
