/* The time module: sleep on the event loop, wall and monotonic clocks. */
#include "core/loop.h"
#include "mod/modules.h"
#include "core/sched.h"
#include "core/util.h"

#include <lauxlib.h>
#include <math.h>

typedef struct {
    loop_timer_id timer;
    task *sleeper;
} sleep_wait;

static void sleep_fire(void *ud)
{
    sleep_wait *w = ud;
    w->timer = 0;
    sched_wake(w->sleeper);
}

static void sleep_cancel(void *ud)
{
    sleep_wait *w = ud;
    loop_timer_cancel(w->timer);
    w->timer = 0;
}

static int sleep_done(lua_State *L, int status, lua_KContext ctx)
{
    (void)L;
    (void)status;
    (void)ctx;
    return 0;
}

/* time.sleep(seconds): 0 just lets every other ready task run first. */
static int time_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0 && !isnan(s), 1, "seconds must be a non-negative number");
    task *me = sched_waiter(L, "time.sleep");
    if (s == 0) {
        sched_wake(me);
        return sched_wait(L, NULL, NULL, sleep_done, 0);
    }
    /* The wait lives on the sleeping thread's stack, so it stays valid for
     * exactly as long as the thread is suspended. */
    sleep_wait *w = (sleep_wait *)lua_newuserdatauv(L, sizeof *w, 0);
    w->sleeper = me;
    w->timer = loop_timer((double)s, sleep_fire, w);
    return sched_wait(L, sleep_cancel, w, sleep_done, 0);
}

/* time.now() -> seconds since the epoch, sub-millisecond */
static int time_now(lua_State *L)
{
    lua_pushnumber(L, clock_wall());
    return 1;
}

/* time.mono() -> monotonic seconds, for measuring intervals */
static int time_mono(lua_State *L)
{
    lua_pushnumber(L, clock_mono());
    return 1;
}

int luaopen_time(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"sleep", time_sleep},
        {"now", time_now},
        {"mono", time_mono},
        {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    return 1;
}
