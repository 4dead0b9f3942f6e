/* What a run leaves behind: the report in every format asked for, the
 * history file, and who ran it where, as the report says. */
#ifndef HALO_OUTPUT_H
#define HALO_OUTPUT_H
#include "report/report.h"
#include "run/runner_opts.h"

/* "Debian GNU/Linux 12 (bookworm) (Linux 6.1.0 x86_64)"; caller frees. */
char *host_os(void);
/* --operator, else $HALO_OPERATOR, $USER, the login name; caller frees. */
char *operator_name(const runner_opts *o);
/* The report (--format, --out), then every --report FORMAT:FILE; 0, or -1
 * when one could not be written (said on stderr). */
int write_report(const runner_opts *o, run_report *rep);
/* --history FILE: every request and every action (docker) of every
 * check, one JSON object a line; 0, or -1 (said on stderr). */
int output_write_history(const char *path, const run_report *rep);

#endif
