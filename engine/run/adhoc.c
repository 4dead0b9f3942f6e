/* eval and exec: load a chunk in a fresh sandbox, run it as a task on the
 * loop, print what it returns. Errors go to stderr as one line (with a
 * traceback under -v) and exit 3, like an ERROR check. */
#include "run/adhoc.h"
#include "core/cleanup.h"
#include "core/internal.h"
#include "mod/modules.h"
#include "core/sandbox.h"
#include "core/sched.h"
#include "check/stack.h"
#include "core/util.h"
#include "core/events.h"

#include <lauxlib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t interrupts;

static void on_interrupt(int sig)
{
    /* The first asks the script to stop; the second stops the process. */
    if (++interrupts >= 2) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
    sched_request_interrupt();
}

static int load_chunk(lua_State *L, const adhoc_opts *o)
{
    if (o->embedded) return sandbox_load_embedded(L, o->embedded);
    if (o->file) return sandbox_loadfile(L, o->file);
    /* An expression prints its value without `return`. */
    char *expr = xasprintf("return %s", o->code);
    int rc = luaL_loadbufferx(L, expr, strlen(expr), "=eval", "t");
    free(expr);
    if (rc == LUA_OK || rc == LUA_ERRMEM) return rc; /* out of memory says nothing of the syntax */
    lua_pop(L, 1);
    return luaL_loadbufferx(L, o->code, strlen(o->code), "=eval", "t");
}

int adhoc_push_show(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, "halo.show") == LUA_TTABLE) return 0;
    lua_pop(L, 1);
    if (sandbox_load_embedded(L, "run/pretty") != LUA_OK) return -1;
    internal_push(L);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) return -1;
    if (sandbox_load_embedded(L, "run/show") != LUA_OK) {
        lua_remove(L, -2);
        return -1;
    }
    lua_insert(L, -2);
    internal_push(L);
    lua_insert(L, -2);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) return -1;
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "halo.show");
    return 0;
}

/* Write the values of the packed table at `results` as show.lua renders
 * them: together (one line, tab-separated, as the REPL shows them) or one
 * value a line. */
static int write_shown(lua_State *L, int results, int together)
{
    results = lua_absindex(L, results);
    if (adhoc_push_show(L) != 0) return -1;
    lua_getfield(L, -1, "render");
    lua_remove(L, -2);
    lua_pushvalue(L, results);
    lua_pushboolean(L, together);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) return -1;
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    if (len) {
        fwrite(text, 1, len, stdout);
        fputc('\n', stdout);
    }
    fflush(stdout);
    lua_pop(L, 1);
    return 0;
}

/* show(...): print values the way the REPL does (a probe script's output). */
static int adhoc_show(lua_State *L)
{
    int n = lua_gettop(L);
    lua_createtable(L, n, 1);
    lua_insert(L, 1);
    for (int i = n; i >= 1; i--) lua_rawseti(L, 1, i);
    lua_pushinteger(L, n);
    lua_setfield(L, 1, "n");
    if (write_shown(L, 1, 1) != 0) return lua_error(L);
    return 0;
}

void adhoc_globals(lua_State *L)
{
    sandbox_module_globals(L);
    lua_pushcfunction(L, adhoc_show);
    lua_setglobal(L, "show");
}

static int print_results(lua_State *L, int results)
{
    if (write_shown(L, results, 0) != 0) {
        halo_warn("cannot print the results: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

#define UNDO_GRACE 10.0

static void warn_cleanup(const char *message, const char *detail, void *ud)
{
    (void)detail;
    (void)ud;
    halo_warn("%s", message);
}

static void warn_unobserved(int id, const char *text, void *ud)
{
    (void)ud;
    halo_warn("background task %d failed: %s", id, text);
}

typedef struct {
    const adhoc_opts *o;
    int code;
} adhoc_state;

/* Everything that runs Lua, under lua_pcall: a memory error anywhere in
 * setting up (a global, the task's thread) is an error exit, not a panic. */
static int adhoc_body(lua_State *L)
{
    adhoc_state *st = lua_touserdata(L, 1);
    const adhoc_opts *o = st->o;
    lua_settop(L, 0);
    char *err = NULL;
    /* --timeout covers everything the script's run evaluates, the stack file too */
    double deadline = o->timeout > 0 ? clock_mono() + o->timeout : 0;
    char reason[96];
    snprintf(reason, sizeof reason, "timeout: exceeded the %g s limit (--timeout)", o->timeout);
    sandbox_set_deadline(L, deadline, reason);
    int loaded = stack_load(L, o->stack_file, &err);
    if (loaded != 0) {
        halo_warn("%s", err);
        free(err);
        st->code = loaded == -2 ? 3 : 2;
        return 0;
    }
    lua_setglobal(L, "stack");
    adhoc_globals(L);

    if (load_chunk(L, o) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        halo_warn("%s", msg ? msg : "cannot load the chunk");
        /* A missing file is a usage error; a broken one is the script's. */
        st->code = o->file && msg && strncmp(msg, "cannot open", 11) == 0 ? 2 : 3;
        return 0;
    }
    int nargs = 0;
    if (o->embedded) {
        /* a host script: the internal table, then the arguments */
        internal_push(L);
        for (size_t i = 0; i < o->nargs; i++) lua_pushstring(L, o->args[i]);
        nargs = 1 + (int)o->nargs;
    } else if (o->file) {
        nargs = (int)o->nargs;
        lua_createtable(L, (int)o->nargs, 1);
        lua_pushstring(L, o->file);
        lua_rawseti(L, -2, 0);
        for (size_t i = 0; i < o->nargs; i++) {
            lua_pushstring(L, o->args[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        lua_setglobal(L, "arg");
        for (size_t i = 0; i < o->nargs; i++) lua_pushstring(L, o->args[i]);
    }
    task *t = sched_spawn(L, nargs);
    int handle = lua_gettop(L);
    sched_observe(t);
    sched_result r = sched_run(L, t, deadline);
    const char *kill = sandbox_kill_reason(L);
    if (r != SCHED_DONE || kill) {
        const char *why = kill ? kill
                        : r == SCHED_DEADLINE ? reason
                        : r == SCHED_INTERRUPTED ? "interrupted"
                        : "deadlocked: every task waits on another and nothing can wake them";
        halo_warn("%s", why);
        st->code = r == SCHED_INTERRUPTED || (kill && strcmp(kill, "interrupted") == 0) ? 130 : 3;
    } else if (sched_task_ok(t)) {
        sched_push_outcome(L, handle);
        if (print_results(L, lua_gettop(L)) != 0) st->code = 3;
        lua_pop(L, 1);
    } else {
        const char *text = sched_error_text(t);
        if (o->verbose) {
            halo_warn("%s", text);
        } else {
            char *first = xstrdup(text ? text : "?");
            first[strcspn(first, "\n")] = '\0';
            halo_warn("%s", first);
            free(first);
        }
        st->code = 3;
    }
    if (sched_unobserved_failures(L, warn_unobserved, NULL) && st->code == 0) st->code = 3;
    return 0;
}

/* The way out, also protected: tasks still running are cancelled, and the
 * faults the script injected (a killed container) are undone, as after a
 * check; a second Ctrl-C cuts this short. */
static int adhoc_finish(lua_State *L)
{
    adhoc_state *st = lua_touserdata(L, 1);
    lua_settop(L, 0);
    int leftover = sched_cancel_all(L);
    if (leftover && st->o->verbose) halo_warn("cancelled %d task(s) still running at the end", leftover);
    sched_clear_interrupt();
    sandbox_rearm(L, 0, NULL, (size_t)16 << 20);
    internal_push_undos(L);
    double grace = st->o->grace > 0 ? st->o->grace : UNDO_GRACE;
    if (cleanup_run(L, -1, grace, 0, warn_cleanup, NULL) && st->code == 0) st->code = 3;
    lua_pop(L, 1);
    internal_remove_temps(L);
    return 0;
}

static void run_protected(lua_State *L, lua_CFunction fn, adhoc_state *st)
{
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, st);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        halo_warn("%s", msg ? msg : "error");
        lua_pop(L, 1);
        if (st->code == 0) st->code = 3;
    }
}

int adhoc_run(const adhoc_opts *o)
{
    signal(SIGPIPE, SIG_IGN);
    on_interrupt_signals(on_interrupt);

    events_origin(); /* times in the request history count from here */
    sandbox_opts so = {.mem_limit = o->mem_limit, .modules = halo_modules,
                       .lib_dirs = o->lib_dirs, .nlib_dirs = o->nlib_dirs};
    lua_State *L = sandbox_new(&so);
    if (!L) {
        halo_warn("out of memory");
        return 3;
    }
    adhoc_state st = {o, 0};
    run_protected(L, adhoc_body, &st);
    run_protected(L, adhoc_finish, &st);
    sandbox_close(L);
    return st.code;
}
