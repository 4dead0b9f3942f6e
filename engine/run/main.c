/* The halo command line: run, list, eval, exec, repl, version, help. Wrong
 * usage is one line on stderr and exit status 2. */
/* realpath() is XSI in glibc's headers */
#define _XOPEN_SOURCE 700
#include "run/adhoc.h"
#include "run/lint.h"
#include "proxy/proxy.h"
#include "run/repl.h"
#include "report/report.h"
#include "run/runner.h"
#include "core/sandbox.h"
#include "mod/modules.h"
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const USAGE =
    "usage: halo <command> [options]\n"
    "\n"
    "commands:\n"
    "  run [ID...]        run the checks (all, or the given ids) and report\n"
    "  list               list the checks with their ids, titles, timeouts and tags\n"
    "  lint [FILE...]     load check and stack files without running them; report every problem\n"
    "  new check NAME     write a new check file to start from (NN-NAME.lua in the checks directory)\n"
    "  eval 'CODE'        run a Lua chunk or expression in the sandbox and print its values\n"
    "  exec FILE [ARGS]   run a Lua script in the sandbox (args in `...` and `arg`)\n"
    "  repl               an interactive Lua prompt on the stack (modules as globals)\n"
    "  cleanup            restore what a killed run left changed (a container killed or paused, a fixture)\n"
    "  proxy              a TCP fault proxy with an HTTP control API (for require \"netfault\")\n"
    "  version            print the version\n"
    "  help [COMMAND]     show help (`halo help modules`: what a check can require)\n"
    "\n"
    "Run `halo help run` (or `halo run --help`) for a command's options.\n";

/* The commands, as bits of an option's `commands` mask. */
enum { C_RUN = 1, C_LIST = 2, C_EVAL = 4, C_EXEC = 8, C_REPL = 16, C_CLEANUP = 32, C_PROXY = 64, C_LINT = 128, C_NEW = 256 };

typedef struct {
    const char *name;
    unsigned bit;
    const char *usage; /* the first line(s) of its help */
    const char *about; /* what it does, before the options */
    const char *after; /* after the options: exit statuses and such */
} command_def;

static const command_def COMMANDS[] = {
    {"run", C_RUN, "usage: halo run [ID...] [options]\n",
     "Runs every check in the checks directory in id order (or only the given ids),\n"
     "each in its own sandboxed worker, and prints a report.\n",
     "exit status: 0 all passed (or N/A, deferred); 1 a check FAILed; 3 a check ERRORed;\n"
     "2 wrong usage or a bad stack file; 130/143 interrupted by SIGINT/SIGTERM.\n"},
    {"list", C_LIST, "usage: halo list [options]\n",
     "Lists the checks in id order. A check file that does not load is shown as\n"
     "ERROR with its file and line, and makes the exit status 3.\n",
     NULL},
    {"lint", C_LINT, "usage: halo lint [FILE...] [options]\n",
     "Loads check files (default: every *.lua of the checks directory) and stack\n"
     "files (--stack, or a FILE named stack.lua, *.stack.lua or in a stack(s)/ folder)\n"
     "without running them, and prints every problem as FILE:LINE: message: syntax\n"
     "errors, unknown keys, wrong types, a missing run function, duplicate ids.\n",
     "exit status: 0 no problem (a one-line summary); 1 problems; 2 wrong usage.\n"},
    {"new", C_NEW, "usage: halo new check NAME [options]\n",
     "Writes CHECKS/NN-NAME.lua (NN: one more than the highest number there) from a\n"
     "template with a title, tags, a timeout, a step, an expect and a defer, that\n"
     "lints clean and passes as it is, and prints its path. NAME: letters, digits, -.\n"
     "It never overwrites a file, nor writes a second check of the same NAME.\n",
     NULL},
    {"eval", C_EVAL, "usage: halo eval [options] 'CODE'\n       halo exec [options] FILE [ARGS...]\n",
     "Runs Lua in the same sandbox as the checks, with the modules as globals\n"
     "(time, task, json, zlib, http, sql, docker, proc, traffic, eventually, netfault, undo)\n"
     "and the stack file as `stack`, and prints the values the chunk returns. An\n"
     "expression needs no `return`. exec passes ARGS as `...` and `arg`.\n",
     NULL},
    {"exec", C_EXEC, NULL, NULL, NULL}, /* its help is eval's */
    {"repl", C_REPL, "usage: halo repl [options]\n",
     "An interactive Lua prompt in the checks' sandbox: every module is a global,\n"
     "the stack file is `stack`, `t` offers expect/evidence/step/defer, and an\n"
     "expression prints its value. Each line runs as a task, so tasks it spawns\n"
     "keep running between prompts (.tasks, .stop N). Ctrl-C stops the running\n"
     "line; Ctrl-D or .exit leaves after undoing every fault the session caused.\n"
     ".help lists the commands (.run ID, .list, .save FILE, .load FILE, .time EXPR).\n"
     "History: $XDG_STATE_HOME/halo/history (default ~/.local/state/halo/history).\n",
     "Without a terminal it reads lines from stdin, prints the results, and exits 3\n"
     "if a line raised.\n"},
    {"cleanup", C_CLEANUP, "usage: halo cleanup [options]\n",
     "Every run journals the faults it injected and has not undone yet (a container\n"
     "it killed, stopped or paused; a service it recreated with other environment\n"
     "or a skewed clock; a container's limits it lowered)\n"
     "and the fixtures it created and has not removed (a template, an asset, a\n"
     "schedule, a tenant: the request that removes it, its key named, never given)\n"
     "under $XDG_STATE_HOME/halo/runs/ (default ~/.local/state/halo/runs/). A run\n"
     "undoes them itself, even on Ctrl-C; one killed outright (kill -9) cannot.\n"
     "cleanup restores what runs that are gone left behind — containers first, then\n"
     "fixtures, newest first, with the keys read from the run's stack file — says\n"
     "what it did, and forgets a journal once all of it is restored. Runs still\n"
     "going are left alone. Start it with the environment the run had: the stack\n"
     "file reads its keys and URLs from it.\n",
     "exit status: 0 nothing left to restore; 3 something could not be restored.\n"},
    {"proxy", C_PROXY, "usage: halo proxy --control HOST:PORT [--link NAME=LISTEN,UPSTREAM ...]\n",
     "A long-lived TCP proxy whose links (a listening address and an upstream) can be\n"
     "slowed, throttled, sliced, blackholed, limited, reset or cut through an HTTP\n"
     "control API with JSON bodies (docs/operator-guide.md), as checks do with\n"
     "require \"netfault\". Logs one JSON line per event on stdout.\n",
     "exit status: 0 after SIGTERM or SIGINT; 1 an address cannot be listened on; 2 wrong usage.\n"},
};

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
static const option_def OPTIONS[] = {
    {O_CHECKS, "--checks", NULL, "DIR", C_RUN | C_LIST | C_REPL | C_LINT | C_NEW, "checks directory (default: scripts/checks)"},
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

static const command_def *command_named(const char *name)
{
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        if (strcmp(COMMANDS[i].name, name) == 0) return &COMMANDS[i];
    return NULL;
}

/* The module table (mod/modules.c), as an operator reads it. */
static void print_modules(FILE *f)
{
    fputs("Modules a check can require (each is also a global in eval, exec and the REPL):\n\n", f);
    for (const halo_module *m = halo_modules; m->name; m++)
        fprintf(f, "  %-11s %s\n", m->name, m->summary);
    fputs("\nEvery function, with an example: docs/modules.md\n", f);
}

/* A command's help: usage, what it does, its options from the table. */
static void print_help(const command_def *cmd, FILE *f)
{
    if (!cmd->usage) cmd = command_named("eval");
    unsigned bits = cmd->bit == C_EVAL ? (C_EVAL | C_EXEC) : cmd->bit;
    fprintf(f, "%s\n%s\n", cmd->usage, cmd->about);
    for (size_t i = 0; i < sizeof OPTIONS / sizeof *OPTIONS; i++) {
        const option_def *o = &OPTIONS[i];
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

typedef struct {
    const char **items;
    size_t n, cap;
} strlist;

static void strlist_add(strlist *l, const char *s) { VEC_PUSH(l->items, l->n, l->cap, s); }

static void strlist_add_csv(strlist *l, char *s)
{
    char *save = NULL;
    for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) strlist_add(l, tok);
}

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "halo %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see: halo %s --help)\n", cmd);
    return 2;
}

static int parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 1e7) return -1;
    *out = v;
    return 0;
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v > 0)) return -1;
    double mult = 1 << 20;
    if (*end == 'K' || *end == 'k') mult = 1 << 10, end++;
    else if (*end == 'M' || *end == 'm') mult = 1 << 20, end++;
    else if (*end == 'G' || *end == 'g') mult = (double)(1 << 30), end++;
    if (*end == 'i' && end[1] == 'B') end += 2;
    else if (*end == 'B') end++;
    if (*end) return -1;
    double bytes = v * mult;
    if (bytes < (1 << 20) || bytes > 1e12) return -1;
    *out = (size_t)bytes;
    return 0;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static const char *halo_home(void)
{
    const char *h = getenv("HALO_HOME");
    return h && *h ? h : HALO_HOME_DEFAULT;
}


/* Options shared by every command; returns 1 when it consumed argv[*i]
 * (and its value), 0 when not one of them, 2 on a bad value. */
typedef struct {
    const char *checks_dir, *stack_file, *format, *out, *operator_name, *history, *control;
    strlist links, libs, ids, tags, defers, reports, rest;
    strlist owned; /* strings made here, freed with the options */
    double timeout, grace;
    size_t mem;
    int parallel, verbose, help, up, down, dry_run, allow_faults, force;
} options;

/* The commands in a mask, for the message when another is given an option. */
static const char *commands_in(unsigned mask, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        if (mask & COMMANDS[i].bit)
            n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s%s", n ? ", " : "", COMMANDS[i].name);
    return buf;
}

/* The options of one command, from OPTIONS: an option the command does not
 * take is a usage error naming the commands that do. Returns 0, or 2 after
 * saying what is wrong. */
static int parse_options(const char *cmd, int argc, char **argv, options *o, int stop_at_first_positional)
{
    unsigned bit = command_named(cmd)->bit;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (stop_at_first_positional && o->rest.n > 0) {
            strlist_add(&o->rest, a);
            continue;
        }
        if (strcmp(a, "--") == 0) {
            for (i++; i < argc; i++) strlist_add(&o->rest, argv[i]);
            break;
        }
        if (a[0] != '-' || a[1] == '\0') {
            strlist_add(&o->rest, a);
            continue;
        }
        /* --name value or --name=value */
        char *value = NULL;
        char name[64];
        const char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
        snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
        if (eq) value = (char *)eq + 1;
        const option_def *def = NULL;
        unsigned takers = 0;
        for (size_t k = 0; k < sizeof OPTIONS / sizeof *OPTIONS; k++) {
            const option_def *d = &OPTIONS[k];
            if (strcmp(name, d->name) != 0 && !(d->shortname && strcmp(name, d->shortname) == 0)) continue;
            takers |= d->commands;
            if (d->commands & bit) def = d;
        }
        if (!takers) return usage_error(cmd, "unknown option %s", a);
        if (!def) {
            char which[128], msg[192];
            snprintf(msg, sizeof msg, "%%s is an option of %s, not of %s", commands_in(takers, which, sizeof which), cmd);
            return usage_error(cmd, msg, name);
        }
        if (!def->arg) {
            if (value) return usage_error(cmd, "%s takes no value", def->name);
            switch (def->id) {
            case O_HELP: o->help = 1; break;
            case O_VERBOSE: o->verbose = 1; break;
            case O_UP: o->up = 1; break;
            case O_ALLOW_FAULTS: o->allow_faults = 1; break;
            case O_FORCE: o->force = 1; break;
            case O_DOWN: o->down = 1; break;
            case O_DRY_RUN: o->dry_run = 1; break;
            }
            continue;
        }
        if (!value) {
            if (i + 1 >= argc) return usage_error(cmd, "%s needs a value", def->name);
            value = argv[++i];
        }
        switch (def->id) {
        case O_CHECKS: o->checks_dir = value; break;
        case O_STACK: o->stack_file = value; break;
        case O_TAG: strlist_add_csv(&o->tags, value); break;
        case O_DEFER: strlist_add_csv(&o->defers, value); break;
        case O_OUT: o->out = value; break;
        case O_HISTORY: o->history = value; break;
        case O_OPERATOR: o->operator_name = value; break;
        case O_CONTROL: o->control = value; break;
        case O_LINK: strlist_add(&o->links, value); break;
        case O_REPORT: {
            const char *colon = strchr(value, ':');
            char fmt[16];
            if (!colon || colon == value || colon[1] == '\0' || (size_t)(colon - value) >= sizeof fmt)
                return usage_error(cmd, "--report %s: give FORMAT:FILE, like md:run-log.md", value);
            snprintf(fmt, sizeof fmt, "%.*s", (int)(colon - value), value);
            if (!report_format_known(fmt))
                return usage_error(cmd, "--report %s: use text, json, junit, tap, md or html before the colon", value);
            strlist_add(&o->reports, value);
            break;
        }
        case O_LIB:
            if (!is_dir(value)) return usage_error(cmd, "--lib %s: not a directory", value);
            strlist_add(&o->libs, value);
            break;
        case O_FORMAT:
            if (!report_format_known(value))
                return usage_error(cmd, "--format %s: use text, json, junit, tap, md or html", value);
            o->format = value;
            break;
        case O_TIMEOUT:
            if (parse_seconds(value, &o->timeout) != 0)
                return usage_error(cmd, "--timeout expects a positive number of seconds, got '%s'", value);
            break;
        case O_GRACE:
            if (parse_seconds(value, &o->grace) != 0)
                return usage_error(cmd, "--grace expects a positive number of seconds, got '%s'", value);
            break;
        case O_MAX_MEM:
            if (parse_size(value, &o->mem) != 0)
                return usage_error(cmd, "--max-mem expects a size of at least 1M like 256M or 1G, got '%s'", value);
            break;
        case O_PARALLEL: {
            char *end;
            long n = strtol(value, &end, 10);
            if (*end || n < 1 || n > 64) return usage_error(cmd, "--parallel expects 1 to 64, got '%s'", value);
            o->parallel = (int)n;
            break;
        }
        }
    }
    return 0;
}

/* A report path must be writable before the run starts, not after it:
 * the run's results would otherwise be lost. */
static int writable_path(const char *path)
{
    char *copy = xstrdup(path);
    char *slash = strrchr(copy, '/');
    const char *dir = slash ? (slash == copy ? "/" : (*slash = '\0', copy)) : ".";
    int ok = is_dir(dir) && access(dir, W_OK) == 0;
    free(copy);
    return ok;
}

/* A path made from parts, kept until the options are freed. */
static const char *owned_path(options *o, const char *a, const char *b)
{
    char *p = xasprintf("%s/%s", a, b);
    strlist_add(&o->owned, p);
    return p;
}

/* --lib dirs first, then the lib next to the checks, then the built-in lib. */
static void default_lib_dirs(options *o, const char *checks_dir)
{
    if (checks_dir) {
        const char *sibling = owned_path(o, checks_dir, "../lib");
        if (is_dir(sibling)) strlist_add(&o->libs, sibling);
    }
    if (is_dir("scripts/lib")) strlist_add(&o->libs, "scripts/lib");
    const char *builtin = owned_path(o, halo_home(), "scripts/lib");
    if (is_dir(builtin)) strlist_add(&o->libs, builtin);
}

static const char *default_checks_dir(options *o)
{
    if (is_dir("scripts/checks")) return "scripts/checks";
    return owned_path(o, halo_home(), "scripts/checks");
}

static void options_free(options *o)
{
    for (size_t i = 0; i < o->owned.n; i++) free((char *)o->owned.items[i]);
    free(o->owned.items);
    free(o->libs.items);
    free(o->links.items);
    free(o->ids.items);
    free(o->tags.items);
    free(o->defers.items);
    free(o->reports.items);
    free(o->rest.items);
}

/* Every way out of a command frees its options. */
static int options_done(options *o, int code)
{
    options_free(o);
    return code;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmd_run_or_list(const char *cmd, int argc, char **argv)
{
    options o;
    memset(&o, 0, sizeof o);
    if (parse_options(cmd, argc, argv, &o, 0)) return options_done(&o, 2);
    int listing = strcmp(cmd, "list") == 0, linting = strcmp(cmd, "lint") == 0;
    if (o.help) {
        print_help(command_named(cmd), stdout);
        return options_done(&o, 0);
    }
    if (strcmp(cmd, "new") == 0) { /* halo new check NAME */
        if (o.rest.n != 2 || strcmp(o.rest.items[0], "check") != 0)
            return options_done(&o, usage_error(cmd, "%s", "give: halo new check NAME"));
        if (!o.checks_dir) o.checks_dir = default_checks_dir(&o);
        return options_done(&o, new_check(o.checks_dir, o.rest.items[1]));
    }
    if (listing && o.rest.n) return options_done(&o, usage_error(cmd, "unexpected argument %s", o.rest.items[0]));
    if (!o.checks_dir) o.checks_dir = default_checks_dir(&o);
    if (!(linting && o.rest.n) && !is_dir(o.checks_dir)) return options_done(&o, usage_error(cmd, "checks directory %s does not exist", o.checks_dir));
    if (o.stack_file && !file_exists(o.stack_file))
        return options_done(&o, usage_error(cmd, "stack file %s does not exist", o.stack_file));
    if (o.out && !writable_path(o.out)) return options_done(&o, usage_error(cmd, "--out %s: its directory is missing or not writable", o.out));
    if (o.history && !writable_path(o.history))
        return options_done(&o, usage_error(cmd, "--history %s: its directory is missing or not writable", o.history));
    for (size_t i = 0; i < o.reports.n; i++)
        if (!writable_path(strchr(o.reports.items[i], ':') + 1))
            return options_done(&o, usage_error(cmd, "--report %s: its directory is missing or not writable", o.reports.items[i]));
    default_lib_dirs(&o, o.checks_dir);
    runner_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.checks_dir = o.checks_dir;
    ro.stack_file = o.stack_file;
    ro.lib_dirs = o.libs.items;
    ro.nlib_dirs = o.libs.n;
    ro.only_ids = o.rest.items;
    ro.nonly = linting ? 0 : o.rest.n; /* lint's arguments are files */
    ro.tags = o.tags.items;
    ro.ntags = o.tags.n;
    ro.defer_ids = o.defers.items;
    ro.ndefer = o.defers.n;
    ro.format = o.format ? o.format : "text";
    ro.out = o.out;
    ro.reports = o.reports.items;
    ro.nreports = o.reports.n;
    ro.history = o.history;
    ro.timeout = o.timeout;
    ro.grace = o.grace > 0 ? o.grace : 10;
    ro.mem_limit = o.mem;
    ro.parallel = o.parallel > 0 ? o.parallel : 1;
    ro.verbose = o.verbose;
    ro.up = o.up;
    ro.down = o.down;
    ro.allow_faults = o.allow_faults;
    ro.force = o.force;
    strbuf command;
    sb_init(&command);
    sb_printf(&command, "halo %s", cmd);
    for (int i = 0; i < argc; i++) sb_printf(&command, " %s", argv[i]);
    ro.command = command.buf;
    ro.operator_name = o.operator_name;
    int code = linting ? runner_lint(&ro, o.rest.items, o.rest.n) : listing ? runner_list(&ro) : runner_run(&ro);
    sb_free(&command);
    options_free(&o);
    return code;
}

static int cmd_eval_or_exec(const char *cmd, int argc, char **argv)
{
    options o;
    memset(&o, 0, sizeof o);
    int exec = strcmp(cmd, "exec") == 0;
    if (parse_options(cmd, argc, argv, &o, exec)) return options_done(&o, 2);
    if (o.help) {
        print_help(command_named(cmd), stdout);
        return options_done(&o, 0);
    }
    if (o.rest.n == 0) return options_done(&o, usage_error(cmd, "%s", exec ? "needs a script file" : "needs the code to run"));
    if (!exec && o.rest.n > 1) return options_done(&o, usage_error(cmd, "unexpected argument %s (quote the code)", o.rest.items[1]));
    if (exec && !file_exists(o.rest.items[0])) return options_done(&o, usage_error(cmd, "no such script %s", o.rest.items[0]));
    if (o.stack_file && !file_exists(o.stack_file))
        return options_done(&o, usage_error(cmd, "stack file %s does not exist", o.stack_file));
    default_lib_dirs(&o, NULL);
    adhoc_opts ao;
    memset(&ao, 0, sizeof ao);
    if (exec) {
        ao.file = o.rest.items[0];
        ao.args = o.rest.items + 1;
        ao.nargs = o.rest.n - 1;
    } else {
        ao.code = o.rest.items[0];
    }
    ao.stack_file = o.stack_file;
    ao.lib_dirs = o.libs.items;
    ao.nlib_dirs = o.libs.n;
    ao.mem_limit = o.mem;
    ao.timeout = o.timeout;
    ao.verbose = o.verbose;
    int code = adhoc_run(&ao);
    options_free(&o);
    return code;
}

/* This binary, for the REPL's .run and .list. */
static const char *self_path(options *o, const char *argv0)
{
    char *path = NULL;
    if (strchr(argv0, '/')) path = realpath(argv0, NULL);
#ifdef __linux__
    if (!path) path = realpath("/proc/self/exe", NULL);
#endif
    if (!path) path = xstrdup(argv0);
    strlist_add(&o->owned, path);
    return path;
}

static int cmd_repl(int argc, char **argv, const char *argv0)
{
    options o;
    memset(&o, 0, sizeof o);
    if (parse_options("repl", argc, argv, &o, 0)) return options_done(&o, 2);
    if (o.help) {
        print_help(command_named("repl"), stdout);
        return options_done(&o, 0);
    }
    if (o.rest.n) return options_done(&o, usage_error("repl", "unexpected argument %s", o.rest.items[0]));
    if (o.stack_file && !file_exists(o.stack_file))
        return options_done(&o, usage_error("repl", "stack file %s does not exist", o.stack_file));
    if (!o.checks_dir) o.checks_dir = default_checks_dir(&o);
    default_lib_dirs(&o, o.checks_dir);
    repl_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.stack_file = o.stack_file;
    ro.checks_dir = o.checks_dir;
    ro.lib_dirs = o.libs.items;
    ro.nlib_dirs = o.libs.n;
    ro.mem_limit = o.mem;
    ro.verbose = o.verbose;
    ro.self = self_path(&o, argv0);
    int code = repl_run(&ro);
    options_free(&o);
    return code;
}

static int by_string(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int cmd_cleanup(int argc, char **argv)
{
    options o;
    memset(&o, 0, sizeof o);
    if (parse_options("cleanup", argc, argv, &o, 0)) return options_done(&o, 2);
    if (o.help) {
        print_help(command_named("cleanup"), stdout);
        return options_done(&o, 0);
    }
    if (o.rest.n) return options_done(&o, usage_error("cleanup", "unexpected argument %s", o.rest.items[0]));
    char *dir = state_dir("runs");
    if (!dir) {
        fprintf(stderr, "halo cleanup: no state directory (set HOME or XDG_STATE_HOME)\n");
        return options_done(&o, 2);
    }
    strlist_add(&o.rest, o.dry_run ? "dry-run" : "restore");
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n > 5 && strcmp(e->d_name + n - 5, ".json") == 0) {
            char *path = xasprintf("%s/%s", dir, e->d_name);
            strlist_add(&o.owned, path);
            strlist_add(&o.rest, path);
        }
    }
    if (d) closedir(d);
    free(dir);
    qsort(o.rest.items + 1, o.rest.n - 1, sizeof *o.rest.items, by_string);
    adhoc_opts ao;
    memset(&ao, 0, sizeof ao);
    ao.embedded = "check/leftovers";
    ao.args = o.rest.items;
    ao.nargs = o.rest.n;
    ao.timeout = 600;
    int code = adhoc_run(&ao);
    options_free(&o);
    return code;
}

static int cmd_proxy(int argc, char **argv)
{
    options o;
    memset(&o, 0, sizeof o);
    if (parse_options("proxy", argc, argv, &o, 0)) return options_done(&o, 2);
    if (o.help) {
        print_help(command_named("proxy"), stdout);
        return options_done(&o, 0);
    }
    if (o.rest.n) return options_done(&o, usage_error("proxy", "unexpected argument %s", o.rest.items[0]));
    if (!o.control) return options_done(&o, usage_error("proxy", "%s is required", "--control HOST:PORT"));
    return options_done(&o, proxy_run(o.control, o.links.items, o.links.n));
}

int main(int argc, char **argv)
{
    report_html_renderer = report_html;
    if (argc < 2) {
        fputs(USAGE, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0 || strcmp(cmd, "list") == 0 || strcmp(cmd, "lint") == 0 || strcmp(cmd, "new") == 0)
        return cmd_run_or_list(cmd, argc - 2, argv + 2);
    if (strcmp(cmd, "eval") == 0 || strcmp(cmd, "exec") == 0) return cmd_eval_or_exec(cmd, argc - 2, argv + 2);
    if (strcmp(cmd, "repl") == 0) return cmd_repl(argc - 2, argv + 2, argv[0]);
    if (strcmp(cmd, "cleanup") == 0) return cmd_cleanup(argc - 2, argv + 2);
    if (strcmp(cmd, "proxy") == 0) return cmd_proxy(argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("halo %s (%s)\n", HALO_VERSION, LUA_RELEASE);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        const char *topic = argc > 2 ? argv[2] : NULL;
        if (!topic) fputs(USAGE, stdout);
        else if (strcmp(topic, "modules") == 0) print_modules(stdout);
        else if (command_named(topic)) print_help(command_named(topic), stdout);
        else {
            fprintf(stderr, "halo help: no command %s\n", topic);
            return 2;
        }
        return 0;
    }
    fprintf(stderr, "halo: unknown command '%s' (see: halo help)\n", cmd);
    return 2;
}
