/* The command line's table (cli.h) and the help printed from it. */
#include "run/cli.h"
#include "mod/modules.h"

#include <string.h>

const command_def cli_commands[] = {
    {"run", C_RUN, "run [ID...]",
     "run the checks (all, or the given ids) and report",
     "usage: halo run [ID...] [options]\n",
     "Runs every check in the checks directory in id order (or only the given ids),\n"
     "each in its own sandboxed worker, and prints a report.\n",
     "exit status: 0 all passed (or N/A, deferred); 1 a check FAILed; 3 a check ERRORed;\n"
     "2 wrong usage or a bad stack file; 130/143 interrupted by SIGINT/SIGTERM.\n"},
    {"list", C_LIST, "list",
     "list the checks with their ids, titles, timeouts and tags",
     "usage: halo list [options]\n",
     "Lists the checks in id order. A check file that does not load is shown as\n"
     "ERROR with its file and line, and makes the exit status 3.\n",
     NULL},
    {"lint", C_LINT, "lint [FILE|DIR...]",
     "load check and stack files without running them; report every problem",
     "usage: halo lint [FILE|DIR...] [options]\n",
     "Loads check files (default: every *.lua of the checks directory; a DIR: every\n"
     "*.lua in it) and stack files (--stack, or a FILE named stack*.lua, *.stack.lua\n"
     "or in a stacks/ folder)\n"
     "without running them, and prints every problem as FILE:LINE: message: syntax\n"
     "errors, unknown keys, wrong types, a missing run function, duplicate ids.\n",
     "exit status: 0 no problem (a one-line summary); 1 problems; 2 wrong usage.\n"},
    {"new", C_NEW, "new check NAME",
     "write a new check file to start from (NN-NAME.lua in the checks directory)",
     "usage: halo new check NAME [options]\n",
     "Writes CHECKS/NN-NAME.lua (NN: one more than the highest number there) from a\n"
     "template with a title, tags, a timeout, a step, an expect and a defer, that\n"
     "lints clean and passes as it is, and prints its path. NAME: letters, digits, -.\n"
     "It never overwrites a file, nor writes a second check of the same NAME.\n"
     "CHECKS: --checks, else the stack file's checks = \"DIR\", else ./scripts/checks\n"
     "if there is one, else ./checks (made if missing; never the installed checks).\n",
     NULL},
    {"eval", C_EVAL, "eval 'CODE'",
     "run a Lua chunk or expression in the sandbox and print its values",
     "usage: halo eval [options] 'CODE'\n       halo exec [options] FILE [ARGS...]\n",
     "Runs Lua in the same sandbox as the checks, with the modules as globals\n"
     "(time, task, json, zlib, http, sql, docker, proc, traffic, eventually, netfault, undo)\n"
     "and the stack file as `stack`, and prints the values the chunk returns. An\n"
     "expression needs no `return`. exec passes ARGS as `...` and `arg`.\n",
     NULL},
    {"exec", C_EXEC, "exec FILE [ARGS]",
     "run a Lua script in the sandbox (args in `...` and `arg`)",
     NULL, NULL, NULL}, /* its help is eval's */
    {"repl", C_REPL, "repl",
     "an interactive Lua prompt on the stack (modules as globals)",
     "usage: halo repl [options]\n",
     "An interactive Lua prompt in the checks' sandbox: every module is a global,\n"
     "the stack file is `stack`, `t` offers expect/evidence/step/defer, and an\n"
     "expression prints its value. Each line runs as a task, so tasks it spawns\n"
     "keep running between prompts (.tasks, .stop N). Ctrl-C stops the running\n"
     "line; Ctrl-D or .exit leaves after undoing every fault the session caused.\n"
     ".help lists the commands (.run ID, .list, .save FILE, .load FILE, .time EXPR).\n"
     "History: $XDG_STATE_HOME/halo/history (default ~/.local/state/halo/history).\n",
     "Without a terminal it reads lines from stdin, prints the results, and exits 3\n"
     "if a line raised.\n"},
    {"cleanup", C_CLEANUP, "cleanup",
     "restore what a killed run left changed (a container killed or paused, a fixture)",
     "usage: halo cleanup [options]\n",
     "Every run journals the faults it injected and has not undone yet (a container\n"
     "it killed, stopped or paused; a service it recreated with other environment\n"
     "or a skewed clock; a container's limits it lowered; a network link it faulted;\n"
     "a swarm service's spec it changed, a swarm node it drained or stopped)\n"
     "and the fixtures it created and has not removed (a template, an asset, a\n"
     "schedule, a tenant: the request that removes it, its key named, never given)\n"
     "under $XDG_STATE_HOME/halo/runs/ (default ~/.local/state/halo/runs/). A run\n"
     "undoes them itself, even on Ctrl-C; one killed outright (kill -9) cannot.\n"
     "cleanup restores what runs that are gone left behind — swarm nodes first,\n"
     "then containers, services and links, then fixtures, newest first, with the\n"
     "keys read from the run's stack file — says what it did, and forgets a journal\n"
     "once all of it is restored. Runs still going are left alone. Start it with\n"
     "the environment the run had: the stack file reads its keys and URLs from it.\n",
     "exit status: 0 nothing left to restore; 3 something could not be restored.\n"},
    {"proxy", C_PROXY, "proxy",
     "a TCP fault proxy with an HTTP control API (for require \"netfault\")",
     "usage: halo proxy --control HOST:PORT [--link NAME=LISTEN,UPSTREAM ...]\n",
     "A long-lived TCP proxy whose links (a listening address and an upstream) can be\n"
     "slowed, throttled, sliced, blackholed, limited, reset or cut through an HTTP\n"
     "control API with JSON bodies (docs/operator-guide.md), as checks do with\n"
     "require \"netfault\". Logs one JSON line per event on stdout.\n",
     "exit status: 0 after SIGTERM or SIGINT; 1 an address cannot be listened on; 2 wrong usage.\n"},
};

const option_def cli_options[] = {
    {O_CHECKS, "--checks", NULL, "DIR", C_RUN | C_LIST | C_REPL | C_LINT | C_NEW, "checks directory; without it: the stack file's checks = \"DIR\"\n"
     "(relative to the stack file), else ./scripts/checks, else the\n"
     "checks installed with halo (PREFIX/share/halo/checks)"},
    {O_STACK, "--stack", NULL, "FILE", C_RUN | C_LIST | C_EVAL | C_EXEC | C_REPL | C_LINT,
     "stack file describing the target (a Lua file)"},
    {O_TAG, "--tag", NULL, "T", C_RUN, "only checks tagged T (repeatable: any of them)"},
    {O_DEFER, "--defer", NULL, "ID", C_RUN, "mark check ID as DEFERRED instead of running it (repeatable, or ID,ID)"},
    {O_FORMAT, "--format", NULL, "F", C_RUN, "text (default), json, junit, tap, md or html"},
    {O_OUT, "--out", NULL, "FILE", C_RUN, "write the report to FILE instead of stdout"},
    {O_REPORT, "--report", NULL, "F:FILE", C_RUN,
     "also write the report in format F to FILE (repeatable):\n--report md:run-log.md --report json:run.json"},
    {O_HISTORY, "--history", NULL, "FILE", C_RUN, "write every HTTP request of every check to FILE (JSON lines)"},
    {O_TIMEOUT, "--timeout", NULL, "S", C_RUN, "override every check's timeout (seconds)"},
    {O_TIMEOUT, "--timeout", NULL, "S", C_EVAL | C_EXEC, "stop the script after S seconds (default: no limit)"},
    {O_GRACE, "--grace", NULL, "S", C_RUN,
     "time for cleanup after a check, and added to its hard deadline (default 10)"},
    {O_GRACE, "--grace", NULL, "S", C_EVAL | C_EXEC,
     "time for each undo at the script's end, e.g. a swarm service's restore (default 10)"},
    {O_MAX_MEM, "--max-mem", NULL, "SIZE", C_RUN | C_LIST | C_EVAL | C_EXEC | C_REPL | C_LINT,
     "memory cap per Lua state: 256M (default), 1G, 512K; a bare number is MiB"},
    {O_PARALLEL, "--parallel", NULL, "N", C_RUN, "run up to N checks at once (an exclusive check runs alone)"},
    {O_LIB, "--lib", NULL, "DIR", C_RUN | C_LIST | C_EVAL | C_EXEC | C_REPL | C_LINT,
     "add DIR to where require looks for Lua modules (repeatable)"},
    {O_OPERATOR, "--operator", NULL, "NAME", C_RUN, "operator named in the md report (default: $HALO_OPERATOR or $USER)"},
    {O_UP, "--up", NULL, NULL, C_RUN, "bring the stack up first: the stack file's harness.up command"},
    {O_DOWN, "--down", NULL, NULL, C_RUN, "take it down at the end, whatever happened: harness.down"},
    {O_ALLOW_FAULTS, "--allow-faults", NULL, NULL, C_RUN,
     "let checks kill, stop, pause and recreate parts of the stack even though the\n"
     "stack file does not say allow_faults = true (checks with faults = true are N/A otherwise)"},
    {O_FORCE, "--force", NULL, NULL, C_RUN,
     "inject faults even while another run injects faults into the same stack"},
    {O_CONTROL, "--control", NULL, "HOST:PORT", C_PROXY, "where the control API listens (give a loopback address)"},
    {O_LINK, "--link", NULL, "SPEC", C_PROXY,
     "a link at start (repeatable): NAME=LISTEN_HOST:PORT,UPSTREAM_HOST:PORT;\n"
     "more can be created through the API"},
    {O_DRY_RUN, "--dry-run", NULL, NULL, C_CLEANUP, "only say what would be restored"},
    {O_VERBOSE, "--verbose", "-v", NULL, C_RUN, "show log lines as they happen, evidence in the text report"},
    {O_VERBOSE, "--verbose", "-v", NULL, C_EVAL | C_EXEC | C_REPL, "tracebacks on errors"},
    {O_HELP, "--help", "-h", NULL, C_ALL, "this help"},
};
const size_t cli_ncommands = sizeof cli_commands / sizeof *cli_commands;
const size_t cli_noptions = sizeof cli_options / sizeof *cli_options;

const command_def *command_named(const char *name)
{
    for (size_t i = 0; i < cli_ncommands; i++)
        if (strcmp(cli_commands[i].name, name) == 0) return &cli_commands[i];
    return NULL;
}

/* `halo` alone and `halo help`: every command of the table, one line each,
 * then the two main.c answers itself. */
void print_usage(FILE *f)
{
    fputs("usage: halo <command> [options]\n\ncommands:\n", f);
    for (size_t i = 0; i < cli_ncommands; i++)
        fprintf(f, "  %-18s %s\n", cli_commands[i].synopsis, cli_commands[i].summary);
    fprintf(f, "  %-18s %s\n", "version", "print the version");
    fprintf(f, "  %-18s %s\n", "help [COMMAND]", "show help (`halo help modules`: what a check can require)");
    fputs("\nRun `halo help run` (or `halo run --help`) for a command's options.\n", f);
}

/* The module table (mod/modules.c), as an operator reads it. */
void print_modules(FILE *f)
{
    fputs("Modules a check can require (each is also a global in eval, exec and the REPL):\n\n", f);
    for (const halo_module *m = halo_modules; m->name; m++)
        fprintf(f, "  %-11s %s\n", m->name, m->summary);
    fputs("\nEvery function, with an example: docs/modules.md\n", f);
}

/* A command's help: usage, what it does, its options from the table. */
void print_help(const command_def *cmd, FILE *f)
{
    if (!cmd->usage) cmd = command_named("eval");
    unsigned bits = cmd->bit == C_EVAL ? (C_EVAL | C_EXEC) : cmd->bit;
    fprintf(f, "%s\n%s\n", cmd->usage, cmd->about);
    for (size_t i = 0; i < cli_noptions; i++) {
        const option_def *o = &cli_options[i];
        if (!(o->commands & bits)) continue;
        char left[40];
        snprintf(left, sizeof left, "%s%s%s%s%s", o->shortname ? o->shortname : "", o->shortname ? ", " : "", o->name,
                 o->arg ? " " : "", o->arg ? o->arg : "");
        const char *h = o->help;
        const char *nl = strchr(h, '\n');
        fprintf(f, "  %-16s %.*s\n", left, nl ? (int)(nl - h) : (int)strlen(h), h);
        while (nl) {
            h = nl + 1;
            nl = strchr(h, '\n');
            fprintf(f, "  %-16s %.*s\n", "", nl ? (int)(nl - h) : (int)strlen(h), h);
        }
    }
    if (cmd->after) fprintf(f, "\n%s", cmd->after);
}