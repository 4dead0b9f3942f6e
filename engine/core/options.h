/* Option tables, read one way everywhere: `http.get{url =, timeout =}`,
 * `conn:query{sql =, timeout =}`, `docker.containers{all =}`. An unknown key
 * is a misuse and raises at once, in Lua's own wording, naming what is
 * known: bad argument #1 to 'get' (unknown option 'timout'; known: url,
 * headers, timeout). */
#ifndef HALO_OPTIONS_H
#define HALO_OPTIONS_H
#include <lua.h>

/* [-0, +0, v] Every key of the table at arg must be a string in known
 * (NULL-terminated). */
void halo_check_options(lua_State *L, int arg, const char *const *known);

/* [-0, +0, v] For the host's Lua modules (internal.check_options): the same
 * check, raised at `level` (the caller of the module's function is 2 when
 * the module function calls this directly from Lua). */
int halo_check_options_lua(lua_State *L);

#endif
