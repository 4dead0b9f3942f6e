/* Host-only helpers for the embedded Lua modules (see internal.c). */
#ifndef HALO_INTERNAL_H
#define HALO_INTERNAL_H
#include <lua.h>

/* Where stack_load leaves the stack file's table; modules read it
 * through internal.stack() or this key. */
#define STACK_REGISTRY_KEY "halo.stack"

/* [-0, +1] the internal table (created on first use) */
void internal_push(lua_State *L);
/* [-0, +1] the pending automatic undos, newest first, as {fn, label} items;
 * they are marked done, so a second call returns only newer ones */
void internal_push_undos(lua_State *L);
/* Remove the temporary files the modules made and forgot. */
void internal_remove_temps(lua_State *L);

/* The fault journal (see internal.c): the file of process pid, and the
 * process's start time, to tell a live run from a dead one. */
char *journal_path(long pid);
unsigned long long journal_start_time(long pid);

#endif
