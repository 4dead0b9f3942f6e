/* The stack file: a Lua file describing the target, evaluated in a small
 * environment offering env(name, default) and secret(name). Every secret
 * value is registered for redaction the moment it is read. */
#ifndef HALO_STACK_H
#define HALO_STACK_H
#include <lua.h>

/* Where stack_load leaves the table for host modules. */
#define STACK_REGISTRY_KEY "halo.stack"

/* [-0, +1, -] Evaluate the stack file into L and push the table it
 * returns. On failure pushes nothing, returns -1 and sets *err (malloc'ed,
 * redacted, naming file and line). path NULL pushes an empty table. */
int stack_load(lua_State *L, const char *path, char **err);

/* Load in a scratch state, only to validate it and register its secrets. */
int stack_check(const char *path, char **err);

#endif
