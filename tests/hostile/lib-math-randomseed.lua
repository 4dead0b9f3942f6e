-- expect: PASS
-- Seeds math.random with a fixed value and replaces math members. The
-- canary, beside it and after it, must not draw the seeded sequence --
-- and, since each check is its own process and state, it must not draw
-- this check's unseeded sequence either (the test compares both
-- "random" evidences): checks that make up names with math.random must
-- not all make up the same ones.
return {
  title = "math.randomseed(42)",
  timeout = 2,
  run = function(t)
    t:evidence("random", string.format("%.17g %.17g %.17g", math.random(), math.random(), math.random()))
    math.randomseed(42)
    math.random = function() return 4 end
    math.pi, math.huge, math.maxinteger = 3, 0, 1
    math.floor = nil
    t:expect(math.random() == 4, "math.random was not replaced")
  end,
}
