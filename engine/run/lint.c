#include "run/lint.h"
#include "check/stack.h"
#include "core/sandbox.h"
#include "core/util.h"
#include "run/discover.h"
#include "run/runner.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The spec key a validation message is about (context.lua's wording), so
 * that lint can point at the line that sets it: Lua gives no line for a
 * value in a table. NULL when the message names none. */
static const char *key_of(const char *msg, char *buf, size_t size)
{
    static const char *const keys[] = {"title", "timeout", "grace", "tags", "requires", "id", "exclusive", "faults"};
    if (strncmp(msg, "unknown key '", 13) == 0) {
        const char *end = strchr(msg + 13, '\'');
        if (!end) return NULL;
        snprintf(buf, size, "%.*s", (int)(end - msg - 13), msg + 13);
        return buf;
    }
    if (strncmp(msg, "duplicate id ", 13) == 0) return "id";
    if (strstr(msg, "no run function")) return "run";
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        size_t n = strlen(keys[i]);
        if (strncmp(msg, keys[i], n) == 0 && msg[n] == ' ') return keys[i];
    }
    return NULL;
}

/* The first line of FILE that sets KEY (`KEY =` after blanks, a brace or a
 * comma), or 0. */
static int line_of_key(const char *file, const char *key)
{
    FILE *f = fopen(file, "r");
    if (!f) return 0;
    char line[1024];
    size_t klen = strlen(key);
    int n = 0, found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        n++;
        for (char *p = line; (p = strstr(p, key)); p += klen) {
            int before_ok = p == line || strchr(" \t{,", p[-1]);
            char *q = p + klen;
            while (*q == ' ' || *q == '\t') q++;
            if (before_ok && q[0] == '=' && q[1] != '=') {
                found = n;
                break;
            }
        }
    }
    fclose(f);
    return found;
}

/* One problem line: MSG may start with the file as the sandbox shows it
 * ("f.lua:3: ..." or "f.lua: ..."), which is replaced by FILE. */
static void report_line(const char *file, const char *shown, const char *msg)
{
    size_t n = strlen(shown);
    if (strncmp(msg, "stack file ", 11) == 0) msg += 11; /* stack_check's words: lint says the file first */
    if (strncmp(msg, file, strlen(file)) == 0 && msg[strlen(file)] == ':') msg += strlen(file) + 1;
    else if (strncmp(msg, shown, n) == 0 && msg[n] == ':') msg += n + 1;
    while (*msg == ' ') msg++;
    if (isdigit((unsigned char)*msg)) {
        const char *p = msg;
        while (isdigit((unsigned char)*p)) p++;
        if (*p == ':') {
            printf("%s:%s\n", file, msg);
            return;
        }
    }
    char buf[128];
    const char *key = key_of(msg, buf, sizeof buf);
    int line = key ? line_of_key(file, key) : 0;
    if (line) printf("%s:%d: %s\n", file, line, msg);
    else printf("%s: %s\n", file, msg);
}

/* Every problem of a message; returns how many. context.lua's validate
 * joins a file's spec problems with "; "; a message that carries Lua's
 * "FILE:LINE:" (a syntax or runtime error, whose text is the script's own)
 * is one problem, never split. */
static int report_message(const char *file, const char *message)
{
    char shown[128];
    sandbox_display_path(file, shown, sizeof shown);
    const char *m = message ? message : "does not load";
    size_t fl = strlen(file), sl = strlen(shown);
    const char *rest = strncmp(m, file, fl) == 0 && m[fl] == ':' ? m + fl + 1
                       : strncmp(m, shown, sl) == 0 && m[sl] == ':' ? m + sl + 1 : m;
    if (isdigit((unsigned char)*rest) || strncmp(m, "stack file ", 11) == 0) {
        report_line(file, shown, m);
        return 1;
    }
    char *copy = xstrdup(rest);
    int count = 0;
    for (char *p = copy, *next; p; p = next) {
        next = strstr(p, "; ");
        if (next) *next = '\0', next += 2;
        report_line(file, shown, p);
        count++;
    }
    free(copy);
    return count;
}

/* A stack file by its name: stack*.lua (stack.lua, stack-multi.lua),
 * *.stack.lua, or any .lua in a folder named stacks. Others are check files. */
static int looks_like_stack(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (strncmp(base, "stack", 5) == 0 || (n > 10 && strcmp(base + n - 10, ".stack.lua") == 0)) return 1;
    for (const char *p = path; (p = strstr(p, "stacks/")); p++)
        if (p == path || p[-1] == '/') return 1;
    return 0;
}

static int lint_stack(const char *path)
{
    char *err = NULL;
    if (stack_check(path, &err, NULL) == 0) return 0;
    int count = report_message(path, err);
    free(err);
    return count;
}

int runner_lint(const runner_opts *o, const char *const *files, size_t nfiles)
{
    runner_init(o);
    int problems = 0;
    size_t nstacks = 0, nchecks = 0;
    const char **checks = xcalloc(nfiles + 1, sizeof *checks);
    if (o->stack_file) {
        problems += lint_stack(o->stack_file);
        nstacks++;
    }
    /* a directory stands for its *.lua files, as --checks DIR does */
    char **owned = NULL;
    size_t nowned = 0, capowned = 0;
    for (size_t i = 0; i < nfiles; i++) {
        struct stat st;
        if (stat(files[i], &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        size_t n = 0;
        char **in = discover_lua_files(files[i], &n);
        if (!in) continue; /* said below, as for a file */
        if (n == 0) {
            /* "no problems" would pass a typo'd or empty --checks directory */
            printf("%s: no check files (*.lua) in this directory\n", files[i]);
            problems++;
        }
        for (size_t k = 0; k < n; k++) VEC_PUSH(owned, nowned, capowned, in[k]);
        free(in);
    }
    checks = xrealloc(checks, (nfiles + nowned + 1) * sizeof *checks);
    for (size_t i = 0; i < nfiles + nowned; i++) {
        const char *file = i < nfiles ? files[i] : owned[i - nfiles];
        struct stat st;
        if (i < nfiles && stat(file, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (access(file, R_OK | X_OK) != 0) {
                printf("%s: %s\n", file, strerror(errno));
                problems++;
            }
            continue;
        }
        if (access(file, R_OK) != 0) {
            printf("%s: %s\n", file, strerror(errno));
            problems++;
        } else if (looks_like_stack(file)) {
            problems += lint_stack(file);
            nstacks++;
        } else {
            checks[nchecks++] = file;
        }
    }
    run_report rep;
    memset(&rep, 0, sizeof rep);
    if (nfiles == 0 && discover(o, &rep) != 0) {
        free(checks);
        free(owned);
        return 2;
    }
    if (nchecks) discover_files(o, checks, nchecks, &rep);
    free(checks);
    for (size_t i = 0; i < rep.nchecks; i++)
        if (rep.checks[i]->status == ST_ERROR) problems += report_message(rep.checks[i]->file, rep.checks[i]->message);
    if (problems)
        fprintf(stderr, "halo lint: %d problem%s in %zu check file%s and %zu stack file%s\n", problems,
                problems == 1 ? "" : "s", rep.nchecks, rep.nchecks == 1 ? "" : "s", nstacks, nstacks == 1 ? "" : "s");
    else
        printf("halo lint: %zu check file%s and %zu stack file%s, no problems\n", rep.nchecks,
               rep.nchecks == 1 ? "" : "s", nstacks, nstacks == 1 ? "" : "s");
    run_report_free(&rep);
    for (size_t i = 0; i < nowned; i++) free(owned[i]);
    free(owned);
    return problems ? 1 : 0;
}

/* ---- halo new check ------------------------------------------------------------ */

static const char *const TEMPLATE =
    "-- %s: %s\n"
    "-- Written by `halo new check`: it passes as it is; make it test something.\n"
    "-- The check spec, t (step, expect, assert, evidence, defer, log) and examples:\n"
    "-- docs/writing-checks.md; every module a check can require: docs/modules.md\n"
    "-- (`halo help modules`). `halo lint` checks this file without running it.\n"
    "local time = require \"time\"\n"
    "\n"
    "return {\n"
    "  title = \"%s\",  -- one line: `halo list` and the reports show it\n"
    "  tags = { \"new\" },  -- words to select it by: halo run --tag new\n"
    "  timeout = 30,  -- seconds before the run stops it as an ERROR (default 60)\n"
    "  -- requires = function(stack) return stack.lb ~= nil, \"no lb in the stack file\" end,\n"
    "  run = function(t, stack)\n"
    "    -- cleanup: runs last-in first-out once the check ends, whatever the outcome\n"
    "    t:defer(function() t:log(\"cleanup of check %%s\", t.id) end)\n"
    "    -- a named, timed step: replace it with what the stack must do\n"
    "    local took = t:step(\"wait a moment\", function()\n"
    "      local started = time.mono()\n"
    "      time.sleep(0.1)\n"
    "      return time.mono() - started\n"
    "    end)\n"
    "    t:evidence(\"waited (s)\", took)  -- in the report's detail\n"
    "    -- a failed expect is a FAIL and the check goes on (t:assert stops it)\n"
    "    t:expect(took < 1, \"waited %%.2f s\", took)\n"
    "  end,\n"
    "}\n";

/* NAME is a word: letters, digits and '-', not starting with '-'. */
static int is_word(const char *s)
{
    if (!*s || *s == '-') return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-') return 0;
    return 1;
}

int new_check(const char *dir, const char *name)
{
    if (!is_word(name)) {
        fprintf(stderr, "halo new check: '%s' is not a name: use letters, digits and - (like lb-latency)\n", name);
        return 2;
    }
    DIR *d = opendir(dir);
    if (!d && errno == ENOENT && mkdir(dir, 0777) == 0) /* a new checks directory: its parent must exist */
        d = opendir(dir);
    if (!d) {
        fprintf(stderr, "halo new check: checks directory %s: %s\n", dir, strerror(errno));
        return 2;
    }
    long highest = 0;
    char *clash = NULL;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 5 || strcmp(e->d_name + len - 4, ".lua") != 0) continue;
        char *end;
        long num = strtol(e->d_name, &end, 10);
        if (end != e->d_name && isdigit((unsigned char)e->d_name[0]) && num > highest) highest = num;
        /* NN-NAME.lua or NAME.lua: a check of that name is there already */
        const char *stem = end != e->d_name && *end == '-' ? end + 1 : e->d_name;
        if (!clash && strlen(stem) == strlen(name) + 4 && strncmp(stem, name, strlen(name)) == 0)
            clash = xasprintf("%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (clash) {
        fprintf(stderr, "halo new check: %s exists already: not overwriting it\n", clash);
        free(clash);
        return 2;
    }
    int dirlen = (int)strlen(dir);
    while (dirlen > 1 && dir[dirlen - 1] == '/') dirlen--; /* checks/ gives checks/NN-x.lua, not checks//NN-x.lua */
    char *path = xasprintf("%.*s/%02ld-%s.lua", dirlen, dir, highest + 1, name);
    /* O_EXCL: never overwrite, even a file that appeared meanwhile */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "halo new check: %s: %s\n", path, strerror(errno));
        if (fd >= 0) close(fd);
        free(path);
        return 2;
    }
    char *title = xstrdup(name);
    for (char *p = title; *p; p++)
        if (*p == '-') *p = ' ';
    fprintf(f, TEMPLATE, strrchr(path, '/') + 1, title, title);
    int bad = fclose(f) != 0;
    if (bad) fprintf(stderr, "halo new check: %s: %s\n", path, strerror(errno));
    else printf("%s\n", path);
    free(title);
    free(path);
    return bad ? 2 : 0;
}
