/* The halo command line: run, list, eval, exec, repl, version, help. Wrong
 * usage is one line on stderr and exit status 2. */
/* realpath() is XSI in glibc's headers */
#define _XOPEN_SOURCE 700
#include "adhoc.h"
#include "repl.h"
#include "report.h"
#include "runner.h"
#include "sandbox.h"
#include "util.h"

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
    "  eval 'CODE'        run a Lua chunk or expression in the sandbox and print its values\n"
    "  exec FILE [ARGS]   run a Lua script in the sandbox (args in `...` and `arg`)\n"
    "  repl               an interactive Lua prompt on the stack (modules as globals)\n"
    "  cleanup            restore what a killed run left changed (a container killed or paused)\n"
    "  version            print the version\n"
    "  help [COMMAND]     show help\n"
    "\n"
    "Run `halo help run` (or `halo run --help`) for a command's options.\n";

static const char *const RUN_HELP =
    "usage: halo run [ID...] [options]\n"
    "\n"
    "Runs every check in the checks directory in id order (or only the given ids),\n"
    "each in its own sandboxed worker, and prints a report.\n"
    "\n"
    "  --checks DIR     checks directory (default: scripts/checks)\n"
    "  --stack FILE     stack file describing the target (a Lua file)\n"
    "  --tag T          only checks tagged T (repeatable: any of them)\n"
    "  --defer ID       mark check ID as DEFERRED instead of running it (repeatable, or ID,ID)\n"
    "  --format F       text (default), json, junit, tap, md or html\n"
    "  --out FILE       write the report to FILE instead of stdout\n"
    "  --report F:FILE  also write the report in format F to FILE (repeatable):\n"
    "                   --report md:run-log.md --report json:run.json\n"
    "  --history FILE   write every HTTP request of every check to FILE (JSON lines)\n"
    "  --timeout S      override every check's timeout (seconds)\n"
    "  --grace S        time for cleanup after a check, and added to its hard deadline (default 10)\n"
    "  --max-mem SIZE   memory cap per check: 256M (default), 1G, 512K; a bare number is MiB\n"
    "  --parallel N     run up to N checks at once (checks tagged 'exclusive' run alone)\n"
    "  --lib DIR        add DIR to where require looks for Lua modules (repeatable)\n"
    "  --operator NAME  operator named in the md report (default: $HALO_OPERATOR or $USER)\n"
    "  --up             bring the stack up first: the stack file's harness.up command\n"
    "  --down           take it down at the end, whatever happened: harness.down\n"
    "  -v, --verbose    show log lines as they happen, evidence in the text report\n"
    "\n"
    "exit status: 0 all passed (or N/A, deferred); 1 a check FAILed; 3 a check ERRORed;\n"
    "2 wrong usage or a bad stack file; 130/143 interrupted by SIGINT/SIGTERM.\n";

static const char *const LIST_HELP =
    "usage: halo list [--checks DIR] [--lib DIR]\n"
    "\n"
    "Lists the checks in id order. A check file that does not load is shown as\n"
    "ERROR with its file and line, and makes the exit status 3.\n";

static const char *const REPL_HELP =
    "usage: halo repl [--stack FILE] [--checks DIR] [--lib DIR] [--max-mem SIZE] [-v]\n"
    "\n"
    "An interactive Lua prompt in the checks' sandbox: every module is a global,\n"
    "the stack file is `stack`, `t` offers expect/evidence/step/defer, and an\n"
    "expression prints its value. Each line runs as a task, so tasks it spawns\n"
    "keep running between prompts (.tasks, .stop N). Ctrl-C stops the running\n"
    "line; Ctrl-D or .exit leaves after undoing every fault the session caused.\n"
    ".help lists the commands (.run ID, .list, .save FILE, .load FILE, .time EXPR).\n"
    "History: $XDG_STATE_HOME/halo/history (default ~/.local/state/halo/history).\n"
    "\n"
    "Without a terminal it reads lines from stdin, prints the results, and exits 3\n"
    "if a line raised.\n";

static const char *const CLEANUP_HELP =
    "usage: halo cleanup [--dry-run]\n"
    "\n"
    "Every run journals the faults it injected and has not undone yet (a container\n"
    "it killed, stopped or paused; a service it recreated with other environment)\n"
    "under $XDG_STATE_HOME/halo/runs/ (default ~/.local/state/halo/runs/). A run\n"
    "undoes them itself, even on Ctrl-C; one killed outright (kill -9) cannot.\n"
    "cleanup restores what runs that are gone left behind, says what it did, and\n"
    "forgets a journal once all of it is restored. Runs still going are left alone.\n"
    "\n"
    "  --dry-run        only say what would be restored\n"
    "\n"
    "exit status: 0 nothing left to restore; 3 something could not be restored.\n";

static const char *const EVAL_HELP =
    "usage: halo eval [options] 'CODE'\n"
    "       halo exec [options] FILE [ARGS...]\n"
    "\n"
    "Runs Lua in the same sandbox as the checks, with the modules as globals\n"
    "(time, task, json, zlib, http, sql, docker, proc, traffic, eventually) and the stack file as `stack`, and prints the values the\n"
    "chunk returns. An expression needs no `return`.\n"
    "\n"
    "  --stack FILE     stack file (as for run)\n"
    "  --lib DIR        add a directory for require (repeatable)\n"
    "  --timeout S      stop the script after S seconds (default: no limit)\n"
    "  --max-mem SIZE   memory cap (default 256M)\n"
    "  -v, --verbose    tracebacks on errors\n";

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
    const char *checks_dir, *stack_file, *format, *out, *operator_name, *history;
    strlist libs, ids, tags, defers, reports, rest;
    strlist owned; /* strings made here, freed with the options */
    double timeout, grace;
    size_t mem;
    int parallel, verbose, help, up, down;
} options;

static int parse_options(const char *cmd, int argc, char **argv, options *o, int stop_at_first_positional)
{
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
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            o->help = 1;
            continue;
        }
        if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            o->verbose = 1;
            continue;
        }
        if (strcmp(a, "--up") == 0 || strcmp(a, "--down") == 0) {
            if (a[2] == 'u') o->up = 1;
            else o->down = 1;
            continue;
        }
        /* --name value or --name=value */
        char *name = a, *value = NULL;
        char *eq = strchr(a, '=');
        static char namebuf[64];
        if (eq && a[1] == '-') {
            snprintf(namebuf, sizeof namebuf, "%.*s", (int)(eq - a), a);
            name = namebuf;
            value = eq + 1;
        }
        static const char *const with_value[] = {"--checks", "--stack", "--tag", "--defer", "--format",
                                                 "--out", "--history", "--timeout", "--grace", "--max-mem",
                                                 "--parallel", "--lib", "--operator", "--report", NULL};
        int known = 0;
        for (int k = 0; with_value[k]; k++) known |= strcmp(name, with_value[k]) == 0;
        if (!known) return usage_error(cmd, "unknown option %s", a);
        if (!value) {
            if (i + 1 >= argc) return usage_error(cmd, "%s needs a value", name);
            value = argv[++i];
        }
        if (strcmp(name, "--checks") == 0) o->checks_dir = value;
        else if (strcmp(name, "--stack") == 0) o->stack_file = value;
        else if (strcmp(name, "--tag") == 0) strlist_add_csv(&o->tags, value);
        else if (strcmp(name, "--defer") == 0) strlist_add_csv(&o->defers, value);
        else if (strcmp(name, "--out") == 0) o->out = value;
        else if (strcmp(name, "--report") == 0) {
            const char *colon = strchr(value, ':');
            char fmt[16];
            if (!colon || colon == value || colon[1] == '\0' || (size_t)(colon - value) >= sizeof fmt)
                return usage_error(cmd, "--report %s: give FORMAT:FILE, like md:run-log.md", value);
            snprintf(fmt, sizeof fmt, "%.*s", (int)(colon - value), value);
            if (!report_format_known(fmt))
                return usage_error(cmd, "--report %s: use text, json, junit, tap, md or html before the colon", value);
            strlist_add(&o->reports, value);
        }
        else if (strcmp(name, "--history") == 0) o->history = value;
        else if (strcmp(name, "--operator") == 0) o->operator_name = value;
        else if (strcmp(name, "--lib") == 0) {
            if (!is_dir(value)) return usage_error(cmd, "--lib %s: not a directory", value);
            strlist_add(&o->libs, value);
        } else if (strcmp(name, "--format") == 0) {
            if (!report_format_known(value))
                return usage_error(cmd, "--format %s: use text, json, junit, tap, md or html", value);
            o->format = value;
        } else if (strcmp(name, "--timeout") == 0) {
            if (parse_seconds(value, &o->timeout) != 0)
                return usage_error(cmd, "--timeout expects a positive number of seconds, got '%s'", value);
        } else if (strcmp(name, "--grace") == 0) {
            if (parse_seconds(value, &o->grace) != 0)
                return usage_error(cmd, "--grace expects a positive number of seconds, got '%s'", value);
        } else if (strcmp(name, "--max-mem") == 0) {
            if (parse_size(value, &o->mem) != 0)
                return usage_error(cmd, "--max-mem expects a size of at least 1M like 256M or 1G, got '%s'", value);
        } else if (strcmp(name, "--parallel") == 0) {
            char *end;
            long n = strtol(value, &end, 10);
            if (*end || n < 1 || n > 64) return usage_error(cmd, "--parallel expects 1 to 64, got '%s'", value);
            o->parallel = (int)n;
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
    int listing = strcmp(cmd, "list") == 0;
    if (o.help) {
        fputs(listing ? LIST_HELP : RUN_HELP, stdout);
        return options_done(&o, 0);
    }
    if (listing && o.rest.n) return options_done(&o, usage_error(cmd, "unexpected argument %s", o.rest.items[0]));
    if (!o.checks_dir) o.checks_dir = default_checks_dir(&o);
    if (!is_dir(o.checks_dir)) return options_done(&o, usage_error(cmd, "checks directory %s does not exist", o.checks_dir));
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
    ro.nonly = o.rest.n;
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
    ro.operator_name = o.operator_name;
    int code = listing ? runner_list(&ro) : runner_run(&ro);
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
        fputs(EVAL_HELP, stdout);
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
        fputs(REPL_HELP, stdout);
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
    int dry_run = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0) dry_run = 1;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(CLEANUP_HELP, stdout);
            return 0;
        } else
            return usage_error("cleanup", "unknown argument %s", argv[i]);
    }
    char *dir = state_dir("runs");
    if (!dir) {
        fprintf(stderr, "halo cleanup: no state directory (set HOME or XDG_STATE_HOME)\n");
        return 2;
    }
    options o;
    memset(&o, 0, sizeof o);
    strlist_add(&o.rest, dry_run ? "dry-run" : "restore");
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
    ao.embedded = "leftovers";
    ao.args = o.rest.items;
    ao.nargs = o.rest.n;
    ao.timeout = 600;
    int code = adhoc_run(&ao);
    options_free(&o);
    return code;
}

int main(int argc, char **argv)
{
    report_html_renderer = report_html;
    if (argc < 2) {
        fputs(USAGE, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0 || strcmp(cmd, "list") == 0) return cmd_run_or_list(cmd, argc - 2, argv + 2);
    if (strcmp(cmd, "eval") == 0 || strcmp(cmd, "exec") == 0) return cmd_eval_or_exec(cmd, argc - 2, argv + 2);
    if (strcmp(cmd, "repl") == 0) return cmd_repl(argc - 2, argv + 2, argv[0]);
    if (strcmp(cmd, "cleanup") == 0) return cmd_cleanup(argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("halo %s (%s)\n", HALO_VERSION, LUA_RELEASE);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        const char *topic = argc > 2 ? argv[2] : NULL;
        if (!topic) fputs(USAGE, stdout);
        else if (strcmp(topic, "run") == 0) fputs(RUN_HELP, stdout);
        else if (strcmp(topic, "list") == 0) fputs(LIST_HELP, stdout);
        else if (strcmp(topic, "eval") == 0 || strcmp(topic, "exec") == 0) fputs(EVAL_HELP, stdout);
        else if (strcmp(topic, "repl") == 0) fputs(REPL_HELP, stdout);
        else if (strcmp(topic, "cleanup") == 0) fputs(CLEANUP_HELP, stdout);
        else {
            fprintf(stderr, "halo help: no command %s\n", topic);
            return 2;
        }
        return 0;
    }
    fprintf(stderr, "halo: unknown command '%s' (see: halo help)\n", cmd);
    return 2;
}
