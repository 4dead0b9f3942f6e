-- The one error type: whatever module a check calls, the world failing is
-- `nil, err` with err.kind (a short word to branch on), err.message, and
-- tostring(err) == err.message; every such err shares one metatable, so a
-- helper that handles one module's errors handles them all.
-- Run: build/halo exec --lib tests/lua/lib tests/lua/test_errors.lua

local unit = require "unit"
local test, eq = unit.test, unit.eq

-- a loopback port nothing listens on (below 1024, and no test server uses it)
local closed_port = 1

local errors_mod = require "errors"
local errors = {}
local function collect(what, value, err)
  eq(value, nil, what .. " gave a value")
  errors[#errors + 1] = { what = what, err = err }
end

test("each module fails as data", function()
  collect("json.decode", json.decode("{oops"))
  collect("zlib.inflate", zlib.inflate("not a zlib stream"))
  collect("http.get", http.get("http://127.0.0.1:" .. closed_port .. "/", { timeout = 5 }))
  collect("sql.connect", sql.connect("postgres://halo@127.0.0.1:" .. closed_port .. "/x", { connect_timeout = 5 }))
  local slow = task.spawn(function() time.sleep(1) end)
  collect("task:join", slow:join(0.01))
  slow:cancel()
end)

test("every error has a kind, a message and prints as its message", function()
  local kinds = {}
  for _, e in ipairs(errors) do
    local err = e.err
    eq(type(err), "table", e.what .. ": err")
    eq(type(err.kind), "string", e.what .. ": err.kind")
    assert(err.kind:match("^[%l_]+$"), e.what .. ": kind is a word: " .. err.kind)
    eq(type(err.message), "string", e.what .. ": err.message")
    eq(tostring(err), err.message, e.what .. ": tostring(err)")
    kinds[e.what] = err.kind
  end
  eq(kinds["json.decode"], "json", "json.decode's kind")
  eq(kinds["zlib.inflate"], "corrupt", "zlib.inflate's kind")
  eq(kinds["http.get"], "connect", "http.get's kind")
  eq(kinds["sql.connect"], "connect", "sql.connect's kind")
  eq(kinds["task:join"], "timeout", "task:join's kind")
end)

test("one type for all of them", function()
  local mt = getmetatable(errors[1].err)
  assert(mt, "the error has no metatable")
  for _, e in ipairs(errors) do
    assert(rawequal(getmetatable(e.err), mt), e.what .. "'s error is of another type")
  end
end)

test("errors.new makes the same type, for scripts and shared helpers", function()
  local e = errors_mod.new("status", "GET /templates on api1: HTTP 401", { status = 401 })
  assert(rawequal(getmetatable(e), getmetatable(errors[1].err)), "errors.new made another type")
  eq(e.kind, "status", "kind")
  eq(e.status, 401, "a field")
  eq(tostring(e), "GET /templates on api1: HTTP 401", "tostring")
  eq(errors_mod.is(e), true, "errors.is")
  eq(errors_mod.is(e, "status"), true, "errors.is with its kind")
  eq(errors_mod.is(e, "timeout"), false, "errors.is with another kind")
  eq(errors_mod.is({ kind = "status", message = "x" }), false, "a look-alike table")
  eq(errors_mod.is(errors[1].err, "json"), true, "a module's error")
  unit.raises("cannot replace kind or message", errors_mod.new, "a", "b", { kind = "c" })
  unit.raises("bad argument #1 to '%?' %(string expected, got nil%)", errors_mod.new, nil, "b")
end)

test("unknown options raise in one wording, naming what is known", function()
  local calls = {
    { "zlib.inflate", function() return zlib.inflate("x", { maxx = 1 }) end },
    { "proc.run", function() return proc.run { argv = { "true" }, timout = 1 } end },
    { "eventually", function() return eventually { timout = 1 } end },
    { "traffic.start", function() return traffic.start { rat = 1 } end },
    { "docker.containers", function() return docker.containers { al = true } end },
  }
  for _, c in ipairs(calls) do
    local ok, err = pcall(c[2])
    eq(ok, false, c[1] .. " accepted an unknown option")
    assert(tostring(err):match("bad argument #%d to '[%w_?]+' %(unknown option '%w+'; known: [%w_, ]+%)$"),
           c[1] .. ": " .. tostring(err))
  end
end)

unit.finish("test_errors")
