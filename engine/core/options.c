#include "core/options.h"
#include "core/util.h"

#include <lauxlib.h>
#include <string.h>

static int is_known(const char *key, const char *const *known)
{
    for (int i = 0; known[i]; i++)
        if (strcmp(known[i], key) == 0) return 1;
    return 0;
}

/* [-0, +1] "unknown option 'k'; known: a, b" for the key on top, or NULL
 * when it is known */
static const char *unknown_key_message(lua_State *L, const char *const *known)
{
    const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (key && is_known(key, known)) return NULL;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (key) {
        luaL_addstring(&b, "unknown option '");
        luaL_addstring(&b, key);
        luaL_addstring(&b, "'");
    } else {
        luaL_addstring(&b, "option names are strings, not a ");
        luaL_addstring(&b, luaL_typename(L, -2));
    }
    luaL_addstring(&b, "; known: ");
    for (int i = 0; known[i]; i++) {
        if (i) luaL_addstring(&b, ", ");
        luaL_addstring(&b, known[i]);
    }
    luaL_pushresult(&b);
    return lua_tostring(L, -1);
}

void halo_check_options(lua_State *L, int arg, const char *const *known)
{
    arg = lua_absindex(L, arg);
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, arg)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1); /* the key, for the message */
        const char *msg = unknown_key_message(L, known);
        if (msg) luaL_argerror(L, arg, msg);
        lua_pop(L, 1);
    }
}

/* check_options(fname, argn, opts, known [, level]): known is a sequence of
 * names; the error is raised at level (default 2: the code that called the
 * module function which called this). */
int halo_check_options_lua(lua_State *L)
{
    const char *fname = luaL_checkstring(L, 1);
    lua_Integer argn = luaL_checkinteger(L, 2);
    luaL_checktype(L, 4, LUA_TTABLE);
    int level = (int)luaL_optinteger(L, 5, 2);
    if (lua_type(L, 3) != LUA_TTABLE) {
        luaL_where(L, level);
        lua_pushfstring(L, "bad argument #%d to '%s' (table expected, got %s)", (int)argn, fname,
                        luaL_typename(L, 3));
        lua_concat(L, 2);
        return lua_error(L);
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, 4);
    const char *names[64];
    if (n > 63) n = 63;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 4, i);
        names[i - 1] = lua_tostring(L, -1); /* kept alive by the table */
        lua_pop(L, 1);
        if (!names[i - 1]) return luaL_argerror(L, 4, "option names are strings");
    }
    names[n] = NULL;
    lua_pushnil(L);
    while (lua_next(L, 3)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        const char *msg = unknown_key_message(L, names);
        if (msg) {
            luaL_where(L, level);
            lua_pushfstring(L, "bad argument #%d to '%s' (%s)", (int)argn, fname, msg);
            lua_concat(L, 2);
            return lua_error(L);
        }
        lua_pop(L, 1);
    }
    return 0;
}
