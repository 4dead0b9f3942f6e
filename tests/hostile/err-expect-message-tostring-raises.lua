-- expect: FAIL err-expect-message-tostring-raises\.lua:12: .*message could not be formatted
-- t:expect(false, msg) where msg is an object whose __tostring raises.
-- The expectation failed, and that must be what the report says: a FAIL
-- at the check's line, with a note that the message could not be made
-- (as t:expect already does for a bad format argument) -- not an ERROR
-- raised from inside t:expect that hides the failure.
return {
  title = "t:expect with a message whose __tostring raises",
  timeout = 2,
  run = function(t)
    local msg = setmetatable({}, { __tostring = function() error("tostring exploded") end })
    t:expect(false, msg)
  end,
}
