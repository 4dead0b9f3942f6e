/* The per-check sandbox: allow-listed libraries, a counting allocator with a
 * cap, an instruction hook for deadlines and interrupts, a text-only load,
 * and a require confined to host modules and the lib directories. */
#include "core/sandbox.h"
#include "core/embedded.h"
#include "core/errors.h"
#include "core/internal.h"
#include "core/plugin.h"
#include "core/sched.h"
#include "core/util.h"

#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

/* Instructions between two looks at the clock: a few microseconds of work,
 * cheap enough to be invisible and short enough to stop a loop at once. */
#define HOOK_COUNT 1000
#define KILL_RESERVE ((size_t)4 << 20)

typedef struct {
    size_t used, limit, extra;
    int fail_streak;
    int mem_exceeded;
    double deadline;
    char deadline_reason[160];
    const char *kill_reason;
    size_t cap_refused; /* the last request the cap refused, in bytes */
    char mem_reason[96];
    const halo_module *modules;
    task *interrupt_target; /* sandbox_set_interrupt_target */
} sandbox;

static const halo_module no_modules[] = {{NULL, NULL, 0, NULL, NULL}};

static sandbox *get_sandbox(lua_State *L)
{
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return (sandbox *)ud;
}

/* A refused allocation is an ordinary Lua memory error, which pcall can
 * catch; that is harmless when one oversized request failed and little is
 * in use. But when the state really is full (the retry after Lua's
 * emergency collection failed too, or nine tenths of the cap are live) the
 * check is stopped for good, so pcall cannot keep a memory bomb going. */
/* For the allocation-failure sweep in the tests: HALO_FAIL_ALLOC=N makes
 * the Nth growing allocation of this process's Lua states fail, as if the
 * system ran out of memory there — and the one after it, which is Lua
 * retrying the same request after an emergency collection. */
static long fail_alloc_at = -1, allocations;

static int injected_failure(void)
{
    if (fail_alloc_at < 0) {
        const char *v = getenv("HALO_FAIL_ALLOC");
        fail_alloc_at = v && *v ? strtol(v, NULL, 10) : 0;
    }
    if (fail_alloc_at <= 0) return 0;
    allocations++;
    return allocations == fail_alloc_at || allocations == fail_alloc_at + 1;
}

static void *sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    sandbox *sb = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        sb->used -= old;
        return NULL;
    }
    if (nsize > old && injected_failure()) return NULL;
    /* Once the state is full and the check is being stopped, the host still
     * needs a little room to record what happened (the error, a traceback);
     * the stopped code itself cannot use it, as every instruction raises. */
    size_t cap = sb->limit + sb->extra + (sb->mem_exceeded ? KILL_RESERVE : 0);
    if (nsize > old && sb->used + (nsize - old) > cap) {
        if (++sb->fail_streak >= 2 || sb->used > cap / 10 * 9) sb->mem_exceeded = 1;
        sb->cap_refused = nsize - old;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (!p) {
        if (++sb->fail_streak >= 2) sb->mem_exceeded = 1;
        return NULL;
    }
    sb->fail_streak = 0;
    sb->used = sb->used - old + nsize;
    return p;
}

/* The REPL's Ctrl-C stops the line being run, not the tasks it left
 * running in the background: only code of the target task is stopped. The
 * target is the state's; the request is the process's, as it comes from a
 * signal handler, which has no state to name. */
static volatile sig_atomic_t target_interrupted;

void sandbox_set_interrupt_target(lua_State *L, task *t)
{
    get_sandbox(L)->interrupt_target = t;
    target_interrupted = 0;
}

void sandbox_interrupt_target(void) { target_interrupted = 1; }

/* Whether L runs in its state's target task and Ctrl-C asked it to stop. */
static int target_hit(lua_State *L, const sandbox *sb)
{
    return target_interrupted && sb->interrupt_target && sched_current(L) == sb->interrupt_target;
}

static void hook(lua_State *L, lua_Debug *ar);

static void arm_every_instruction(task *t, void *ud)
{
    (void)ud;
    lua_State *co = sched_task_thread(t);
    if (co) lua_sethook(co, hook, LUA_MASKCOUNT, 1);
}

static void hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    sandbox *sb = get_sandbox(L);
    if (target_hit(L, sb)) {
        /* as below: every further instruction of the task raises again */
        lua_sethook(L, hook, LUA_MASKCOUNT, 1);
        luaL_error(L, "interrupted");
    }
    if (!sb->kill_reason) {
        if (sched_interrupted()) sb->kill_reason = "interrupted";
        else if (sb->mem_exceeded) sb->kill_reason = sb->mem_reason;
        else if (sb->deadline > 0 && clock_mono() >= sb->deadline) sb->kill_reason = sb->deadline_reason;
    }
    if (!sb->kill_reason) {
        if (lua_gethookcount(L) != HOOK_COUNT) lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_COUNT);
        return;
    }
    /* From now on every instruction of this thread raises again, so a
     * pcall that catches the error cannot keep the code running; and of
     * every other task too, so one sleeping through the kill cannot run a
     * line when it wakes. */
    if (lua_gethookcount(L) != 1) sched_foreach_live(L, arm_every_instruction, NULL);
    lua_sethook(L, hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "%s", sb->kill_reason);
}

void sandbox_set_deadline(lua_State *L, double deadline, const char *reason)
{
    sandbox *sb = get_sandbox(L);
    sb->deadline = deadline;
    snprintf(sb->deadline_reason, sizeof sb->deadline_reason, "%s", reason ? reason : "deadline passed");
}

const char *sandbox_kill_reason(lua_State *L)
{
    sandbox *sb = get_sandbox(L);
    if (!sb->kill_reason && sb->mem_exceeded) sb->kill_reason = sb->mem_reason;
    return sb->kill_reason;
}

void sandbox_rearm(lua_State *L, double deadline, const char *reason, size_t extra)
{
    sandbox *sb = get_sandbox(L);
    sb->kill_reason = NULL;
    sb->mem_exceeded = 0;
    sb->fail_streak = 0;
    sb->extra = extra;
    sandbox_set_deadline(L, deadline, reason);
    lua_gc(L, LUA_GCCOLLECT);
}

size_t sandbox_mem_used(lua_State *L) { return get_sandbox(L)->used; }
double sandbox_deadline(lua_State *L) { return get_sandbox(L)->deadline; }
char *sandbox_explain_memory_error(lua_State *L, const char *message)
{
    sandbox *sb = get_sandbox(L);
    if (!message || !strstr(message, "not enough memory") || !sb->cap_refused) return xstrdup(message ? message : "?");
    size_t first = strcspn(message, "\n"); /* the explanation goes on the message's own line */
    return xasprintf("%.*s: memory limit of %zu MiB exceeded (a request for %zu KiB was refused)%s", (int)first,
                     message, sb->limit >> 20, sb->cap_refused >> 10, message + first);
}

size_t sandbox_mem_limit(lua_State *L) { return get_sandbox(L)->limit; }

/* ---- replaced base functions ----------------------------------------- */

/* load(chunk [, name [, mode [, env]]]): text only, whatever mode says. */
static int sb_load(lua_State *L)
{
    const char *mode = luaL_optstring(L, 3, "t");
    if (strchr(mode, 'b'))
        return luaL_error(L, "load: binary chunks are not allowed in halo (mode '%s')", mode);
    int with_env = lua_gettop(L) >= 4; /* an explicit nil env is an env too */
    lua_settop(L, 4);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushliteral(L, "t");
    if (with_env) lua_pushvalue(L, 4);
    lua_call(L, with_env ? 4 : 3, LUA_MULTRET);
    return lua_gettop(L) - 4;
}

/* What a check may ask of its own state's collector: everything but
 * stopping it (garbage would pile up to the memory cap) and the deprecated
 * tuning knobs. */
static int sb_collectgarbage(lua_State *L)
{
    static const char *const allowed[] = {"collect", "step", "count", "isrunning", "incremental", "generational", NULL};
    const char *opt = luaL_optstring(L, 1, "collect");
    int ok = 0;
    for (int i = 0; allowed[i]; i++) ok |= strcmp(opt, allowed[i]) == 0;
    if (!ok)
        return luaL_error(L, "collectgarbage('%s') is not allowed in halo; collect, step, count, isrunning, "
                             "incremental and generational are", opt);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* setmetatable without __gc: Lua runs finalizers with hooks off, so a
 * finalizer that loops could not be stopped at the deadline, and one
 * running on the host's thread would see the host's stack. */
static int sb_setmetatable(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_istable(L, 2) && lua_getfield(L, 2, "__gc") != LUA_TNIL)
        return luaL_error(L, "setmetatable: __gc finalizers are not allowed in halo (use t:defer or <close>)");
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

/* print: redacted, to stdout. The worker replaces it with t:log. */
static int sb_print(lua_State *L)
{
    int n = lua_gettop(L);
    strbuf sb;
    sb_init(&sb);
    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *s = luaL_tolstring(L, i, &len);
        if (i > 1) sb_addc(&sb, '\t');
        sb_addn(&sb, s, len);
        lua_pop(L, 1);
    }
    char *clean = redact_n(sb.buf ? sb.buf : "", sb.len);
    fputs(clean, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    free(clean);
    sb_free(&sb);
    return 0;
}

/* ---- require ------------------------------------------------------------ */

#define LOADED_KEY "halo.loaded"
#define LIBDIRS_KEY "halo.libdirs"

static int valid_module_name(const char *name)
{
    if (!*name || *name == '.') return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-' || (c == '.' && p[1] != '.' && p[1] != '\0');
        if (!ok) return 0;
    }
    return 1;
}

static int file_readable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* [-0, +1] the module's opener (a function): 1, or 2 for the host's own
 * embedded Lua; or an error message and 0 */
static int find_module(lua_State *L, const char *name)
{
    const halo_module *modules = get_sandbox(L)->modules;
    for (const halo_module *m = modules; m->name; m++) {
        if (strcmp(m->name, name) != 0) continue;
        if (m->source) {
            if (sandbox_load_embedded(L, m->source) != LUA_OK) lua_error(L);
            return 2; /* the host's own Lua: it gets the internal table too */
        }
        lua_CFunction open = m->open;
        if (!open && m->plugin) {
            char *err = NULL;
            open = plugin_load(name, &err);
            if (!open) {
                lua_pushstring(L, err);
                free(err);
                return lua_error(L);
            }
        }
        if (!open) break;
        lua_pushcfunction(L, open);
        return 1;
    }
    strbuf tried;
    sb_init(&tried);
    sb_printf(&tried, "module '%s' not found: not a host module (", name);
    for (const halo_module *m = modules; m->name; m++)
        sb_printf(&tried, "%s%s", m == modules ? "" : ", ", m->name);
    sb_adds(&tried, ")");
    char *rel = xstrdup(name);
    for (char *p = rel; *p; p++)
        if (*p == '.') *p = '/';
    lua_getfield(L, LUA_REGISTRYINDEX, LIBDIRS_KEY);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        char *path = xasprintf("%s/%s.lua", lua_tostring(L, -1), rel);
        lua_pop(L, 1);
        if (file_readable(path)) {
            lua_pop(L, 1);
            int rc = sandbox_loadfile(L, path);
            free(path);
            free(rel);
            sb_free(&tried);
            if (rc != LUA_OK) lua_error(L);
            return 1;
        }
        sb_printf(&tried, "; no file '%s'", path);
        free(path);
    }
    lua_pop(L, 1);
    free(rel);
    if (n == 0) sb_adds(&tried, "; and there is no lib directory to look in (scripts/lib, --lib DIR)");
    lua_pushstring(L, tried.buf);
    sb_free(&tried);
    return 0;
}

static char loading_sentinel;

static int sb_require(lua_State *L)
{
    size_t name_len;
    const char *name = luaL_checklstring(L, 1, &name_len);
    if (strlen(name) != name_len || !valid_module_name(name))
        return luaL_argerror(L, 1, "module names are dotted words, like 'pulp' or 'lib.http'");
    lua_settop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, LOADED_KEY); /* 2 */
    lua_getfield(L, 2, name);
    if (lua_touserdata(L, -1) == &loading_sentinel)
        return luaL_error(L, "module '%s' requires itself (a require loop)", name);
    if (lua_toboolean(L, -1)) return 1;
    lua_pop(L, 1);
    int found = find_module(L, name);
    if (!found) return lua_error(L);
    lua_pushlightuserdata(L, &loading_sentinel);
    lua_setfield(L, 2, name);
    lua_pushvalue(L, 1);
    if (found == 2) internal_push(L);
    int status = lua_pcall(L, found == 2 ? 2 : 1, 1, 0);
    if (status != LUA_OK) {
        lua_pushnil(L);
        lua_setfield(L, 2, name);
        return lua_error(L);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, 2, name);
    return 1;
}

void sandbox_require(lua_State *L, const char *name)
{
    lua_pushcfunction(L, sb_require);
    lua_pushstring(L, name);
    lua_call(L, 1, 1);
}

static int lazy_global(lua_State *L)
{
    const char *name = lua_tostring(L, 2);
    if (!name) return 0;
    for (const halo_module *m = get_sandbox(L)->modules; m->name; m++) {
        if (strcmp(m->name, name) == 0) {
            sandbox_require(L, name);
            lua_pushvalue(L, -1);
            lua_setfield(L, 1, name); /* rawset: _G has no __newindex */
            return 1;
        }
    }
    return 0;
}

void sandbox_module_globals(lua_State *L)
{
    lua_pushglobaltable(L);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, lazy_global);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
}

/* ---- loading -------------------------------------------------------------- */

/* Lua shortens long chunk names from the left ("...k/main/tests/x.lua");
 * a path relative to the working directory, or failing that the file's
 * own directory and name, reads better in every message. */
const char *sandbox_display_path(const char *path, char *buf, size_t size)
{
    char cwd[4096];
    if (path[0] == '/' && getcwd(cwd, sizeof cwd)) {
        size_t n = strlen(cwd);
        if (strncmp(path, cwd, n) == 0 && path[n] == '/') path += n + 1;
    }
    if (strlen(path) > 56) {
        const char *last = strrchr(path, '/');
        const char *p = last;
        while (p && p > path && p[-1] != '/') p--;
        if (p) path = p;
    }
    snprintf(buf, size, "%s", path);
    return buf;
}

/* luaL_loadfilex with a readable chunk name; the file is read whole. */
static int load_source_file(lua_State *L, const char *path)
{
    strbuf sb;
    sb_init(&sb);
    if (read_whole_file(path, &sb) != 0) {
        sb_free(&sb);
        lua_pushfstring(L, "cannot open %s: %s", path, strerror(errno));
        return LUA_ERRFILE;
    }
    const char *text = sb.buf ? sb.buf : "";
    size_t len = sb.len;
    /* a #! first line is a comment, as lua.c allows */
    if (len > 0 && text[0] == '#') {
        const char *nl = memchr(text, '\n', len);
        size_t skip = nl ? (size_t)(nl - text) : len;
        text += skip;
        len -= skip;
    }
    char shown[128], name[130];
    snprintf(name, sizeof name, "@%s", sandbox_display_path(path, shown, sizeof shown));
    int rc = luaL_loadbufferx(L, text, len, name, "t");
    sb_free(&sb);
    return rc;
}

int sandbox_loadfile(lua_State *L, const char *path)
{
    int rc = load_source_file(L, path);
    /* Lua's refusal of a binary chunk does not say which file it was. */
    if (rc != LUA_OK && lua_type(L, -1) == LUA_TSTRING && strstr(lua_tostring(L, -1), "binary chunk") &&
        !strstr(lua_tostring(L, -1), path)) {
        lua_pushfstring(L, "%s: %s (halo loads Lua source only)", path, lua_tostring(L, -1));
        lua_remove(L, -2);
    }
    return rc;
}

int sandbox_load_embedded(lua_State *L, const char *name)
{
    const halo_embedded_file *f = embedded_find(name);
    if (!f) {
        lua_pushfstring(L, "no embedded source '%s'", name);
        return LUA_ERRFILE;
    }
    char chunkname[128];
    snprintf(chunkname, sizeof chunkname, "=[halo %s]", name);
    return luaL_loadbufferx(L, f->source, f->size, chunkname, "t");
}

const halo_embedded_file *embedded_find(const char *name)
{
    for (int i = 0; halo_embedded[i].name; i++)
        if (strcmp(halo_embedded[i].name, name) == 0) return &halo_embedded[i];
    return NULL;
}

/* ---- construction ------------------------------------------------------------ */

/* xpcall, but a check the sandbox stopped (timeout, memory, interrupt) does
 * not get to run its message handler: Lua runs handlers with the hook off,
 * so a handler that loops would outlive every limit. */
static int guarded_handler(lua_State *L)
{
    sandbox *sb = get_sandbox(L);
    if (sb->kill_reason || target_hit(L, sb)) return 1; /* the error as it is */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int finish_xpcall(lua_State *L, int status, lua_KContext extra)
{
    if (status != LUA_OK && status != LUA_YIELD) {
        lua_pushboolean(L, 0);
        lua_pushvalue(L, -2);
        return 2;
    }
    return lua_gettop(L) - (int)extra;
}

static int sb_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushboolean(L, 1);          /* first result when all goes well */
    lua_pushvalue(L, 1);            /* the function */
    lua_rotate(L, 3, 2);            /* under the arguments */
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, guarded_handler, 1);
    lua_replace(L, 2);              /* the guarded handler where the handler was */
    int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_xpcall);
    return finish_xpcall(L, status, 2);
}

/* Each state its own random sequence: forked workers would otherwise all
 * draw the same one (Lua seeds from the time and an address), and checks
 * naming fixtures with math.random would collide. */
static void seed_random(lua_State *L)
{
    unsigned long long seed[2] = {0, 0};
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd >= 0) {
        if (read(fd, seed, sizeof seed) != (ssize_t)sizeof seed) seed[0] = 0;
        close(fd);
    }
    if (!seed[0]) seed[0] = (unsigned long long)getpid() ^ (unsigned long long)(clock_mono() * 1e9);
    lua_getglobal(L, "math");
    lua_getfield(L, -1, "randomseed");
    lua_pushinteger(L, (lua_Integer)seed[0]);
    lua_pushinteger(L, (lua_Integer)seed[1]);
    lua_call(L, 2, 0);
    lua_pop(L, 1);
}

static void open_safe_libs(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},          {LUA_COLIBNAME, luaopen_coroutine},
        {LUA_TABLIBNAME, luaopen_table},    {LUA_STRLIBNAME, luaopen_string},
        {LUA_MATHLIBNAME, luaopen_math},    {LUA_UTF8LIBNAME, luaopen_utf8},
        {NULL, NULL},
    };
    for (const luaL_Reg *lib = libs; lib->func; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }

    /* os: only the clock and calendar functions */
    luaL_requiref(L, "halo.os", luaopen_os, 0);
    lua_createtable(L, 0, 4);
    static const char *const os_keep[] = {"time", "clock", "date", "difftime", NULL};
    for (int i = 0; os_keep[i]; i++) {
        lua_getfield(L, -2, os_keep[i]);
        lua_setfield(L, -2, os_keep[i]);
    }
    lua_setglobal(L, "os");
    lua_pop(L, 1);

    /* debug: only traceback */
    luaL_requiref(L, "halo.debug", luaopen_debug, 0);
    lua_createtable(L, 0, 1);
    lua_getfield(L, -2, "traceback");
    lua_setfield(L, -2, "traceback");
    lua_setglobal(L, "debug");
    lua_pop(L, 1);

    /* The full os and debug libraries must not stay reachable through the
     * loaded table either. */
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushnil(L);
    lua_setfield(L, -2, "halo.os");
    lua_pushnil(L);
    lua_setfield(L, -2, "halo.debug");
    lua_pop(L, 1);

    seed_random(L);
    lua_pushcfunction(L, sb_xpcall);
    lua_setglobal(L, "xpcall");
    lua_pushnil(L);
    lua_setglobal(L, "dofile");
    lua_pushnil(L);
    lua_setglobal(L, "loadfile");
    lua_getglobal(L, "load");
    lua_pushcclosure(L, sb_load, 1);
    lua_setglobal(L, "load");
    lua_getglobal(L, "collectgarbage");
    lua_pushcclosure(L, sb_collectgarbage, 1);
    lua_setglobal(L, "collectgarbage");
    lua_getglobal(L, "setmetatable");
    lua_pushcclosure(L, sb_setmetatable, 1);
    lua_setglobal(L, "setmetatable");
    lua_pushcfunction(L, sb_print);
    lua_setglobal(L, "print");
    lua_pushcfunction(L, sb_require);
    lua_setglobal(L, "require");

    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);

    /* getmetatable("") answers false: the string metatable stays the host's. */
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* Only reached by a bug: every host call into Lua is protected. */
static int panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    char *clean = redact(msg ? msg : "?");
    fprintf(stderr, "halo: unprotected Lua error: %s\n", clean);
    abort();
}

static int setup_sandbox(lua_State *L)
{
    const sandbox_opts *opts = lua_touserdata(L, 1);
    lua_settop(L, 0);
    open_safe_libs(L);
    halo_error_register(L);

    /* require of Lua's own pure libraries gives what the globals hold, as in
     * plain Lua; the trimmed os and debug stay globals only (a require of
     * them asks for the C libraries, which are not here) */
    lua_newtable(L);
    static const char *const std_libs[] = {"string", "table", "math", "utf8", "coroutine", NULL};
    for (int i = 0; std_libs[i]; i++) {
        lua_getglobal(L, std_libs[i]);
        lua_setfield(L, -2, std_libs[i]);
    }
    lua_setfield(L, LUA_REGISTRYINDEX, LOADED_KEY);
    lua_newtable(L);
    for (size_t i = 0; opts && i < opts->nlib_dirs; i++) {
        lua_pushstring(L, opts->lib_dirs[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, LUA_REGISTRYINDEX, LIBDIRS_KEY);

    sched_open(L);
    return 0;
}

lua_State *sandbox_new(const sandbox_opts *opts)
{
    sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) return NULL;
    sb->limit = opts && opts->mem_limit ? opts->mem_limit : SANDBOX_DEFAULT_MEM;
    sb->modules = opts && opts->modules ? opts->modules : no_modules;
    snprintf(sb->mem_reason, sizeof sb->mem_reason, "memory limit of %zu MiB exceeded",
             sb->limit >> 20);
    lua_State *L = lua_newstate(sandbox_alloc, sb);
    if (!L) {
        free(sb);
        return NULL;
    }
    lua_atpanic(L, panic);
    /* the setup allocates as much as any script: out of memory there is
     * "no sandbox", not a panic */
    lua_pushcfunction(L, setup_sandbox);
    lua_pushlightuserdata(L, (void *)opts);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        lua_close(L);
        free(sb);
        return NULL;
    }
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_COUNT);
    return L;
}

void sandbox_close(lua_State *L)
{
    if (!L) return;
    sandbox *sb = get_sandbox(L);
    lua_close(L);
    free(sb);
}
