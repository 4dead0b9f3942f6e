-- expect: ERROR escape-require-nul\.lua:10: bad argument #1 to 'require' \(module names are dotted words
-- A module name with an embedded NUL: "json\0/../../etc/passwd" must be
-- refused like any other name that is not dotted words, not cut at the
-- NUL and served as "json" (or, with a lib directory, as whatever file
-- the part before the NUL names).
return {
  title = "require of a name with a NUL byte",
  timeout = 2,
  run = function(t)
    local mod = require("json\0/../../etc/passwd")
    t:log("require returned a " .. type(mod))
  end,
}
