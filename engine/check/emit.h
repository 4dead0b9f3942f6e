/* The check context's view of core/events.def and core/status.h: what a
 * check's Lua may send the runner, built from the tables themselves so a
 * kind or a status the runner would not know fails where it is written. */
#ifndef HALO_EMIT_H
#define HALO_EMIT_H
#include "core/events.h"
#include <lua.h>

/* [-0, +1] emit: one function per event, emit.step_begin(name, started_ms)
 * for EV_STEP_BEGIN and so on; each takes exactly the event's fields (any
 * value, as text), redacts and cuts them and sends the event. Reading an
 * event the table does not have raises. */
void emit_push_table(lua_State *L);
/* [-0, +1] status: status.PASS == "PASS", status.NA == "N/A", ...; reading
 * a status core/status.h does not list raises. */
void emit_push_statuses(lua_State *L);

#endif
