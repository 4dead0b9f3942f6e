/* The halo command line: run, list, eval, exec, repl, version, help. Wrong
 * usage is one line on stderr and exit status 2. */
/* realpath() is XSI in glibc's headers */
#define _XOPEN_SOURCE 700
#include "run/adhoc.h"
#include "run/cli.h"
#include "run/lint.h"
#include "run/completion.h"
#include "run/manpage.h"
#include "proxy/proxy.h"
#include "run/repl.h"
#include "report/report.h"
#include "run/runner.h"
#include "core/sandbox.h"
#include "mod/modules.h"
#include "core/util.h"
#include "core/plugin.h"
#include "check/stack.h"

#include <dirent.h>
#include <errno.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


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
    for (size_t i = 0; i < cli_ncommands; i++)
        if (mask & cli_commands[i].bit)
            n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s%s", n ? ", " : "", cli_commands[i].name);
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
        for (size_t k = 0; k < cli_noptions; k++) {
            const option_def *d = &cli_options[k];
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

/* What ships with halo: under $HALO_HOME (a source tree) when set; else
 * the share/halo/ of an installed halo, found from the executable's own
 * place; else the source tree this binary was built from. */
static const char *shipped_dir(options *o, const char *installed, const char *in_source)
{
    const char *h = getenv("HALO_HOME");
    if (h && *h) return owned_path(o, h, in_source);
    char *p = installed_path(installed);
    if (p) {
        strlist_add(&o->owned, p);
        return p;
    }
    return owned_path(o, HALO_HOME_DEFAULT, in_source);
}

/* --lib dirs first, then the lib next to the checks, then the shipped lib. */
static void default_lib_dirs(options *o, const char *checks_dir)
{
    if (checks_dir) {
        const char *sibling = owned_path(o, checks_dir, "../lib");
        if (is_dir(sibling)) strlist_add(&o->libs, sibling);
    }
    if (is_dir("scripts/lib")) strlist_add(&o->libs, "scripts/lib");
    const char *shipped = shipped_dir(o, "share/halo/lib", "scripts/lib");
    if (is_dir(shipped)) strlist_add(&o->libs, shipped);
}

/* Without --checks (the rule `halo help run` states): the stack file's
 * checks = "DIR", relative to the stack file; else ./scripts/checks, so a
 * source tree works as it always did; else the shipped checks, for reading
 * only: a new check (writing) goes to ./checks, since the shipped ones
 * belong to the package. A stack file that does not load names nothing
 * here: the runner reports it. */
static const char *default_checks_dir(options *o, int writing)
{
    if (o->stack_file) {
        stack_harness h;
        memset(&h, 0, sizeof h);
        char *err = NULL;
        const char *named = NULL;
        if (stack_check(o->stack_file, &err, &h) == 0 && h.checks) {
            char *p = h.checks[0] == '/' ? xstrdup(h.checks) : xasprintf("%s/%s", h.dir, h.checks);
            strlist_add(&o->owned, p);
            named = p;
        }
        stack_harness_free(&h);
        free(err);
        if (named) return named;
    }
    if (is_dir("scripts/checks")) return "scripts/checks";
    if (writing) return "checks";
    return shipped_dir(o, "share/halo/checks", "scripts/checks");
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
    if (listing && o.rest.n) return options_done(&o, usage_error(cmd, "unexpected argument %s", o.rest.items[0]));
    if (strcmp(cmd, "new") == 0) { /* halo new check NAME */
        if (o.rest.n != 2 || strcmp(o.rest.items[0], "check") != 0)
            return options_done(&o, usage_error(cmd, "%s", "give: halo new check NAME"));
        if (!o.checks_dir) o.checks_dir = default_checks_dir(&o, 1);
        return options_done(&o, new_check(o.checks_dir, o.rest.items[1]));
    }
    if (!o.checks_dir) o.checks_dir = default_checks_dir(&o, 0);
    if (!(linting && o.rest.n) && !is_dir(o.checks_dir))
        return options_done(&o, usage_error(cmd, "checks directory %s does not exist", o.checks_dir));
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
    ao.grace = o.grace;
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
    if (!o.checks_dir) o.checks_dir = default_checks_dir(&o, 0);
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
        print_usage(stderr);
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
        if (!topic) print_usage(stdout);
        /* hidden: what the build turns into halo.1 and the bash completion */
        else if (strcmp(topic, "--man") == 0) print_manpage(stdout, HALO_VERSION);
        else if (strcmp(topic, "--completion") == 0 && argc > 3 && strcmp(argv[3], "bash") == 0)
            print_bash_completion(stdout);
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
