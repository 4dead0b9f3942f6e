/* What every child the runner forks to run Lua is given: the worker
 * (check/worker.h), the probe (check/probe.h) and the runner's scripts
 * (check/script.h). Apart from the worker so that what the three share
 * (check/context.h) can read it without including the worker. */
#ifndef HALO_WORKER_OPTS_H
#define HALO_WORKER_OPTS_H
#include <stddef.h>

typedef struct {
    const char *check_file;
    const char *stack_file;         /* NULL: an empty stack table */
    const char *const *lib_dirs;
    size_t nlib_dirs;
    size_t mem_limit;               /* 0: default */
    double timeout_override;        /* > 0: replaces the check's timeout */
    double grace;                   /* seconds for defers after the run */
    int allow_faults;               /* --allow-faults: as if the stack file allowed them */
    int event_fd;
    int lifeline_fd;                /* end of file here: the runner is gone (-1: none) */
    const char *script;             /* worker_script: Lua text to run, or */
    const char *script_name;        /* an embedded source (e.g. "check/facts") */
} worker_opts;

#endif
