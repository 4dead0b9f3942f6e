-- expect: PASS
-- load("return os") and friends reach only the sandbox's own globals:
-- with the default env, with _G, with an empty env, with a nil env (the
-- chunk has no globals at all), with an env whose __index reaches back
-- into _G, and through a chunk that rebinds _ENV itself.
return {
  title = "load reaches no real globals",
  timeout = 2,
  run = function(t)
    local os1 = load("return os")()
    t:expect(os1 == os and os1.execute == nil and os1.getenv == nil, "load('return os') reaches the full os")
    t:expect(load("return os", "=x", "t", {})() == nil, "an empty env sees os")
    local f = load("return os", "=x", "t", nil)
    local ok, err = pcall(f)
    t:expect(not ok and tostring(err):match("upvalue '_ENV'"), "a nil env gave %s", tostring(err))
    local proxy = setmetatable({}, { __index = function(_, k) return _G[k] end })
    t:expect(load("return os.execute, io, debug.getinfo", "=x", "t", proxy)() == nil, "an __index env reaches os.execute")
    t:expect(load("local _ENV = ...; return os.exit", "=x", "t", nil)(_G) == nil, "a rebound _ENV reaches os.exit")
    t:expect(load("return require('os')")  ~= nil, "load itself fails")
    local ok2, err2 = pcall(load("return require('os')"))
    t:expect(not ok2 and tostring(err2):match("module 'os' not found"), "require('os') in a chunk gave %s", tostring(err2))
    -- the chunk's own upvalue is its env, not something the host shares
    local env = {}
    load("x = 1", "=x", "t", env)()
    t:expect(env.x == 1 and rawget(_G, "x") == nil, "a chunk with its own env wrote to _G")
  end,
}
