/* User coroutines around the scheduler's yields. A task that waits inside
 * a coroutine it resumed must suspend as a whole, not hand the wait to its
 * own coroutine.resume as if the coroutine had yielded; so a scheduler
 * yield carries a private marker as its first value, and the sandbox's
 * coroutine.resume/wrap pass such a yield outward and, when the task is
 * resumed, resume the inner coroutine again. The scheduler (sched.c) is
 * built on this; the two are apart because the wrappers are about Lua's
 * coroutine library and never touch a task. */
#ifndef HALO_CORO_H
#define HALO_CORO_H
#include <lua.h>

/* Per state: the busy set (below), with L's own thread in it, and the
 * wrapped coroutine functions in L's coroutine table. */
void coro_open(lua_State *L);

/* The busy set: threads the script must not resume, close or yield out of
 * (a task's own thread, a coroutine suspended under a scheduler yield). */
void coro_set_busy(lua_State *L, lua_State *co, int on);
int coro_busy(lua_State *L, lua_State *co);

/* [-0, +0, -] Suspend the running thread with a scheduler yield; on resume
 * it continues in k. */
int coro_yield_outward(lua_State *L, lua_KContext ctx, lua_KFunction k);
/* Whether the nres values co yielded are a scheduler yield. */
int coro_is_outward(lua_State *co, int nres);

#endif
