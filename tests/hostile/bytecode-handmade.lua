-- expect: ERROR bytecode-handmade\.lua:22: attempt to load a binary chunk \(mode is 't'\)
-- A hand-made Lua 5.4 binary chunk (header and a tiny main function):
-- refused by load with no mode, with mode 't', with nil mode and an env;
-- mode 'b' and 'bt' raise. The last, unprotected load ends the check with
-- Lua's refusal.
local HEADER = "\27Lua\x54\x00\x19\x93\r\n\x1a\n\x04\x08\x08\x78\x56\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x28\x77\x40"
local CHUNK = HEADER .. "\x01\x80\x80\x80\x00\x01\x02\x80\x81\x46\x00\x01\x01\x80\x80\x80\x80\x80"
return {
  title = "a hand-made binary chunk",
  timeout = 2,
  run = function(t)
    local f, err = load(CHUNK)
    t:expect(f == nil and err:match("attempt to load a binary chunk"), "load(chunk) gave %s", tostring(err))
    f, err = load(CHUNK, "=c", "t")
    t:expect(f == nil and err:match("attempt to load a binary chunk"), "load(chunk, 't') gave %s", tostring(err))
    f, err = load(CHUNK, "=c", nil, {})
    t:expect(f == nil and err:match("attempt to load a binary chunk"), "load(chunk, nil, env) gave %s", tostring(err))
    for _, mode in ipairs { "b", "bt", "tb" } do
      local ok, e = pcall(load, CHUNK, "=c", mode)
      t:expect(not ok and tostring(e):match("binary chunks are not allowed in halo"), "load mode %s gave %s", mode, tostring(e))
    end
    assert(load(CHUNK))
  end,
}
