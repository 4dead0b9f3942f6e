-- expect: ERROR ^err-huge-message: x{1000}
-- A 20 MB error message: the report must stay readable and small (the
-- message cut, with a note), not carry 20 MB per field.
return {
  title = "a 20 MB error message",
  timeout = 2,
  run = function(t)
    error("err-huge-message: " .. string.rep("x", 20 * 1024 * 1024), 0)
  end,
}
