/* One check, start to finish, inside a forked worker: sandbox, stack,
 * check file, requires, run, cleanup; every observation is streamed to the
 * runner as an event (core/events.def). The runner enforces the hard
 * deadline; this file enforces the soft one and runs the defers. The
 * probe (check/probe.c) and the runner's scripts (check/script.c) are the
 * other children; what they share is check/context.c. */
#include "check/worker.h"
#include "check/context.h"
#include "check/stack.h"
#include "core/cleanup.h"
#include "core/events.h"
#include "core/internal.h"
#include "core/rlimits.h"
#include "core/sandbox.h"
#include "core/sched.h"
#include "core/status.h"
#include "core/util.h"

#include <lauxlib.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define HALO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HALO_ASAN 1
#endif
#endif

/* The sandbox's cap counts Lua's own memory; a library that mallocs on a
 * script's behalf (cjson building a huge document) is outside it. The
 * address-space limit is the backstop that keeps such a worker from
 * taking the host's memory: it fails, and costs only its own check. */
static void limit_address_space(size_t mem_limit)
{
#ifndef HALO_ASAN /* ASan reserves terabytes of shadow memory */
    rlimits_cap_address_space((mem_limit ? mem_limit : SANDBOX_DEFAULT_MEM) + ((size_t)512 << 20));
#else
    (void)mem_limit;
#endif
}

static void on_term(int sig)
{
    (void)sig;
    sched_request_interrupt();
}

/* Once cleanup runs, a termination signal (the runner relays the
 * operator's Ctrl-C) must not stop it: the defers and undos run once, to
 * the end, under their grace; a second Ctrl-C makes the runner kill the
 * worker outright and replay its undos. A handler that does nothing, not
 * SIG_IGN, which programs started from cleanup would inherit. */
static void on_term_in_cleanup(int sig) { (void)sig; }

static void keep_cleanup_going(void) { on_interrupt_signals(on_term_in_cleanup); }

static void catch_termination(void) { on_interrupt_signals(on_term); }

/* ---- running ---------------------------------------------------------------- */

typedef struct {
    check_status status; /* ST_PASS, ST_FAIL, ST_ERROR or ST_NA */
    strbuf message;
} outcome;

static void set_outcome(outcome *oc, check_status status, const char *fmt, ...) HALO_PRINTF(3, 4);
static void set_outcome(outcome *oc, check_status status, const char *fmt, ...)
{
    oc->status = status;
    sb_free(&oc->message);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&oc->message, fmt, ap);
    va_end(ap);
}

/* ERROR wins over everything, and its message keeps what came before. */
static void add_error(outcome *oc, const char *text)
{
    if (oc->status != ST_ERROR && oc->message.len) {
        char *before = sb_take(&oc->message);
        sb_printf(&oc->message, "%s; and %s", text, before);
        free(before);
    } else if (oc->message.len) {
        sb_printf(&oc->message, "; %s", text);
    } else {
        sb_adds(&oc->message, text);
    }
    oc->status = ST_ERROR;
}

/* [-0, +0] the current step name from the context, or NULL (malloc'ed) */
static char *current_step(lua_State *L, int control)
{
    lua_getfield(L, control, "current_step");
    char *name = NULL;
    if (lua_pcall(L, 0, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) name = xstrdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    return name;
}

static const char *stop_phrase(sched_result r)
{
    switch (r) {
    case SCHED_DEADLINE: return "timed out";
    case SCHED_INTERRUPTED: return "interrupted";
    case SCHED_STUCK: return "deadlocked: every task waits on another and nothing can wake them";
    default: return "stopped";
    }
}

static void report_unobserved(int id, const char *text, void *ud)
{
    outcome *oc = ud;
    char *msg = xasprintf("background task %d failed: %s", id, text);
    char *nl = strchr(msg, '\n');
    events_log("error", msg);
    if (nl) *nl = '\0';
    add_error(oc, msg);
    free(msg);
}

/* Runs the spawned task on top of L to completion, the deadline, or an
 * interrupt. Leaves nothing on the stack; returns the scheduler's verdict
 * and the task in *out (with a registry ref in *ref). */
static sched_result run_task(lua_State *L, double deadline, task **out, int *ref)
{
    task *t = (task *)lua_touserdata(L, -1);
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    sched_observe(t);
    *out = t;
    return sched_run(L, t, deadline);
}

static void report_cleanup(const char *message, const char *detail, void *ud)
{
    events_log("error", detail);
    add_error((outcome *)ud, message);
}

/* The check's defers, newest first, then the automatic undo of faults the
 * check injected and did not undo itself; all within the grace. */
static void run_cleanup(lua_State *L, int control, outcome *oc, double grace, double hard_end)
{
    char reason[96];
    snprintf(reason, sizeof reason, "cleanup exceeded its %g s grace", grace);
    sandbox_rearm(L, 0, reason, (size_t)16 << 20);

    lua_getfield(L, control, "defers");
    if (lua_pcall(L, 0, 1, 0) == LUA_OK) cleanup_run(L, -1, grace, hard_end, report_cleanup, oc);
    lua_pop(L, 1);
    internal_push_undos(L);
    cleanup_run(L, -1, grace, hard_end, report_cleanup, oc);
    lua_pop(L, 1);
    internal_remove_temps(L);
}

static int run_main(lua_State *L)
{
    const worker_opts *o = lua_touserdata(L, 1);
    lua_settop(L, 0);
    outcome oc = {ST_PASS, {NULL, 0, 0}};
    char *err = NULL;
    /* Loading gets the same budget as the run; it is normally instant. */
    if (context_load(L, &err) != 0) {
        set_outcome(&oc, ST_ERROR, "%s", err);
        goto done;
    }
    int ctxmod = lua_gettop(L);
    if (stack_load(L, o->stack_file, &err) != 0) {
        set_outcome(&oc, ST_ERROR, "%s", err);
        goto done;
    }
    int stack = lua_gettop(L);
    sandbox_set_deadline(L, clock_mono() + 5, "loading the check file took longer than 5 s");
    if (context_load_spec(L, ctxmod, o->check_file, &err) != 0) {
        set_outcome(&oc, ST_ERROR, "%s", err);
        goto done;
    }
    int spec = lua_gettop(L);

    lua_getfield(L, spec, "timeout");
    double timeout = o->timeout_override > 0 ? o->timeout_override : lua_tonumber(L, -1);
    lua_getfield(L, spec, "grace");
    double grace = lua_tonumber(L, -1) > o->grace ? lua_tonumber(L, -1) : o->grace; /* the longer */
    lua_pop(L, 2);
    double deadline = events_origin() + timeout;
    double hard_end = events_origin() + timeout + grace;
    char reason[96];
    snprintf(reason, sizeof reason, "timeout: the check exceeded its %g s limit", timeout);
    sandbox_set_deadline(L, deadline, reason);

    lua_getfield(L, ctxmod, "new");
    lua_pushvalue(L, spec);
    lua_call(L, 1, 2);
    int control = lua_gettop(L);
    int tctx = control - 1;

    task *t;
    int ref = LUA_NOREF;
    /* Faults (kills, stops, recreates) only where the stack file allows them
     * or the operator said so: a check that declares it injects them is
     * N/A elsewhere, and docker refuses an undeclared one (mod/docker.lua). */
    lua_getfield(L, stack, "allow_faults");
    int faults_allowed = o->allow_faults || (lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1));
    lua_pop(L, 1);
    lua_pushboolean(L, faults_allowed);
    lua_setfield(L, LUA_REGISTRYINDEX, FAULTS_ALLOWED_KEY);
    lua_getfield(L, spec, "faults");
    int injects = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (injects && !faults_allowed) {
        set_outcome(&oc, ST_NA, "this check injects faults (faults = true), and the stack does not allow them: "
                                "set allow_faults = true in the stack file, or run with --allow-faults");
        goto cleanup;
    }
    lua_getfield(L, spec, "requires");
    if (!lua_isnil(L, -1)) {
        lua_pushvalue(L, stack);
        sched_spawn(L, 1);
        sched_result r = run_task(L, deadline, &t, &ref);
        if (r != SCHED_DONE) {
            set_outcome(&oc, ST_ERROR, "requires() %s", stop_phrase(r));
            goto cleanup;
        }
        lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
        sched_push_outcome(L, lua_gettop(L));
        if (!sched_task_ok(t)) {
            const char *kill = sandbox_kill_reason(L);
            const char *text = sched_error_text(t);
            if (!kill) events_log("error", text ? text : "?");
            set_outcome(&oc, ST_ERROR, "requires() failed: %.*s", (int)strcspn(kill ? kill : text ? text : "?", "\n"),
                        kill ? kill : text ? text : "?");
            lua_pop(L, 2);
            goto cleanup;
        }
        lua_rawgeti(L, -1, 1);
        if (!lua_toboolean(L, -1)) {
            lua_rawgeti(L, -2, 2);
            const char *why = lua_tostring(L, -1);
            set_outcome(&oc, ST_NA, "%s", why ? why : "requires() said this check does not apply");
            lua_pop(L, 4);
            goto cleanup;
        }
        lua_pop(L, 3);
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
    } else {
        lua_pop(L, 1);
    }

    lua_getfield(L, spec, "run");
    lua_pushvalue(L, tctx);
    lua_pushvalue(L, stack);
    sched_spawn(L, 2);
    sched_result r = run_task(L, deadline, &t, &ref);
    char *step = current_step(L, control);
    const char *kill = sandbox_kill_reason(L);
    if (r != SCHED_DONE || kill) {
        const char *why = kill ? kill : r == SCHED_DEADLINE ? reason : stop_phrase(r);
        char *at = kill && sandbox_kill_where(L) ? xstrdup(sandbox_kill_where(L)) : sched_task_where(t);
        char *said = at ? xasprintf("%s at %s", why, at) : xstrdup(why);
        if (step) set_outcome(&oc, ST_ERROR, "%s (in step '%s')", said, step);
        else set_outcome(&oc, ST_ERROR, "%s", said);
        free(said);
        free(at);
    } else if (sched_task_ok(t)) {
        lua_getfield(L, control, "skipped");
        lua_call(L, 0, 1);
        if (lua_isstring(L, -1)) set_outcome(&oc, ST_NA, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
    } else {
        lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
        sched_push_outcome(L, lua_gettop(L));
        lua_getfield(L, control, "classify");
        lua_pushvalue(L, -2);
        lua_call(L, 1, 1);
        const char *kind = lua_tostring(L, -1);
        if (kind && strcmp(kind, "assert") == 0) {
            /* the status comes from the recorded failure, below */
        } else if (kind && strcmp(kind, "skip") == 0) {
            lua_getfield(L, control, "skipped");
            lua_call(L, 0, 1);
            set_outcome(&oc, ST_NA, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "skipped");
            lua_pop(L, 1);
        } else {
            char *text = sandbox_explain_memory_error(L, sched_error_text(t));
            events_log("error", text);
            char *first = xstrdup(text);
            free(text);
            char *nl = strchr(first, '\n');
            if (nl) *nl = '\0';
            if (step) set_outcome(&oc, ST_ERROR, "%s (in step '%s')", first, step);
            else set_outcome(&oc, ST_ERROR, "%s", first);
            free(first);
        }
        lua_pop(L, 3);
        /* A failed expectation before an error still counts as a failure
         * in the log; the error decides the status. */
    }
    free(step);

cleanup:
    if (ref != LUA_NOREF) {
        /* the run itself, stopped by a timeout, is not a leftover */
        lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
        sched_cancel(L, (task *)lua_touserdata(L, -1));
        lua_pop(L, 1);
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
    }
    {
        int leftover = sched_cancel_all(L);
        if (leftover > 0) {
            char *msg = xasprintf("cancelled %d task(s) still running when the check ended", leftover);
            events_log("info", msg);
            free(msg);
        }
        sched_unobserved_failures(L, report_unobserved, &oc);
    }
    /* Cleanup runs after an interrupt too, and a further signal does not
     * stop it (the runner's second Ctrl-C kills the worker instead). */
    keep_cleanup_going();
    sched_clear_interrupt();
    run_cleanup(L, control, &oc, grace, hard_end);
    if (oc.status != ST_ERROR) {
        /* Any failed expectation, in the run or in its cleanup, makes the
         * check FAIL, and its message is the first one: that is what broke. */
        lua_getfield(L, control, "failures");
        lua_call(L, 0, 2);
        lua_Integer fails = lua_tointeger(L, -2);
        if (fails > 0) {
            const char *first = lua_tostring(L, -1);
            if (fails > 1) set_outcome(&oc, ST_FAIL, "%s (and %lld more)", first ? first : "?", (long long)fails - 1);
            else set_outcome(&oc, ST_FAIL, "%s", first ? first : "?");
        }
        lua_pop(L, 2);
    }

done:
    {
        const char *f[] = {status_name(oc.status), oc.message.buf ? oc.message.buf : ""};
        events_send(EV_DONE, 2, f);
    }
    free(err);
    sb_free(&oc.message);
    return 0;
}

int worker_run(const worker_opts *o)
{
    events_attach(o->event_fd);
    limit_address_space(o->mem_limit);
    context_ignore_sigpipe();
    catch_termination();
    context_watch_runner(o);
    lua_State *L = context_sandbox(o);
    if (!L) {
        const char *f[] = {status_name(ST_ERROR), "out of memory creating the sandbox"};
        events_send(EV_DONE, 2, f);
        return 0;
    }
    /* A run that raised past run_main ends without EV_DONE: the runner
     * takes it for a worker that died, and replays the undo of its faults. */
    context_run_protected(L, run_main, o);
    sandbox_close(L);
    return 0;
}
