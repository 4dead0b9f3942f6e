/* The per-check sandbox: allow-listed libraries, a counting allocator with a
 * cap, an instruction hook for deadlines and interrupts, a text-only load;
 * its require is core/require.c. */
#include "core/sandbox.h"
#include "core/errors.h"
#include "core/sched.h"
#include "core/util.h"

#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
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
    char kill_where[200]; /* file:line the code was at when it was stopped */
    size_t cap_refused; /* the last request the cap refused, in bytes */
    char mem_reason[96];
    task *interrupt_target; /* sandbox_set_interrupt_target */
} sandbox;

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
        /* where the code was, for "exceeded its 3 s limit at check.lua:12":
         * the hook runs in the function that was running */
        if (sb->kill_reason && lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
            snprintf(sb->kill_where, sizeof sb->kill_where, "%s:%d", ar->short_src, ar->currentline);
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

const char *sandbox_kill_where(lua_State *L)
{
    sandbox *sb = get_sandbox(L);
    return sb->kill_reason && sb->kill_where[0] ? sb->kill_where : NULL;
}

void sandbox_rearm(lua_State *L, double deadline, const char *reason, size_t extra)
{
    sandbox *sb = get_sandbox(L);
    sb->kill_reason = NULL;
    sb->kill_where[0] = '\0';
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
void sandbox_join_values(lua_State *L, int first, int last, strbuf *sb, size_t max)
{
    for (int i = first; i <= last && sb->len <= max; i++) {
        size_t len;
        const char *s = luaL_tolstring(L, i, &len);
        if (i > first) sb_addc(sb, '\t');
        for (size_t k = 0; k < len; k++) {
            if (s[k]) sb_addc(sb, s[k]);
            else sb_adds(sb, "\\0");
        }
        lua_pop(L, 1);
    }
}

static int sb_print(lua_State *L)
{
    strbuf sb;
    sb_init(&sb);
    sandbox_join_values(L, 1, lua_gettop(L), &sb, (size_t)-1);
    puts_redacted(sb.buf, stdout);
    sb_free(&sb);
    return 0;
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

    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);

    /* The string metatable is left as plain Lua has it, readable and
     * changeable: every check has a state of its own, so a change reaches
     * no other check and nothing of the host's. The host's own metatables
     * (responses, connections, errors) are the ones kept out of reach. */
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

    require_open(L, opts ? opts->modules : NULL, opts ? opts->lib_dirs : NULL, opts ? opts->nlib_dirs : 0);

    sched_open(L);
    return 0;
}

lua_State *sandbox_new(const sandbox_opts *opts)
{
    sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) return NULL;
    sb->limit = opts && opts->mem_limit ? opts->mem_limit : SANDBOX_DEFAULT_MEM;
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
