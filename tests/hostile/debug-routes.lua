-- expect: PASS
-- debug keeps only traceback: no hooks, no registry, no upvalues or
-- locals, no metatables of other types, no C stack limit; also not in a
-- loaded chunk. traceback itself works on this thread and on a
-- coroutine of its own, and passes a non-string message through.
return {
  title = "debug has only traceback",
  timeout = 2,
  run = function(t)
    for _, name in ipairs { "sethook", "gethook", "getregistry", "getupvalue", "setupvalue", "upvalueid",
                            "upvaluejoin", "getinfo", "getlocal", "setlocal", "getmetatable", "setmetatable",
                            "getuservalue", "setuservalue", "setcstacklimit", "debug" } do
      t:expect(debug[name] == nil, "debug.%s exists", name)
      t:expect(load("return debug." .. name)() == nil, "debug.%s exists in a loaded chunk", name)
    end
    local names = {}
    for k in pairs(debug) do names[#names + 1] = k end
    t:expect(#names == 1 and names[1] == "traceback", "debug has %s", table.concat(names, ","))
    t:expect(debug.traceback("here"):match("^here\nstack traceback:"), "traceback is broken")
    local co = coroutine.create(function() coroutine.yield() end)
    coroutine.resume(co)
    t:expect(type(debug.traceback(co, "co")) == "string", "traceback of a coroutine is broken")
    local obj = {}
    t:expect(debug.traceback(obj) == obj, "traceback of a table did not pass it through")
    t:expect(type(debug.traceback("x", 1e9)) == "string", "traceback at a huge level is broken")
  end,
}
