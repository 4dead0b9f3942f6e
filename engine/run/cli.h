/* The command line's table: every command and every option, with their
 * help. Parsing (main.c), `halo help CMD`, the man page (manpage.c) and the
 * bash completion (completion.c) all read it, so none can drift from the
 * others. */
#ifndef HALO_CLI_H
#define HALO_CLI_H
#include <stddef.h>
#include <stdio.h>

/* The commands, as bits of an option's `commands` mask. */
enum { C_RUN = 1, C_LIST = 2, C_EVAL = 4, C_EXEC = 8, C_REPL = 16, C_CLEANUP = 32, C_PROXY = 64, C_LINT = 128,
       C_NEW = 256 };

typedef struct {
    const char *name;
    unsigned bit;
    const char *synopsis; /* its line in `halo help`: the name and its arguments */
    const char *summary;  /* and what it does, in a line */
    const char *usage; /* the first line(s) of its help */
    const char *about; /* what it does, before the options */
    const char *after; /* after the options: exit statuses and such */
} command_def;

enum {
    O_HELP, O_VERBOSE, O_UP, O_DOWN, O_DRY_RUN, O_CHECKS, O_STACK, O_TAG, O_DEFER, O_FORMAT, O_OUT, O_REPORT,
    O_HISTORY, O_TIMEOUT, O_GRACE, O_MAX_MEM, O_PARALLEL, O_LIB, O_OPERATOR, O_ALLOW_FAULTS, O_FORCE,
    O_CONTROL, O_LINK,
};

/* Every option: its spelling, its value's name (NULL: a flag), the
 * commands that take it and its help (one row per meaning, where commands
 * read it differently). Parsing, the check that a command takes an option,
 * and every command's help come from this table. */
typedef struct {
    int id;
    const char *name, *shortname, *arg;
    unsigned commands;
    const char *help; /* lines after the first are indented under it */
} option_def;

#define C_ALL (C_RUN | C_LIST | C_EVAL | C_EXEC | C_REPL | C_CLEANUP | C_PROXY | C_LINT | C_NEW)

extern const command_def cli_commands[];
extern const size_t cli_ncommands;
extern const option_def cli_options[];
extern const size_t cli_noptions;

/* The command called name, or NULL. */
const command_def *command_named(const char *name);
/* `halo help`: the commands, one line each, from the table. */
void print_usage(FILE *f);
/* `halo help CMD`: usage, what it does, its options from the table. */
void print_help(const command_def *cmd, FILE *f);
/* `halo help modules`: the module table (mod/modules.c). */
void print_modules(FILE *f);

#endif
