/* Host-only helpers for the embedded Lua modules (see internal.c). */
#ifndef HALO_INTERNAL_H
#define HALO_INTERNAL_H
#include "core/undo.h"
#include <lua.h>

/* Where stack_load leaves the stack file's table; modules read it
 * through internal.stack() or this key. */
#define STACK_REGISTRY_KEY "halo.stack"
/* ... and the file's absolute path (internal.stack_file()), which the
 * journal names so `halo cleanup` can resolve the secrets it refers to. */
#define STACK_FILE_REGISTRY_KEY "halo.stack_file"

/* Whether the check may inject faults (kill, stop, pause, recreate): set
 * by the worker from the stack file's allow_faults and --allow-faults;
 * unset (eval, exec, the REPL: the operator's own hand) means allowed. */
#define FAULTS_ALLOWED_KEY "halo.faults_allowed"

/* [-0, +1] the internal table (created on first use) */
void internal_push(lua_State *L);
/* internal.secret, also the check context's: a script's value hidden from output */
int internal_secret(lua_State *L);
/* [-0, +1] the pending automatic undos (undo_push_pending, core/undo.h) */
void internal_push_undos(lua_State *L);
/* Remove the temporary files the modules made and forgot. */
void internal_remove_temps(lua_State *L);

#endif
