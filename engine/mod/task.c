/* The task module: spawn, current, and the handles' methods (join with a
 * timeout, cancel, status, id, <close>). The tasks themselves are the
 * scheduler's (core/sched.c); this is how a script reaches them. */
#include "mod/modules.h"
#include "core/errors.h"
#include "core/loop.h"
#include "core/sched.h"

#include <lauxlib.h>

typedef struct {
    task *target;
    task *joiner;
    loop_timer_id timer; /* join(timeout): 0 when none is armed */
} join_wait;

static void join_cancel(void *wait)
{
    join_wait *jw = wait;
    sched_unjoin(jw->target, jw->joiner);
    if (jw->timer) loop_timer_cancel(jw->timer);
    jw->timer = 0;
}

/* The timeout of join(timeout): the joiner goes on without the result.
 * A joiner the target's end already woke (no longer listed) is not woken
 * twice. */
static void join_expired(void *ud)
{
    join_wait *jw = ud;
    jw->timer = 0;
    if (sched_unjoin(jw->target, jw->joiner)) sched_wake(jw->joiner);
}

static int join_result(lua_State *L)
{
    task *t = sched_check_task(L, 1);
    sched_observe(t);
    lua_settop(L, 1);
    sched_push_outcome(L, 1);
    if (sched_task_ok(t)) {
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
    task *t = sched_check_task(L, 1);
    if (!sched_task_done(t)) {
        /* nil, err: the world (a task too slow), not a misuse */
        return halo_error_fail(L, "timeout", "timeout: task %d did not finish within %f s", sched_task_id(t),
                               (double)ctx / 1000.0);
    }
    return join_result(L);
}

/* task:join([timeout]) -> the task's return values, or raises its error;
 * nil, err (kind "timeout") when it has not finished within timeout s */
static int task_join(lua_State *L)
{
    task *t = sched_check_task(L, 1);
    lua_Number timeout = luaL_optnumber(L, 2, -1);
    luaL_argcheck(L, lua_isnoneornil(L, 2) || (timeout >= 0 && timeout < 1e9), 2,
                  "timeout must be a non-negative number of seconds");
    lua_settop(L, 1);
    if (sched_task_done(t)) return join_result(L);
    if (sched_current(L) == t) return luaL_error(L, "a task cannot join itself");
    task *me = sched_waiter(L, "join");
    join_wait *jw = (join_wait *)lua_newuserdatauv(L, sizeof *jw, 0);
    jw->target = t;
    jw->joiner = me;
    jw->timer = 0;
    sched_join(t, me);
    if (timeout >= 0) jw->timer = loop_timer((double)timeout, join_expired, jw);
    return sched_wait(L, join_cancel, jw, join_k, timeout >= 0 ? (lua_KContext)(timeout * 1000.0) : 0);
}

/* task:cancel() -> true if it was still running */
static int task_cancel(lua_State *L)
{
    task *t = sched_check_task(L, 1);
    if (t == sched_current(L)) return luaL_error(L, "a task cannot cancel itself (return from it instead)");
    int was_live = !sched_task_done(t);
    sched_cancel(L, t);
    if (was_live) sched_observe(t);
    lua_pushboolean(L, was_live);
    return 1;
}

static int task_status(lua_State *L)
{
    lua_pushstring(L, sched_task_state(sched_check_task(L, 1)));
    return 1;
}

static int task_id(lua_State *L)
{
    lua_pushinteger(L, sched_task_id(sched_check_task(L, 1)));
    return 1;
}

static int task_tostring(lua_State *L)
{
    task *t = sched_check_task(L, 1);
    lua_pushfstring(L, "task %d (%s)", sched_task_id(t), sched_task_state(t));
    return 1;
}

/* `local t <close> = task.spawn(...)` cancels the task when the scope ends. */
static int task_close(lua_State *L)
{
    task *t = sched_check_task(L, 1);
    if (!sched_task_done(t) && t != sched_current(L)) {
        sched_observe(t);
        sched_cancel(L, t);
    }
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
    return sched_push_task(L, sched_current(L));
}

int luaopen_task(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"join", task_join},
        {"cancel", task_cancel},
        {"status", task_status},
        {"id", task_id},
        {NULL, NULL},
    };
    static const luaL_Reg metamethods[] = {
        {"__tostring", task_tostring},
        {"__close", task_close},
        {NULL, NULL},
    };
    sched_push_task_metatable(L);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    luaL_setfuncs(L, metamethods, 0);
    lua_pop(L, 1);

    static const luaL_Reg funcs[] = {
        {"spawn", l_task_spawn},
        {"current", l_task_current},
        {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    return 1;
}
