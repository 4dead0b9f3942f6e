/* A host script in a child of the runner, with the stack and the internal
 * table: the undo of a dead worker's faults (o->script, Lua text) or the
 * stack's facts (o->script_name, an embedded source). It reports like a
 * worker: log lines, actions, facts, and EV_DONE with PASS or ERROR. */
#ifndef HALO_SCRIPT_H
#define HALO_SCRIPT_H
#include "check/worker_opts.h"

/* Returns the child's exit status. */
int worker_script(const worker_opts *o);

#endif
