/* Tasks as Lua threads on one event loop. Everything that resumes a task
 * lives here; primitives only suspend (sched_wait) and wake (sched_wake).
 *
 * A scheduler yield carries core/coro's marker, so the sandbox's
 * coroutine.resume/wrap pass it outward: `time.sleep` inside a user
 * coroutine suspends the whole task.
 *
 * The scheduler's state is a userdata in its lua_State's registry, made by
 * sched_open: each state its own, nothing process-wide that a second state
 * would rebind. A task keeps a pointer to it (wakes come from loop
 * callbacks, which have no state at hand). */
#include "core/sched.h"
#include "core/types.h"
#include "core/coro.h"
#include "core/loop.h"
#include "core/util.h"

#include <lauxlib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define TASK_MT "halo.task"
#define FAILED_KEY "halo.failed"

enum { T_READY, T_WAITING, T_RUNNING, T_DONE };

typedef struct sched sched;

struct task {
    sched *s;
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

struct sched {
    lua_State *L;      /* the main thread: tasks are resumed from it */
    task *current;
    task *ready_head, *ready_tail;
    task *live;
    int nlive;
    int next_id;
};

static char sched_key; /* its address: the registry key of a state's scheduler */
static volatile sig_atomic_t interrupt_flag;

void sched_request_interrupt(void)
{
    interrupt_flag = 1;
    loop_interrupt_from_signal();
}

int sched_interrupted(void) { return interrupt_flag != 0; }
void sched_clear_interrupt(void) { interrupt_flag = 0; }

/* L's scheduler, from any thread of its state; NULL for a state that has
 * none (sched_open was not called). */
static sched *sched_of(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sched_key);
    sched *s = (sched *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    return s;
}

/* For the driver calls: the host asking about a state without a scheduler
 * is a bug in the host, not something a script can cause. */
static sched *sched_must(lua_State *L)
{
    sched *s = sched_of(L);
    if (!s) luaL_error(L, "internal: this Lua state has no scheduler (sched_open)");
    return s;
}

task *sched_current(lua_State *L)
{
    sched *s = sched_of(L);
    return s ? s->current : NULL;
}

int sched_live_tasks(lua_State *L)
{
    sched *s = sched_of(L);
    return s ? s->nlive : 0;
}

int sched_task_done(const task *t) { return t->state == T_DONE; }
int sched_task_id(const task *t) { return t ? t->id : 0; }
int sched_task_ok(const task *t) { return t->state == T_DONE && t->ok; }

/* ---- ready queue and live list ------------------------------------- */

static void ready_push(task *t)
{
    if (t->queued) return;
    sched *s = t->s;
    t->queued = 1;
    t->next_ready = NULL;
    if (s->ready_tail) s->ready_tail->next_ready = t;
    else s->ready_head = t;
    s->ready_tail = t;
}

static task *ready_pop(sched *s)
{
    task *t = s->ready_head;
    if (!t) return NULL;
    s->ready_head = t->next_ready;
    if (!s->ready_head) s->ready_tail = NULL;
    t->queued = 0;
    t->next_ready = NULL;
    return t;
}

static void ready_remove(task *t)
{
    if (!t->queued) return;
    sched *s = t->s;
    task **pp = &s->ready_head, *prev = NULL;
    while (*pp && *pp != t) {
        prev = *pp;
        pp = &(*pp)->next_ready;
    }
    if (*pp) {
        *pp = t->next_ready;
        if (s->ready_tail == t) s->ready_tail = prev;
    }
    t->queued = 0;
    t->next_ready = NULL;
}

static void live_remove(task *t)
{
    sched *s = t->s;
    if (t->prev_live) t->prev_live->next_live = t->next_live;
    else if (s->live == t) s->live = t->next_live;
    if (t->next_live) t->next_live->prev_live = t->prev_live;
    t->prev_live = t->next_live = NULL;
    s->nlive--;
}

/* ---- finishing -------------------------------------------------------- */

/* [-0, +1] the task's handle */
static void push_handle(lua_State *L, const task *t)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->anchor);
}

static int tostring_protected(lua_State *L)
{
    luaL_tolstring(L, 1, NULL);
    return 1;
}

char *sched_task_where(const task *t)
{
    lua_State *co = t ? t->co : NULL;
    lua_Debug ar;
    for (int level = 0; co && lua_getstack(co, level, &ar); level++) {
        if (lua_getinfo(co, "Sl", &ar) && ar.currentline > 0) return xasprintf("%s:%d", ar.short_src, ar.currentline);
    }
    return NULL;
}

static char *describe_table(lua_State *L, int idx);

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
    if (lua_type(L, idx) == LUA_TTABLE) return describe_table(L, idx);
    return xasprintf("(error object is a %s value)", luaL_typename(L, idx));
}

/* error({code = 42}): what the table holds, one level, capped, so the
 * report says more than "a table value". Raw reads only: no metamethod of
 * the script's runs here. */
#define TABLE_SHOWN 200

static void add_scalar(strbuf *sb, lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        sb_printf(sb, "\"%.*s%s\"", (int)(len > 60 ? 60 : len), s, len > 60 ? "…" : "");
        break;
    }
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) sb_printf(sb, "%lld", (long long)lua_tointeger(L, idx));
        else sb_printf(sb, "%.14g", lua_tonumber(L, idx));
        break;
    case LUA_TBOOLEAN: sb_adds(sb, lua_toboolean(L, idx) ? "true" : "false"); break;
    case LUA_TTABLE: sb_adds(sb, "{...}"); break;
    default: sb_adds(sb, luaL_typename(L, idx));
    }
}

static char *describe_table(lua_State *L, int idx)
{
    if (!lua_checkstack(L, 4)) return xstrdup("(error object is a table value)");
    strbuf sb;
    sb_init(&sb);
    sb_adds(&sb, "error object: {");
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (sb.len > TABLE_SHOWN) {
            sb_adds(&sb, ", ...");
            lua_pop(L, 2);
            break;
        }
        if (n++) sb_adds(&sb, ", ");
        if (lua_type(L, -2) == LUA_TSTRING) sb_printf(&sb, "%s = ", lua_tostring(L, -2));
        else {
            sb_addc(&sb, '[');
            add_scalar(&sb, L, -2);
            sb_adds(&sb, "] = ");
        }
        add_scalar(&sb, L, -1);
        lua_pop(L, 1);
    }
    sb_addc(&sb, '}');
    return sb_take(&sb);
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
        /* error(table) carries no "file:line:" as error("text") does: say
         * where the task was when it raised */
        char *where = lua_type(L, -1) != LUA_TSTRING && !t->cancelled ? sched_task_where(t) : NULL;
        if (where) {
            char *at = xasprintf("%s: %s", where, msg);
            free(msg);
            free(where);
            msg = at;
        }
        if (t->cancelled) {
            t->error_text = msg;
        } else {
            t->error_text = traceback_of(L, t->co, msg);
        }
    }
    lua_setiuservalue(L, h, 2);
    coro_set_busy(L, t->co, 0);
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
        lua_getfield(L, LUA_REGISTRYINDEX, FAILED_KEY);
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

static void resume_task(sched *s, task *t)
{
    int nres = 0;
    int nargs = t->started ? 0 : t->nargs;
    t->started = 1;
    t->state = T_RUNNING;
    s->current = t;
    int status = lua_resume(t->co, s->L, nargs, &nres);
    s->current = NULL;
    if (status == LUA_YIELD) {
        int ours = coro_is_outward(t->co, nres);
        lua_pop(t->co, nres);
        if (!ours) {
            finish_with_message(s->L, t, "coroutine.yield called outside a coroutine");
            return;
        }
        if (t->state == T_RUNNING) t->state = T_WAITING;
        return;
    }
    finish(s->L, t, status == LUA_OK, nres);
}

static int step(sched *s, double max_wait)
{
    /* Resume only what was ready when this round began, so a task that
     * keeps re-queuing itself cannot starve I/O and timers. */
    task *last = s->ready_tail;
    int ran = 0;
    while (s->ready_head) {
        task *t = ready_pop(s);
        resume_task(s, t);
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

int sched_step(lua_State *L, double max_wait) { return step(sched_must(L), max_wait); }

sched_result sched_run(lua_State *L, task *until, double deadline)
{
    sched *s = sched_must(L);
    for (;;) {
        if (until ? until->state == T_DONE : s->nlive == 0) return SCHED_DONE;
        if (interrupt_flag) return SCHED_INTERRUPTED;
        if (deadline > 0 && clock_mono() >= deadline) return SCHED_DEADLINE;
        double wait = -1;
        if (deadline > 0) {
            wait = deadline - clock_mono();
            if (wait < 0) wait = 0;
        }
        if (step(s, wait) < 0) return SCHED_STUCK;
    }
}

/* ---- waiting and waking ------------------------------------------------ */

task *sched_waiter(lua_State *L, const char *what)
{
    task *current = sched_current(L);
    if (!current) luaL_error(L, "%s waits, and can only run inside a halo task", what);
    if (!lua_isyieldable(L))
        luaL_error(L, "%s cannot wait here: attempt to yield across a C-call boundary (inside a metamethod, "
                      "an iterator or a table.sort comparator?)", what);
    return current;
}

int sched_wait(lua_State *L, sched_cancel_fn cancel, void *wait, lua_KFunction k, lua_KContext ctx)
{
    task *t = sched_waiter(L, "this call");
    t->cancel = cancel;
    t->wait = wait;
    return coro_yield_outward(L, ctx, k);
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

void sched_join(task *t, task *waiter) { VEC_PUSH(t->joiners, t->njoiners, t->capjoiners, waiter); }

int sched_unjoin(task *t, task *waiter)
{
    for (size_t i = 0; i < t->njoiners; i++) {
        if (t->joiners[i] == waiter) {
            t->joiners[i] = t->joiners[--t->njoiners];
            return 1;
        }
    }
    return 0;
}

/* ---- spawning and cancelling -------------------------------------------- */

task *sched_check_task(lua_State *L, int idx)
{
    return (task *)luaL_checkudata(L, idx, TASK_MT);
}

task *sched_spawn(lua_State *L, int nargs)
{
    sched *s = sched_must(L);
    int fidx = lua_gettop(L) - nargs;
    luaL_checktype(L, fidx, LUA_TFUNCTION);
    /* the arguments move to the new thread's stack, which must hold them */
    task *t = (task *)lua_newuserdatauv(L, sizeof *t, 2);
    memset(t, 0, sizeof *t);
    luaL_setmetatable(L, TASK_MT);
    lua_State *co = lua_newthread(L);
    t->s = s;
    t->co = co;
    t->id = ++s->next_id;
    t->nargs = nargs;
    t->state = T_READY;
    lua_setiuservalue(L, -2, 1); /* the handle keeps the thread alive */
    lua_pushvalue(L, -1);
    t->anchor = luaL_ref(L, LUA_REGISTRYINDEX); /* live tasks are never collected */
    coro_set_busy(L, co, 1);
    lua_insert(L, fidx); /* the handle takes fn's place; fn and args move */
    if (!lua_checkstack(co, nargs + 1)) luaL_error(L, "task.spawn: too many arguments (%d)", nargs);
    lua_xmove(L, co, nargs + 1);

    t->next_live = s->live;
    if (s->live) s->live->prev_live = t;
    s->live = t;
    s->nlive++;
    ready_push(t);
    return t;
}

/* L is whichever thread runs now: the host's, or the task calling cancel. */
void sched_cancel(lua_State *L, task *t)
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

void sched_foreach_live(lua_State *L, void (*fn)(task *t, void *ud), void *ud)
{
    for (task *t = sched_must(L)->live, *next; t; t = next) {
        next = t->next_live;
        fn(t, ud);
    }
}

task *sched_find(lua_State *L, int id)
{
    for (task *t = sched_must(L)->live; t; t = t->next_live)
        if (t->id == id) return t;
    return NULL;
}

lua_State *sched_task_thread(const task *t) { return t->co; }

int sched_cancel_all(lua_State *L)
{
    sched *s = sched_must(L);
    int n = 0;
    while (s->live) {
        task *t = s->live;
        if (t == s->current) break; /* cannot happen from the host side */
        sched_cancel(L, t);
        if (s->live == t) {
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

int sched_unobserved_failures(lua_State *L, void (*report)(int id, const char *text, void *ud), void *ud)
{
    sched_must(L);
    int n = 0;
    lua_getfield(L, LUA_REGISTRYINDEX, FAILED_KEY);
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

const char *sched_task_state(const task *t)
{
    switch (t->state) {
    case T_READY: return "ready";
    case T_WAITING: return "waiting";
    case T_RUNNING: return "running";
    default: return t->cancelled ? "cancelled" : t->ok ? "done" : "failed";
    }
}

int sched_push_task(lua_State *L, const task *t)
{
    if (!t || t->anchor == LUA_NOREF) return 0;
    push_handle(L, t);
    return 1;
}

void sched_push_task_metatable(lua_State *L) { luaL_getmetatable(L, TASK_MT); }

/* ---- the state's scheduler ------------------------------------------------ */

/* What a handle holds outside Lua's memory. */
static int task_gc(lua_State *L)
{
    task *t = sched_check_task(L, 1);
    free(t->joiners);
    t->joiners = NULL;
    free(t->error_text);
    t->error_text = NULL;
    return 0;
}

void sched_open(lua_State *L)
{
    loop_init();
    coro_open(L);
    /* A userdata, so the scheduler goes with its state (lua_close) and
     * counts against the state's memory like everything else of it. */
    sched *s = (sched *)lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    s->L = lua_tothread(L, -1); /* whichever thread L is */
    lua_pop(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sched_key);

    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, FAILED_KEY);

    /* the task module (mod/task.c) adds the methods */
    static const luaL_Reg task_meta[] = {{"__gc", task_gc}, {NULL, NULL}};
    halo_type_register(L, &(halo_type){TASK_MT, NULL, task_meta});
}
