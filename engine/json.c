/* The json module: Debian's lua-cjson, linked in, behind a small surface
 * with one null sentinel. Invalid JSON text is data (nil, err); values
 * that cannot be encoded are misuse and raise. */
#include "modules.h"
#include "sandbox.h"

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

/* A lower bound of the encoded size of the value at idx, stopping once it
 * passes limit. cjson builds its text with malloc, outside the sandbox's
 * cap, so a document that cannot fit is refused before it is built. */
static size_t encoded_size(lua_State *L, int idx, size_t limit, int depth)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        lua_tolstring(L, idx, &len);
        return len + 2;
    }
    case LUA_TTABLE: {
        if (depth > 1000) return 0; /* cjson refuses this depth itself */
        luaL_checkstack(L, 3, "json.encode: nesting too deep");
        size_t total = 2;
        idx = lua_absindex(L, idx);
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            total += encoded_size(L, -2, limit, depth + 1) + encoded_size(L, -1, limit, depth + 1) + 2;
            lua_pop(L, 1);
            if (total > limit) {
                lua_pop(L, 1);
                return total;
            }
        }
        return total;
    }
    default:
        return 4;
    }
}

/* json.encode(value) -> text; raises for what JSON cannot hold */
static int json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    size_t limit = sandbox_mem_limit(L), used = sandbox_mem_used(L);
    size_t room = limit > used ? limit - used : 0;
    size_t need = encoded_size(L, 1, room, 0);
    if (need > room)
        return luaL_error(L, "json.encode: the document would take more than the %d MiB of memory left",
                          (int)(room >> 20));
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 1, 1);
    return 1;
}

int luaopen_json(lua_State *L)
{
    luaopen_cjson(L); /* a fresh cjson instance: settings stay this state's own */
    int cj = lua_gettop(L);
    lua_createtable(L, 0, 4);
    lua_getfield(L, cj, "encode");
    lua_pushcclosure(L, json_encode, 1);
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
