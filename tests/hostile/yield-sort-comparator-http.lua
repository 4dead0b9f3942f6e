-- expect: ERROR yield-sort-comparator-http\.lua:12: http\.request cannot wait here: attempt to yield across a C-call boundary
-- An http request inside a table.sort comparator: Lua cannot suspend the
-- task across the C sort, so the request is refused with a message that
-- says why (and is never sent).
local http = require "http"
return {
  title = "http.get inside a table.sort comparator",
  timeout = 2,
  run = function(t, stack)
    local list = { 3, 1, 2 }
    table.sort(list, function(a, b)
      http.get(stack.server .. "/forbidden/sort")
      return a < b
    end)
  end,
}
