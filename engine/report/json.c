/* The run as one JSON document for CI and other programs: a "checks" array
 * and a "summary" of counts, plus run metadata. The document is always
 * valid JSON, whatever the checks recorded. */
#include "report/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"

/* Milliseconds with at most microsecond digits and no trailing zeros; JSON
 * has no NaN or infinity, so those (and a still-running step's negative
 * duration) become null. */
static void add_ms(strbuf *sb, double ms)
{
    if (!isfinite(ms) || ms < 0) {
        sb_adds(sb, "null");
        return;
    }
    char buf[64];
    snprintf(buf, sizeof buf, "%.3f", ms);
    size_t n = strlen(buf);
    while (buf[n - 1] == '0') n--;
    if (buf[n - 1] == '.') n--;
    sb_addn(sb, buf, n);
}

static void add_key(strbuf *sb, const char *key)
{
    sb_json_string(sb, key);
    sb_addc(sb, ':');
}

static void add_string_or_null(strbuf *sb, const char *s)
{
    if (s) sb_json_string(sb, s);
    else sb_adds(sb, "null");
}

/* Numeric ids become numbers so consumers can sort them; leading zeros and
 * digits beyond double precision would not survive, so those stay strings. */
static void add_id(strbuf *sb, const char *id)
{
    size_t n = id ? strlen(id) : 0;
    int numeric = n > 0 && n <= 15 && !(n > 1 && id[0] == '0');
    for (size_t i = 0; numeric && i < n; i++)
        if (id[i] < '0' || id[i] > '9') numeric = 0;
    if (numeric) sb_adds(sb, id);
    else add_string_or_null(sb, id);
}

static void add_string_array(strbuf *sb, char **items, size_t n)
{
    sb_addc(sb, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) sb_addc(sb, ',');
        sb_json_string(sb, items[i]);
    }
    sb_addc(sb, ']');
}

/* JSON evidence arrives as text from the worker and is spliced in, so it is
 * copied through a small recursive-descent parser first: one malformed value
 * (a "nan" from a lenient encoder, raw bytes that are not UTF-8) must not make
 * the whole document unreadable. Strings are decoded and re-encoded, which
 * repairs their UTF-8; whitespace is dropped. Returns the position after the
 * value, or NULL when it is not JSON. */
static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static const char *copy_value(strbuf *out, const char *p, int depth);

static const char *copy_string(strbuf *out, const char *p)
{
    const char *start = p;
    for (p++; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20) return NULL;
        if (*p != '\\') continue;
        p++;
        if (*p == 'u') {
            for (int i = 1; i <= 4; i++)
                if (!p[i] || !strchr("0123456789abcdefABCDEF", p[i])) return NULL;
            p += 4;
        } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
            return NULL;
        }
    }
    char *literal = xstrndup(start, (size_t)(p + 1 - start));
    char *text = evidence_plain(literal);
    sb_json_string(out, text);
    free(text);
    free(literal);
    return p + 1;
}

static const char *copy_number(strbuf *out, const char *p)
{
    const char *start = p;
    if (*p == '-') p++;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') while (*p >= '0' && *p <= '9') p++;
    else return NULL;
    if (*p == '.') {
        if (*++p < '0' || *p > '9') return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (*p < '0' || *p > '9') return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    sb_addn(out, start, (size_t)(p - start));
    return p;
}

static const char *copy_word(strbuf *out, const char *p, const char *word)
{
    size_t n = strlen(word);
    if (strncmp(p, word, n) != 0) return NULL;
    sb_adds(out, word);
    return p + n;
}

static const char *copy_container(strbuf *out, const char *p, char close, int depth)
{
    sb_addc(out, *p);
    p = skip_ws(p + 1);
    for (int first = 1; *p != close; first = 0) {
        if (!first) {
            if (*p != ',') return NULL;
            sb_addc(out, ',');
            p = skip_ws(p + 1);
        }
        if (close == '}') {
            if (*p != '"' || !(p = copy_string(out, p))) return NULL;
            p = skip_ws(p);
            if (*p != ':') return NULL;
            sb_addc(out, ':');
            p++;
        }
        if (!(p = copy_value(out, p, depth + 1))) return NULL;
        p = skip_ws(p);
    }
    sb_addc(out, close);
    return p + 1;
}

static const char *copy_value(strbuf *out, const char *p, int depth)
{
    if (depth > 200) return NULL; /* bound the recursion */
    p = skip_ws(p);
    switch (*p) {
    case '"': return copy_string(out, p);
    case '{': return copy_container(out, p, '}', depth);
    case '[': return copy_container(out, p, ']', depth);
    case 't': return copy_word(out, p, "true");
    case 'f': return copy_word(out, p, "false");
    case 'n': return copy_word(out, p, "null");
    default: return copy_number(out, p);
    }
}

/* A JSON value the worker encoded, re-checked so the document always
 * parses: what is not JSON after all is kept as a string. */
static void add_json_value(strbuf *sb, const char *json)
{
    strbuf value;
    sb_init(&value);
    if (!json) json = "null";
    const char *end = copy_value(&value, json, 0);
    if (end && *skip_ws(end) == '\0') sb_addn(sb, value.buf, value.len);
    else sb_json_string(sb, json);
    sb_free(&value);
}

static void add_evidence(strbuf *sb, const check_result *c)
{
    sb_addc(sb, '{');
    for (size_t i = 0; i < c->nevidence; i++) {
        if (i) sb_addc(sb, ',');
        add_key(sb, c->evidence[i].key);
        if (c->evidence[i].form == EVIDENCE_TEXT) sb_json_string(sb, c->evidence[i].value);
        else add_json_value(sb, c->evidence[i].value);
    }
    sb_addc(sb, '}');
}

static void add_check(strbuf *sb, const check_result *c, int with_requests)
{
    sb_adds(sb, "{");
    add_key(sb, "id"); add_id(sb, c->id);
    sb_addc(sb, ','); add_key(sb, "title"); add_string_or_null(sb, c->title);
    sb_addc(sb, ','); add_key(sb, "status"); sb_json_string(sb, status_name(c->status));
    sb_addc(sb, ','); add_key(sb, "duration_ms"); add_ms(sb, c->duration_ms);
    sb_addc(sb, ','); add_key(sb, "message"); add_string_or_null(sb, c->message);
    sb_addc(sb, ','); add_key(sb, "evidence"); add_evidence(sb, c);
    sb_addc(sb, ','); add_key(sb, "steps"); sb_addc(sb, '[');
    for (size_t i = 0; i < c->nsteps; i++) {
        const step_record *s = &c->steps[i];
        if (i) sb_addc(sb, ',');
        sb_addc(sb, '{');
        add_key(sb, "name"); add_string_or_null(sb, s->name);
        sb_addc(sb, ','); add_key(sb, "started_ms"); add_ms(sb, s->started_ms);
        sb_addc(sb, ','); add_key(sb, "duration_ms"); add_ms(sb, s->duration_ms);
        sb_addc(sb, ','); add_key(sb, "status"); sb_json_string(sb, status_name(s->status));
        sb_addc(sb, '}');
    }
    sb_addc(sb, ']');
    sb_addc(sb, ','); add_key(sb, "file"); add_string_or_null(sb, c->file);
    sb_addc(sb, ','); add_key(sb, "tags"); add_string_array(sb, c->tags, c->ntags);
    sb_addc(sb, ','); add_key(sb, "failures"); add_string_array(sb, c->failures, c->nfailures);
    if (c->status == ST_ERROR || c->status == ST_PENDING) {
        sb_addc(sb, ','); add_key(sb, "current_step"); add_string_or_null(sb, c->current_step);
    }
    sb_addc(sb, ','); add_key(sb, "actions"); sb_addc(sb, '[');
    for (size_t i = 0; i < c->nactions; i++) {
        if (i) sb_addc(sb, ',');
        add_json_value(sb, c->actions[i]);
    }
    sb_addc(sb, ']');
    sb_addc(sb, ','); add_key(sb, "requests"); add_ms(sb, (double)c->nrequests);
    if (with_requests) {
        /* for the HTML report's timelines: every request the runner kept */
        sb_addc(sb, ','); add_key(sb, "request_records"); sb_addc(sb, '[');
        for (size_t i = 0; i < c->nrequests; i++) {
            if (i) sb_addc(sb, ',');
            add_json_value(sb, c->requests[i]);
        }
        sb_addc(sb, ']');
        sb_addc(sb, ','); add_key(sb, "dropped_requests"); add_ms(sb, (double)c->dropped_requests);
    }
    sb_addc(sb, ','); add_key(sb, "logs"); sb_addc(sb, '[');
    for (size_t i = 0; i < c->nlogs; i++) {
        const log_record *l = &c->logs[i];
        if (i) sb_addc(sb, ',');
        sb_addc(sb, '{');
        add_key(sb, "at_ms"); add_ms(sb, l->at_ms);
        sb_addc(sb, ','); add_key(sb, "level"); add_string_or_null(sb, l->level);
        sb_addc(sb, ','); add_key(sb, "text"); add_string_or_null(sb, l->text);
        sb_addc(sb, '}');
    }
    sb_adds(sb, "]}");
}

/* ISO-8601 in UTC with milliseconds, or null when the start is unknown. */
static void add_timestamp(strbuf *sb, double epoch_s)
{
    struct tm tm;
    /* past year 9999 (or NaN) there is no date to write, and the cast to
     * time_t would be undefined */
    if (!(epoch_s > 0 && epoch_s < 253402300800.0)) {
        sb_adds(sb, "null");
        return;
    }
    time_t t = (time_t)epoch_s;
    if (!gmtime_r(&t, &tm)) {
        sb_adds(sb, "null");
        return;
    }
    char buf[64];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    int ms = (int)((epoch_s - (double)t) * 1000);
    sb_printf(sb, "\"%.*s.%03dZ\"", (int)n, buf, ms > 999 ? 999 : ms);
}

static void write_json(const run_report *r, int with_requests, FILE *out)
{
    strbuf sb;
    sb_init(&sb);
    sb_adds(&sb, "{\"checks\":[");
    for (size_t i = 0; i < r->nchecks; i++) {
        sb_adds(&sb, i ? ",\n" : "\n");
        add_check(&sb, r->checks[i], with_requests);
    }
    report_counts n = report_count(r);
    sb_printf(&sb, "\n],\"summary\":{\"pass\":%zu,\"fail\":%zu,\"error\":%zu,\"na\":%zu,"
                   "\"deferred\":%zu,\"total\":%zu},\n",
              n.pass, n.fail, n.error, n.na, n.deferred, r->nchecks);
    add_key(&sb, "started_at"); add_timestamp(&sb, r->started_wall);
    sb_addc(&sb, ','); add_key(&sb, "duration_ms"); add_ms(&sb, r->duration_ms);
    sb_addc(&sb, ','); add_key(&sb, "checks_dir"); add_string_or_null(&sb, r->checks_dir);
    sb_addc(&sb, ','); add_key(&sb, "checks_title"); add_string_or_null(&sb, r->checks_title);
    sb_addc(&sb, ','); add_key(&sb, "stack"); add_string_or_null(&sb, r->stack_file);
    sb_addc(&sb, ','); add_key(&sb, "operator"); add_string_or_null(&sb, r->operator_name);
    sb_addc(&sb, ','); add_key(&sb, "host_os"); add_string_or_null(&sb, r->host_os);
    sb_addc(&sb, ','); add_key(&sb, "interrupted"); sb_adds(&sb, r->interrupted ? "true" : "false");
    sb_addc(&sb, ','); add_key(&sb, "facts"); sb_addc(&sb, '{');
    for (size_t i = 0; i < r->nfacts; i++) {
        if (i) sb_addc(&sb, ',');
        add_key(&sb, r->fact_keys[i]);
        sb_json_string(&sb, r->fact_values[i]);
    }
    sb_addc(&sb, '}');
    sb_adds(&sb, "}\n");
    fwrite(sb.buf, 1, sb.len, out);
    sb_free(&sb);
}

void report_json(const run_report *r, FILE *out) { write_json(r, 0, out); }
void report_json_full(const run_report *r, FILE *out) { write_json(r, 1, out); }
