/* The host's Lua modules, one file each: time.c, json.c, sched.c (task),
 * proc.c, zlib.c. http and sql are plugins (plugin.h). */
#ifndef HALO_MODULES_H
#define HALO_MODULES_H
#include <lua.h>

int luaopen_time(lua_State *L);
int luaopen_task(lua_State *L);
int luaopen_json(lua_State *L);
int luaopen_zlib(lua_State *L);
int luaopen_proc(lua_State *L);

#endif
