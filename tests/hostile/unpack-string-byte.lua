-- expect: ERROR unpack-string-byte\.lua:9: stack overflow \(string slice too long\)
-- string.byte over all of a 10 MB string: ten million results do not
-- fit the stack; refused as "string slice too long".
return {
  title = "string.byte of a whole big string",
  timeout = 2,
  run = function(t)
    local s = string.rep("x", 10000000)
    return s:byte(1, -1)
  end,
}
