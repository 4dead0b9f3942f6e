-- expect: FAIL err-expect-format-arg-raises\.lua:10: value: %s \(message could not be formatted: .*tostring exploded\) \(and 2 more\)$
-- t:expect(false, "value: %s", obj) where obj's __tostring raises: the
-- failure is recorded with the format and why it could not be filled
-- in; the check goes on (and FAILs).
return {
  title = "t:expect with a format argument whose __tostring raises",
  timeout = 2,
  run = function(t)
    local obj = setmetatable({}, { __tostring = function() error("tostring exploded") end })
    t:expect(false, "value: %s", obj)
    t:expect(false, "value: %d", {})
    t:fail("%s %s %s", obj, nil, obj)
  end,
}
