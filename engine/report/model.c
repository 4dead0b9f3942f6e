/* The result model's life cycle (create, fill evidence, free), the counts
 * and exit code a finished run reduces to, and the dispatch to one renderer
 * per output format. */
#include "report/report.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

report_counts report_count(const run_report *r)
{
    report_counts n = {0, 0, 0, 0, 0};
    for (size_t i = 0; i < r->nchecks; i++) {
        switch (r->checks[i]->status) {
        case ST_PASS: n.pass++; break;
        case ST_FAIL: n.fail++; break;
        case ST_ERROR: n.error++; break;
        case ST_NA: n.na++; break;
        case ST_DEFERRED: n.deferred++; break;
        case ST_PENDING: break;
        }
    }
    return n;
}

int report_exit_code(const run_report *r)
{
    report_counts n = report_count(r);
    if (n.error) return 3;
    if (n.fail) return 1;
    return 0;
}

typedef struct {
    const char *name;
    int (*render)(const run_report *r, int verbose, FILE *out); /* 0, or -1 when it could not */
} report_format;

/* Adapters so every format fits one table; only text uses verbose. */
static int render_text(const run_report *r, int verbose, FILE *out) { report_text(r, verbose, out); return 0; }
static int render_json(const run_report *r, int verbose, FILE *out) { report_json(r, out); return 0; }
static int render_junit(const run_report *r, int verbose, FILE *out) { report_junit(r, out); return 0; }
static int render_tap(const run_report *r, int verbose, FILE *out) { report_tap(r, out); return 0; }
static int render_md(const run_report *r, int verbose, FILE *out) { report_md(r, out); return 0; }
int (*report_html_renderer)(const run_report *r, FILE *out);

static int render_html(const run_report *r, int verbose, FILE *out)
{
    return report_html_renderer ? report_html_renderer(r, out) : -1;
}

static const report_format formats[] = {
    {"text", render_text},   {"json", render_json}, {"junit", render_junit},
    {"tap", render_tap},     {"md", render_md},     {"html", render_html},
};

static const report_format *find_format(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (strcmp(formats[i].name, name) == 0) return &formats[i];
    return NULL;
}

int report_format_known(const char *format) { return find_format(format) != NULL; }

int report_write(const run_report *r, const char *format, int verbose, FILE *out)
{
    const report_format *f = find_format(format);
    if (!f) return -1;
    return f->render(r, verbose, out);
}

check_result *check_result_new(const char *file)
{
    check_result *c = xcalloc(1, sizeof *c);
    c->file = xstrdup(file ? file : "");
    c->status = ST_PENDING;
    c->order = 1e18; /* named ids sort after every numeric one */
    c->timeout_s = 60;
    return c;
}

static void free_strings(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++) free(items[i]);
    free(items);
}

void check_result_free(check_result *c)
{
    if (!c) return;
    free(c->file);
    free(c->id);
    free(c->title);
    free_strings(c->tags, c->ntags);
    free(c->message);
    free(c->current_step);
    free_strings(c->failures, c->nfailures);
    for (size_t i = 0; i < c->nsteps; i++) free(c->steps[i].name);
    free(c->steps);
    for (size_t i = 0; i < c->nevidence; i++) {
        free(c->evidence[i].key);
        free(c->evidence[i].value);
    }
    free(c->evidence);
    for (size_t i = 0; i < c->nlogs; i++) {
        free(c->logs[i].level);
        free(c->logs[i].text);
    }
    free(c->logs);
    free_strings(c->requests, c->nrequests);
    free_strings(c->actions, c->nactions);
    free(c);
}

void check_set_message(check_result *c, char *message)
{
    free(c->message);
    c->message = message;
}

void check_set_evidence(check_result *c, const char *key, evidence_form form, const char *value)
{
    if (!value) {
        form = EVIDENCE_JSON;
        value = "null";
    }
    /* A script that records the same key twice means "the latest value";
     * it keeps its first position so reports read in recording order. */
    for (size_t i = 0; i < c->nevidence; i++) {
        if (strcmp(c->evidence[i].key, key) == 0) {
            free(c->evidence[i].value);
            c->evidence[i].form = form;
            c->evidence[i].value = xstrdup(value);
            return;
        }
    }
    evidence_record e = {xstrdup(key), form, xstrdup(value)};
    VEC_PUSH(c->evidence, c->nevidence, c->capevidence, e);
}

char *evidence_text(const evidence_record *e)
{
    return e->form == EVIDENCE_TEXT ? xstrdup(e->value) : evidence_plain(e->value);
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Four hex digits at s, or -1. */
static long hex4(const char *s)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(s[i]);
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static void add_utf8(strbuf *sb, uint32_t cp)
{
    char b[4];
    if (cp < 0x80) {
        sb_addc(sb, (char)cp);
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        sb_addn(sb, b, 2);
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        sb_addn(sb, b, 3);
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        sb_addn(sb, b, 4);
    }
}

#define REPLACEMENT_CHAR 0xFFFD

/* Decodes the string literal starting at the opening quote *p; returns the
 * text, or NULL when it is not one well-formed literal. */
static char *decode_json_string(const char *p)
{
    strbuf sb;
    sb_init(&sb);
    for (p++; *p && *p != '"'; p++) {
        if (*p != '\\') {
            sb_addc(&sb, *p);
            continue;
        }
        p++;
        switch (*p) {
        case '"': case '\\': case '/': sb_addc(&sb, *p); break;
        case 'b': sb_addc(&sb, '\b'); break;
        case 'f': sb_addc(&sb, '\f'); break;
        case 'n': sb_addc(&sb, '\n'); break;
        case 'r': sb_addc(&sb, '\r'); break;
        case 't': sb_addc(&sb, '\t'); break;
        case 'u': {
            long cp = hex4(p + 1);
            if (cp < 0) goto invalid;
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && p[1] == '\\' && p[2] == 'u') {
                long low = hex4(p + 3);
                if (low >= 0xDC00 && low <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    p += 6;
                }
            }
            /* A lone surrogate has no UTF-8 form, and a NUL would cut the
             * C string short: both show as the replacement character. */
            if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == 0) cp = REPLACEMENT_CHAR;
            add_utf8(&sb, (uint32_t)cp);
            break;
        }
        default: goto invalid;
        }
    }
    if (*p != '"') goto invalid;
    for (p++; *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'; p++) {}
    if (*p) goto invalid; /* something follows the literal */
    return sb_take(&sb);
invalid:
    sb_free(&sb);
    return NULL;
}

char *evidence_plain(const char *json)
{
    if (!json) return xstrdup("null");
    const char *p = json;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (*p == '"') {
        char *text = decode_json_string(p);
        if (text) return text;
    }
    /* Anything else is shown as the worker encoded it, minus the padding
     * around it, which would only leave trailing blanks in the reports. */
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\n' || p[n - 1] == '\r')) n--;
    return xstrndup(p, n);
}
