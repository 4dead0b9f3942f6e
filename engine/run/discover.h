/* The checks of a run: every *.lua file of the checks directory, probed in
 * forked children for what it declares (check/probe.h), ordered by id, and
 * kept or deferred as the command line selects. */
#ifndef HALO_DISCOVER_H
#define HALO_DISCOVER_H
#include "check/worker.h"
#include "report/report.h"
#include "run/runner_opts.h"

/* The options every child of the run starts from. */
worker_opts base_worker_opts(const runner_opts *o);
/* Every check file of o->checks_dir into rep->checks, probed and sorted by
 * id; duplicate ids are ERRORs. Returns -1 (after saying why) when the
 * directory cannot be read. */
int discover(const runner_opts *o, run_report *rep);
/* The *.lua files directly in dir, as "dir/name", sorted by name; NULL
 * (errno set) when dir cannot be read. Caller frees each and the array. */
char **discover_lua_files(const char *dir, size_t *count);
/* The same for the given files (halo lint), in the order given before the
 * sort by id; a file that cannot be read is an ERROR like any other. */
void discover_files(const runner_opts *o, const char *const *names, size_t n, run_report *rep);
/* The first line of DIR/README.md when it is a Markdown heading ("# the
 * six HA checks"), without the #s: what the reports call these checks.
 * NULL when there is none. */
char *checks_title(const char *dir);
/* Keep what the command line selected. Returns -1 for an unknown id. */
int select_checks(const runner_opts *o, run_report *rep);

#endif
