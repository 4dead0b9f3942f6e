#include "check/probe.h"
#include "check/context.h"
#include "core/events.h"
#include "core/sandbox.h"
#include "core/util.h"

#include <stdlib.h>

static void load_error(const char *message)
{
    const char *f[] = {message};
    events_send(EV_LOAD_ERROR, 1, f);
}

static int probe_main(lua_State *L)
{
    const worker_opts *o = lua_touserdata(L, 1);
    lua_settop(L, 0);
    sandbox_set_deadline(L, clock_mono() + 5, "loading the check file took longer than 5 s");
    char *err = NULL;
    if (context_load(L, &err) != 0 || context_load_spec(L, lua_gettop(L), o->check_file, &err) != 0) {
        load_error(err);
        free(err);
        return 0;
    }
    int spec = lua_gettop(L);
    lua_getfield(L, spec, "id");
    int numeric = lua_type(L, -1) == LUA_TNUMBER; /* before lua_tostring converts it */
    char *id = xstrdup(lua_tostring(L, -1));
    lua_getfield(L, spec, "title");
    char *title = xstrdup(lua_tostring(L, -1));
    lua_getfield(L, spec, "timeout");
    char *timeout = xasprintf("%.17g", lua_tonumber(L, -1));
    lua_getfield(L, spec, "grace");
    char *grace = xasprintf("%.17g", lua_tonumber(L, -1)); /* 0: the run's */
    lua_pop(L, 4);
    strbuf tags;
    sb_init(&tags);
    lua_getfield(L, spec, "tags");
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
        if (i > 1) sb_addc(&tags, ',');
        sb_adds(&tags, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    const char *f[] = {id, numeric ? "n" : "s", title, timeout, tags.buf ? tags.buf : "", grace};
    events_send(EV_META, 6, f);
    free(id);
    free(title);
    free(timeout);
    free(grace);
    sb_free(&tags);
    return 0;
}

int worker_probe(const worker_opts *o)
{
    events_attach(o->event_fd);
    context_ignore_sigpipe();
    lua_State *L = context_sandbox(o);
    if (!L) {
        load_error("out of memory");
        return 0;
    }
    if (context_run_protected(L, probe_main, o) != 0) load_error("out of memory loading the check file");
    sandbox_close(L);
    return 0;
}
