/* Stack files: evaluated with a restricted environment; secrets read
 * through secret() are plain strings to the checks but are registered for
 * redaction, as are passwords embedded in URLs anywhere in the table. A
 * stack file may include() another and change what it returns, so a
 * variant (multi-tenant, another port) is a few lines, not a copy. Paths in
 * a stack file mean what the operator sees: relative to the file itself. */
/* realpath() is XSI in glibc's headers */
#define _XOPEN_SOURCE 700
#include "check/stack.h"
#include "core/sandbox.h"
#include "core/util.h"

#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

/* include() nesting: deep enough for base, variant, local override. */
#define INCLUDE_DEPTH_MAX 8
/* A shorter secret would be found inside ordinary words and numbers of the
 * output, and redacting those both garbles the report and tells the reader
 * what the secret is. */

/* env(name [, default]) -> the variable's value, or default */
static int stack_env(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *v = getenv(name);
    if (v) {
        lua_pushstring(L, v);
        return 1;
    }
    lua_settop(L, 2);
    return 1;
}

/* secret(name [, default]) -> the variable's value; never printed */
static int stack_secret(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *v = getenv(name);
    if (!v) {
        if (lua_isnoneornil(L, 2))
            return luaL_error(L, "secret %s is not set in the environment", name);
        v = luaL_checkstring(L, 2);
    }
    size_t len = strlen(v);
    if (len > 0 && len < REDACT_MIN_LEN)
        return luaL_error(L,
                          "secret %s is %d character%s long: halo cannot keep a secret shorter than %d "
                          "characters out of its output",
                          name, (int)len, len == 1 ? "" : "s", REDACT_MIN_LEN);
    redact_add(v);
    lua_pushstring(L, v);
    return 1;
}

/* Register "pass" of scheme://user:pass@host anywhere in s. */
static void redact_url_passwords(const char *s)
{
    for (const char *p = strstr(s, "://"); p; p = strstr(p + 3, "://")) {
        const char *user = p + 3;
        const char *end = user + strcspn(user, "/?#@ \t\n");
        if (*end != '@') continue;
        const char *colon = memchr(user, ':', (size_t)(end - user));
        if (!colon || colon + 1 >= end) continue;
        char *pw = xstrndup(colon + 1, (size_t)(end - colon - 1));
        redact_add(pw);
        free(pw);
    }
}

static void scan_for_passwords(lua_State *L, int idx, int depth)
{
    if (depth > 16) return;
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -1) == LUA_TSTRING) redact_url_passwords(lua_tostring(L, -1));
        else if (lua_type(L, -1) == LUA_TTABLE) scan_for_passwords(L, -1, depth + 1);
        lua_pop(L, 1);
    }
}

/* The absolute directory of a file halo could open, else its dirname. */
/* [-0, +1] The absolute directory of a file halo could open, else its
 * dirname; built in a buffer of the C stack, so pushing it can raise. */
static void push_directory_of(lua_State *L, const char *path)
{
    char abs[PATH_MAX];
    const char *p = realpath(path, abs) ? abs : path;
    const char *slash = strrchr(p, '/');
    if (!slash) lua_pushliteral(L, ".");
    else if (slash == p) lua_pushliteral(L, "/");
    else lua_pushlstring(L, p, (size_t)(slash - p));
}

static int run_stack_file(lua_State *L, const char *path, int depth);

/* include(file) -> the table the other stack file returns; file is relative
 * to the including file. Upvalues: that file's directory, the depth. */
static int stack_include(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *dir = lua_tostring(L, lua_upvalueindex(1));
    int depth = (int)lua_tointeger(L, lua_upvalueindex(2));
    if (depth >= INCLUDE_DEPTH_MAX)
        return luaL_error(L, "include('%s'): more than %d nested includes (does a file include itself?)", name,
                          INCLUDE_DEPTH_MAX);
    char *path = name[0] == '/' ? xstrdup(name) : xasprintf("%s/%s", dir, name);
    lua_pushstring(L, path);
    free(path);
    int rc = run_stack_file(L, lua_tostring(L, -1), depth + 1);
    if (rc != LUA_OK) return lua_error(L);
    return 1;
}

/* [-0, +1] The environment a stack file sees: data helpers, no I/O, and
 * where the file is. */
static void push_stack_env(lua_State *L, const char *dir, int depth)
{
    lua_newtable(L);
    static const char *const copied[] = {"string", "table", "math", "tostring", "tonumber", "pairs",
                                         "ipairs", "type", "select", "error", "assert", "pcall",
                                         "next", "rawget", "setmetatable", "getmetatable", "os",
                                         "utf8", NULL};
    for (int i = 0; copied[i]; i++) {
        lua_getglobal(L, copied[i]);
        lua_setfield(L, -2, copied[i]);
    }
    lua_pushcfunction(L, stack_env);
    lua_setfield(L, -2, "env");
    lua_pushcfunction(L, stack_secret);
    lua_setfield(L, -2, "secret");
    lua_pushstring(L, dir);
    lua_setfield(L, -2, "stack_dir");
    lua_pushstring(L, dir);
    lua_pushinteger(L, depth);
    lua_pushcclosure(L, stack_include, 2);
    lua_setfield(L, -2, "include");
}

/* compose.files relative to the stack file's directory, not to wherever
 * halo (and so compose) happens to run. */
static void resolve_compose_files(lua_State *L, int stack, const char *dir)
{
    int top = lua_gettop(L);
    /* raw: the stack file's tables are data, and no metamethod runs here */
    lua_pushliteral(L, "compose");
    int compose = lua_rawget(L, stack);
    if (compose == LUA_TTABLE && (lua_pushliteral(L, "files"), lua_rawget(L, -2)) == LUA_TTABLE) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_rawgeti(L, -1, i) == LUA_TSTRING && lua_tostring(L, -1)[0] != '/') {
                lua_pushfstring(L, "%s/%s", dir, lua_tostring(L, -1));
                lua_rawseti(L, -3, i);
            }
            lua_pop(L, 1);
        }
    }
    lua_settop(L, top);
}

/* [-0, +1] Load and run one stack file; on success the table it returned,
 * else the error message. */
static int run_stack_file(lua_State *L, const char *path, int depth)
{
    int rc = sandbox_loadfile(L, path);
    if (rc != LUA_OK) return rc;
    /* the directory lives on the Lua stack, not the C heap: anything below
     * may raise (out of memory, a metamethod) and must not leak it */
    push_directory_of(L, path);
    const char *dir = lua_tostring(L, -1);
    lua_insert(L, -2);
    push_stack_env(L, dir, depth);
    lua_setupvalue(L, -2, 1);
    rc = lua_pcall(L, 0, 1, 0);
    if (rc == LUA_OK && !lua_istable(L, -1)) {
        const char *got = luaL_typename(L, -1);
        lua_pop(L, 1);
        lua_pushfstring(L, "%s: must return a table (returned %s)", path, got);
        rc = LUA_ERRRUN;
    }
    if (rc == LUA_OK) resolve_compose_files(L, lua_gettop(L), dir);
    lua_remove(L, -2); /* the directory */
    return rc;
}

static char *error_text(lua_State *L, const char *path)
{
    const char *msg = lua_tostring(L, -1);
    /* Lua's messages name the file; "not enough memory" does not */
    char *text = msg && strstr(msg, path) == msg ? xasprintf("stack file %s", msg)
                                                  : xasprintf("stack file %s: %s", path,
                                                              msg ? msg : "(error object is not a string)");
    char *clean = redact(text);
    free(text);
    return clean;
}

/* internal.load_stack(path) -> the table another stack file returns, its
 * secrets registered for redaction | nil, err. For `halo cleanup`, which
 * resolves the credentials a journal names from the stack file of the run
 * that wrote it. The stack the process runs on stays what it is. */
static int internal_load_stack(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_settop(L, 1);
    if (run_stack_file(L, path, 0) != LUA_OK) {
        char *err = error_text(L, path);
        lua_pushnil(L);
        lua_pushstring(L, err);
        free(err);
        return 2;
    }
    scan_for_passwords(L, -1, 0);
    return 1;
}

/* internal.load_stack, for the host's own scripts */
static void offer_loader(lua_State *L)
{
    internal_push(L);
    lua_pushcfunction(L, internal_load_stack);
    lua_setfield(L, -2, "load_stack");
    lua_pop(L, 1);
}

typedef struct {
    const char *path;
    int rc;
} stack_loading;

/* Under lua_pcall: making the file's environment allocates too. Leaves the
 * table, or the error message with ctx->rc saying which. */
static int load_protected(lua_State *L)
{
    stack_loading *ctx = lua_touserdata(L, 1);
    lua_settop(L, 0);
    offer_loader(L);
    ctx->rc = run_stack_file(L, ctx->path, 0);
    if (ctx->rc == LUA_OK) {
        scan_for_passwords(L, -1, 0);
        /* Host modules read it too (proc's allow_exec, docker's project). */
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, STACK_REGISTRY_KEY);
        /* and where it is: the journal names it (core/undo.c) */
        char abs[PATH_MAX];
        lua_pushstring(L, realpath(ctx->path, abs) ? abs : ctx->path);
        lua_setfield(L, LUA_REGISTRYINDEX, STACK_FILE_REGISTRY_KEY);
    }
    return 1;
}

int stack_load(lua_State *L, const char *path, char **err)
{
    *err = NULL;
    if (!path) {
        offer_loader(L);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, STACK_REGISTRY_KEY);
        return 0;
    }
    stack_loading ctx = {path, LUA_OK};
    lua_pushcfunction(L, load_protected);
    lua_pushlightuserdata(L, &ctx);
    int rc = lua_pcall(L, 1, 1, 0);
    if (rc == LUA_OK) rc = ctx.rc;
    if (rc != LUA_OK) {
        *err = error_text(L, path);
        lua_pop(L, 1);
        return rc == LUA_ERRMEM ? -2 : -1;
    }
    return 0;
}

/* [-0, +0] argv list at field `key` of table `harness`, or NULL; raises
 * nothing: a wrong shape is reported through *err. */
static char **read_argv(lua_State *L, int harness, const char *key, const char *path, char **err)
{
    int t = lua_getfield(L, harness, key);
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return NULL;
    }
    if (t == LUA_TSTRING) {
        /* a single program, no arguments */
        char **argv = xcalloc(2, sizeof *argv);
        argv[0] = xstrdup(lua_tostring(L, -1));
        lua_pop(L, 1);
        return argv;
    }
    lua_Integer n = t == LUA_TTABLE ? (lua_Integer)lua_rawlen(L, -1) : 0;
    if (n == 0) {
        *err = xasprintf("stack file %s: harness.%s must be a command: a list of strings", path, key);
        lua_pop(L, 1);
        return NULL;
    }
    char **argv = xcalloc((size_t)n + 1, sizeof *argv);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        argv[i - 1] = xstrdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return argv;
}

static void free_argv(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++) free(argv[i]);
    free(argv);
}

void stack_harness_free(stack_harness *h)
{
    free_argv(h->up);
    free_argv(h->down);
    free(h->dir);
    free(h->project);
    free(h->checks);
    h->checks = NULL;
    h->up = h->down = NULL;
    h->dir = NULL;
    h->project = NULL;
}

typedef struct {
    const char *path;
    char **err;
    stack_harness *h;
} harness_read;

/* Under lua_pcall: reading the commands converts values, which allocates. */
static int read_harness(lua_State *L)
{
    harness_read *hr = lua_touserdata(L, 1);
    if (lua_getfield(L, 2, "harness") == LUA_TTABLE) {
        int harness = lua_gettop(L);
        hr->h->up = read_argv(L, harness, "up", hr->path, hr->err);
        if (!*hr->err) hr->h->down = read_argv(L, harness, "down", hr->path, hr->err);
    }
    hr->h->allow_faults = lua_getfield(L, 2, "allow_faults") == LUA_TBOOLEAN && lua_toboolean(L, -1);
    if (lua_getfield(L, 2, "compose") == LUA_TTABLE && lua_getfield(L, -1, "project") == LUA_TSTRING)
        hr->h->project = xstrdup(lua_tostring(L, -1));
    int t = lua_getfield(L, 2, "checks");
    if (t == LUA_TSTRING) hr->h->checks = xstrdup(lua_tostring(L, -1));
    else if (t != LUA_TNIL) *hr->err = xasprintf("stack file %s: checks must be a directory name (a string)", hr->path);
    return 0;
}

int stack_check(const char *path, char **err, stack_harness *h)
{
    lua_State *L = sandbox_new(NULL);
    if (!L) {
        *err = xstrdup("out of memory");
        return -2;
    }
    sandbox_set_deadline(L, clock_mono() + 10, "evaluating it took longer than 10 s");
    int rc = stack_load(L, path, err);
    if (rc == 0 && h) {
        memset(h, 0, sizeof *h);
        char *copy = xstrdup(path);
        char *slash = strrchr(copy, '/');
        if (slash) {
            *slash = '\0';
            h->dir = copy;
        } else {
            free(copy);
            h->dir = xstrdup(".");
        }
        harness_read hr = {path, err, h};
        lua_pushcfunction(L, read_harness);
        lua_pushlightuserdata(L, &hr);
        lua_pushvalue(L, -3);
        if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
            if (!*err) *err = xasprintf("stack file %s: %s", path, lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
            rc = -2;
        } else if (*err) {
            rc = -1;
        }
    }
    sandbox_close(L);
    return rc;
}
