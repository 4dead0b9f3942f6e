-- expect: ERROR string-metatable-index\.lua:10: attempt to index a boolean value
-- Changing getmetatable("").__index would redirect every string method
-- of the host's own Lua code; getmetatable("") is false, so the attempt
-- is a plain ERROR.
return {
  title = "getmetatable('').__index = ...",
  timeout = 2,
  run = function(t)
    local mt = getmetatable("")
    mt.__index = { rep = function() return "pwned" end }
  end,
}
