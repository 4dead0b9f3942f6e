/* The worker: the child process that runs one check in its own sandbox
 * and event loop, streaming events (core/events.def) to the runner over a
 * pipe. */
#ifndef HALO_WORKER_H
#define HALO_WORKER_H
#include "check/worker_opts.h"

/* Returns the child's exit status. */
int worker_run(const worker_opts *o);

#endif
