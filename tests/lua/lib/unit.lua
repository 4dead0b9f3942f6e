-- The small harness the Lua unit tests share: named tests that each run
-- protected, equality and error-pattern assertions, and a summary that
-- raises when any test failed (so `halo exec` exits non-zero).
local M = {}
local failures, passed = {}, 0

function M.test(name, fn)
  local ok, err = pcall(fn)
  if ok then passed = passed + 1
  else failures[#failures + 1] = name .. ": " .. tostring(err) end
end

function M.eq(got, want, what)
  if got ~= want then
    error(string.format("%s: got %s, want %s", what, tostring(got), tostring(want)), 2)
  end
end

-- raises(pattern, fn, ...) -> the error, which must match pattern
function M.raises(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then error("expected an error matching '" .. pattern .. "', but the call succeeded", 2) end
  if not tostring(err):find(pattern) then
    error("error '" .. tostring(err) .. "' does not match '" .. pattern .. "'", 2)
  end
  return err
end

-- noise(n, seed) -> n bytes that compress poorly and occur nowhere by
-- chance (a linear congruential generator: the same seed, the same bytes)
function M.noise(n, seed)
  local out, x = {}, seed or 1
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 2147483648
    out[i] = string.char(x >> 16 & 255)
  end
  return table.concat(out)
end

function M.finish(suite)
  if #failures > 0 then
    for _, f in ipairs(failures) do print("FAIL " .. f) end
    error(#failures .. " failed, " .. passed .. " passed: " .. table.concat(failures, " | "), 0)
  end
  print(string.format("%s: %d passed", suite, passed))
end

return M
