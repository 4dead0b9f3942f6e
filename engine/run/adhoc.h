/* `halo eval` and `halo exec`: ad hoc probes in the same sandbox, with the
 * same modules as checks, their returned values printed. */
#ifndef HALO_ADHOC_H
#define HALO_ADHOC_H
#include <stddef.h>

typedef struct {
    const char *code;      /* eval: the chunk's text */
    const char *file;      /* exec: the script */
    const char *embedded;  /* a host script embedded from engine/ ("check/leftovers"; internal, then args) */
    const char *const *args; /* exec: its arguments */
    size_t nargs;
    const char *stack_file;
    const char *const *lib_dirs;
    size_t nlib_dirs;
    size_t mem_limit;
    double timeout;        /* <= 0: no deadline */
    double grace;          /* each undo's time at the end; <= 0: UNDO_GRACE */
    int verbose;
} adhoc_opts;

int adhoc_run(const adhoc_opts *o); /* the exit code */

/* Shared with the REPL. The globals of an ad hoc probe: every host module
 * (required on first use) and show(...), which prints values as the REPL
 * does. */
#include <lua.h>
void adhoc_globals(lua_State *L);
/* [-0, +1] the show module (engine/run/show.lua); on failure pushes the
 * error message and returns -1 */
int adhoc_push_show(lua_State *L);

#endif
