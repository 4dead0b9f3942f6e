-- expect: PASS
-- Waits where Lua 5.4 can suspend: in a generic-for iterator, in __index,
-- __call, __eq, __lt and __concat reached from Lua code, and in pcall.
-- They work (the task suspends through them) -- and a __close that waits
-- as its scope ends normally works too.
local time = require "time"
return {
  title = "waits in iterators and metamethods",
  timeout = 2,
  run = function(t)
    local n = 0
    for i in function(_, i) time.sleep(0) if i < 3 then return i + 1 end end, nil, 0 do n = n + i end
    t:expect(n == 6, "the iterator gave %d", n)
    local obj = setmetatable({}, {
      __index = function(_, k) time.sleep(0) return k end,
      __call = function() time.sleep(0) return "called" end,
      __concat = function() time.sleep(0) return "joined" end,
      __lt = function() time.sleep(0) return true end,
    })
    t:expect(obj.x == "x" and obj() == "called" and obj .. "s" == "joined" and obj < obj, "a metamethod that waits failed")
    t:expect(pcall(time.sleep, 0), "pcall around time.sleep failed")
    do
      local guard <close> = setmetatable({}, { __close = function() time.sleep(0.01) n = -1 end })
    end
    t:expect(n == -1, "the __close did not run")
  end,
}
