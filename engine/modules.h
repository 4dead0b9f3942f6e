/* The host's Lua modules, one file each: time.c, json.c, sched.c (task). */
#ifndef HALO_MODULES_H
#define HALO_MODULES_H
#include <lua.h>

int luaopen_time(lua_State *L);
int luaopen_task(lua_State *L);
int luaopen_json(lua_State *L);

#endif
