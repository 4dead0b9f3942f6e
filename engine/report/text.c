/* The human-readable end of a run: one aligned table row per check, then the
 * full story of every check that did not pass, then a one-line summary.
 * Colour is decided by the caller; nothing here writes escape sequences. */
#include "report/report.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define TABLE_WIDTH 100   /* a row longer than this is cut in the message */
#define MIN_MESSAGE_WIDTH 20
#define MAX_ID_WIDTH 24
#define MAX_TITLE_WIDTH 48
#define STATUS_WIDTH 8    /* "DEFERRED" */
#define COLUMN_GAP "  "

/* Columns are counted in code points, not bytes, so UTF-8 titles align. */
static size_t utf8_columns(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

/* Appends s as one table cell: control characters become spaces so the row
 * stays one line, text longer than width ends in "…", and pad fills the
 * cell to width. */
static void add_cell(strbuf *row, const char *s, size_t width, int pad)
{
    size_t total = utf8_columns(s), shown = 0;
    size_t limit = total > width ? width - 1 : width;
    for (const char *p = s ? s : ""; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        int starts_char = (ch & 0xC0) != 0x80;
        if (starts_char && shown == limit) break;
        if (starts_char) shown++;
        sb_addc(row, ch < 0x20 || ch == 0x7F ? ' ' : (char)ch);
    }
    if (total > width) {
        sb_adds(row, "\xE2\x80\xA6");
        shown++;
    }
    for (; pad && shown < width; shown++) sb_addc(row, ' ');
}

static void format_duration(char *buf, size_t size, double ms)
{
    if (!(ms >= 0)) { /* negative, or NaN */
        snprintf(buf, size, "-");
        return;
    }
    double s = ms / 1000.0;
    if (s < 60)
        snprintf(buf, size, "%.1fs", s);
    else if (s < 1e9) /* (int) of more would be undefined */
        snprintf(buf, size, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, size, "%.3gs", s);
}

/* Length of a location "path:123" starting at s (no spaces in the path),
 * or 0. */
static size_t location_len(const char *s)
{
    size_t i = 0;
    while (s[i] && s[i] != ' ' && s[i] != '\n') i++;
    size_t end = i;
    if (end && s[end - 1] == ':') end--; /* "path:12:" */
    size_t digits = end;
    while (digits > 0 && s[digits - 1] >= '0' && s[digits - 1] <= '9') digits--;
    if (digits == end || digits < 2 || s[digits - 1] != ':') return 0;
    return end;
}

/* The table's MESSAGE: the reason without the file and line it happened
 * at, so a cut row still shows why; the location is in the detail block.
 * "x/01-a.lua:12: expected 3" -> "expected 3"; "... limit at x.lua:4 (in
 * step 's')" -> "... limit (in step 's')". Caller frees. */
static char *table_message(const char *message)
{
    strbuf sb;
    sb_init(&sb);
    const char *p = message;
    size_t n = location_len(p);
    if (n && p[n] == ':' && p[n + 1] == ' ') p += n + 2;
    while (*p) {
        if (strncmp(p, " at ", 4) == 0 && (n = location_len(p + 4)) > 0) {
            p += 4 + n;
            continue;
        }
        sb_addc(&sb, *p++);
    }
    return sb_take(&sb);
}

static void write_table(const run_report *r, FILE *out)
{
    size_t id_w = strlen("ID"), title_w = strlen("TITLE"), time_w = strlen("TIME");
    int any_message = 0;
    char time[32];
    for (size_t i = 0; i < r->nchecks; i++) {
        const check_result *c = r->checks[i];
        size_t w = utf8_columns(c->id);
        if (w > id_w) id_w = w;
        w = utf8_columns(c->title);
        if (w > title_w) title_w = w;
        format_duration(time, sizeof time, c->duration_ms);
        if (strlen(time) > time_w) time_w = strlen(time);
        if (c->message && *c->message) any_message = 1;
    }
    if (id_w > MAX_ID_WIDTH) id_w = MAX_ID_WIDTH;
    if (title_w > MAX_TITLE_WIDTH) title_w = MAX_TITLE_WIDTH;
    size_t fixed = id_w + STATUS_WIDTH + time_w + title_w + 4 * strlen(COLUMN_GAP);
    size_t message_w = fixed + MIN_MESSAGE_WIDTH < TABLE_WIDTH ? TABLE_WIDTH - fixed
                                                               : MIN_MESSAGE_WIDTH;

    strbuf row;
    sb_init(&row);
    for (size_t i = 0; i <= r->nchecks; i++) {
        const check_result *c = i ? r->checks[i - 1] : NULL;
        if (c) format_duration(time, sizeof time, c->duration_ms);
        add_cell(&row, c ? c->id : "ID", id_w, 1);
        sb_adds(&row, COLUMN_GAP);
        add_cell(&row, c ? status_name(c->status) : "STATUS", STATUS_WIDTH, 1);
        sb_adds(&row, COLUMN_GAP);
        /* Durations read best right-aligned, like numbers in a ledger. */
        for (size_t k = strlen(c ? time : "TIME"); k < time_w; k++) sb_addc(&row, ' ');
        sb_adds(&row, c ? time : "TIME");
        sb_adds(&row, COLUMN_GAP);
        add_cell(&row, c ? c->title : "TITLE", title_w, 1);
        if (any_message) {
            sb_adds(&row, COLUMN_GAP);
            char *reason = c && c->message ? table_message(c->message) : NULL;
            add_cell(&row, c ? reason : "MESSAGE", message_w, 0);
            free(reason);
        }
        while (row.len && row.buf[row.len - 1] == ' ') row.buf[--row.len] = '\0';
        fprintf(out, "%s\n", row.buf);
        row.len = 0;
    }
    sb_free(&row);
}

/* Every line of text, the first prefixed by indent and the rest by more, so
 * a multi-line value reads as one item; a trailing newline in text does not
 * produce an empty line. */
static void write_lines(FILE *out, const char *indent, const char *more, const char *text)
{
    for (const char *p = text; *p; indent = more) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        fprintf(out, "%s%.*s\n", indent, (int)n, p);
        p += n + (eol ? 1 : 0);
    }
}

static int has_details(const check_result *c, int verbose)
{
    if (verbose) return c->nevidence || c->nlogs || c->message || c->nfailures;
    return c->status != ST_PASS && ((c->message && *c->message) || c->nfailures);
}

static void write_details(const check_result *c, int verbose, FILE *out)
{
    fprintf(out, "\n%s. %s \xE2\x80\x94 %s\n", c->id ? c->id : "?", c->title ? c->title : "",
            status_name(c->status));
    if (c->message && *c->message) write_lines(out, "    ", "    ", c->message);
    if (c->status == ST_ERROR && c->current_step)
        fprintf(out, "    in step: %s\n", c->current_step);
    /* One failure is the message itself; the list is for the "and N more". */
    int only_the_message = c->nfailures == 1 && c->message && strcmp(c->message, c->failures[0]) == 0;
    if (c->nfailures && !only_the_message) {
        fprintf(out, "    failures:\n");
        for (size_t i = 0; i < c->nfailures; i++) write_lines(out, "      ", "        ", c->failures[i]);
    }
    if (!verbose) return;
    if (c->nevidence) {
        fprintf(out, "    evidence:\n");
        for (size_t i = 0; i < c->nevidence; i++) {
            char *plain = evidence_text(&c->evidence[i]);
            char *line = xasprintf("%s: %s", c->evidence[i].key, plain);
            write_lines(out, "      ", "        ", line);
            free(line);
            free(plain);
        }
    }
    if (c->nlogs) {
        fprintf(out, "    log:\n");
        for (size_t i = 0; i < c->nlogs; i++) {
            const log_record *l = &c->logs[i];
            char *line = xasprintf("+%.3fs %-5s %s", l->at_ms / 1000.0, l->level ? l->level : "",
                                   l->text ? l->text : "");
            write_lines(out, "      ", "        ", line);
            free(line);
        }
    }
}

static void write_summary(const run_report *r, FILE *out)
{
    report_counts n = report_count(r);
    size_t finished = n.pass + n.fail + n.error + n.na + n.deferred;
    char time[32];
    format_duration(time, sizeof time, r->duration_ms);
    fprintf(out, "%zu check%s: %zu passed, %zu failed, %zu error%s, %zu N/A, %zu deferred",
            r->nchecks, r->nchecks == 1 ? "" : "s", n.pass, n.fail, n.error,
            n.error == 1 ? "" : "s", n.na, n.deferred);
    if (finished < r->nchecks) fprintf(out, ", %zu not finished", r->nchecks - finished);
    fprintf(out, " in %s%s\n", time, r->interrupted ? " (interrupted)" : "");
}

void report_text(const run_report *r, int verbose, FILE *out)
{
    if (r->nchecks) write_table(r, out);
    int any = 0;
    for (size_t i = 0; i < r->nchecks; i++) {
        if (!has_details(r->checks[i], verbose)) continue;
        write_details(r->checks[i], verbose, out);
        any = 1;
    }
    if (r->nchecks || any) fputc('\n', out);
    write_summary(r, out);
}
