-- The sandbox's surface as a script sees it: which libraries and functions
-- exist, what load and collectgarbage accept, what require finds and what
-- it says when it finds nothing.
-- Run: build/halo exec --lib tests/lua/lib tests/lua/test_sandbox_surface.lua  (an error = a failure)

local unit = require "unit"
local test, eq, raises = unit.test, unit.eq, unit.raises
local function keys(t)
  local list = {}
  for k in pairs(t) do list[#list + 1] = tostring(k) end
  table.sort(list)
  return table.concat(list, ",")
end

test("no io, package, dofile, loadfile or string.dump", function()
  eq(type(io), "nil", "io")
  eq(type(package), "nil", "package")
  eq(type(dofile), "nil", "dofile")
  eq(type(loadfile), "nil", "loadfile")
  eq(type(string.dump), "nil", "string.dump")
  eq(type(("").dump), "nil", "string.dump through the string metatable")
end)

test("os has exactly time, clock, date and difftime", function()
  eq(keys(os), "clock,date,difftime,time", "os")
  eq(math.type(os.time()), "integer", "os.time()")
  eq(type(os.clock()), "number", "os.clock()")
  eq(type(os.date("!%Y-%m-%d")), "string", "os.date")
  eq(os.difftime(10, 4), 6.0, "os.difftime")
end)

test("debug has only traceback", function()
  eq(keys(debug), "traceback", "debug")
  local tb = debug.traceback("marker")
  assert(tb:find("^marker\nstack traceback:"), "traceback was " .. tb)
end)

test("the safe libraries are all there", function()
  for _, name in ipairs({ "string", "table", "math", "utf8", "coroutine" }) do
    eq(type(_G[name]), "table", name)
  end
  for _, name in ipairs({ "assert", "error", "pcall", "xpcall", "select", "type", "tostring", "tonumber",
                          "pairs", "ipairs", "next", "rawget", "rawset", "rawequal", "rawlen",
                          "setmetatable", "getmetatable", "load", "require", "print", "collectgarbage" }) do
    eq(type(_G[name]), "function", name)
  end
  eq(_VERSION, "Lua 5.4", "_VERSION")
  eq(utf8.char(0x2713), "✓", "utf8.char")
  eq(("%5.1f"):format(3.14159), "  3.1", "string methods through the metatable")
end)

test("the string metatable is the state's own, as in plain Lua", function()
  local mt = getmetatable("")
  eq(mt.__index, string, "getmetatable('').__index")
  mt.__index = setmetatable({ shout = function(s) return s:upper() .. "!" end }, { __index = string })
  eq(("hey"):shout(), "HEY!", "a method added to strings")
  mt.__index = string
  eq(("").dump, nil, "string.dump stays out")
end)

test("load compiles text, with a name and an environment", function()
  local f = assert(load("return 1 + 1", "=text"))
  eq(f(), 2, "loaded chunk")
  local g = assert(load("return x * 2", "=env", "t", { x = 21 }))
  eq(g(), 42, "chunk with its own environment")
  local pieces = { "return ", "'reader'" }
  local i = 0
  local h = assert(load(function() i = i + 1 return pieces[i] end, "=reader"))
  eq(h(), "reader", "chunk from a reader function")
  local bad, err = load("return +", "=broken")
  eq(bad, nil, "a syntax error")
  assert(tostring(err):find("broken:1:"), "syntax error message was " .. tostring(err))
end)

test("load refuses bytecode however it is asked", function()
  local chunk = "\27Lua\x54\x00\x19\x93\r\n\x1a\n\x04\x08\x08" .. ("\0"):rep(32)
  local f, err = load(chunk, "=crafted")
  eq(f, nil, "load of a binary string")
  assert(tostring(err):find("binary chunk"), "message was " .. tostring(err))
  f = load(chunk, "=crafted", "t")
  eq(f, nil, "load of a binary string in mode t")
  raises("binary chunks are not allowed", load, chunk, "=crafted", "b")
  raises("binary chunks are not allowed", load, chunk, "=crafted", "bt")
  raises("binary chunks are not allowed", load, "return 1", "=text", "b")
  local parts, i = { "\27Lua", "\x54\x00" .. ("\0"):rep(40) }, 0
  f, err = load(function() i = i + 1 return parts[i] end, "=reader")
  eq(f, nil, "load of binary pieces from a reader")
  assert(tostring(err):find("binary chunk"), "reader message was " .. tostring(err))
end)

test("collectgarbage does all but stop the collector or retune it", function()
  eq(type(collectgarbage("count")), "number", "count")
  eq(collectgarbage("isrunning"), true, "isrunning")
  eq(collectgarbage(), 0, "collect (the default)")
  eq(type(collectgarbage("step")), "boolean", "step")
  eq(collectgarbage("generational"), "incremental", "generational")
  eq(collectgarbage("incremental"), "generational", "incremental")
  for _, opt in ipairs({ "stop", "restart", "setpause", "setstepmul" }) do
    raises("not allowed", collectgarbage, opt)
  end
  eq(collectgarbage("isrunning"), true, "still running")
end)

test("require gives Lua's own libraries, as the globals hold them", function()
  for _, name in ipairs({ "string", "table", "math", "utf8", "coroutine" }) do
    assert(rawequal(require(name), _ENV[name]), "require '" .. name .. "' is not the global " .. name)
  end
  eq(require("utf8").char(0x2713), "✓", "require('utf8').char")
end)

test("require gives the host modules by their short names", function()
  assert(rawequal(require "time", time), "require 'time' is not the time global")
  assert(rawequal(require "task", task), "require 'task' is not the task global")
  assert(rawequal(require "json", json), "require 'json' is not the json global")
  assert(rawequal(require "time", require "time"), "require does not cache")
end)

test("require of a missing module says where it looked", function()
  local err = raises("module 'no_such_mod_x' not found", require, "no_such_mod_x")
  assert(err:find("not a host module %(time, task, json"), "no list of host modules: " .. err)
  assert(err:find("no file '[^']*scripts/lib/no_such_mod_x%.lua'"), "no path tried: " .. err)
  local dotted = raises("not found", require, "no_such.pkg.mod")
  assert(dotted:find("no_such/pkg/mod%.lua"), "dots are not directories: " .. dotted)
end)

test("require finds no C library by name", function()
  for _, name in ipairs({ "os", "io", "debug", "package", "cjson", "cjson.safe", "lpeg", "socket", "ffi" }) do
    local err = raises("not found", require, name)
    assert(err:find("module '" .. name:gsub("%.", "%%.") .. "' not found"), name .. ": " .. err)
  end
end)

test("require refuses names that are paths", function()
  for _, name in ipairs({ "../etc/passwd", "..", "a..b", ".hidden", "a/b", "/tmp/x", "a.", "x y", "", "~root" }) do
    raises("module names are dotted words", require, name)
  end
  -- A NUL inside a name is refused like any other character that is not a
  -- dotted word: what follows it is never part of a path.
  local err = raises("module names are dotted words", require, "no_mod\0/../../etc/passwd")
  assert(not err:find("etc/passwd"), "NUL in a name: " .. err)
  raises("module names are dotted words", require, "json\0/../x")
  raises("bad argument #1", require)
  raises("bad argument #1", require, {})
end)

test("print is there and returns nothing", function()
  eq(select("#", print("test_sandbox_surface: print works")), 0, "print's results")
end)

test("a task handle, a thread and json.null expose no metatable", function()
  local h = task.spawn(function() end)
  eq(getmetatable(h), false, "task handle")
  eq(getmetatable(coroutine.running()), nil, "thread")
  eq(getmetatable(json.null), nil, "json.null")
  h:join()
end)

unit.finish("test_sandbox_surface")
