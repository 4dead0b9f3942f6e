#include "check/context.h"
#include "check/emit.h"
#include "core/events.h"
#include "core/internal.h"
#include "core/loop.h"
#include "core/sandbox.h"
#include "core/util.h"
#include "mod/modules.h"

#include <lauxlib.h>
#include <math.h>
#include <signal.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <stdlib.h>
#include <string.h>

/* ---- host functions for the context ------------------------------------ */

/* where(level) -> "file:line: " of the function `level` calls up */
static int host_where(lua_State *L)
{
    luaL_where(L, (int)luaL_optinteger(L, 1, 1));
    return 1;
}

static int host_elapsed_ms(lua_State *L)
{
    lua_pushnumber(L, events_elapsed_ms());
    return 1;
}

/* [-0, +1] a copy of the value at idx that json can encode: secrets
 * redacted in every string (before JSON escaping could disguise them),
 * functions and other host values as their names, cycles cut. */
static void push_encodable(lua_State *L, int idx, int depth)
{
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        char *clean = redact_n(s, len);
        lua_pushstring(L, clean);
        free(clean);
        return;
    }
    case LUA_TNUMBER: {
        lua_Number v = lua_tonumber(L, idx);
        if (isnan(v) || isinf(v)) lua_pushstring(L, lua_tostring(L, idx));
        else lua_pushvalue(L, idx);
        return;
    }
    case LUA_TBOOLEAN:
    case LUA_TNIL:
        lua_pushvalue(L, idx);
        return;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) { /* json.null */
            lua_pushvalue(L, idx);
            return;
        }
        break;
    case LUA_TTABLE:
        if (depth >= 16) {
            lua_pushliteral(L, "<nested too deep>");
            return;
        }
        lua_newtable(L);
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            if (lua_type(L, -2) == LUA_TSTRING || lua_type(L, -2) == LUA_TNUMBER) {
                push_encodable(L, -2, depth + 1);
                push_encodable(L, -2, depth + 1);
                lua_rawset(L, -5);
            }
            lua_pop(L, 1);
        }
        return;
    default:
        break;
    }
    luaL_tolstring(L, idx, NULL);
}

/* JSON for evidence, with every object's keys sorted: a table has no key
 * order, and a report that shuffles them between runs is harder to read
 * and to compare. The value is push_encodable's copy: strings, numbers,
 * booleans, json.null and tables of them. */
/* An object's key as it is sorted: its text, and where the key itself is
 * kept (a number key's text would not find it again). */
typedef struct {
    const char *name;
    lua_Integer pos;
} sorted_key;

static int key_before(const void *a, const void *b)
{
    return strcmp(((const sorted_key *)a)->name, ((const sorted_key *)b)->name);
}

static void encode_sorted(lua_State *L, int idx, strbuf *sb)
{
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: sb_json_string(sb, lua_tostring(L, idx)); return;
    case LUA_TBOOLEAN: sb_adds(sb, lua_toboolean(L, idx) ? "true" : "false"); return;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) sb_printf(sb, "%lld", (long long)lua_tointeger(L, idx));
        else sb_printf(sb, "%.14g", lua_tonumber(L, idx));
        return;
    case LUA_TTABLE: break;
    default: sb_adds(sb, "null"); return; /* json.null */
    }
    luaL_checkstack(L, 6, "evidence nested too deep");
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        count++;
        lua_pop(L, 1);
    }
    if (n > 0 && (size_t)n == count) {
        sb_addc(sb, '[');
        for (lua_Integer i = 1; i <= n; i++) {
            if (i > 1) sb_addc(sb, ',');
            lua_rawgeti(L, idx, i);
            encode_sorted(L, -1, sb);
            lua_pop(L, 1);
        }
        sb_addc(sb, ']');
        return;
    }
    /* the keys themselves in one table, their texts (which stay alive
     * there) in another, sorted by text */
    lua_createtable(L, (int)(count < 1000000 ? count : 0), 0);
    int keys = lua_gettop(L);
    lua_createtable(L, (int)(count < 1000000 ? count : 0), 0);
    int texts = lua_gettop(L);
    /* the state's memory, so an error on the way leaks nothing */
    sorted_key *order = lua_newuserdatauv(L, (count ? count : 1) * sizeof *order, 0);
    size_t k = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, keys, (lua_Integer)(k + 1));
        lua_pushvalue(L, -1);
        order[k].name = lua_tostring(L, -1); /* a number key's text, on a copy */
        order[k].pos = (lua_Integer)(k + 1);
        lua_rawseti(L, texts, (lua_Integer)++k);
    }
    qsort(order, k, sizeof *order, key_before);
    sb_addc(sb, '{');
    for (size_t i = 0; i < k; i++) {
        if (i) sb_addc(sb, ',');
        sb_json_string(sb, order[i].name);
        sb_addc(sb, ':');
        lua_rawgeti(L, keys, order[i].pos);
        lua_rawget(L, idx);
        encode_sorted(L, -1, sb);
        lua_pop(L, 1);
    }
    sb_addc(sb, '}');
    lua_pop(L, 3);
}

static int encode_sorted_protected(lua_State *L)
{
    strbuf *sb = lua_touserdata(L, 2);
    encode_sorted(L, 1, sb);
    return 0;
}

/* encode(value) -> JSON text, keys sorted; never raises */
static int host_encode(lua_State *L)
{
    lua_settop(L, 1);
    sandbox_require(L, "json");
    push_encodable(L, 1, 0);
    strbuf sb;
    sb_init(&sb);
    lua_pushcfunction(L, encode_sorted_protected);
    lua_pushvalue(L, -2);
    lua_pushlightuserdata(L, &sb);
    int ok = lua_pcall(L, 2, 0, 0) == LUA_OK;
    if (ok) lua_pushlstring(L, sb.buf ? sb.buf : "null", sb.buf ? sb.len : 4);
    else lua_pushliteral(L, "null");
    sb_free(&sb);
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    if (text && len > EVENT_FIELD_MAX) {
        /* Cut the JSON text, not the value, and keep it valid JSON: the
         * evidence becomes a string saying what it was. */
        lua_getfield(L, 2, "encode"); /* the json module */
        lua_pushfstring(L, "%s… [cut: %I bytes of JSON in all]", lua_pushlstring(L, text, 4096), (lua_Integer)len);
        lua_remove(L, -2);
        lua_call(L, 1, 1);
    }
    return 1;
}

/* print() inside a check is a log line. */
static int host_print(lua_State *L)
{
    strbuf sb;
    sb_init(&sb);
    /* stop joining past what a log line may hold: the joined text lives
     * outside the sandbox's memory cap */
    sandbox_join_values(L, 1, lua_gettop(L), &sb, EVENT_FIELD_MAX);
    lua_pushlstring(L, sb.buf ? sb.buf : "", sb.len);
    sb_free(&sb);
    events_log("info", lua_tostring(L, -1));
    return 0;
}

/* ---- the sandbox and the context ---------------------------------------- */

lua_State *context_sandbox(const worker_opts *o)
{
    sandbox_opts so = {.mem_limit = o->mem_limit, .modules = halo_modules,
                       .lib_dirs = o->lib_dirs, .nlib_dirs = o->nlib_dirs};
    lua_State *L = sandbox_new(&so);
    if (!L) return NULL;
    lua_pushcfunction(L, host_print);
    lua_setglobal(L, "print");
    return L;
}

int context_load(lua_State *L, char **err)
{
    if (sandbox_load_embedded(L, "check/context") != LUA_OK) goto fail;
    lua_createtable(L, 0, 5);
    static const luaL_Reg host[] = {
        {"where", host_where},
        {"elapsed_ms", host_elapsed_ms},
        {"encode", host_encode},
        {"secret", internal_secret},
        {NULL, NULL},
    };
    luaL_setfuncs(L, host, 0);
    emit_push_table(L);
    lua_setfield(L, -2, "emit");
    emit_push_statuses(L);
    lua_setfield(L, -2, "status");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) goto fail;
    return 0;
fail:
    *err = xasprintf("internal: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
}

int context_load_spec(lua_State *L, int ctxmod, const char *file, char **err)
{
    char shown[128];
    sandbox_display_path(file, shown, sizeof shown);
    if (sandbox_loadfile(L, file) != LUA_OK) {
        /* a file too big for the memory limit: say which, and that it is the limit */
        const char *msg = lua_tostring(L, -1);
        char *explained = sandbox_explain_memory_error(L, msg);
        *err = msg && strncmp(msg, shown, strlen(shown)) != 0 && strstr(msg, "not enough memory")
                   ? xasprintf("%s: %s", shown, explained)
                   : xstrdup(explained);
        free(explained);
        lua_pop(L, 1);
        return -1;
    }
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        /* runtime errors carry "file:line:" already */
        if (msg && strncmp(msg, shown, strlen(shown)) == 0) *err = xstrdup(msg);
        else *err = xasprintf("%s: %s", shown, msg ? msg : "(error object is not a string)");
        /* `local x = require "x"` then a bare `{ ... }`: Lua reads a call of
         * what require returned, and says only that a table was called */
        if (msg && strstr(msg, "attempt to call a table value")) {
            char *hinted = xasprintf("%s (a check file ends with `return { ... }`: is the `return` missing?)", *err);
            free(*err);
            *err = hinted;
        }
        lua_pop(L, 1);
        return -1;
    }
    lua_getfield(L, ctxmod, "validate");
    lua_insert(L, -2);
    lua_pushstring(L, file);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        *err = xasprintf("%s: %s", shown, lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

int context_run_protected(lua_State *L, lua_CFunction fn, const worker_opts *o)
{
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, (void *)o);
    if (lua_pcall(L, 1, 0, 0) == LUA_OK) return 0;
    const char *msg = lua_tostring(L, -1);
    char *text = xasprintf("internal: %s", msg ? msg : "error");
    events_log("error", text);
    free(text);
    return -1;
}

void context_ignore_sigpipe(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

/* The runner is gone (its lifeline ended, or Linux said the parent died):
 * the same as its SIGTERM, so the check is cancelled and its defers and
 * undos run within the grace, whichever handler the worker has now. */
static void runner_gone(void) { raise(SIGTERM); }

void context_watch_runner(const worker_opts *o)
{
    if (o->lifeline_fd >= 0) loop_lifeline(o->lifeline_fd, runner_gone);
#ifdef __linux__
    /* sooner than the lifeline when the check is busy in Lua rather than
     * waiting in the loop; the lifeline stays the portable way */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
}
