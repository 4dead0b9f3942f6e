/* The one error type of halo's Lua surface: every module's `nil, err` is a
 * table { kind = "...", message = "...", [optional fields] } with the same
 * metatable, whose __tostring is the message. A script tells a timeout from
 * a refused connection by err.kind, whatever module it called. */
#ifndef HALO_ERRORS_H
#define HALO_ERRORS_H
#include <lua.h>

#define HALO_ERROR_MT "halo.error"

/* [-0, +0, m] Create the metatable in L (once per state). */
void halo_error_register(lua_State *L);
/* [-0, +1, m] A new error { kind, message }; the caller adds its fields. */
void halo_error_new(lua_State *L, const char *kind, const char *message);
/* [-0, +2, m] nil and a new error whose message is formatted (lua_pushfstring
 * style) and redacted; returns 2, for `return halo_error_fail(...)`. */
int halo_error_fail(lua_State *L, const char *kind, const char *fmt, ...);

#endif
