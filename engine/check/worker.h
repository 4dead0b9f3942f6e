/* The worker: the child process that runs one check in its own sandbox
 * and event loop, streaming events to the runner over a pipe. Also the
 * probe, which only loads a check file and reports its metadata. */
#ifndef HALO_WORKER_H
#define HALO_WORKER_H
#include <stddef.h>

typedef struct {
    const char *check_file;
    const char *stack_file;         /* NULL: an empty stack table */
    const char *const *lib_dirs;
    size_t nlib_dirs;
    size_t mem_limit;               /* 0: default */
    double timeout_override;        /* > 0: replaces the check's timeout */
    double grace;                   /* seconds for defers after the run */
    int event_fd;
    const char *script;             /* worker_script: Lua text to run, or */
    const char *script_name;        /* an embedded source (e.g. "facts") */
} worker_opts;

/* Both return the child's exit status. */
int worker_run(const worker_opts *o);
int worker_probe(const worker_opts *o);
/* Runs o->script or the embedded o->script_name with the stack: the
 * runner's undo of a dead worker's faults, the stack's facts. */
int worker_script(const worker_opts *o);

#endif
