#include "check/emit.h"
#include "core/events.h"
#include "core/status.h"
#include "core/util.h"

#include <ctype.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define FIELDS_MAX 8
#define EVENT(name, kind, nfields, fields, meaning) \
    _Static_assert(nfields <= FIELDS_MAX, "event " kind " has more fields than emit_event holds");
#include "core/events.def"
#undef EVENT

/* emit.NAME(field, ...); the event's kind is the upvalue */
static int emit_event(lua_State *L)
{
    event_kind kind = (event_kind)lua_tointeger(L, lua_upvalueindex(1));
    const event_spec *spec = events_spec(kind);
    int n = lua_gettop(L);
    if (n != spec->nfields)
        return luaL_error(L, "emit: event %s takes %d field(s) (%s), not %d", spec->kind, spec->nfields,
                          spec->fields, n);
    /* every value as text first: a __tostring that raises must not leave
     * fields allocated below */
    for (int i = 1; i <= n; i++) luaL_tolstring(L, i, NULL);
    const char *fields[FIELDS_MAX] = {0};
    for (int i = 0; i < n; i++) fields[i] = lua_tostring(L, n + 1 + i);
    events_send(kind, n, fields); /* which redacts and cuts them */
    lua_settop(L, 0);
    return 0;
}

/* __index of both tables: a name they lack is a mistake in the context */
static int no_such_entry(lua_State *L)
{
    return luaL_error(L, "no %s '%s' (%s)", lua_tostring(L, lua_upvalueindex(1)), luaL_tolstring(L, 2, NULL),
                      lua_tostring(L, lua_upvalueindex(2)));
}

static void refuse_unknown(lua_State *L, const char *what, const char *listed_in)
{
    lua_createtable(L, 0, 1);
    lua_pushstring(L, what);
    lua_pushstring(L, listed_in);
    lua_pushcclosure(L, no_such_entry, 2);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
}

void emit_push_table(lua_State *L)
{
    lua_createtable(L, 0, EV_COUNT);
    for (int k = 0; k < EV_COUNT; k++) {
        const event_spec *spec = events_spec((event_kind)k);
        char name[64];
        size_t i = 0;
        for (; spec->name[i] && i + 1 < sizeof name; i++) name[i] = (char)tolower((unsigned char)spec->name[i]);
        name[i] = '\0';
        lua_pushinteger(L, k);
        lua_pushcclosure(L, emit_event, 1);
        lua_setfield(L, -2, name);
    }
    refuse_unknown(L, "event", "core/events.def lists them");
}

void emit_push_statuses(lua_State *L)
{
    lua_createtable(L, 0, ST_COUNT);
    for (int st = 0; st < ST_COUNT; st++) {
        lua_pushstring(L, status_name((check_status)st));
        lua_setfield(L, -2, status_key((check_status)st));
    }
    refuse_unknown(L, "status", "core/status.h lists them");
}
