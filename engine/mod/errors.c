/* require "errors": the one error type (core/errors.h) for check scripts
 * and scripts/lib, so a helper's failure has the shape and the kinds of the
 * modules' own: errors.new("status", "GET /x: HTTP 500", {status = 500}). */
#include "core/errors.h"
#include "core/util.h"
#include "mod/modules.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

/* new(kind, message [, fields]): fields (status, body, ...) are copied in;
 * kind and message cannot be overridden by them */
static int errors_new(lua_State *L)
{
    const char *kind = luaL_checkstring(L, 1);
    const char *message = luaL_checkstring(L, 2);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    char *clean = redact(message);
    lua_pushstring(L, clean);
    free(clean);
    halo_error_new(L, kind, lua_tostring(L, -1));
    if (lua_istable(L, 3)) {
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            if (lua_type(L, -2) == LUA_TSTRING &&
                (strcmp(lua_tostring(L, -2), "kind") == 0 || strcmp(lua_tostring(L, -2), "message") == 0))
                return luaL_argerror(L, 3, "fields cannot replace kind or message");
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        }
    }
    return 1;
}

/* is(value [, kind]): whether value is an error of the one type (of that
 * kind) */
static int errors_is(lua_State *L)
{
    luaL_checkany(L, 1);
    int yes = 0;
    if (lua_getmetatable(L, 1)) {
        luaL_getmetatable(L, HALO_ERROR_MT);
        yes = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
    }
    if (yes && !lua_isnoneornil(L, 2)) {
        const char *want = luaL_checkstring(L, 2);
        lua_getfield(L, 1, "kind");
        yes = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), want) == 0;
        lua_pop(L, 1);
    }
    lua_pushboolean(L, yes);
    return 1;
}

int luaopen_errors(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"new", errors_new}, {"is", errors_is}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
