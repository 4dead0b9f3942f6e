-- expect: ERROR yield-gsub-callback\.lua:9: time\.sleep cannot wait here: attempt to yield across a C-call boundary
-- time.sleep inside a string.gsub callback: refused the same way.
local time = require "time"
return {
  title = "time.sleep inside a gsub callback",
  timeout = 2,
  run = function(t)
    ("abc"):gsub(".", function(c)
      time.sleep(0.01)
      return c
    end)
  end,
}
