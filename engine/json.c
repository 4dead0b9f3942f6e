/* The json module: Debian's lua-cjson, linked in, behind a small surface
 * with one null sentinel. Invalid JSON text is data (nil, err); values
 * that cannot be encoded are misuse and raise. */
#include "modules.h"

#include <lauxlib.h>
#include <lua-cjson.h>

/* json.decode(text) -> value | nil, err */
static int json_decode(lua_State *L)
{
    luaL_checkstring(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    return 1;
}

int luaopen_json(lua_State *L)
{
    luaopen_cjson(L); /* a fresh cjson instance: settings stay this state's own */
    int cj = lua_gettop(L);
    lua_createtable(L, 0, 4);
    lua_getfield(L, cj, "encode");
    lua_setfield(L, -2, "encode");
    lua_getfield(L, cj, "decode");
    lua_pushcclosure(L, json_decode, 1);
    lua_setfield(L, -2, "decode");
    lua_getfield(L, cj, "null");
    lua_setfield(L, -2, "null");
    /* Sparse arrays (holes) encode as arrays with nulls rather than failing
     * on evidence tables like {1, nil, 3}. */
    lua_getfield(L, cj, "encode_sparse_array");
    lua_pushboolean(L, 1);
    lua_call(L, 1, 0);
    lua_remove(L, cj);
    return 1;
}
