#include "run/discover.h"
#include "check/probe.h"
#include "core/util.h"
#include "run/children.h"
#include "run/events_in.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Loading a check file is normally instant; past this, it is broken. */
#define PROBE_LIMIT_S 10.0

static void probe_exit(child *ch, int wstatus)
{
    check_result *c = ch->check;
    if (ch->got_done) return;
    c->status = ST_ERROR;
    if (ch->killed_by_deadline)
        check_set_message(c, xasprintf("%s: loading the file did not finish within %g s", c->file, PROBE_LIMIT_S));
    else
        check_set_message(c, xasprintf("%s: the probe that loads it crashed (status %d)", c->file, wstatus));
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int by_order(const void *a, const void *b)
{
    const check_result *x = *(check_result *const *)a, *y = *(check_result *const *)b;
    if (x->order != y->order) return x->order < y->order ? -1 : 1;
    int c = strcmp(x->id ? x->id : "", y->id ? y->id : "");
    return c ? c : strcmp(x->file, y->file);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* id and title from the file name, until (unless) the file says better */
static void default_identity(check_result *c)
{
    const char *b = base_name(c->file);
    char *stem = xstrdup(b);
    char *dot = strrchr(stem, '.');
    if (dot) *dot = '\0';
    char *end;
    long num = strtol(stem, &end, 10);
    if (end != stem) {
        c->id = xasprintf("%ld", num);
        c->order = (double)num;
    } else {
        c->id = xstrdup(stem);
        c->order = 1e15;
    }
    c->title = stem;
}

worker_opts base_worker_opts(const runner_opts *o)
{
    worker_opts wo;
    memset(&wo, 0, sizeof wo);
    wo.stack_file = o->stack_file;
    wo.lib_dirs = o->lib_dirs;
    wo.nlib_dirs = o->nlib_dirs;
    wo.mem_limit = o->mem_limit;
    wo.timeout_override = o->timeout;
    wo.grace = o->grace;
    wo.allow_faults = o->allow_faults;
    wo.event_fd = -1;
    wo.lifeline_fd = -1;
    return wo;
}

char **discover_lua_files(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 5 || strcmp(e->d_name + len - 4, ".lua") != 0) continue;
        char *path = xasprintf("%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) VEC_PUSH(names, n, cap, path);
        else free(path);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, by_name);
    else names = xcalloc(1, sizeof *names);
    *count = n;
    return names;
}

/* Every *.lua file of the directory, probed and sorted by id. Returns -1
 * (after saying why) when the directory cannot be read. */
int discover(const runner_opts *o, run_report *rep)
{
    size_t n = 0;
    char **names = discover_lua_files(o->checks_dir, &n);
    if (!names) {
        halo_warn("checks directory %s: %s", o->checks_dir, strerror(errno));
        return -1;
    }
    discover_files(o, (const char *const *)names, n, rep);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return 0;
}

void discover_files(const runner_opts *o, const char *const *names, size_t n, run_report *rep)
{
    worker_opts wo = base_worker_opts(o);
    size_t next = 0;
    while (next < n || children_alive() > 0) {
        /* a handful of probes at a time is plenty; each lasts milliseconds */
        while (next < n && children_alive() < 8) {
            check_result *c = check_result_new(names[next]);
            default_identity(c);
            c->timeout_s = 60;
            VEC_PUSH(rep->checks, rep->nchecks, rep->capchecks, c);
            child *ch = child_spawn(c, worker_probe, &wo, &probe_events, probe_exit);
            next++;
            if (!ch) {
                c->status = ST_ERROR;
                check_set_message(c, xstrdup("could not start a probe process"));
                continue;
            }
            child_listen(ch, PROBE_LIMIT_S);
        }
        loop_step(-1);
    }
    qsort(rep->checks, rep->nchecks, sizeof *rep->checks, by_order);

    for (size_t i = 0; i < rep->nchecks; i++) {
        for (size_t k = 0; k < i; k++) {
            if (strcmp(rep->checks[i]->id, rep->checks[k]->id) == 0 && rep->checks[i]->status != ST_ERROR) {
                rep->checks[i]->status = ST_ERROR;
                check_set_message(rep->checks[i], xasprintf("duplicate id %s (also used by %s)", rep->checks[i]->id,
                                                      rep->checks[k]->file));
                break;
            }
        }
    }
}

static int in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0) return 1;
    return 0;
}

static int has_any_tag(const check_result *c, const char *const *tags, size_t ntags)
{
    for (size_t i = 0; i < c->ntags; i++)
        if (in_list(c->tags[i], tags, ntags)) return 1;
    return 0;
}

/* Keep what the command line selected. Returns -1 for an unknown id. */
int select_checks(const runner_opts *o, run_report *rep)
{
    for (size_t i = 0; i < o->nonly; i++) {
        int found = 0;
        for (size_t k = 0; k < rep->nchecks; k++) found |= strcmp(rep->checks[k]->id, o->only_ids[i]) == 0;
        if (!found) {
            halo_warn("no check with id %s in %s (see: halo list)", o->only_ids[i], o->checks_dir);
            return -1;
        }
    }
    for (size_t i = 0; i < o->ndefer; i++) {
        int found = 0;
        for (size_t k = 0; k < rep->nchecks; k++) found |= strcmp(rep->checks[k]->id, o->defer_ids[i]) == 0;
        if (!found) {
            halo_warn("--defer %s: no check with that id in %s", o->defer_ids[i], o->checks_dir);
            return -1;
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < rep->nchecks; i++) {
        check_result *c = rep->checks[i];
        int keep = (o->nonly == 0 || in_list(c->id, o->only_ids, o->nonly)) &&
                   (o->ntags == 0 || has_any_tag(c, o->tags, o->ntags));
        if (!keep) {
            check_result_free(c);
            continue;
        }
        if (in_list(c->id, o->defer_ids, o->ndefer) && c->status != ST_ERROR) {
            c->status = ST_DEFERRED;
            check_set_message(c, xstrdup("deferred (--defer)"));
        }
        rep->checks[kept++] = c;
    }
    rep->nchecks = kept;
    return 0;
}

char *checks_title(const char *dir)
{
    char *path = xasprintf("%s/README.md", dir);
    FILE *f = fopen(path, "r");
    free(path);
    if (!f) return NULL;
    char line[256];
    char *title = NULL;
    if (fgets(line, sizeof line, f) && line[0] == '#') {
        char *p = line;
        while (*p == '#') p++;
        while (*p == ' ' || *p == '\t') p++;
        size_t n = strcspn(p, "\r\n");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
        if (n > 0) title = xstrndup(p, n);
    }
    fclose(f);
    return title;
}
