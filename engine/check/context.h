/* The C half of the check context (check/context.lua) and what every
 * child the runner forks to run Lua shares: the sandbox with print() as a
 * log line, the host table the context is given (the emitters of
 * core/events.def, the statuses, where, elapsed_ms, encode), loading a
 * check file through the context, and running under lua_pcall. */
#ifndef HALO_CONTEXT_H
#define HALO_CONTEXT_H
#include "check/worker_opts.h"

#include <lua.h>

/* A check's sandbox: the worker's options, every host module, print(). */
lua_State *context_sandbox(const worker_opts *o);
/* [-0, +1] the context module; 0, or -1 with *err (malloc'ed) */
int context_load(lua_State *L, char **err);
/* [-0, +1] the validated spec of the check file; 0, or -1 with *err */
int context_load_spec(lua_State *L, int ctxmod, const char *file, char **err);
/* fn(L) with o as its light userdata argument, under lua_pcall, so that
 * memory running out where no task catches it is an error the child
 * reports as a log line, not a panic. 0, or -1 when fn raised. */
int context_run_protected(lua_State *L, lua_CFunction fn, const worker_opts *o);
/* A child writes to a pipe whose reader may be gone: that is an error to
 * see, not a signal to die of. */
void context_ignore_sigpipe(void);
/* When the runner dies, the worker cleans up and exits as on SIGTERM
 * (its lifeline, and on Linux the parent-death signal). */
void context_watch_runner(const worker_opts *o);

#endif
