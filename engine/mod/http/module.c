/* The http module: an HTTP client on libcurl's multi interface, driven by
 * the engine's event loop (transfer.c). A request yields its task, so a
 * check can hold many in flight from as many tasks. Network failures are
 * data (nil, err with a kind: response.c), because a check is usually
 * about them; misuse raises (request.c), because it is a bug in the check.
 * Every request lands in the check's history (history.c), streamed to the
 * runner.
 *
 * A check may send tens of thousands of requests, so the path of one is
 * kept short: transfers are pooled with their curl handles and buffers; a
 * client checks its defaults once, when it is made (client.c); a response
 * builds its fields past status, body and method on first use; the
 * history keeps numbers and interned strings. */
#include "mod/http/http.h"

#include <lauxlib.h>

/* http.request{...} -> res | nil, err */
static int http_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    optsrc o = {L, 1, 0, "request"};
    return http_request_start(L, &o, NULL, NULL, NULL, NULL);
}

/* http.validate{...} -> true: the options of http.request{...}, checked
 * without sending anything */
static int http_validate(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    optsrc o = {L, 1, 0, "validate"};
    http_request_check(L, &o);
    lua_pushboolean(L, 1);
    return 1;
}

/* http.get(url [, opts]) and friends: request with method and url set */
static int shorthand(lua_State *L, const char *method)
{
    const char *url = luaL_checkstring(L, 1);
    optsrc o = {L, 0, 1, "request"};
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        o.opts = 2;
    }
    lua_settop(L, 2);
    return http_request_start(L, &o, NULL, NULL, url, method);
}

static int http_get(lua_State *L) { return shorthand(L, "GET"); }
static int http_post(lua_State *L) { return shorthand(L, "POST"); }
static int http_put(lua_State *L) { return shorthand(L, "PUT"); }
static int http_patch(lua_State *L) { return shorthand(L, "PATCH"); }
static int http_delete(lua_State *L) { return shorthand(L, "DELETE"); }
static int http_head(lua_State *L) { return shorthand(L, "HEAD"); }

void http_new_weak_table(lua_State *L, const void *key)
{
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

int luaopen_http(lua_State *L)
{
    http_transfer_open(L);
    http_response_open(L);
    http_client_open(L);

    static const luaL_Reg funcs[] = {
        {"request", http_request}, {"get", http_get},         {"post", http_post},
        {"put", http_put},         {"patch", http_patch},     {"delete", http_delete},
        {"head", http_head},       {"client", http_client},   {"history", http_history},
        {"validate", http_validate},
        {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    return 1;
}
