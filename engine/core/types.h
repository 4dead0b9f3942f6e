/* One way to make a host type (a handle a module gives to Lua): a
 * metatable registered under its name, so luaL_checkudata knows it; the
 * methods as __index; the metamethods given (__gc, __close, __tostring,
 * ...); and __metatable = false, so a check can neither read nor change a
 * type the host relies on. Closing is the type's business: make close
 * idempotent and give it as "close", "__close" and "__gc" alike. */
#ifndef HALO_TYPES_H
#define HALO_TYPES_H
#include <lauxlib.h>

typedef struct {
    const char *name;            /* "halo.sql.conn" */
    const luaL_Reg *methods;     /* NULL: no methods */
    const luaL_Reg *metamethods; /* NULL: none */
} halo_type;

/* [-0, +0, m] Register the type in L (again: nothing changes). */
void halo_type_register(lua_State *L, const halo_type *type);

#endif
