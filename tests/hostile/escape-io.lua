-- expect: PASS
-- Every route to the io library a script might try: the global, _G,
-- _ENV, rawget, require, a chunk loaded with the default env, a chunk
-- loaded with _G as its env, and the string library (whose metatable is
-- hidden). Each finds nothing; the check asserts that and passes.
return {
  title = "io is out of reach by every route",
  timeout = 2,
  run = function(t)
    t:expect(io == nil, "the global io is %s", tostring(io))
    t:expect(_G.io == nil and _ENV.io == nil and rawget(_G, "io") == nil, "io is in _G/_ENV")
    local ok, mod = pcall(require, "io")
    t:expect(not ok and tostring(mod):match("module 'io' not found"), "require 'io' gave %s", tostring(mod))
    t:expect(load("return io")() == nil, "a loaded chunk sees io")
    t:expect(load("return io", "=x", "t", _G)() == nil, "a chunk with _G as env sees io")
    t:expect(load("return _ENV.io or _G.io")() == nil, "a loaded chunk's _ENV has io")
    t:expect(string.io == nil and ("").io == nil, "the string library carries io")
    t:expect(package == nil, "package (and package.loaded.io) is reachable: %s", tostring(package))
    local found = {}
    for _, lib in pairs(_G) do
      if type(lib) == "table" then
        for k, v in pairs(lib) do
          if k == "open" or k == "popen" or k == "lines" or k == "stdout" then found[#found + 1] = k end
        end
      end
    end
    t:expect(#found == 0, "file functions found in the libraries: %s", table.concat(found, ", "))
  end,
}
