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
    for (size_t i = 0; i < c->nevidence; i++) {
        char *plain = evidence_text(&c->evidence[i]);
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
    if (r->duration_ms > 0) sb_printf(&sb, "Run time: %.1f s" BR, r->duration_ms / 1000.0);
    if (r->html_path) {
        /* the runner made it a link that works from the md file */
        const char *slash = strrchr(r->html_path, '/');
        sb_adds(&sb, "Report with timelines: [");
        add_flat(&sb, slash ? slash + 1 : r->html_path);
        sb_adds(&sb, "](");
        add_flat(&sb, r->html_path);
        sb_adds(&sb, ")" BR);
    }
    sb_adds(&sb, "\nChecks:" BR);
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
