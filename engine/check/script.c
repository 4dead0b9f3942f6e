#include "check/script.h"
#include "check/context.h"
#include "check/stack.h"
#include "core/events.h"
#include "core/internal.h"
#include "core/sandbox.h"
#include "core/sched.h"
#include "core/status.h"
#include "core/util.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

static void send_done(check_status status)
{
    const char *f[] = {status_name(status), ""};
    events_send(EV_DONE, 2, f);
}

static int script_main(lua_State *L)
{
    const worker_opts *o = lua_touserdata(L, 1);
    lua_settop(L, 0);
    char *err = NULL;
    check_status status = ST_ERROR;
    int rc;
    if (stack_load(L, o->stack_file, &err) != 0) {
        events_log("error", err);
    } else if ((rc = o->script_name ? sandbox_load_embedded(L, o->script_name)
                                    : luaL_loadbufferx(L, o->script, strlen(o->script), "=runner script", "t")) !=
               LUA_OK) {
        events_log("error", lua_tostring(L, -1));
    } else {
        double deadline = clock_mono() + (o->timeout_override > 0 ? o->timeout_override : 50);
        sandbox_set_deadline(L, deadline, "the host script took too long");
        internal_push(L);
        task *t = sched_spawn(L, 1);
        sched_observe(t);
        if (sched_run(L, t, deadline) == SCHED_DONE && sched_task_ok(t)) status = ST_PASS;
        else events_log("error", sched_error_text(t) ? sched_error_text(t) : "the script did not finish");
        sched_cancel_all(L);
    }
    send_done(status);
    free(err);
    return 0;
}

int worker_script(const worker_opts *o)
{
    events_attach(o->event_fd);
    context_ignore_sigpipe();
    lua_State *L = context_sandbox(o);
    if (!L) {
        events_log("error", "out of memory");
        send_done(ST_ERROR);
        return 0;
    }
    if (context_run_protected(L, script_main, o) != 0) send_done(ST_ERROR);
    sandbox_close(L);
    return 0;
}
