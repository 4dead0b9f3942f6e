/* Tasks as Lua threads on one event loop. Everything that resumes a task
 * lives here; primitives only suspend (sched_wait) and wake (sched_wake).
 *
 * A scheduler yield carries a private sentinel as its first value. The
 * sandbox's coroutine.resume/wrap recognise it and re-yield it outward, so
 * `time.sleep` inside a user coroutine suspends the whole task instead of
 * returning to the user's resume; when the task is woken the wrappers
 * resume the inner coroutine again, and it lands in the primitive's
 * continuation as if nothing happened. */
#include "core/errors.h"
#include "core/sched.h"
#include "core/loop.h"
#include "core/util.h"

#include <lauxlib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define TASK_MT "halo.task"
#define BUSY_KEY "halo.busy"

enum { T_READY, T_WAITING, T_RUNNING, T_DONE };

struct task {
    lua_State *co;
    int id;
    int state;
    int ok;
    int cancelled;
    int started;
    int nargs;
    int observed;    /* someone will look at its outcome (join, or the host) */
    int ending;      /* finish or cancel under way: Lua they run (a __tostring,
                        a __close) must not end the task a second time */
    int anchor;      /* registry ref to the handle while the task is live */
    sched_cancel_fn cancel;
    void *wait;
    task *next_ready;
    int queued;
    task *prev_live, *next_live;
    task **joiners;
    size_t njoiners, capjoiners;
    char *error_text;  /* "message\nstack traceback:..." once failed */
};

static struct {
    lua_State *L;
    task *current;
    task *ready_head, *ready_tail;
    task *live;
    int nlive;
    int next_id;
} S;

static volatile sig_atomic_t interrupt_flag;
static char sentinel; /* its address marks a scheduler yield */

void sched_request_interrupt(void)
{
    interrupt_flag = 1;
    loop_interrupt_from_signal();
}

int sched_interrupted(void) { return interrupt_flag != 0; }
void sched_clear_interrupt(void) { interrupt_flag = 0; }
task *sched_current(void) { return S.current; }
int sched_live_tasks(void) { return S.nlive; }
int sched_task_done(const task *t) { return t->state == T_DONE; }
int sched_task_id(const task *t) { return t ? t->id : 0; }
int sched_task_ok(const task *t) { return t->state == T_DONE && t->ok; }

/* ---- busy set: threads the user must not resume or close ------------- */

static void busy_set(lua_State *L, lua_State *co, int on)
{
    lua_getfield(L, LUA_REGISTRYINDEX, BUSY_KEY);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    if (on) lua_pushboolean(L, 1);
    else lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

static int busy_get(lua_State *L, lua_State *co)
{
    lua_getfield(L, LUA_REGISTRYINDEX, BUSY_KEY);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    lua_rawget(L, -2);
    int on = lua_toboolean(L, -1);
    lua_pop(L, 2);
    return on;
}

/* ---- ready queue and live list ------------------------------------- */

static void ready_push(task *t)
{
    if (t->queued) return;
    t->queued = 1;
    t->next_ready = NULL;
    if (S.ready_tail) S.ready_tail->next_ready = t;
    else S.ready_head = t;
    S.ready_tail = t;
}

static task *ready_pop(void)
{
    task *t = S.ready_head;
    if (!t) return NULL;
    S.ready_head = t->next_ready;
    if (!S.ready_head) S.ready_tail = NULL;
    t->queued = 0;
    t->next_ready = NULL;
    return t;
}

static void ready_remove(task *t)
{
    if (!t->queued) return;
    task **pp = &S.ready_head, *prev = NULL;
    while (*pp && *pp != t) {
        prev = *pp;
        pp = &(*pp)->next_ready;
    }
    if (*pp) {
        *pp = t->next_ready;
        if (S.ready_tail == t) S.ready_tail = prev;
    }
    t->queued = 0;
    t->next_ready = NULL;
}

static void live_remove(task *t)
{
    if (t->prev_live) t->prev_live->next_live = t->next_live;
    else if (S.live == t) S.live = t->next_live;
    if (t->next_live) t->next_live->prev_live = t->prev_live;
    t->prev_live = t->next_live = NULL;
    S.nlive--;
}

/* ---- finishing -------------------------------------------------------- */

/* [-0, +1] the task's handle */
static void push_handle(lua_State *L, task *t)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->anchor);
}

static int tostring_protected(lua_State *L)
{
    luaL_tolstring(L, 1, NULL);
    return 1;
}

/* Text of an error value. A broken __tostring must not take the host
 * down, so it runs protected. */
static char *describe_error(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING) return xstrdup(lua_tostring(L, idx));
    if (luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushcfunction(L, tostring_protected);
        lua_pushvalue(L, idx);
        if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) {
            char *text = xstrdup(lua_tostring(L, -1));
            lua_pop(L, 1);
            return text;
        }
        lua_pop(L, 1);
    }
    if (lua_isnil(L, idx)) return xstrdup("(error object is nil)");
    return xasprintf("(error object is a %s value)", luaL_typename(L, idx));
}

static int traceback_protected(lua_State *L)
{
    luaL_traceback(L, lua_tothread(L, 1), lua_tostring(L, 2), 0);
    return 1;
}

/* "message\nstack traceback:..." (malloc'ed; takes msg). Protected: a
 * task that died of memory exhaustion must not take the host with it. */
static char *traceback_of(lua_State *L, lua_State *co, char *msg)
{
    lua_pushcfunction(L, traceback_protected);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    lua_pushstring(L, msg);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        lua_pop(L, 1);
        return msg;
    }
    char *text = xstrdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    free(msg);
    return text;
}

static void wake_joiners(task *t)
{
    for (size_t i = 0; i < t->njoiners; i++) sched_wake(t->joiners[i]);
    t->njoiners = 0;
}

/* The task's results (or its error value, on top of co when it raised) move
 * into its handle, and the thread is let go. */
static void finish(lua_State *L, task *t, int ok, int nres)
{
    t->ending = 1;
    push_handle(L, t);
    int h = lua_gettop(L);
    if (ok) {
        /* the results table is filled on the task's own stack, which holds
         * them already; only the table moves (a task may return hundreds) */
        lua_State *co = t->co;
        lua_checkstack(co, 3);
        lua_createtable(co, nres, 1);
        lua_insert(co, -(nres + 1));
        int results = lua_gettop(co) - nres;
        for (int i = nres; i >= 1; i--) lua_rawseti(co, results, i);
        lua_pushinteger(co, nres);
        lua_setfield(co, -2, "n");
        lua_xmove(co, L, 1);
    } else {
        lua_xmove(t->co, L, 1);
        char *msg = describe_error(L, -1);
        if (t->cancelled) {
            t->error_text = msg;
        } else {
            t->error_text = traceback_of(L, t->co, msg);
        }
    }
    lua_setiuservalue(L, h, 2);
    busy_set(L, t->co, 0);
    lua_pushnil(L);
    lua_setiuservalue(L, h, 1);

    t->state = T_DONE;
    t->ok = ok;
    t->co = NULL;
    t->cancel = NULL;
    t->wait = NULL;
    live_remove(t);
    if (t->njoiners) t->observed = 1;
    wake_joiners(t);
    if (!ok && !t->observed && !t->cancelled) {
        /* Nobody is waiting for this failure yet: keep the handle so the
         * host can report it if nobody ever joins. */
        lua_getfield(L, LUA_REGISTRYINDEX, "halo.failed");
        lua_pushvalue(L, h);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, t->anchor);
    t->anchor = LUA_NOREF;
}

static void finish_with_message(lua_State *L, task *t, const char *msg)
{
    lua_settop(t->co, 0);
    lua_pushstring(t->co, msg);
    finish(L, t, 0, 0);
}

/* ---- resuming --------------------------------------------------------- */

static void resume_task(task *t)
{
    int nres = 0;
    int nargs = t->started ? 0 : t->nargs;
    t->started = 1;
    t->state = T_RUNNING;
    S.current = t;
    int status = lua_resume(t->co, S.L, nargs, &nres);
    S.current = NULL;
    if (status == LUA_YIELD) {
        int ours = nres >= 1 && lua_touserdata(t->co, -nres) == &sentinel;
        lua_pop(t->co, nres);
        if (!ours) {
            finish_with_message(S.L, t, "coroutine.yield called outside a coroutine");
            return;
        }
        if (t->state == T_RUNNING) t->state = T_WAITING;
        return;
    }
    finish(S.L, t, status == LUA_OK, nres);
}

int sched_step(double max_wait)
{
    /* Resume only what was ready when this round began, so a task that
     * keeps re-queuing itself cannot starve I/O and timers. */
    task *last = S.ready_tail;
    int ran = 0;
    while (S.ready_head) {
        task *t = ready_pop();
        resume_task(t);
        ran = 1;
        if (t == last) break;
    }
    if (ran) {
        loop_step(0);
        return 1;
    }
    if (!loop_busy()) return -1;
    loop_step(max_wait);
    return 0;
}

sched_result sched_run(task *until, double deadline)
{
    for (;;) {
        if (until ? until->state == T_DONE : S.nlive == 0) return SCHED_DONE;
        if (interrupt_flag) return SCHED_INTERRUPTED;
        if (deadline > 0 && clock_mono() >= deadline) return SCHED_DEADLINE;
        double wait = -1;
        if (deadline > 0) {
            wait = deadline - clock_mono();
            if (wait < 0) wait = 0;
        }
        if (sched_step(wait) < 0) return SCHED_STUCK;
    }
}

/* ---- waiting and waking ------------------------------------------------ */

task *sched_waiter(lua_State *L, const char *what)
{
    if (!S.current) luaL_error(L, "%s waits, and can only run inside a halo task", what);
    if (!lua_isyieldable(L))
        luaL_error(L, "%s cannot wait here: attempt to yield across a C-call boundary (inside a metamethod, "
                      "an iterator or a table.sort comparator?)", what);
    return S.current;
}

int sched_wait(lua_State *L, sched_cancel_fn cancel, void *wait, lua_KFunction k, lua_KContext ctx)
{
    task *t = sched_waiter(L, "this call");
    t->cancel = cancel;
    t->wait = wait;
    lua_pushlightuserdata(L, &sentinel);
    return lua_yieldk(L, 1, ctx, k);
}

void sched_wake(task *t)
{
    if (!t || t->state == T_DONE || t->ending) return;
    t->cancel = NULL;
    t->wait = NULL;
    /* A running task may wake itself before it yields (sleep(0)); it then
     * stays ready instead of waiting once the yield completes. */
    t->state = T_READY;
    ready_push(t);
}

/* ---- spawning and cancelling -------------------------------------------- */

static task *check_task(lua_State *L, int idx)
{
    return (task *)luaL_checkudata(L, idx, TASK_MT);
}

task *sched_spawn(lua_State *L, int nargs)
{
    int fidx = lua_gettop(L) - nargs;
    luaL_checktype(L, fidx, LUA_TFUNCTION);
    /* the arguments move to the new thread's stack, which must hold them */
    task *t = (task *)lua_newuserdatauv(L, sizeof *t, 2);
    memset(t, 0, sizeof *t);
    luaL_setmetatable(L, TASK_MT);
    lua_State *co = lua_newthread(L);
    t->co = co;
    t->id = ++S.next_id;
    t->nargs = nargs;
    t->state = T_READY;
    lua_setiuservalue(L, -2, 1); /* the handle keeps the thread alive */
    lua_pushvalue(L, -1);
    t->anchor = luaL_ref(L, LUA_REGISTRYINDEX); /* live tasks are never collected */
    busy_set(L, co, 1);
    lua_insert(L, fidx); /* the handle takes fn's place; fn and args move */
    if (!lua_checkstack(co, nargs + 1)) luaL_error(L, "task.spawn: too many arguments (%d)", nargs);
    lua_xmove(L, co, nargs + 1);

    t->next_live = S.live;
    if (S.live) S.live->prev_live = t;
    S.live = t;
    S.nlive++;
    ready_push(t);
    return t;
}

/* L is whichever thread runs now: the host's, or the task calling cancel. */
static void cancel_on(lua_State *L, task *t)
{
    if (t->state == T_DONE || t->ending) return;
    t->ending = 1;
    if (t->state == T_WAITING && t->cancel) t->cancel(t->wait);
    t->cancel = NULL;
    t->wait = NULL;
    ready_remove(t);
    t->cancelled = 1;
    /* Closes the thread's to-be-closed variables, as coroutine.close does;
     * one that fails (raises, or tries to wait) is a failure to report, not
     * a quiet cancel. */
    char msg[512];
    if (lua_resetthread(t->co) != LUA_OK) {
        const char *why = lua_tostring(t->co, -1);
        snprintf(msg, sizeof msg, "task %d was cancelled, and closing its to-be-closed variables failed: %s", t->id,
                 why ? why : "(error object is not a string)");
        t->cancelled = 0;
    } else {
        snprintf(msg, sizeof msg, "task %d was cancelled", t->id);
    }
    finish_with_message(L, t, msg);
}

void sched_cancel(task *t) { cancel_on(S.L, t); }

void sched_foreach_live(void (*fn)(task *t, void *ud), void *ud)
{
    for (task *t = S.live, *next; t; t = next) {
        next = t->next_live;
        fn(t, ud);
    }
}

task *sched_find(int id)
{
    for (task *t = S.live; t; t = t->next_live)
        if (t->id == id) return t;
    return NULL;
}

lua_State *sched_task_thread(const task *t) { return t->co; }

int sched_cancel_all(void)
{
    int n = 0;
    while (S.live) {
        task *t = S.live;
        if (t == S.current) break; /* cannot happen from the host side */
        sched_cancel(t);
        if (S.live == t) {
            /* its ending was cut short (out of memory while finishing):
             * the thread is gone either way; do not loop on it */
            t->state = T_DONE;
            t->co = NULL;
            live_remove(t);
        }
        n++;
    }
    return n;
}

/* ---- outcomes ------------------------------------------------------------ */

void sched_push_outcome(lua_State *L, int handle)
{
    lua_getiuservalue(L, handle, 2);
}

const char *sched_error_text(const task *t) { return t->error_text; }
int sched_task_cancelled(const task *t) { return t->cancelled; }
void sched_observe(task *t) { t->observed = 1; }

int sched_unobserved_failures(void (*report)(int id, const char *text, void *ud), void *ud)
{
    lua_State *L = S.L;
    int n = 0;
    lua_getfield(L, LUA_REGISTRYINDEX, "halo.failed");
    lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= len; i++) {
        lua_rawgeti(L, -1, i);
        task *t = (task *)lua_touserdata(L, -1);
        if (t && !t->observed) {
            report(t->id, t->error_text ? t->error_text : "?", ud);
            t->observed = 1;
            n++;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return n;
}

/* ---- the task module ------------------------------------------------------- */

typedef struct {
    task *target;
    task *joiner;
    loop_timer_id timer; /* join(timeout): 0 when none is armed */
} join_wait;

static void join_unlist(join_wait *jw)
{
    task *t = jw->target;
    for (size_t i = 0; i < t->njoiners; i++) {
        if (t->joiners[i] == jw->joiner) {
            t->joiners[i] = t->joiners[--t->njoiners];
            return;
        }
    }
}

static void join_cancel(void *wait)
{
    join_wait *jw = wait;
    join_unlist(jw);
    if (jw->timer) loop_timer_cancel(jw->timer);
    jw->timer = 0;
}

/* The timeout of join(timeout): the joiner goes on without the result.
 * A joiner the target's end already woke is not woken twice. */
static void join_expired(void *ud)
{
    join_wait *jw = ud;
    jw->timer = 0;
    if (jw->joiner->state != T_WAITING) return;
    join_unlist(jw);
    sched_wake(jw->joiner);
}

static int join_result(lua_State *L)
{
    task *t = check_task(L, 1);
    t->observed = 1;
    lua_settop(L, 1);
    lua_getiuservalue(L, 1, 2);
    if (t->ok) {
        lua_getfield(L, 2, "n");
        int n = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        luaL_checkstack(L, n, "too many results to join");
        for (int i = 1; i <= n; i++) lua_rawgeti(L, 2, i);
        return n;
    }
    return lua_error(L); /* the task's own error value, re-raised here */
}

static int join_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    join_wait *jw = (join_wait *)lua_touserdata(L, 2);
    if (jw->timer) loop_timer_cancel(jw->timer);
    jw->timer = 0;
    task *t = check_task(L, 1);
    if (t->state != T_DONE) {
        /* nil, err: the world (a task too slow), not a misuse */
        return halo_error_fail(L, "timeout", "timeout: task %d did not finish within %f s", t->id,
                               (double)ctx / 1000.0);
    }
    return join_result(L);
}

/* task:join([timeout]) -> the task's return values, or raises its error;
 * nil, err (kind "timeout") when it has not finished within timeout s */
static int task_join(lua_State *L)
{
    task *t = check_task(L, 1);
    lua_Number timeout = luaL_optnumber(L, 2, -1);
    luaL_argcheck(L, lua_isnoneornil(L, 2) || (timeout >= 0 && timeout < 1e9), 2,
                  "timeout must be a non-negative number of seconds");
    lua_settop(L, 1);
    if (t->state == T_DONE) return join_result(L);
    if (S.current == t) return luaL_error(L, "a task cannot join itself");
    task *me = sched_waiter(L, "join");
    VEC_PUSH(t->joiners, t->njoiners, t->capjoiners, me);
    join_wait *jw = (join_wait *)lua_newuserdatauv(L, sizeof *jw, 0);
    jw->target = t;
    jw->joiner = me;
    jw->timer = timeout >= 0 ? loop_timer((double)timeout, join_expired, jw) : 0;
    return sched_wait(L, join_cancel, jw, join_k, timeout >= 0 ? (lua_KContext)(timeout * 1000.0) : 0);
}



/* task:cancel() -> true if it was still running */
static int task_cancel(lua_State *L)
{
    task *t = check_task(L, 1);
    if (t == S.current) return luaL_error(L, "a task cannot cancel itself (return from it instead)");
    int was_live = t->state != T_DONE;
    cancel_on(L, t);
    if (was_live) t->observed = 1;
    lua_pushboolean(L, was_live);
    return 1;
}

const char *sched_task_state(const task *t)
{
    switch (t->state) {
    case T_READY: return "ready";
    case T_WAITING: return "waiting";
    case T_RUNNING: return "running";
    default: return t->cancelled ? "cancelled" : t->ok ? "done" : "failed";
    }
}

static int task_status(lua_State *L)
{
    lua_pushstring(L, sched_task_state(check_task(L, 1)));
    return 1;
}

static int task_id(lua_State *L)
{
    lua_pushinteger(L, check_task(L, 1)->id);
    return 1;
}

static int task_tostring(lua_State *L)
{
    task *t = check_task(L, 1);
    lua_pushfstring(L, "task %d (%s)", t->id, sched_task_state(t));
    return 1;
}

/* `local t <close> = task.spawn(...)` cancels the task when the scope ends. */
static int task_close(lua_State *L)
{
    task *t = check_task(L, 1);
    if (t->state != T_DONE && t != S.current) {
        t->observed = 1;
        cancel_on(L, t);
    }
    return 0;
}

static int task_gc(lua_State *L)
{
    task *t = check_task(L, 1);
    free(t->joiners);
    t->joiners = NULL;
    free(t->error_text);
    t->error_text = NULL;
    return 0;
}

/* task.spawn(fn, ...) -> task */
static int l_task_spawn(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    sched_spawn(L, lua_gettop(L) - 1);
    return 1;
}

/* task.current() -> the running task */
static int l_task_current(lua_State *L)
{
    if (!S.current || S.current->anchor == LUA_NOREF) return 0;
    push_handle(L, S.current);
    return 1;
}

int luaopen_task(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"spawn", l_task_spawn},
        {"current", l_task_current},
        {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    return 1;
}

/* ---- coroutine wrappers ------------------------------------------------------ */

/* Resume co with narg values from L. Returns the number of results moved
 * to L, -1 with an error value on L, or -2 for a scheduler yield that the
 * caller must pass outward. */
static int resume_inner(lua_State *L, lua_State *co, int narg)
{
    if (!lua_checkstack(co, narg)) {
        lua_pushliteral(L, "too many arguments to resume");
        return -1;
    }
    lua_xmove(L, co, narg);
    int nres = 0;
    int status = lua_resume(co, L, narg, &nres);
    if (status == LUA_OK || status == LUA_YIELD) {
        if (status == LUA_YIELD && nres >= 1 && lua_touserdata(co, -nres) == &sentinel) {
            lua_pop(co, nres);
            return -2;
        }
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            lua_pushliteral(L, "too many results to resume");
            return -1;
        }
        lua_xmove(co, L, nres);
        return nres;
    }
    lua_xmove(co, L, 1);
    return -1;
}

static lua_State *arg_coroutine(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "coroutine");
    return co;
}

static int resume_finish(lua_State *L, lua_State *co, int r);

static int resume_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    lua_State *co = lua_tothread(L, 1);
    busy_set(L, co, 0);
    lua_settop(L, 1);
    return resume_finish(L, co, resume_inner(L, co, 0));
}

static int resume_finish(lua_State *L, lua_State *co, int r)
{
    if (r == -2) {
        busy_set(L, co, 1);
        lua_pushlightuserdata(L, &sentinel);
        return lua_yieldk(L, 1, 0, resume_k);
    }
    if (r < 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -(r + 1));
    return r + 1;
}

static int co_resume(lua_State *L)
{
    lua_State *co = arg_coroutine(L);
    if (busy_get(L, co)) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "cannot resume a coroutine that halo is running");
        return 2;
    }
    return resume_finish(L, co, resume_inner(L, co, lua_gettop(L) - 1));
}

static int wrap_finish(lua_State *L, lua_State *co, int r);

static int wrap_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    busy_set(L, co, 0);
    lua_settop(L, 0);
    return wrap_finish(L, co, resume_inner(L, co, 0));
}

static int wrap_finish(lua_State *L, lua_State *co, int r)
{
    if (r == -2) {
        busy_set(L, co, 1);
        lua_pushlightuserdata(L, &sentinel);
        return lua_yieldk(L, 1, 0, wrap_k);
    }
    if (r == -1) {
        int st = lua_status(co);
        if (st != LUA_OK && st != LUA_YIELD) {
            lua_resetthread(co); /* close its to-be-closed variables */
            lua_settop(co, 0);
        }
        if (lua_type(L, -1) == LUA_TSTRING) {
            luaL_where(L, 1);
            lua_insert(L, -2);
            lua_concat(L, 2);
        }
        return lua_error(L);
    }
    return r;
}

static int wrap_call(lua_State *L)
{
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    if (busy_get(L, co)) return luaL_error(L, "cannot resume a coroutine that halo is running");
    return wrap_finish(L, co, resume_inner(L, co, lua_gettop(L)));
}

static int co_wrap(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushcclosure(L, wrap_call, 1);
    return 1;
}

static int is_task_root(lua_State *L) { return busy_get(L, L); }

static int co_yield(lua_State *L)
{
    if (is_task_root(L)) return luaL_error(L, "attempt to yield from outside a coroutine");
    return lua_yield(L, lua_gettop(L));
}

static int co_isyieldable(lua_State *L)
{
    lua_State *co = lua_isnone(L, 1) ? L : arg_coroutine(L);
    lua_pushboolean(L, lua_isyieldable(co) && !busy_get(L, co));
    return 1;
}

static int co_running(lua_State *L)
{
    int ismain = lua_pushthread(L);
    lua_pushboolean(L, ismain || is_task_root(L));
    return 2;
}

static int co_close(lua_State *L)
{
    lua_State *co = arg_coroutine(L);
    if (busy_get(L, co)) return luaL_error(L, "cannot close a coroutine that halo is running");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

void sched_init(lua_State *L)
{
    S.L = L;
    S.current = NULL;
    S.ready_head = S.ready_tail = NULL;
    S.live = NULL;
    S.nlive = 0;
    loop_init();

    lua_newtable(L); /* weak-keyed: a finished coroutine may be collected */
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, BUSY_KEY);
    /* The host's own thread is never the script's to resume or close, even
     * when a finalizer running on it asks coroutine.running(). */
    busy_set(L, L, 1);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "halo.failed");

    static const luaL_Reg methods[] = {
        {"join", task_join},
        {"cancel", task_cancel},
        {"status", task_status},
        {"id", task_id},
        {NULL, NULL},
    };
    luaL_newmetatable(L, TASK_MT);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, task_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, task_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, task_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);

    if (lua_getglobal(L, "coroutine") == LUA_TTABLE) {
        static const luaL_Reg wrappers[] = {
            {"resume", co_resume},
            {"wrap", co_wrap},
            {"yield", co_yield},
            {"isyieldable", co_isyieldable},
            {"running", co_running},
            {NULL, NULL},
        };
        luaL_setfuncs(L, wrappers, 0);
        lua_getfield(L, -1, "close");
        lua_pushcclosure(L, co_close, 1);
        lua_setfield(L, -2, "close");
    }
    lua_pop(L, 1);
}
