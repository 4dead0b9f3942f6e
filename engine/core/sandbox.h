/* One lua_State per check: a memory cap, an instruction hook that ends
 * CPU-bound code at the deadline (and cannot be caught by pcall), only the
 * safe parts of the standard library, and a require that loads host
 * modules by short name and Lua sources from the lib directories. */
#ifndef HALO_SANDBOX_H
#define HALO_SANDBOX_H
#include "core/require.h"
#include "core/util.h"
#include <lua.h>
#include <stddef.h>

#define SANDBOX_DEFAULT_MEM ((size_t)256 << 20)

typedef struct {
    size_t mem_limit;           /* bytes; 0 = SANDBOX_DEFAULT_MEM */
    const halo_module *modules; /* what require finds by short name, ended
                                   by an entry without name; NULL: none */
    const char *const *lib_dirs; /* searched in order by require */
    size_t nlib_dirs;
} sandbox_opts;

/* A fresh sandboxed state with a scheduler of its own (core/sched.h).
 * NULL only when the process is out of memory. */
lua_State *sandbox_new(const sandbox_opts *opts);
void sandbox_close(lua_State *L);

/* From now on, Lua code running past `deadline` (monotonic seconds; 0 =
 * none) is stopped with `reason` as its error. */
void sandbox_set_deadline(lua_State *L, double deadline, const char *reason);
/* Why the sandbox stopped running code (timeout, memory, interrupt), or
 * NULL when it was not stopped. */
const char *sandbox_kill_reason(lua_State *L);
/* "file:line" the Lua code was at when the sandbox stopped it, or NULL. */
const char *sandbox_kill_where(lua_State *L);
/* Let code run again (for cleanup): clears the kill, sets a new deadline
 * and allows `extra` bytes over the memory cap. */
void sandbox_rearm(lua_State *L, double deadline, const char *reason, size_t extra);
size_t sandbox_mem_used(lua_State *L);

/* Ctrl-C for one task of L (the REPL's current line): once requested, Lua
 * code running in that task (or in coroutines it resumes) raises
 * "interrupted" at every instruction, which a pcall cannot swallow; other
 * tasks run on. The target is L's own; the request is process-wide, as a
 * signal handler makes it and cannot know a state. Setting a target (NULL:
 * none) clears a pending request. */
struct task;
void sandbox_set_interrupt_target(lua_State *L, struct task *t);
void sandbox_interrupt_target(void);   /* async-signal-safe */
/* The monotonic deadline code in L runs under (0: none), so waiting
 * primitives can cap their own timeouts with it. */
double sandbox_deadline(lua_State *L);
size_t sandbox_mem_limit(lua_State *L);
/* Lua's bare "not enough memory", said as what it was when the check's
 * memory limit refused the request: a new string. */
char *sandbox_explain_memory_error(lua_State *L, const char *message);

/* Loading and require (sandbox_loadfile, sandbox_require, ...) are
 * core/require.h, included above. */

/* What print shows, the same in a check's log, t:log and eval/exec: the
 * values first..last as tostring gives them, joined by tabs, a NUL byte
 * as the two characters \0 (a log line and a terminal are text); stops
 * adding values once sb is past max bytes. */
void sandbox_join_values(lua_State *L, int first, int last, strbuf *sb, size_t max);

#endif
