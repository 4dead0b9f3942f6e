/* realpath() is XSI in glibc's headers */
#define _XOPEN_SOURCE 700
#include "run/output.h"
#include "core/util.h"
#include "run/events_in.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

char *host_os(void)
{
    struct utsname u;
    if (uname(&u) != 0) return xstrdup("unknown");
    char *pretty = NULL;
    FILE *f = fopen("/etc/os-release", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "PRETTY_NAME=", 12) == 0) {
                char *v = line + 12;
                v[strcspn(v, "\n")] = '\0';
                if (*v == '"') {
                    v++;
                    char *q = strchr(v, '"');
                    if (q) *q = '\0';
                }
                pretty = xstrdup(v);
            }
        }
        fclose(f);
    }
    char *s = pretty ? xasprintf("%s (%s %s %s)", pretty, u.sysname, u.release, u.machine)
                     : xasprintf("%s %s %s", u.sysname, u.release, u.machine);
    free(pretty);
    return s;
}

char *operator_name(const runner_opts *o)
{
    if (o->operator_name) return xstrdup(o->operator_name);
    const char *env = getenv("HALO_OPERATOR");
    if (env && *env) return xstrdup(env);
    env = getenv("USER");
    if (env && *env) return xstrdup(env);
    struct passwd *pw = getpwuid(getuid());
    return xstrdup(pw ? pw->pw_name : "unknown");
}

static int write_report_to(const run_report *rep, const char *format, int verbose, const char *path)
{
    FILE *out = stdout;
    if (path) {
        out = fopen(path, "w");
        if (!out) {
            halo_warn("report %s: %s", path, strerror(errno));
            return -1;
        }
    }
    int bad = report_write(rep, format, verbose, out) != 0;
    bad |= ferror(out);
    if (out != stdout) bad |= fclose(out) != 0;
    else fflush(stdout);
    if (bad) {
        halo_warn("writing the report to %s failed", path ? path : "stdout");
        return -1;
    }
    if (path) fprintf(stderr, "halo: %s report written to %s\n", format, path);
    return 0;
}

static char *dir_part(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? xstrndup(path, (size_t)(slash - path) + 1) : xstrdup("./");
}

static char *html_link(const char *html, const char *md)
{
    char *hd = dir_part(html), *md_dir = md ? dir_part(md) : xstrdup("./");
    char *rh = realpath(hd, NULL), *rm = realpath(md_dir, NULL);
    const char *name = strrchr(html, '/') ? strrchr(html, '/') + 1 : html;
    char *link = rh && rm && strcmp(rh, rm) == 0 ? xstrdup(name) : rh ? xasprintf("%s/%s", rh, name) : xstrdup(html);
    free(hd);
    free(md_dir);
    free(rh);
    free(rm);
    return link;
}

/* The report (--format, --out), then every --report FORMAT:FILE. */
int write_report(const runner_opts *o, run_report *rep)
{
    /* the md entry links the HTML report when both are written: by its
     * name when the two are side by side, else by its absolute path */
    const char *html = NULL, *md = NULL;
    if (o->out && strcmp(o->format, "html") == 0) html = o->out;
    if (o->out && strcmp(o->format, "md") == 0) md = o->out;
    for (size_t i = 0; i < o->nreports; i++) {
        if (strncmp(o->reports[i], "html:", 5) == 0) html = o->reports[i] + 5;
        if (strncmp(o->reports[i], "md:", 3) == 0) md = o->reports[i] + 3;
    }
    char *link = html ? html_link(html, md) : NULL;
    rep->html_path = link;
    int rc = write_report_to(rep, o->format, o->verbose, o->out);
    for (size_t i = 0; i < o->nreports; i++) {
        const char *colon = strchr(o->reports[i], ':');
        char format[16];
        snprintf(format, sizeof format, "%.*s", (int)(colon - o->reports[i]), o->reports[i]);
        if (write_report_to(rep, format, o->verbose, colon + 1) != 0) rc = -1;
    }
    rep->html_path = NULL;
    free(link);
    return rc;
}

/* One line of the history file: the object with the check's id and the
 * record's type put in front. */
static void history_line(FILE *f, const char *check_id, const char *type, const char *obj)
{
    if (obj[0] != '{') return;
    strbuf sb;
    sb_init(&sb);
    sb_adds(&sb, "{\"check\":");
    sb_json_string(&sb, check_id);
    sb_printf(&sb, ",\"type\":\"%s\"%s%s\n", type, obj[1] == '}' ? "" : ",", obj + 1);
    fputs(sb.buf, f);
    sb_free(&sb);
}

/* --history FILE: every request and every action (docker) of every
 * check, one JSON object a line. */
int output_write_history(const char *path, const run_report *rep)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        halo_warn("--history %s: %s", path, strerror(errno));
        return -1;
    }
    size_t total = 0;
    for (size_t i = 0; i < rep->nchecks; i++) {
        const check_result *c = rep->checks[i];
        for (size_t k = 0; k < c->nactions; k++) history_line(f, c->id, "action", c->actions[k]);
        for (size_t k = 0; k < c->nrequests; k++) history_line(f, c->id, "request", c->requests[k]);
        total += c->nrequests + c->nactions;
        if (c->dropped_requests)
            halo_warn("check %s: %zu requests past the first %d are not in the history", c->id,
                      c->dropped_requests, REQUEST_MAX);
    }
    int bad = ferror(f) | (fclose(f) != 0);
    if (bad) {
        halo_warn("writing the history to %s failed", path);
        return -1;
    }
    fprintf(stderr, "halo: %zu records written to %s\n", total, path);
    return 0;
}

