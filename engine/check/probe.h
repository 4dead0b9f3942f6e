/* The probe: a child that only loads a check file, under a short deadline,
 * and reports what it declares (EV_META) or why it does not load
 * (EV_LOAD_ERROR), so that listing and ordering checks never runs one and
 * a file that hangs on load cannot hang the run. */
#ifndef HALO_PROBE_H
#define HALO_PROBE_H
#include "check/worker_opts.h"

/* Returns the child's exit status. */
int worker_probe(const worker_opts *o);

#endif
