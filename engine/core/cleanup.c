/* Cleanup lists, run one task at a time so each item's failure is its own
 * and the next still runs; a passed deadline stops the rest and says so. */
#include "core/cleanup.h"
#include "core/sandbox.h"
#include "core/sched.h"
#include "core/util.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

int cleanup_run(lua_State *L, int list, double grace, double hard_end, cleanup_report report, void *ud)
{
    list = lua_absindex(L, list);
    int failed = 0;
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, list, i);
        lua_getfield(L, -1, "label");
        char *label = xstrdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "cleanup: ");
        lua_pop(L, 1);
        lua_getfield(L, -1, "fn");
        lua_remove(L, -2);
        task *t = sched_spawn(L, 0);
        int ref = luaL_ref(L, LUA_REGISTRYINDEX);
        sched_observe(t);
        /* Each item gets the whole grace, so one that hangs does not rob
         * the next of its turn; none may run past the hard end. */
        double deadline = clock_mono() + grace;
        if (hard_end > 0 && deadline > hard_end) deadline = hard_end;
        char reason[64];
        snprintf(reason, sizeof reason, "cleanup exceeded its %g s grace", grace);
        sandbox_set_deadline(L, deadline, reason);
        sched_result r = sched_run(L, t, deadline);
        if (r == SCHED_INTERRUPTED) {
            sched_cancel_all(L);
            char *msg = xasprintf("%swas interrupted; %lld later cleanup item(s) not run", label, (long long)(n - i));
            report(msg, msg, ud);
            free(msg);
            free(label);
            luaL_unref(L, LUA_REGISTRYINDEX, ref);
            return failed + (int)(n - i) + 1;
        }
        if (r != SCHED_DONE) {
            sched_cancel_all(L);
            char *msg = r == SCHED_DEADLINE
                            ? xasprintf("%sdid not finish within the %g s cleanup grace", label, grace)
                            : xasprintf("%sdeadlocked", label);
            report(msg, msg, ud);
            free(msg);
            free(label);
            luaL_unref(L, LUA_REGISTRYINDEX, ref);
            failed++;
            sandbox_rearm(L, 0, NULL, (size_t)16 << 20);
            continue;
        }
        if (!sched_task_ok(t)) {
            const char *text = sched_error_text(t);
            char *msg = xasprintf("%sfailed: %s", label, text ? text : "?");
            char *first = xstrdup(msg);
            first[strcspn(first, "\n")] = '\0';
            report(first, msg, ud);
            free(first);
            free(msg);
            failed++;
        }
        sched_cancel_all(L); /* an item's own background tasks end with it */
        free(label);
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
    }
    return failed;
}
