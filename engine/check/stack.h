/* The stack file: a Lua file describing the target, evaluated in a small
 * environment offering env(name, default) and secret(name). Every secret
 * value is registered for redaction the moment it is read. */
#ifndef HALO_STACK_H
#define HALO_STACK_H
#include "core/internal.h"
#include <lua.h>

/* It leaves the table at STACK_REGISTRY_KEY (core/internal.h) for modules. */
/* [-0, +1, -] Evaluate the stack file into L and push the table it
 * returns. On failure pushes nothing, returns -1 and sets *err (malloc'ed,
 * redacted, naming file and line); -2 instead when memory ran out (not
 * the file's fault). path NULL pushes an empty table. */
int stack_load(lua_State *L, const char *path, char **err);

/* What the runner itself needs from a stack file. */
typedef struct {
    char **up, **down; /* harness commands (argv, NULL-terminated), or NULL */
    char *dir;         /* the stack file's directory: where they run */
    int allow_faults;  /* allow_faults = true: checks may kill, stop, recreate */
    char *project;     /* compose.project, or NULL: what the stack is, for locks */
    char *checks;      /* checks = "DIR": its checks directory, as written, or NULL */
} stack_harness;

/* Load in a scratch state, only to validate it, register its secrets and
 * (when h is not NULL) read its harness commands. */
int stack_check(const char *path, char **err, stack_harness *h);
void stack_harness_free(stack_harness *h);

#endif
