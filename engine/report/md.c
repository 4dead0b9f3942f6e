/* The run as an entry for the validation report's run log, in that
 * document's own shape ("Run — date (x/N PASS, …)", Checks with ✓/✗/-/N/A,
 * Detail per check, Notes / anomalies), so an operator can paste it in as
 * is. Lines end in two spaces: plain text stays plain, and markdown keeps
 * the line breaks instead of running the lines together. */
#include "report/report.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"

#define BR "  \n" /* a markdown hard line break */
#define EM_DASH "\xE2\x80\x94"

/* The date the operator would write: local, like the report's own dates. */
static void format_date(char *buf, size_t size, double epoch_s)
{
    struct tm tm;
    /* a time no clock gives (or NaN): today, rather than an undefined cast */
    time_t t = epoch_s > 0 && epoch_s < 253402300800.0 ? (time_t)epoch_s : time(NULL);
    if (!localtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%d", &tm))
        snprintf(buf, size, "YYYY-MM-DD");
}

/* One line of text: newlines and tabs would break the entry's shape. */
static void add_flat(strbuf *sb, const char *s)
{
    for (const char *p = s ? s : ""; *p; p++)
        sb_addc(sb, (unsigned char)*p < 0x20 ? ' ' : *p);
}

/* Text that may span lines: the first line goes where the caller is, every
 * further line is indented so it reads as part of the same item. */
static void add_lines(strbuf *sb, const char *text, const char *indent)
{
    const char *p = text ? text : "";
    for (;;) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        for (size_t i = 0; i < n; i++) sb_addc(sb, p[i] == '\r' ? ' ' : p[i]);
        sb_adds(sb, BR);
        if (!eol || !eol[1]) break;
        p = eol + 1;
        sb_adds(sb, indent);
    }
}

/* A duration as a person reads it: 12 ms, 1.4 s, 2 min 5 s. */
static void add_duration(strbuf *sb, double ms)
{
    if (!(ms >= 0)) ms = 0;
    if (ms < 1000) sb_printf(sb, "%.0f ms", ms);
    else if (ms < 60000) sb_printf(sb, "%.1f s", ms / 1000);
    else if (ms < 1e12) sb_printf(sb, "%d min %d s", (int)(ms / 60000), (int)(ms / 1000) % 60);
    else sb_printf(sb, "%.3g s", ms / 1000);
}

/* A number as the entry shows it: what a reader compares, not the 14
 * digits of the JSON (0.0123456789 -> 0.0123, 1234.5678 -> 1234.6). */
static void add_rounded(strbuf *sb, const char *text, size_t len)
{
    char buf[64];
    if (len >= sizeof buf) {
        sb_addn(sb, text, len);
        return;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    char *end;
    double v = strtod(buf, &end);
    if (*end || !(v == v)) {
        sb_addn(sb, text, len);
        return;
    }
    double a = v < 0 ? -v : v;
    if (a >= 1e15 || (a == (double)(long long)a && !strpbrk(buf, ".eE"))) {
        sb_addn(sb, text, len);
        return;
    }
    char out[64];
    if (a >= 100) snprintf(out, sizeof out, "%.1f", v);
    else if (a >= 1) snprintf(out, sizeof out, "%.2f", v);
    else snprintf(out, sizeof out, "%.3g", v);
    /* 2.50 -> 2.5, 3.00 -> 3 */
    if (strchr(out, '.') && !strpbrk(out, "eE")) {
        size_t n = strlen(out);
        while (n > 0 && out[n - 1] == '0') out[--n] = '\0';
        if (n > 0 && out[n - 1] == '.') out[--n] = '\0';
    }
    sb_adds(sb, out);
}

/* JSON evidence with its numbers rounded for reading; strings untouched. */
static char *rounded_json(const char *json)
{
    strbuf sb;
    sb_init(&sb);
    for (const char *p = json; *p;) {
        if (*p == '"') {
            const char *q = p + 1;
            while (*q && *q != '"') q += (*q == '\\' && q[1]) ? 2 : 1;
            if (*q) q++;
            sb_addn(&sb, p, (size_t)(q - p));
            p = q;
        } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
            size_t n = strspn(p, "-+0123456789.eE");
            add_rounded(&sb, p, n);
            p += n;
        } else {
            sb_addc(&sb, *p++);
        }
    }
    return sb_take(&sb);
}

static void add_heading(strbuf *sb, const run_report *r, const char *date)
{
    report_counts n = report_count(r);
    size_t total = r->nchecks;
    size_t finished = n.pass + n.fail + n.error + n.na + n.deferred;
    sb_printf(sb, "#### Run " EM_DASH " %s (%zu/%zu PASS", date, n.pass, total);
    if (n.fail) sb_printf(sb, ", %zu/%zu FAIL", n.fail, total);
    if (n.error) sb_printf(sb, ", %zu/%zu ERROR", n.error, total);
    if (n.deferred) sb_printf(sb, ", %zu/%zu deferred", n.deferred, total);
    if (n.na) sb_printf(sb, ", %zu/%zu N/A", n.na, total);
    if (finished < total) sb_printf(sb, ", %zu/%zu not finished", total - finished, total);
    sb_adds(sb, ")\n\n");
}

static const char *status_mark(check_status st)
{
    switch (st) {
    case ST_PASS: return "[\xE2\x9C\x93]";
    case ST_FAIL: case ST_ERROR: return "[\xE2\x9C\x97]";
    case ST_DEFERRED: return "[-]";
    case ST_NA: return "[N/A]";
    case ST_PENDING: break;
    }
    return "[ ]"; /* the report template's mark for a check not yet run */
}

static void add_check_line(strbuf *sb, const check_result *c)
{
    sb_printf(sb, "%s %s. ", status_mark(c->status), c->id ? c->id : "?");
    add_flat(sb, c->title);
    sb_printf(sb, " " EM_DASH " %s", c->status == ST_PENDING ? "not finished" : status_name(c->status));
    if (c->status == ST_NA && c->message && *c->message) {
        sb_adds(sb, " (");
        add_flat(sb, c->message);
        sb_addc(sb, ')');
    }
    sb_adds(sb, BR);
}

static int has_detail(const check_result *c)
{
    return c->nevidence || c->nfailures || (c->status != ST_PASS && c->message);
}

static void add_detail(strbuf *sb, const check_result *c)
{
    sb_printf(sb, "[%s] ", c->id ? c->id : "?");
    /* A passing check has no message; its title says what the evidence is. */
    if (c->status != ST_PASS && c->message) add_lines(sb, c->message, "    ");
    else add_lines(sb, c->title, "    ");
    for (size_t i = 0; i < c->nfailures; i++) {
        sb_adds(sb, "    - ");
        add_lines(sb, c->failures[i], "      ");
    }
    if (c->nsteps) {
        sb_adds(sb, "    steps: ");
        for (size_t i = 0; i < c->nsteps; i++) {
            if (i) sb_adds(sb, ", ");
            add_flat(sb, c->steps[i].name);
            sb_adds(sb, " ");
            add_duration(sb, c->steps[i].duration_ms);
            if (c->steps[i].status != ST_PASS) sb_printf(sb, " (%s)", status_name(c->steps[i].status));
        }
        sb_adds(sb, BR);
    }
    for (size_t i = 0; i < c->nevidence; i++) {
        char *plain = evidence_text(&c->evidence[i]);
        if (c->evidence[i].form != EVIDENCE_TEXT && (plain[0] == '{' || plain[0] == '[')) {
            char *rounded = rounded_json(plain);
            free(plain);
            plain = rounded;
        }
        sb_printf(sb, "    %s: ", c->evidence[i].key);
        add_lines(sb, plain, "      ");
        free(plain);
    }
}

static void add_notes(strbuf *sb, const run_report *r)
{
    int any = 0;
    if (r->interrupted) {
        sb_adds(sb, "- The run was interrupted (SIGINT/SIGTERM); unfinished checks have no result.\n");
        any = 1;
    }
    for (size_t i = 0; i < r->nchecks; i++) {
        const check_result *c = r->checks[i];
        if (c->status != ST_FAIL) continue;
        sb_printf(sb, "- [%s] FAIL: ", c->id ? c->id : "?");
        add_flat(sb, c->message ? c->message : "an expectation failed");
        sb_addc(sb, '\n');
        any = 1;
    }
    for (size_t i = 0; i < r->nchecks; i++) {
        const check_result *c = r->checks[i];
        if (c->status != ST_ERROR) continue;
        sb_printf(sb, "- [%s] ERROR: ", c->id ? c->id : "?");
        add_flat(sb, c->message ? c->message : "no message");
        if (c->current_step) {
            sb_adds(sb, " (in step: ");
            add_flat(sb, c->current_step);
            sb_addc(sb, ')');
        }
        sb_addc(sb, '\n');
        any = 1;
    }
    if (!any) sb_adds(sb, "None.\n");
}

void report_md(const run_report *r, FILE *out)
{
    char date[32];
    format_date(date, sizeof date, r->started_wall);
    strbuf sb;
    sb_init(&sb);
    add_heading(&sb, r, date);
    sb_printf(&sb, "Date: %s" BR, date);
    sb_adds(&sb, "Operator: ");
    add_flat(&sb, r->operator_name && *r->operator_name ? r->operator_name : "unknown");
    sb_adds(&sb, BR);
    for (size_t i = 0; i < r->nfacts; i++) {
        add_flat(&sb, r->fact_keys[i]);
        sb_adds(&sb, ": ");
        add_flat(&sb, r->fact_values[i]);
        sb_adds(&sb, BR);
    }
    sb_adds(&sb, "Host OS: ");
    add_flat(&sb, r->host_os && *r->host_os ? r->host_os : "unknown");
    sb_adds(&sb, BR);
    if (r->stack_file) {
        sb_adds(&sb, "Stack: ");
        add_flat(&sb, r->stack_file);
        sb_adds(&sb, BR);
    }
    if (r->duration_ms > 0) {
        sb_adds(&sb, "Run time: ");
        add_duration(&sb, r->duration_ms);
        sb_adds(&sb, BR);
    }
    if (r->html_path) {
        /* the runner made it a link that works from the md file */
        const char *slash = strrchr(r->html_path, '/');
        sb_adds(&sb, "Report with timelines: [");
        add_flat(&sb, slash ? slash + 1 : r->html_path);
        sb_adds(&sb, "](");
        add_flat(&sb, r->html_path);
        sb_adds(&sb, ")" BR);
    }
    /* a run of another directory's checks (scripts/faults) says which */
    sb_adds(&sb, "\nChecks");
    if (r->checks_title && *r->checks_title) {
        sb_adds(&sb, " " EM_DASH " ");
        add_flat(&sb, r->checks_title);
    }
    sb_adds(&sb, ":" BR);
    for (size_t i = 0; i < r->nchecks; i++) add_check_line(&sb, r->checks[i]);
    int any_detail = 0;
    for (size_t i = 0; i < r->nchecks; i++) {
        if (!has_detail(r->checks[i])) continue;
        if (!any_detail) sb_adds(&sb, "\nDetail per check:" BR);
        add_detail(&sb, r->checks[i]);
        any_detail = 1;
    }
    sb_adds(&sb, "\nNotes / anomalies:\n\n");
    add_notes(&sb, r);
    fwrite(sb.buf, 1, sb.len, out);
    sb_free(&sb);
}
