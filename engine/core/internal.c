/* What the host's own Lua modules (docker, compose, undo) need and checks
 * must not have: a few environment variables, temporary files of their own,
 * the stack table, and the automatic undo with its journal (core/undo.c).
 * Embedded modules receive this table as their second chunk argument;
 * `require` never returns it. */
#include "core/internal.h"
#include "core/options.h"
#include "core/errors.h"
#include "core/util.h"
#include "core/events.h"
#include "core/undo.h"
#include "core/embedded.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEMPS_KEY "halo.tempfiles"

/* getenv(name): only the variables that say where the Docker daemon is */
static int internal_getenv(lua_State *L)
{
    static const char *const allowed[] = {"DOCKER_HOST", "HOME", "XDG_RUNTIME_DIR", NULL};
    const char *name = luaL_checkstring(L, 1);
    for (int i = 0; allowed[i]; i++) {
        if (strcmp(name, allowed[i]) == 0) {
            const char *v = getenv(name);
            if (v) lua_pushstring(L, v);
            else lua_pushnil(L);
            return 1;
        }
    }
    return luaL_error(L, "internal getenv: %s is not readable", name);
}

static int internal_stack(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, STACK_REGISTRY_KEY);
    return 1;
}

/* stack_file() -> the absolute path of the stack file loaded, or nil */
static int internal_stack_file(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, STACK_FILE_REGISTRY_KEY);
    return 1;
}

/* event(kind, json): an event for the runner (actions, faults) */
static int internal_event(lua_State *L)
{
    const char *kind = luaL_checkstring(L, 1);
    const char *json = luaL_checkstring(L, 2);
    const char *fields[] = {json};
    events_emit(kind, 1, fields);
    return 0;
}

/* origin(): monotonic seconds when the check started */
static int internal_origin(lua_State *L)
{
    lua_pushnumber(L, events_origin());
    return 1;
}

static const char *temp_dir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/halo-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(dir)) dir[0] = '\0';
    }
    return dir[0] ? dir : NULL;
}

/* temp_file(content, suffix) -> path: a private file (0600) for the
 * host's modules, e.g. a compose override holding keys */
static int internal_temp_file(lua_State *L)
{
    size_t len;
    const char *content = luaL_checklstring(L, 1, &len);
    const char *suffix = luaL_optstring(L, 2, "");
    const char *dir = temp_dir();
    if (!dir) return luaL_error(L, "cannot create a temporary directory: %s", strerror(errno));
    static int counter;
    char *path = xasprintf("%s/%d-%d%s", dir, (int)getpid(), ++counter, suffix);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        lua_pushfstring(L, "cannot create %s: %s", path, strerror(errno));
        free(path);
        return lua_error(L);
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, content + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        off += (size_t)n;
    }
    close(fd);
    lua_getfield(L, LUA_REGISTRYINDEX, TEMPS_KEY);
    lua_pushstring(L, path);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pushstring(L, path);
    free(path);
    return 1;
}

/* remove_temp(path): only files temp_file made */
static int internal_remove_temp(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, TEMPS_KEY);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, -2) == LUA_TNIL) return luaL_error(L, "remove_temp: %s is not a halo temporary file", path);
    unlink(path);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    lua_rawset(L, -4);
    return 0;
}

/* read_head(path, max) -> the first max bytes of a file, or nil, err */
static int internal_read_head(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Integer max = luaL_optinteger(L, 2, 4096);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(errno));
        return 2;
    }
    char *buf = xmalloc((size_t)max);
    ssize_t n = read(fd, buf, (size_t)max);
    close(fd);
    lua_pushlstring(L, buf, n > 0 ? (size_t)n : 0);
    free(buf);
    return 1;
}

/* redact(s) -> s with every secret as *** (before any quoting hides them) */
static int internal_redact(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char *clean = redact_n(s, len);
    lua_pushstring(L, clean);
    free(clean);
    return 1;
}

/* secret(s) -> nil once s is hidden from every output of this process, or
 * what keeps it from being hidden, a string too (t:secret raises it at the
 * caller's line, which a C function cannot name) */
int internal_secret(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TSTRING) {
        lua_pushfstring(L, "string expected, got %s", luaL_typename(L, 1));
        return 1;
    }
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    const char *problem = redact_add_checked(s, len);
    if (!problem) return 0;
    lua_pushstring(L, problem);
    return 1;
}

/* error(kind, message [, fields]) -> the one error type (errors.h), for the
 * host's own Lua modules: fields (status, stdout, ...) are copied in */
static int internal_error(lua_State *L)
{
    const char *kind = luaL_checkstring(L, 1);
    const char *message = luaL_checkstring(L, 2);
    halo_error_new(L, kind, message);
    if (lua_istable(L, 3)) {
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        }
    }
    return 1;
}

/* exists(path) -> whether anything (file, socket) is there */
static int internal_exists(lua_State *L)
{
    struct stat st;
    lua_pushboolean(L, stat(luaL_checkstring(L, 1), &st) == 0);
    return 1;
}

/* kind(v) -> "http.response", "sql.conn", "task", ... for values of the
 * host's own types (known by their metatable), else nil */
static int internal_kind(lua_State *L)
{
    static const char *const kinds[][2] = {
        {"halo.http.response", "http.response"}, {"halo.error", "error"},
        {"halo.http.client", "http.client"},     {"halo.http.headers", "http.headers"},
        {"halo.sql.conn", "sql.conn"},           {"halo.task", "task"},
    };
    if (!lua_getmetatable(L, 1)) return 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        luaL_getmetatable(L, kinds[i][0]);
        int same = lua_rawequal(L, -1, -2);
        lua_pop(L, 1);
        if (same) {
            lua_pushstring(L, kinds[i][1]);
            return 1;
        }
    }
    return 0;
}

/* members(v) -> the names v's metatable offers through __index: its keys
 * when __index is a table, or those of the table a C __index keeps as its
 * first upvalue (the way the host's types keep their methods). For
 * completion; nothing is called. */
static int internal_members(lua_State *L)
{
    lua_newtable(L);
    int out = lua_gettop(L);
    if (!lua_getmetatable(L, 1)) return 1;
    int t = lua_getfield(L, -1, "__index");
    if (t == LUA_TFUNCTION && lua_iscfunction(L, -1) && lua_getupvalue(L, -1, 1) != NULL) lua_remove(L, -2);
    if (lua_type(L, -1) == LUA_TTABLE) {
        lua_Integer n = 0;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            if (lua_type(L, -1) == LUA_TSTRING) {
                lua_pushvalue(L, -1);
                lua_rawseti(L, out, ++n);
            }
        }
    }
    lua_settop(L, out);
    return 1;
}

/* run_id() -> the pid of the run (the runner, for a worker) that changes
 * the target: what a container it recreated is labelled with */
static int internal_run_id(lua_State *L)
{
    lua_pushinteger(L, events_streaming() ? (lua_Integer)getppid() : (lua_Integer)getpid());
    return 1;
}

/* may_inject(module, action, target, level): nothing where faults are
 * allowed (the stack file's allow_faults, --allow-faults, or eval, exec
 * and the REPL, which act for the operator); else raises, `level` frames
 * up as error() counts them, in the one wording every module's faults
 * share: "docker: refusing to kill api1: this stack does not allow ..." */
static int internal_may_inject(lua_State *L)
{
    const char *module = luaL_checkstring(L, 1);
    const char *action = luaL_checkstring(L, 2);
    const char *target = luaL_checkstring(L, 3);
    int level = (int)luaL_optinteger(L, 4, 1);
    int t = lua_getfield(L, LUA_REGISTRYINDEX, FAULTS_ALLOWED_KEY);
    if (t == LUA_TNIL || lua_toboolean(L, -1)) return 0;
    luaL_where(L, level);
    lua_pushfstring(L, "%s: refusing to %s %s: this stack does not allow faults (set allow_faults = true in "
                       "the stack file, or run with --allow-faults)", module, action, target);
    lua_concat(L, 2);
    return lua_error(L);
}

/* load(name) -> the host's own embedded Lua file `name` ("mod/docker/faults"),
 * compiled, not run: a module in several files loads its parts with it */
static int internal_load(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const halo_embedded_file *f = embedded_find(name);
    if (!f) return luaL_error(L, "no embedded source '%s'", name);
    char chunkname[128];
    snprintf(chunkname, sizeof chunkname, "=[halo %s]", name);
    if (luaL_loadbufferx(L, f->source, f->size, chunkname, "t") != LUA_OK) return lua_error(L);
    return 1;
}

void internal_push(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, "halo.internal") == LUA_TTABLE) return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, TEMPS_KEY);
    static const luaL_Reg funcs[] = {
        {"getenv", internal_getenv},       {"stack", internal_stack},
        {"stack_file", internal_stack_file},
        {"event", internal_event},         {"origin", internal_origin},
        {"temp_file", internal_temp_file}, {"remove_temp", internal_remove_temp},
        {"read_head", internal_read_head}, {"exists", internal_exists},
        {"redact", internal_redact},       {"kind", internal_kind},
        {"secret", internal_secret},
        {"error", internal_error},
        {"check_options", halo_check_options_lua},
        {"members", internal_members},     {"run_id", internal_run_id},
        {"may_inject", internal_may_inject},
        {"load", internal_load},
        {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    undo_open(L, -1); /* undo, cancel_undo, journal, process_alive, journal_forget */
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "halo.internal");
}

void internal_push_undos(lua_State *L) { undo_push_pending(L); }

void internal_remove_temps(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, TEMPS_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pop(L, 1);
        unlink(lua_tostring(L, -1));
    }
    lua_pop(L, 1);
    const char *dir = temp_dir();
    if (dir) rmdir(dir);
}
