/* What the command line asks of a run (halo run, halo list), apart from
 * run/runner.h so that the runner's parts can read it without including
 * the runner itself. */
#ifndef HALO_RUNNER_OPTS_H
#define HALO_RUNNER_OPTS_H
#include <stddef.h>

typedef struct {
    const char *checks_dir;
    const char *stack_file;
    const char *const *lib_dirs;
    size_t nlib_dirs;
    const char *const *only_ids; /* positional IDs; none = all */
    size_t nonly;
    const char *const *tags;     /* --tag: keep checks with any of them */
    size_t ntags;
    const char *const *defer_ids;
    size_t ndefer;
    const char *format;          /* text, json, junit, tap, md */
    const char *out;             /* NULL: stdout */
    const char *const *reports;  /* --report FORMAT:FILE, each written as well */
    size_t nreports;
    const char *history;         /* --history FILE: requests as JSON lines */
    double timeout;              /* > 0 overrides every check's timeout */
    double grace;                /* cleanup and hard-deadline grace */
    size_t mem_limit;
    int parallel;
    int verbose;
    int up, down;                /* run the stack file's harness.up before, .down after */
    int allow_faults;            /* --allow-faults: as if the stack file allowed them */
    int force;                   /* --force: run even where another run injects faults */
    const char *command;         /* the command line, for another run's refusal */
    const char *operator_name;
} runner_opts;

#endif
