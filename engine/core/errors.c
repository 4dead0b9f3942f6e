/* The one error type (errors.h). Messages are redacted where they are made:
 * an error is data a check may print, log or put in evidence. */
#include "core/errors.h"
#include "core/util.h"

#include <lauxlib.h>
#include <stdarg.h>
#include <stdlib.h>

static int error_tostring(lua_State *L)
{
    lua_getfield(L, 1, "message");
    if (!lua_isstring(L, -1)) lua_pushliteral(L, "error");
    return 1;
}

void halo_error_register(lua_State *L)
{
    if (luaL_newmetatable(L, HALO_ERROR_MT)) {
        lua_pushcfunction(L, error_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
}

void halo_error_new(lua_State *L, const char *kind, const char *message)
{
    lua_createtable(L, 0, 3);
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    luaL_setmetatable(L, HALO_ERROR_MT);
}

int halo_error_fail(lua_State *L, const char *kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *raw = lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    char *clean = redact(raw);
    lua_pop(L, 1);
    lua_pushnil(L);
    /* the Lua string first: halo_error_new may raise (memory), and the
     * redacted copy on the C heap must not be lost when it does */
    lua_pushstring(L, clean);
    free(clean);
    halo_error_new(L, kind, lua_tostring(L, -1));
    lua_remove(L, -2);
    return 2;
}
