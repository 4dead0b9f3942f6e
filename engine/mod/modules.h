/* Every name a check can require from the host, in one table (modules.c):
 * C modules compiled into halo, plugins on big libraries, and the host's
 * own Lua. The sandbox opens what this table lists; `halo help modules`,
 * the REPL's completion and docs/modules.md follow the same table. */
#ifndef HALO_MODULES_H
#define HALO_MODULES_H
#include "core/sandbox.h"
#include <lua.h>

extern const halo_module halo_modules[];

int luaopen_time(lua_State *L);
int luaopen_task(lua_State *L);
int luaopen_json(lua_State *L);
int luaopen_zlib(lua_State *L);
int luaopen_proc(lua_State *L);
int luaopen_errors(lua_State *L);

#endif
