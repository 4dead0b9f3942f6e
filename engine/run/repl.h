/* `halo repl`: ad hoc probes, one line at a time, in the checks' sandbox
 * with their modules and stack file. */
#ifndef HALO_REPL_H
#define HALO_REPL_H
#include <stddef.h>

typedef struct {
    const char *stack_file;
    const char *checks_dir;       /* for .list and .run */
    const char *const *lib_dirs;
    size_t nlib_dirs;
    size_t mem_limit;
    int verbose;                  /* errors with their traceback */
    const char *self;             /* this halo binary, for .list and .run */
} repl_opts;

int repl_run(const repl_opts *o); /* the exit code */

#endif
