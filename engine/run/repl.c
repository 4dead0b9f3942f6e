/* `halo repl`. The terminal (run/repl/term.c) and the scheduler share one
 * event loop: tasks a line spawned keep running between prompts, and every
 * line runs as a task of its own, which Ctrl-C stops without ending the
 * REPL. What a line means, how values print and what completes is
 * engine/run/repl.lua, and what it reaches outside the sandbox is
 * run/repl/host.c; this file is the session: running lines, and the way
 * out (every fault undone). Without a terminal it reads lines from stdin,
 * prints results, and exits 3 if a line raised. */
#include "run/repl.h"
#include "run/repl/host.h"
#include "run/repl/term.h"
#include "run/adhoc.h"
#include "core/cleanup.h"
#include "core/internal.h"
#include "core/loop.h"
#include "mod/modules.h"
#include "core/sandbox.h"
#include "core/sched.h"
#include "check/stack.h"
#include "core/util.h"
#include "core/events.h"

#include <lauxlib.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_GRACE 10.0      /* seconds for the session's defers, then for each undo */

static struct {
    const repl_opts *o;
    lua_State *L;
    int repl;                /* registry ref of repl.lua's table */
    int tty;
    int quit;
    int failed;              /* a line raised (the exit status without a terminal) */
} R;

static volatile sig_atomic_t got_sigint, got_sigterm;

static void on_sigint(int sig)
{
    (void)sig;
    got_sigint = 1;
    sandbox_interrupt_target();
    loop_interrupt_from_signal();
}

static void on_sigterm(int sig)
{
    (void)sig;
    got_sigterm = 1;
    sandbox_interrupt_target();
    loop_interrupt_from_signal();
}

static void say(const char *fmt, ...) HALO_PRINTF(1, 2);
static void say(const char *fmt, ...)
{
    strbuf sb;
    sb_init(&sb);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    puts_redacted(sb.buf, stdout);
    sb_free(&sb);
}

/* [-0, +1] a function of repl.lua */
static void push_repl_fn(lua_State *L, const char *name)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, R.repl);
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
}

/* ---- running a line ---------------------------------------------------------- */

static void report_error(const char *text)
{
    if (R.o->verbose) {
        say("%s", text ? text : "error");
        return;
    }
    char *first = xstrdup(text ? text : "error");
    first[strcspn(first, "\n")] = '\0';
    say("%s", first);
    free(first);
}

static void background_failure(int id, const char *text, void *ud)
{
    (void)ud;
    char *first = xstrdup(text ? text : "?");
    first[strcspn(first, "\n")] = '\0';
    say("background task %d failed: %s", id, first);
    free(first);
}

/* Run the function on top of the stack as a task, until it ends or Ctrl-C
 * stops it; the tasks it spawned run on. */
static void run_line(lua_State *L)
{
    task *t = sched_spawn(L, 0);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX); /* the handle: its outcome stays readable */
    sched_observe(t);
    sandbox_set_interrupt_target(L, t);
    int interrupted = 0;
    while (!sched_task_done(t)) {
        if (got_sigint || got_sigterm) {
            pid_t child = repl_host_child();
            if (child > 0) {
                /* a .run child has the Ctrl-C too (on a terminal, the whole
                 * foreground group does): it ends itself, with its report */
                if (!R.tty) kill(child, got_sigterm ? SIGTERM : SIGINT);
                got_sigint = 0;
                if (got_sigterm) break;
                continue;
            }
            interrupted = 1;
            break;
        }
        if (sched_step(L, -1) < 0) {
            say("this line waits on nothing that can ever wake it: stopped");
            break;
        }
    }
    if (!sched_task_done(t)) sched_cancel(L, t);
    sandbox_set_interrupt_target(L, NULL);
    interrupted |= got_sigint;
    got_sigint = 0;
    if (interrupted) {
        say("interrupted");
    } else if (!sched_task_ok(t)) {
        R.failed = 1;
        report_error(sched_error_text(t));
    }
    const char *kill = sandbox_kill_reason(L);
    if (kill) {
        /* memory or the like: the line is gone, the session goes on */
        say("%s: the line was stopped", kill);
        R.failed = 1;
        sandbox_rearm(L, 0, NULL, 0);
    }
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
}

static void handle_line(char *line)
{
    lua_State *L = R.L;
    if (!line) {
        if (R.tty) fputc('\n', stdout);
        R.quit = 1;
        return;
    }
    repl_term_remember(line);
    int top = lua_gettop(L);
    push_repl_fn(L, "feed");
    lua_pushstring(L, line);
    free(line);
    if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
        report_error(lua_tostring(L, -1));
        R.failed = 1;
    } else if (lua_isfunction(L, -2)) {
        lua_pop(L, 1);
        run_line(L);
    } else if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "exit") == 0) {
        R.quit = 1;
    } else if (lua_isstring(L, -1)) {
        report_error(lua_tostring(L, -1));
        R.failed = 1;
    }
    lua_settop(L, top);
}

/* Ctrl-C at the prompt: what was typed (and an unfinished chunk) goes. */
static void discard_input(void)
{
    push_repl_fn(R.L, "reset");
    lua_call(R.L, 0, 0);
    repl_term_discard();
}

/* ---- the way out --------------------------------------------------------- */

static void warn_cleanup(const char *message, const char *detail, void *ud)
{
    (void)detail;
    (void)ud;
    halo_warn("%s", message);
}

static void leave(lua_State *L)
{
    repl_term_stop();
    got_sigint = 0;
    /* the session's t:defer functions, then every fault it injected */
    push_repl_fn(L, "run_defers");
    task *t = sched_spawn(L, 0);
    sched_observe(t);
    if (sched_run(L, t, clock_mono() + EXIT_GRACE) != SCHED_DONE) {
        say("cleanup of the session's defers did not finish within %g s", EXIT_GRACE);
        if (!sched_task_done(t)) sched_cancel(L, t);
    }
    lua_pop(L, 1);
    int stopped = sched_cancel_all(L);
    if (stopped) say("stopped %d background task%s", stopped, stopped == 1 ? "" : "s");
    sched_clear_interrupt();
    sandbox_rearm(L, 0, NULL, (size_t)16 << 20);
    internal_push_undos(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_getfield(L, -1, "label");
        /* "automatic undo (unpause halo_api2_1): " -> "unpause halo_api2_1" */
        const char *label = lua_tostring(L, -1) ? lua_tostring(L, -1) : "?";
        const char *open = strchr(label, '('), *close = strrchr(label, ')');
        if (open && close > open) say("undoing: %.*s", (int)(close - open - 1), open + 1);
        else say("undoing: %s", label);
        lua_pop(L, 2);
    }
    if (cleanup_run(L, -1, EXIT_GRACE, 0, warn_cleanup, NULL)) R.failed = 1;
    lua_pop(L, 1);
    internal_remove_temps(L);
}

/* ---- setup ------------------------------------------------------------------ */

static int load_repl_lua(lua_State *L, double started)
{
    if (adhoc_push_show(L) != 0) return -1;
    int show = lua_gettop(L);
    if (sandbox_load_embedded(L, "run/repl") != LUA_OK) return -1;
    repl_push_host(L, R.o, started);
    internal_push(L);
    lua_pushvalue(L, show);
    if (lua_pcall(L, 3, 1, 0) != LUA_OK) return -1;
    lua_getfield(L, -1, "t");
    lua_setglobal(L, "t");
    R.repl = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    return 0;
}

int repl_run(const repl_opts *o)
{
    memset(&R, 0, sizeof R);
    R.o = o;
    R.tty = isatty(STDIN_FILENO);
    signal(SIGPIPE, SIG_IGN);
    on_interrupt_signals(on_sigint);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_sigterm;
    sigaction(SIGTERM, &sa, NULL);

    double started = events_origin();
    sandbox_opts so = {.mem_limit = o->mem_limit, .modules = halo_modules,
                       .lib_dirs = o->lib_dirs, .nlib_dirs = o->nlib_dirs};
    lua_State *L = sandbox_new(&so);
    if (!L) {
        halo_warn("out of memory");
        return 3;
    }
    R.L = L;
    char *err = NULL;
    if (stack_load(L, o->stack_file, &err) != 0) {
        halo_warn("%s", err);
        free(err);
        sandbox_close(L);
        return 2;
    }
    lua_setglobal(L, "stack");
    adhoc_globals(L);
    if (load_repl_lua(L, started) != 0) {
        halo_warn("internal: %s", lua_tostring(L, -1));
        sandbox_close(L);
        return 3;
    }
    repl_term_open(L, R.repl, R.tty);
    if (R.tty) {
        say("halo %s REPL%s%s — .help for commands, Ctrl-D to leave", HALO_VERSION,
            o->stack_file ? " on " : "", o->stack_file ? o->stack_file : "");
    }
    repl_term_ask();
    while (!R.quit && !got_sigterm) {
        char *line;
        if (repl_term_take(&line)) {
            handle_line(line);
            sched_unobserved_failures(L, background_failure, NULL);
            if (!R.quit && !got_sigterm) repl_term_ask();
            continue;
        }
        if (got_sigint) {
            got_sigint = 0;
            sandbox_set_interrupt_target(L, NULL);
            discard_input();
            continue;
        }
        if (sched_step(L, -1) < 0) break; /* cannot happen: stdin is watched */
        sched_unobserved_failures(L, background_failure, NULL);
    }
    leave(L);
    repl_term_close();
    sandbox_close(L);
    if (got_sigterm) return 143;
    return R.failed && !R.tty ? 3 : 0;
}
