/* The runner: discovers check files, orders and filters them, runs each in
 * a forked worker under a hard deadline, collects their events and writes
 * the report. Its parts: run/children (forking, reaping), run/events_in
 * (a child's event lines, dispatched by kind), run/exits (a child's end,
 * the undo replay), run/discover (check files, selection), run/output
 * (the reports and the history file). */
#ifndef HALO_RUNNER_H
#define HALO_RUNNER_H
#include "report/report.h"
#include "run/runner_opts.h"

int runner_run(const runner_opts *o);  /* returns the exit code */
int runner_list(const runner_opts *o); /* returns the exit code */
/* The event loop and the workers' lifeline: what runner_run, runner_list
 * and halo lint (run/lint.h) start from. */
void runner_init(const runner_opts *o);
/* Frees what a run_report holds (report/report.h), not the struct. */
void run_report_free(run_report *rep);

#endif
