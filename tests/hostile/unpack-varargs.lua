-- expect: PASS
-- Huge argument lists everywhere Lua takes varargs: select, a function
-- call, string.char, coroutine.resume and wrap, table.pack, print
-- (task.spawn has scripts of its own: unpack-spawn-*).
-- Each is refused with a message (caught) or handled; nothing crashes.
return {
  title = "huge argument lists",
  timeout = 2,
  run = function(t)
    local big = {}
    for i = 1, 250000 do big[i] = 65 end
    local function count(...) return select("#", ...) end
    local ok, n = pcall(function() return count(table.unpack(big)) end)
    t:expect(ok and n == 250000, "a 250000-argument call gave %s", tostring(n))
    local ok2, s = pcall(string.char, table.unpack(big))
    t:expect(ok2 and #s == 250000, "string.char of 250000 gave %s", tostring(s):sub(1, 80))
    local co = coroutine.create(function(...) return select("#", ...) end)
    local ok3, r3, n3 = pcall(coroutine.resume, co, table.unpack(big))
    t:expect(ok3, "coroutine.resume with 250000 arguments raised %s", tostring(r3))
    local wrapped = coroutine.wrap(function(...) coroutine.yield(select("#", ...)) end)
    t:expect(wrapped(table.unpack(big)) == 250000, "coroutine.wrap lost arguments")
    t:expect(table.pack(table.unpack(big)).n == 250000, "table.pack is broken")
    print(table.unpack(big, 1, 1000))
  end,
}
