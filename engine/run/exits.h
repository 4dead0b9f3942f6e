/* A worker's end: its result completed from what the runner saw (steps a
 * kill cut short, lines dropped, a worker that died without a verdict and
 * how), and the undo of the faults a dead worker left. */
#ifndef HALO_EXITS_H
#define HALO_EXITS_H
#include "run/children.h"

/* The on_exit of a check's worker. */
void worker_exit(child *ch, int wstatus);

#endif
