/* The coroutine library as a task sees it: resume and wrap pass a
 * scheduler yield outward (so `time.sleep` inside a user coroutine suspends
 * the whole task instead of returning to the user's resume) and, once the
 * task is woken, resume the inner coroutine again, which lands in the
 * primitive's continuation as if nothing happened. */
#include "core/coro.h"

#include <lauxlib.h>

#define BUSY_KEY "halo.busy"

static char sentinel; /* its address marks a scheduler yield */

void coro_set_busy(lua_State *L, lua_State *co, int on)
{
    lua_getfield(L, LUA_REGISTRYINDEX, BUSY_KEY);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    if (on) lua_pushboolean(L, 1);
    else lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

int coro_busy(lua_State *L, lua_State *co)
{
    lua_getfield(L, LUA_REGISTRYINDEX, BUSY_KEY);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    lua_rawget(L, -2);
    int on = lua_toboolean(L, -1);
    lua_pop(L, 2);
    return on;
}

int coro_yield_outward(lua_State *L, lua_KContext ctx, lua_KFunction k)
{
    lua_pushlightuserdata(L, &sentinel);
    return lua_yieldk(L, 1, ctx, k);
}

int coro_is_outward(lua_State *co, int nres)
{
    return nres >= 1 && lua_touserdata(co, -nres) == &sentinel;
}

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
        if (status == LUA_YIELD && coro_is_outward(co, nres)) {
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
    coro_set_busy(L, co, 0);
    lua_settop(L, 1);
    return resume_finish(L, co, resume_inner(L, co, 0));
}

static int resume_finish(lua_State *L, lua_State *co, int r)
{
    if (r == -2) {
        coro_set_busy(L, co, 1);
        return coro_yield_outward(L, 0, resume_k);
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
    if (coro_busy(L, co)) {
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
    coro_set_busy(L, co, 0);
    lua_settop(L, 0);
    return wrap_finish(L, co, resume_inner(L, co, 0));
}

static int wrap_finish(lua_State *L, lua_State *co, int r)
{
    if (r == -2) {
        coro_set_busy(L, co, 1);
        return coro_yield_outward(L, 0, wrap_k);
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
    if (coro_busy(L, co)) return luaL_error(L, "cannot resume a coroutine that halo is running");
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

static int is_task_root(lua_State *L) { return coro_busy(L, L); }

static int co_yield(lua_State *L)
{
    if (is_task_root(L)) return luaL_error(L, "attempt to yield from outside a coroutine");
    return lua_yield(L, lua_gettop(L));
}

static int co_isyieldable(lua_State *L)
{
    lua_State *co = lua_isnone(L, 1) ? L : arg_coroutine(L);
    lua_pushboolean(L, lua_isyieldable(co) && !coro_busy(L, co));
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
    if (coro_busy(L, co)) return luaL_error(L, "cannot close a coroutine that halo is running");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

void coro_open(lua_State *L)
{
    lua_newtable(L); /* weak-keyed: a finished coroutine may be collected */
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, BUSY_KEY);
    /* The host's own thread is never the script's to resume or close, even
     * when a finalizer running on it asks coroutine.running(). */
    coro_set_busy(L, L, 1);

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
