/* http.client: a base URL and defaults under every request it makes. The
 * defaults are checked once, when the client is made, and kept in C, so
 * that a request through a client costs what a plain one does. A client
 * whose defaults do not pass the checks is still made (the script may
 * override the bad default call by call): its requests merge the tables
 * and take the path of a plain request, which raises as it always did. */
#include "mod/http/http.h"

#include "core/options.h"
#include "core/util.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

/* Registry key (its address): a weak table from a client to its checked
 * defaults. */
static char clients_key;

static const char *const client_keys[] = {"base", "headers", "timeout", "connect_timeout", "follow", "max_body",
                                          "verify", "ca_file", "cert", "key", "unix_socket", "record", NULL};

static int defaults_gc(lua_State *L)
{
    client_defaults *cd = lua_touserdata(L, 1);
    for (size_t i = 0; i < cd->nheaders; i++) {
        free(cd->hnames[i]);
        free(cd->hlines[i]);
    }
    free(cd->hnames);
    free(cd->hlines);
    free(cd->base);
    free(cd->ca_file);
    free(cd->cert);
    free(cd->key);
    free(cd->unix_socket);
    memset(cd, 0, sizeof *cd);
    return 0;
}

/* [-0, +0] a copy of a string option of the defaults, checked, or NULL */
static char *defaults_string(const optsrc *o, const char *key)
{
    const char *s = http_opt_string(o, key);
    char *copy = s ? xstrdup(s) : NULL;
    lua_pop(o->L, 1);
    return copy;
}

/* Under pcall: (defaults table, client_defaults) -> checks each option as
 * a request would, and keeps it in C. Raises on the first bad one. */
static int defaults_compile(lua_State *L)
{
    client_defaults *cd = lua_touserdata(L, 2);
    optsrc o = {L, 1, 1, "request"};
    if (http_opt_push(&o, "headers") != LUA_TNIL) {
        int ht = lua_gettop(L);
        luaL_checktype(L, ht, LUA_TTABLE);
        size_t cap = 0;
        strbuf line;
        sb_init(&line);
        lua_pushnil(L);
        while (lua_next(L, ht)) {
            if (lua_type(L, -2) != LUA_TSTRING || (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)) {
                sb_free(&line);
                return luaL_error(L, "headers must map names to strings");
            }
            const char *name = lua_tostring(L, -2), *value = lua_tostring(L, -1);
            if (strpbrk(name, ":\r\n") || strpbrk(value, "\r\n")) {
                sb_free(&line);
                return luaL_error(L, "a header contains a newline or colon");
            }
            http_header_line(L, &line, "request");
            size_t n = cd->nheaders;
            grow_array((void **)&cd->hnames, &cap, n + 1, sizeof *cd->hnames);
            cd->hlines = xrealloc(cd->hlines, cap * sizeof *cd->hlines);
            cd->hnames[n] = xstrdup(name);
            cd->hlines[n] = xstrdup(line.buf);
            cd->nheaders = n + 1;
            lua_pop(L, 1);
        }
        sb_free(&line);
    }
    lua_pop(L, 1);
    if (http_opt_push(&o, "timeout") != LUA_TNIL) cd->timeout = http_opt_seconds(L, "timeout", "request");
    lua_pop(L, 1);
    if (http_opt_push(&o, "connect_timeout") != LUA_TNIL)
        cd->connect_timeout = http_opt_seconds(L, "connect_timeout", "request");
    lua_pop(L, 1);
    if (http_opt_push(&o, "follow") != LUA_TNIL) cd->follow = http_opt_follow(L, "request");
    lua_pop(L, 1);
    if (http_opt_push(&o, "max_body") != LUA_TNIL) cd->max_body = http_opt_max_body(L, "request");
    lua_pop(L, 1);
    if (http_opt_push(&o, "verify") != LUA_TNIL) cd->verify = http_opt_boolean(L, "verify", "request");
    lua_pop(L, 1);
    if (http_opt_push(&o, "record") != LUA_TNIL) cd->record = http_opt_boolean(L, "record", "request");
    lua_pop(L, 1);
    cd->ca_file = defaults_string(&o, "ca_file");
    cd->cert = defaults_string(&o, "cert");
    cd->key = defaults_string(&o, "key");
    cd->unix_socket = defaults_string(&o, "unix_socket");
    return 0;
}

/* The checked defaults of the client at idx, or NULL: then its defaults
 * did not pass the checks, and each request takes the table path, which
 * raises as it always did. */
static client_defaults *client_compiled(lua_State *L, int idx)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &clients_key);
    lua_pushvalue(L, idx);
    client_defaults *cd = lua_rawget(L, -2) == LUA_TUSERDATA ? lua_touserdata(L, -1) : NULL;
    lua_pop(L, 2);
    return cd;
}

/* dst[k] = v for every pair of src (absolute indices) */
static void copy_into(lua_State *L, int dst, int src)
{
    lua_pushnil(L);
    while (lua_next(L, src)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, dst);
    }
}

/* [-0, +1] path resolved against the client's base URL */
static void push_client_url(lua_State *L, int client, const char *path)
{
    lua_getfield(L, client, "base");
    const char *base = lua_tostring(L, -1);
    strbuf u;
    sb_init(&u);
    http_join_url(&u, base, path);
    lua_pushlstring(L, u.buf, u.len);
    sb_free(&u);
    lua_remove(L, -2);
}

/* The table path: the client's defaults under the call's options (at
 * arg), merged into one table that takes their place, so that an unknown
 * option is blamed on the argument the script wrote; headers merge name by
 * name, a relative url joins the base. Only for a client whose defaults
 * did not pass the checks. */
static int client_request_table(lua_State *L, int arg)
{
    const int defaults = arg + 1, sent = arg + 2;
    lua_settop(L, arg);
    lua_getfield(L, 1, "defaults");
    lua_newtable(L); /* the options sent */
    copy_into(L, sent, defaults);
    copy_into(L, sent, arg);
    if (lua_getfield(L, defaults, "headers") == LUA_TTABLE && lua_getfield(L, arg, "headers") == LUA_TTABLE) {
        lua_newtable(L);
        copy_into(L, sent + 3, sent + 1);
        copy_into(L, sent + 3, sent + 2);
        lua_setfield(L, sent, "headers");
    }
    lua_settop(L, sent);
    lua_getfield(L, sent, "url");
    push_client_url(L, 1, lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
    lua_setfield(L, sent, "url");
    lua_settop(L, sent);
    lua_replace(L, arg);
    optsrc o = {L, arg, 0, "request"};
    return http_request_start(L, &o, NULL, NULL, NULL, NULL);
}

/* client:request{...}: the client's defaults under the call's options;
 * headers merge name by name, a relative url joins the base. */
static int client_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    client_defaults *cd = client_compiled(L, 1);
    if (!cd) return client_request_table(L, 2);
    lua_pushliteral(L, "url");
    lua_rawget(L, 2); /* 3: keeps the path alive */
    const char *path = lua_isstring(L, 3) ? lua_tostring(L, 3) : "";
    optsrc o = {L, 2, 1, "request"};
    return http_request_start(L, &o, cd, path, NULL, NULL);
}

static int client_shorthand(lua_State *L, const char *method)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *path = luaL_optstring(L, 2, "");
    optsrc o = {L, 0, 1, "request"};
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        o.opts = 3;
    }
    client_defaults *cd = client_compiled(L, 1);
    lua_settop(L, 3);
    if (cd) return http_request_start(L, &o, cd, path, NULL, method);
    lua_newtable(L);
    if (o.opts) copy_into(L, 4, 3);
    lua_pushstring(L, path);
    lua_setfield(L, -2, "url");
    lua_pushstring(L, method);
    lua_setfield(L, -2, "method");
    lua_replace(L, 3);
    return client_request_table(L, 3);
}

static int client_get(lua_State *L) { return client_shorthand(L, "GET"); }
static int client_post(lua_State *L) { return client_shorthand(L, "POST"); }
static int client_put(lua_State *L) { return client_shorthand(L, "PUT"); }
static int client_patch(lua_State *L) { return client_shorthand(L, "PATCH"); }
static int client_delete(lua_State *L) { return client_shorthand(L, "DELETE"); }
static int client_head(lua_State *L) { return client_shorthand(L, "HEAD"); }

/* http.client{ base = url, headers = {...}, ...defaults } -> client */
int http_client(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    halo_check_options(L, 1, client_keys);
    lua_settop(L, 1);
    lua_newtable(L); /* 2: the client */
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        if (strcmp(lua_tostring(L, -2), "base") == 0) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, -4);
    }
    lua_setfield(L, 2, "defaults");
    lua_getfield(L, 1, "base");
    if (!lua_isnil(L, -1) && !lua_isstring(L, -1)) return luaL_argerror(L, 1, "option 'base' must be a URL");
    lua_setfield(L, 2, "base");
    luaL_setmetatable(L, CLIENT_MT);

    /* The defaults, checked once here rather than at every request. */
    client_defaults *cd = lua_newuserdatauv(L, sizeof *cd, 0); /* 3 */
    memset(cd, 0, sizeof *cd);
    cd->follow = cd->max_body = -1;
    cd->verify = cd->record = -1;
    luaL_setmetatable(L, DEFAULTS_MT);
    lua_pushcfunction(L, defaults_compile);
    lua_getfield(L, 2, "defaults");
    lua_pushvalue(L, 3);
    if (lua_pcall(L, 2, 0, 0) == LUA_OK) {
        lua_getfield(L, 2, "base");
        const char *base = lua_tostring(L, -1);
        cd->base = base ? xstrdup(base) : NULL;
        lua_pop(L, 1);
        lua_rawgetp(L, LUA_REGISTRYINDEX, &clients_key);
        lua_pushvalue(L, 2);
        lua_pushvalue(L, 3);
        lua_rawset(L, -3);
    }
    lua_settop(L, 2);
    return 1;
}

void http_client_open(lua_State *L)
{
    http_new_weak_table(L, &clients_key);

    static const luaL_Reg defaults_meta[] = {{"__gc", defaults_gc}, {NULL, NULL}};
    halo_type_register(L, &(halo_type){DEFAULTS_MT, NULL, defaults_meta});

    static const luaL_Reg client_methods[] = {
        {"request", client_request}, {"get", client_get},       {"post", client_post},
        {"put", client_put},         {"patch", client_patch},   {"delete", client_delete},
        {"head", client_head},       {NULL, NULL},
    };
    luaL_newmetatable(L, CLIENT_MT);
    luaL_newlib(L, client_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}
