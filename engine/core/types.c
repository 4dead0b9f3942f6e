#include "core/types.h"

void halo_type_register(lua_State *L, const halo_type *type)
{
    if (!luaL_newmetatable(L, type->name)) {
        lua_pop(L, 1);
        return;
    }
    if (type->methods) {
        lua_newtable(L);
        luaL_setfuncs(L, type->methods, 0);
        lua_setfield(L, -2, "__index");
    }
    if (type->metamethods) luaL_setfuncs(L, type->metamethods, 0);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}
