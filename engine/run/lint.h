/* Authoring commands: `halo lint` loads check and stack files without
 * running them and reports every problem as FILE:LINE: message; `halo new
 * check` writes a check file that lints clean and passes as it is. */
#ifndef HALO_LINT_H
#define HALO_LINT_H
#include "run/runner_opts.h"
#include <stddef.h>

/* files: check or stack files (none: every check of o->checks_dir);
 * o->stack_file, when set, is linted as a stack file too. Returns the exit
 * status: 0 no problem (after a one-line summary), 1 problems, 2 a
 * directory that cannot be read. */
int runner_lint(const runner_opts *o, const char *const *files, size_t nfiles);

/* Writes DIR/NN-NAME.lua and prints its path. Returns 0, or 2 after saying
 * why not (a bad name, a missing directory, a check of that name). */
int new_check(const char *dir, const char *name);

#endif
