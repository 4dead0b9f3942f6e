/* The report serializers (engine/report*.c): a run_report (report.h) built
 * from the input, rendered in every format (text, plain and verbose; json;
 * junit; tap; md) into memory. Then:
 *   json   parses back (with the engine's json module, i.e. lua-cjson) and
 *          says what the report holds: statuses, counts, texts (invalid
 *          UTF-8 repaired to U+FFFD, as sb_json_string promises), evidence
 *          and actions (the JSON value itself when report_json kept it,
 *          else the text as a string), durations;
 *   junit  is well-formed XML 1.0 (a small checker here: characters,
 *          references, tags, attributes) with one <testcase> per check;
 *   tap    has the plan, one test line per check in order, "not ok" for
 *          FAIL and ERROR, a "# SKIP" directive exactly for skipped checks
 *          and a YAML block under each failure;
 *   text   keeps its table one line per check.
 *
 * The input is text, one directive per line (see fuzz/README.md):
 *   check ID | title S | status PASS|FAIL|ERROR|N/A|DEFERRED|PENDING |
 *   message S | file S | step_now S | duration N | started N | tag S |
 *   failure S | evidence KEY=JSON | evidence_text KEY=S | step STATUS N NAME |
 *   log LEVEL N TEXT |
 *   request JSON | action JSON | fact KEY=VALUE | run.checks_dir S |
 *   run.stack S | run.operator S | run.host_os S | run.started N |
 *   run.duration N | run.interrupted
 * where S may hold \n \t \r \\ and \xHH escapes (\x00 ends the string).
 * Numbers are clamped to what a run can produce (finite, -1 s to 3 years
 * for durations, epoch seconds up to 2100), unless HALO_FUZZ_WILD_NUMBERS=1
 * (which finds the number formatting bugs listed in fuzz/README.md). */
#include "mod/modules.h"
#include "fuzz_util.h"
#include "report/report.h"
#include "core/sandbox.h"
#include "core/util.h"

#include <ctype.h>
#include <math.h>

#define MAX_CHECKS 32
#define MAX_ITEMS 32

/* ---- building the report -------------------------------------------------- */

static int wild_numbers;

static char *unescape(const char *s, size_t n)
{
    strbuf sb;
    sb_init(&sb);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n) {
            char e = s[++i];
            if (e == 'n') c = '\n';
            else if (e == 't') c = '\t';
            else if (e == 'r') c = '\r';
            else if (e == 'x' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
                     isxdigit((unsigned char)s[i + 2])) {
                char hex[3] = {s[i + 1], s[i + 2], 0};
                c = (char)strtol(hex, NULL, 16);
                i += 2;
                if (c == 0) break;
            } else c = e;
        }
        if (c == 0) break;
        sb_addc(&sb, c);
    }
    return sb_take(&sb);
}

static double number(const char *s, double lo, double hi)
{
    double v = strtod(s, NULL);
    if (wild_numbers) return v;
    if (!isfinite(v)) return 0;
    return v < lo ? lo : v > hi ? hi : v;
}

#define MS_LO (-1000.0)
#define MS_HI (1e11)          /* 3 years */
#define EPOCH_HI 4102444800.0 /* 2100-01-01 */

/* A status by the name it starts with (core/status.h's table), else one
 * picked by the first byte. */
static check_status parse_status(const char *s)
{
    for (int st = 0; st < ST_COUNT; st++) {
        const char *name = status_name((check_status)st);
        if (strncmp(s, name, strlen(name)) == 0) return (check_status)st;
    }
    return (check_status)((unsigned char)s[0] % ST_COUNT);
}

static void replace(char **field, char *value)
{
    free(*field);
    *field = value;
}

static check_result *new_check(run_report *r, char *id)
{
    char *file = xasprintf("checks/%s.lua", id);
    check_result *c = check_result_new(file);
    free(file);
    c->id = id;
    char *end;
    double order = strtod(id, &end);
    if (*id && !*end && isfinite(order)) c->order = order;
    VEC_PUSH(r->checks, r->nchecks, r->capchecks, c);
    return c;
}

/* KEY=VALUE, both unescaped (a missing '=' makes an empty value). */
static void split_pair(const char *s, size_t n, char **key, char **value)
{
    const char *eq = memchr(s, '=', n);
    size_t kn = eq ? (size_t)(eq - s) : n;
    *key = unescape(s, kn);
    *value = eq ? unescape(eq + 1, n - kn - 1) : xstrdup("");
}

/* "WORD REST": the first word (for statuses, levels, numbers) and the rest. */
static const char *word(const char *s, size_t n, char *buf, size_t size)
{
    size_t w = 0;
    while (w < n && s[w] != ' ' && w + 1 < size) {
        buf[w] = s[w];
        w++;
    }
    buf[w] = '\0';
    while (w < n && s[w] != ' ') w++;
    return w < n ? s + w + 1 : s + n;
}

static run_report *build(const uint8_t *data, size_t size)
{
    run_report *r = xcalloc(1, sizeof *r);
    check_result *c = NULL;
    for (size_t at = 0; at < size;) {
        const char *line = (const char *)data + at;
        const char *nl = memchr(line, '\n', size - at);
        size_t len = nl ? (size_t)(nl - line) : size - at;
        at += len + 1;
        const char *sp = memchr(line, ' ', len);
        size_t dlen = sp ? (size_t)(sp - line) : len;
        const char *arg = sp ? sp + 1 : line + len;
        size_t alen = (size_t)(line + len - arg);
        char directive[24];
        if (dlen >= sizeof directive) continue;
        memcpy(directive, line, dlen);
        directive[dlen] = '\0';
        char buf[64];
        snprintf(buf, sizeof buf, "%.*s", (int)(alen < 63 ? alen : 63), arg);

        if (strcmp(directive, "run.checks_dir") == 0) replace(&r->checks_dir, unescape(arg, alen));
        else if (strcmp(directive, "run.stack") == 0) replace(&r->stack_file, unescape(arg, alen));
        else if (strcmp(directive, "run.operator") == 0) replace(&r->operator_name, unescape(arg, alen));
        else if (strcmp(directive, "run.host_os") == 0) replace(&r->host_os, unescape(arg, alen));
        else if (strcmp(directive, "run.started") == 0) r->started_wall = number(buf, 0, EPOCH_HI);
        else if (strcmp(directive, "run.duration") == 0) r->duration_ms = number(buf, MS_LO, MS_HI);
        else if (strcmp(directive, "run.interrupted") == 0) r->interrupted = 1;
        else if (strcmp(directive, "fact") == 0 && r->nfacts < MAX_ITEMS) {
            char *k, *v;
            split_pair(arg, alen, &k, &v);
            VEC_PUSH(r->fact_keys, r->nfacts, r->capfact_keys, k);
            r->nfacts--;
            VEC_PUSH(r->fact_values, r->nfacts, r->capfact_values, v);
        } else if (strcmp(directive, "check") == 0) {
            if (r->nchecks < MAX_CHECKS) c = new_check(r, unescape(arg, alen));
        } else {
            if (!c) {
                if (r->nchecks >= MAX_CHECKS) continue;
                c = new_check(r, xstrdup("1"));
            }
            if (strcmp(directive, "title") == 0) replace(&c->title, unescape(arg, alen));
            else if (strcmp(directive, "status") == 0) c->status = parse_status(buf);
            else if (strcmp(directive, "message") == 0) replace(&c->message, unescape(arg, alen));
            else if (strcmp(directive, "file") == 0) replace(&c->file, unescape(arg, alen));
            else if (strcmp(directive, "step_now") == 0) replace(&c->current_step, unescape(arg, alen));
            else if (strcmp(directive, "duration") == 0) c->duration_ms = number(buf, MS_LO, MS_HI);
            else if (strcmp(directive, "started") == 0) c->started_wall = number(buf, 0, EPOCH_HI);
            else if (strcmp(directive, "tag") == 0 && c->ntags < MAX_ITEMS) {
                char *t = unescape(arg, alen);
                VEC_PUSH(c->tags, c->ntags, c->captags, t);
            } else if (strcmp(directive, "failure") == 0 && c->nfailures < MAX_ITEMS) {
                char *f = unescape(arg, alen);
                VEC_PUSH(c->failures, c->nfailures, c->capfailures, f);
            } else if ((strcmp(directive, "evidence") == 0 || strcmp(directive, "evidence_text") == 0) &&
                       c->nevidence < MAX_ITEMS) {
                char *k, *v;
                split_pair(arg, alen, &k, &v);
                check_set_evidence(c, k, strcmp(directive, "evidence_text") == 0 ? EVIDENCE_TEXT : EVIDENCE_JSON, v);
                free(k);
                free(v);
            } else if (strcmp(directive, "step") == 0 && c->nsteps < MAX_ITEMS) {
                char st[16], ms[32];
                const char *rest = word(arg, alen, st, sizeof st);
                rest = word(rest, (size_t)(line + len - rest), ms, sizeof ms);
                step_record s = {unescape(rest, (size_t)(line + len - rest)), 0, number(ms, MS_LO, MS_HI),
                                 parse_status(st)};
                s.started_ms = s.duration_ms > 0 ? s.duration_ms / 2 : 0;
                VEC_PUSH(c->steps, c->nsteps, c->capsteps, s);
            } else if (strcmp(directive, "log") == 0 && c->nlogs < MAX_ITEMS) {
                char level[16], ms[32];
                const char *rest = word(arg, alen, level, sizeof level);
                rest = word(rest, (size_t)(line + len - rest), ms, sizeof ms);
                log_record l = {number(ms, MS_LO, MS_HI), xstrdup(level), unescape(rest, (size_t)(line + len - rest))};
                VEC_PUSH(c->logs, c->nlogs, c->caplogs, l);
            } else if (strcmp(directive, "request") == 0 && c->nrequests < MAX_ITEMS) {
                char *q = unescape(arg, alen);
                VEC_PUSH(c->requests, c->nrequests, c->caprequests, q);
            } else if (strcmp(directive, "action") == 0 && c->nactions < MAX_ITEMS) {
                char *a = unescape(arg, alen);
                VEC_PUSH(c->actions, c->nactions, c->capactions, a);
            }
        }
    }
    return r;
}

static void free_report(run_report *r)
{
    for (size_t i = 0; i < r->nchecks; i++) check_result_free(r->checks[i]);
    free(r->checks);
    for (size_t i = 0; i < r->nfacts; i++) {
        free(r->fact_keys[i]);
        free(r->fact_values[i]);
    }
    free(r->fact_keys);
    free(r->fact_values);
    free(r->checks_dir);
    free(r->stack_file);
    free(r->operator_name);
    free(r->host_os);
    free(r);
}

/* ---- rendering ------------------------------------------------------------------ */

typedef struct {
    char *text;
    size_t len;
} rendered;

static rendered render(const run_report *r, const char *format, int verbose)
{
    rendered out = {NULL, 0};
    FILE *f = open_memstream(&out.text, &out.len);
    if (!f) fuzz_fail("open_memstream failed");
    FUZZ_CHECK(report_write(r, format, verbose, f) == 0, "report_write refused the format %s", format);
    fclose(f);
    FUZZ_CHECK(strlen(out.text) == out.len, "the %s report holds a NUL byte", format);
    return out;
}

/* ---- checking: UTF-8 and XML ---------------------------------------------------- */

/* Length of the UTF-8 sequence at s (of n bytes) and its code point, or 0. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t c;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xE0) == 0xC0) { len = 2; c = s[0] & 0x1F; }
    else if ((s[0] & 0xF0) == 0xE0) { len = 3; c = s[0] & 0x0F; }
    else if ((s[0] & 0xF8) == 0xF0) { len = 4; c = s[0] & 0x07; }
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return len;
}

/* The offset of the first byte that is not valid UTF-8, or n. */
static size_t utf8_invalid_at(const char *s, size_t n)
{
    uint32_t cp;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (!k) return i;
        i += k;
    }
    return n;
}

static int xml_char(uint32_t c)
{
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) || (c >= 0xE000 && c <= 0xFFFD) ||
           (c >= 0x10000 && c <= 0x10FFFF);
}

typedef struct {
    const char *s;
    size_t n, i;
    const char *why;
    size_t testcases;
} xml;

static size_t xml_error_at;

static int xml_error(xml *x, const char *why)
{
    if (!x->why) {
        x->why = why;
        xml_error_at = x->i;
    }
    return 0;
}

static int is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':'; }
static int is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.'; }

static size_t xml_name(xml *x)
{
    size_t start = x->i;
    if (x->i >= x->n || !is_name_start(x->s[x->i])) return 0;
    while (x->i < x->n && is_name_char(x->s[x->i])) x->i++;
    return x->i - start;
}

static void xml_ws(xml *x)
{
    while (x->i < x->n && strchr(" \t\r\n", x->s[x->i]) && x->s[x->i]) x->i++;
}

/* A character (or reference) of text or of an attribute value. */
static int xml_text_char(xml *x, char quote)
{
    const unsigned char *p = (const unsigned char *)x->s + x->i;
    size_t left = x->n - x->i;
    if (*p == '<') return xml_error(x, "'<' in text or an attribute value");
    if (*p == '&') {
        static const char *const entities[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
        for (size_t k = 0; k < 5; k++) {
            size_t len = strlen(entities[k]);
            if (left >= len && memcmp(p, entities[k], len) == 0) {
                x->i += len;
                return 1;
            }
        }
        if (left > 3 && p[1] == '#') {
            size_t j = 2;
            int hex = p[2] == 'x';
            if (hex) j++;
            uint32_t v = 0;
            size_t digits = 0;
            for (; j < left && (hex ? isxdigit(p[j]) : isdigit(p[j])) && digits < 8; j++, digits++)
                v = v * (hex ? 16 : 10) + (uint32_t)(isdigit(p[j]) ? p[j] - '0' : (p[j] | 0x20) - 'a' + 10);
            if (digits && j < left && p[j] == ';' && xml_char(v)) {
                x->i += j + 1;
                return 1;
            }
        }
        return xml_error(x, "'&' that starts no valid reference");
    }
    uint32_t cp;
    size_t k = utf8_decode(p, left, &cp);
    if (!k) return xml_error(x, "invalid UTF-8");
    if (!xml_char(cp)) return xml_error(x, "a character XML 1.0 does not allow");
    (void)quote;
    x->i += k;
    return 1;
}

/* One element, its start at x->i ('<'). */
static int xml_element(xml *x, int depth)
{
    if (depth > 32) return xml_error(x, "nesting too deep");
    x->i++;
    size_t name_at = x->i, name_len = xml_name(x);
    if (!name_len) return xml_error(x, "an element without a name");
    if (name_len == 8 && memcmp(x->s + name_at, "testcase", 8) == 0) x->testcases++;
    for (;;) {
        size_t before = x->i;
        xml_ws(x);
        if (x->i >= x->n) return xml_error(x, "the document ends in a tag");
        if (x->s[x->i] == '/') {
            if (x->i + 1 >= x->n || x->s[x->i + 1] != '>') return xml_error(x, "'/' not followed by '>'");
            x->i += 2;
            return 1;
        }
        if (x->s[x->i] == '>') {
            x->i++;
            break;
        }
        if (x->i == before) return xml_error(x, "attributes not separated by blanks");
        if (!xml_name(x)) return xml_error(x, "an attribute without a name");
        xml_ws(x);
        if (x->i >= x->n || x->s[x->i] != '=') return xml_error(x, "an attribute without '='");
        x->i++;
        xml_ws(x);
        if (x->i >= x->n || (x->s[x->i] != '"' && x->s[x->i] != '\'')) return xml_error(x, "an unquoted attribute");
        char q = x->s[x->i++];
        while (x->i < x->n && x->s[x->i] != q)
            if (!xml_text_char(x, q)) return 0;
        if (x->i >= x->n) return xml_error(x, "an attribute value that does not end");
        x->i++;
    }
    /* content */
    for (;;) {
        if (x->i >= x->n) return xml_error(x, "an element that is not closed");
        if (x->s[x->i] == '<') {
            if (x->i + 1 < x->n && x->s[x->i + 1] == '/') {
                x->i += 2;
                size_t at = x->i, len = xml_name(x);
                if (len != name_len || memcmp(x->s + at, x->s + name_at, len) != 0)
                    return xml_error(x, "an end tag that does not match its start tag");
                xml_ws(x);
                if (x->i >= x->n || x->s[x->i] != '>') return xml_error(x, "an end tag without '>'");
                x->i++;
                return 1;
            }
            if (!xml_element(x, depth + 1)) return 0;
            continue;
        }
        if (x->i + 2 < x->n && memcmp(x->s + x->i, "]]>", 3) == 0) return xml_error(x, "']]>' in text");
        if (!xml_text_char(x, 0)) return 0;
    }
}

/* prolog: the XML declaration (JUnit), or the doctype of the HTML report,
 * which is written to parse as XML too. */
static const char *xml_check(const char *s, size_t n, const char *prolog, size_t *testcases)
{
    xml x = {s, n, 0, NULL, 0};
    size_t plen = strlen(prolog);
    if (n < plen || memcmp(s, prolog, plen) != 0) return "not the expected prolog";
    x.i = plen;
    xml_ws(&x);
    if (x.i >= n || s[x.i] != '<') return "no root element";
    if (!xml_element(&x, 0)) return x.why;
    xml_ws(&x);
    if (x.i != n) return "something after the root element";
    *testcases = x.testcases;
    return NULL;
}

/* ---- checking: TAP and text ----------------------------------------------------- */

static const char *next_line(const char **p, const char *end, size_t *len)
{
    if (*p >= end) return NULL;
    const char *line = *p, *nl = memchr(line, '\n', (size_t)(end - line));
    *len = nl ? (size_t)(nl - line) : (size_t)(end - line);
    *p = nl ? nl + 1 : end;
    return line;
}

static void check_tap(const run_report *r, const rendered *tap)
{
    const char *p = tap->text, *end = tap->text + tap->len;
    size_t len;
    const char *line = next_line(&p, end, &len);
    FUZZ_CHECK(line && len == 14 && memcmp(line, "TAP version 13", 14) == 0, "tap: no version line");
    char plan[32];
    snprintf(plan, sizeof plan, "1..%zu", r->nchecks);
    line = next_line(&p, end, &len);
    FUZZ_CHECK(line && len == strlen(plan) && memcmp(line, plan, len) == 0, "tap: the plan is not %s", plan);
    for (size_t i = 0; i < r->nchecks; i++) {
        const check_result *c = r->checks[i];
        int failed = c->status == ST_FAIL || c->status == ST_ERROR;
        int skip = c->status == ST_NA || c->status == ST_DEFERRED || c->status == ST_PENDING;
        char head[48];
        snprintf(head, sizeof head, "%sok %zu - ", failed ? "not " : "", i + 1);
        line = next_line(&p, end, &len);
        FUZZ_CHECK(line && len >= strlen(head) && memcmp(line, head, strlen(head)) == 0,
                   "tap: test line %zu does not start \"%s\": %.*s", i + 1, head, line ? (int)len : 0,
                   line ? line : "");
        int directives = 0;
        for (size_t k = 0; k < len; k++) {
            FUZZ_CHECK((unsigned char)line[k] >= 0x20 && line[k] != 0x7F, "tap: test line %zu holds a control character",
                       i + 1);
            if (line[k] == '\\') k++;
            else if (line[k] == '#') directives++;
        }
        FUZZ_CHECK(directives == skip, "tap: test line %zu has %d directives, expected %d: %.*s", i + 1, directives,
                   skip, (int)len, line);
        if (failed) {
            line = next_line(&p, end, &len);
            FUZZ_CHECK(line && len == 5 && memcmp(line, "  ---", 5) == 0, "tap: no YAML block under test %zu", i + 1);
            for (;;) {
                line = next_line(&p, end, &len);
                FUZZ_CHECK(line, "tap: the YAML block of test %zu does not end", i + 1);
                FUZZ_CHECK(len >= 3 && line[0] == ' ' && line[1] == ' ',
                           "tap: a YAML line of test %zu is not indented: %.*s", i + 1, (int)len, line);
                if (len == 5 && memcmp(line, "  ...", 5) == 0) break;
            }
        }
    }
    if (r->interrupted) {
        line = next_line(&p, end, &len);
        FUZZ_CHECK(line && line[0] == '#', "tap: no comment for the interrupted run");
    }
    FUZZ_CHECK(p == end, "tap: more lines after the last test: %.*s", (int)(end - p), p);
}

static void check_text(const run_report *r, const rendered *text)
{
    if (!r->nchecks) return;
    const char *p = text->text, *end = text->text + text->len;
    size_t len;
    for (size_t i = 0; i <= r->nchecks; i++) {
        const char *line = next_line(&p, end, &len);
        FUZZ_CHECK(line, "text: the table has %zu rows, expected %zu", i, r->nchecks + 1);
        for (size_t k = 0; k < len; k++)
            FUZZ_CHECK((unsigned char)line[k] >= 0x20 && line[k] != 0x7F,
                       "text: table row %zu holds a control character: %.*s", i, (int)len, line);
    }
}

/* ---- checking: JSON, in Lua --------------------------------------------------------- */

static const char JSON_CHECKER[] =
    "local json = ...\n"
    "local null, fmt, char, byte = json.null, string.format, string.char, string.byte\n"
    "local function short(s) s = tostring(s) return #s > 120 and s:sub(1, 120) .. '...' or s end\n"
    "\n"
    "-- what sb_json_string makes of a C string: invalid UTF-8 bytes become U+FFFD\n"
    "local function repair(s)\n"
    "  if s == nil or utf8.len(s) then return s end\n"
    "  local out, i, n = {}, 1, #s\n"
    "  while i <= n do\n"
    "    local c = byte(s, i)\n"
    "    local len = c < 0x80 and 1 or c >= 0xF8 and 0 or c >= 0xF0 and 4 or c >= 0xE0 and 3 or c >= 0xC0 and 2 or 0\n"
    "    local seq = len > 0 and s:sub(i, i + len - 1)\n"
    "    if seq and #seq == len and utf8.len(seq) == 1 then out[#out + 1] = seq i = i + len\n"
    "    else out[#out + 1] = '\\xEF\\xBF\\xBD' i = i + 1 end\n"
    "  end\n"
    "  return table.concat(out)\n"
    "end\n"
    "\n"
    "-- a decoded value as report_json writes it again (a NUL, which a C string\n"
    "-- cannot hold, is U+FFFD too); ambiguous when two keys become one\n"
    "local ambiguous\n"
    "local function norm(v)\n"
    "  if type(v) == 'string' then return (repair((v:gsub('\\0', '\\xEF\\xBF\\xBD')))) end\n"
    "  if type(v) ~= 'table' then return v end\n"
    "  local t = {}\n"
    "  for k, x in pairs(v) do\n"
    "    local nk = norm(k)\n"
    "    if t[nk] ~= nil then ambiguous = true end\n"
    "    t[nk] = norm(x)\n"
    "  end\n"
    "  return t\n"
    "end\n"
    "\n"
    "local function deep_eq(a, b)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) ~= 'table' then return a == b end\n"
    "  local n = 0\n"
    "  for k, v in pairs(a) do n = n + 1 if not deep_eq(v, b[k]) then return false end end\n"
    "  for _ in pairs(b) do n = n - 1 end\n"
    "  return n == 0\n"
    "end\n"
    "\n"
    "local function depth(v) -- of a decoded value\n"
    "  if type(v) ~= 'table' then return 0 end\n"
    "  local d = 0\n"
    "  for _, x in pairs(v) do local e = depth(x) if e > d then d = e end end\n"
    "  return d + 1\n"
    "end\n"
    "\n"
    "-- a JSON value the worker encoded, as report_json copied it: the value, or\n"
    "-- (when it is not JSON after all) its text as a string\n"
    "local function check_value(got, text, what)\n"
    "  local ref = json.decode(text)\n"
    "  if type(got) == 'string' and (got == repair(text) or (type(ref) == 'string' and got == norm(ref))) then return end\n"
    "  if ref == nil then\n"
    "    -- cjson refuses a lone surrogate escape, which report_json shows as U+FFFD\n"
    "    if text:find('\\\\[uU]') then return end\n"
    "    return fmt('%s: %s made it in as a %s, yet it is not JSON', what, short(text), type(got))\n"
    "  end\n"
    "  if depth(ref) > 190 and type(got) == 'string' then return end -- report_json's depth limit\n"
    "  ambiguous = false\n"
    "  local want = norm(ref)\n"
    "  if ambiguous or deep_eq(got, want) then return end\n"
    "  local ok, shown = pcall(json.encode, got)\n"
    "  return fmt('%s: %s came out as %s', what, short(text), short(ok and shown or type(got)))\n"
    "end\n"
    "\n"
    "local function check_ms(got, ms, what)\n"
    "  if ms ~= ms or ms < 0 or ms == math.huge then\n"
    "    if got ~= null then return fmt('%s: %s is %s, expected null', what, tostring(ms), short(got)) end\n"
    "    return\n"
    "  end\n"
    "  if type(got) ~= 'number' or math.abs(got - ms) > 0.0005 + math.abs(ms) * 1e-12 then\n"
    "    return fmt('%s: %.17g came out as %s', what, ms, tostring(got))\n"
    "  end\n"
    "end\n"
    "\n"
    "local function check_str(got, want, what)\n"
    "  if want == nil then\n"
    "    if got ~= null then return fmt('%s: expected null, got %s', what, short(got)) end\n"
    "  elseif got ~= repair(want) then\n"
    "    return fmt('%s: %q came out as %q', what, short(want), short(got))\n"
    "  end\n"
    "end\n"
    "\n"
    "local function check_list(got, want, what)\n"
    "  if type(got) ~= 'table' or #got ~= #want then return what .. ': not the same list' end\n"
    "  for i = 1, #want do local e = check_str(got[i], want[i], what .. '[' .. i .. ']') if e then return e end end\n"
    "end\n"
    "\n"
    "local function check_check(got, c, i)\n"
    "  local w = 'checks[' .. i .. ']'\n"
    "  local e\n"
    "  if c.id:match('^%d+$') and #c.id <= 15 and not c.id:match('^0.') then\n"
    "    if math.type(got.id) == nil or got.id ~= tonumber(c.id) then return w .. '.id: ' .. c.id .. ' came out as ' .. tostring(got.id) end\n"
    "  else e = check_str(got.id, c.id, w .. '.id') if e then return e end end\n"
    "  if got.status ~= c.status then return fmt('%s.status %s, expected %s', w, tostring(got.status), c.status) end\n"
    "  e = check_str(got.title, c.title, w .. '.title') or check_str(got.message, c.message, w .. '.message')\n"
    "      or check_str(got.file, c.file, w .. '.file') or check_ms(got.duration_ms, c.duration, w .. '.duration_ms')\n"
    "      or check_list(got.tags, c.tags, w .. '.tags') or check_list(got.failures, c.failures, w .. '.failures')\n"
    "  if e then return e end\n"
    "  if c.status == 'ERROR' or c.status == 'PENDING' then\n"
    "    e = check_str(got.current_step, c.current_step, w .. '.current_step') if e then return e end\n"
    "  elseif got.current_step ~= nil then return w .. ': current_step in a ' .. c.status .. ' check' end\n"
    "  if type(got.evidence) ~= 'table' then return w .. '.evidence is not an object' end\n"
    "  local keys = {}\n"
    "  for _, ev in ipairs(c.evidence) do local k = repair(ev[1]) keys[k] = (keys[k] or 0) + 1 end\n"
    "  for _, ev in ipairs(c.evidence) do\n"
    "    local k = repair(ev[1])\n"
    "    local what = fmt('%s.evidence[%q]', w, short(k))\n"
    "    if keys[k] == 1 then\n"
    "      if ev[3] then e = check_str(got.evidence[k], ev[2], what) else e = check_value(got.evidence[k], ev[2], what) end\n"
    "      if e then return e end\n"
    "    end\n"
    "  end\n"
    "  if type(got.actions) ~= 'table' or #got.actions ~= #c.actions then return w .. '.actions: not the same list' end\n"
    "  for j, a in ipairs(c.actions) do e = check_value(got.actions[j], a, w .. '.actions[' .. j .. ']') if e then return e end end\n"
    "  if got.requests ~= #c.requests then return w .. '.requests: ' .. tostring(got.requests) end\n"
    "  if #got.steps ~= #c.steps then return w .. '.steps: not the same list' end\n"
    "  for j, s in ipairs(c.steps) do\n"
    "    local g = got.steps[j]\n"
    "    e = check_str(g.name, s.name, w .. '.steps.name') or check_ms(g.duration_ms, s.duration, w .. '.steps.duration_ms')\n"
    "        or check_ms(g.started_ms, s.started, w .. '.steps.started_ms')\n"
    "    if e then return e end\n"
    "    if g.status ~= s.status then return w .. '.steps.status' end\n"
    "  end\n"
    "  if #got.logs ~= #c.logs then return w .. '.logs: not the same list' end\n"
    "  for j, l in ipairs(c.logs) do\n"
    "    local g = got.logs[j]\n"
    "    e = check_str(g.level, l.level, w .. '.logs.level') or check_str(g.text, l.text, w .. '.logs.text')\n"
    "        or check_ms(g.at_ms, l.at, w .. '.logs.at_ms')\n"
    "    if e then return e end\n"
    "  end\n"
    "end\n"
    "\n"
    "return function(text, r)\n"
    "  local doc, err = json.decode(text)\n"
    "  if doc == nil then return 'the JSON report does not parse: ' .. short(err) .. ': ' .. short(text), 'report-json-parse' end\n"
    "  if type(doc.checks) ~= 'table' or #doc.checks ~= #r.checks then return 'checks: not one per check', 'report-json' end\n"
    "  local counts = { pass = 0, fail = 0, error = 0, na = 0, deferred = 0 }\n"
    "  local key = { PASS = 'pass', FAIL = 'fail', ERROR = 'error', ['N/A'] = 'na', DEFERRED = 'deferred' }\n"
    "  for i, c in ipairs(r.checks) do\n"
    "    if key[c.status] then counts[key[c.status]] = counts[key[c.status]] + 1 end\n"
    "    local e = check_check(doc.checks[i], c, i)\n"
    "    if e then return e, e:find('_ms') and 'report-json-ms' or 'report-json' end\n"
    "  end\n"
    "  for k, n in pairs(counts) do\n"
    "    if doc.summary[k] ~= n then return fmt('summary.%s is %s, expected %d', k, tostring(doc.summary[k]), n), 'report-json' end\n"
    "  end\n"
    "  if doc.summary.total ~= #r.checks then return 'summary.total', 'report-json' end\n"
    "  local e = check_str(doc.checks_dir, r.checks_dir, 'checks_dir') or check_str(doc.stack, r.stack, 'stack')\n"
    "      or check_str(doc.operator, r.operator, 'operator') or check_str(doc.host_os, r.host_os, 'host_os')\n"
    "  if e then return e, 'report-json' end\n"
    "  e = check_ms(doc.duration_ms, r.duration, 'duration_ms')\n"
    "  if e then return e, 'report-json-ms' end\n"
    "  if doc.interrupted ~= r.interrupted then return 'interrupted', 'report-json' end\n"
    "  if r.started > 0 and r.started < 4102444800 then\n"
    "    if type(doc.started_at) ~= 'string' or not doc.started_at:match('^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$') then\n"
    "      return 'started_at is ' .. tostring(doc.started_at), 'report-json'\n"
    "    end\n"
    "  end\n"
    "  local keys = {}\n"
    "  for _, f in ipairs(r.facts) do local k = repair(f[1]) keys[k] = (keys[k] or 0) + 1 end\n"
    "  for _, f in ipairs(r.facts) do\n"
    "    local k = repair(f[1])\n"
    "    if keys[k] == 1 then e = check_str(doc.facts[k], f[2], 'facts') if e then return e, 'report-json' end end\n"
    "  end\n"
    "end\n";

static lua_State *L;
static int json_checker;

/* --format html runs Lua (engine/report/html.lua), so report.c reaches
 * it through a pointer (report.h) that halo's main() sets; this target sets
 * it too. Weak, so that the target links whether or not the archive member
 * is pulled in (-u report_html pulls it in when it exists). */
#pragma weak report_html
#pragma weak report_html_renderer

static int open_json(lua_State *S)
{
    sandbox_require(S, "json");
    return 1;
}

static void setup(void)
{
    const char *wild = getenv("HALO_FUZZ_WILD_NUMBERS");
    wild_numbers = wild && *wild && strcmp(wild, "0") != 0;
    if (&report_html_renderer && &report_html) report_html_renderer = report_html;
    L = sandbox_new(&(sandbox_opts){.modules = halo_modules});
    if (!L) fuzz_fail("sandbox_new: out of memory");
    lua_pushcfunction(L, open_json);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) fuzz_fail("require 'json': %s", lua_tostring(L, -1));
    json_checker = fuzz_load_checker(L, "=report_json_checker", JSON_CHECKER);
}

static void set_string(lua_State *S, const char *key, const char *value)
{
    if (!value) return;
    lua_pushstring(S, value);
    lua_setfield(S, -2, key);
}

static void set_number(lua_State *S, const char *key, double value)
{
    lua_pushnumber(S, value);
    lua_setfield(S, -2, key);
}

static void push_strings(lua_State *S, char **items, size_t n)
{
    lua_createtable(S, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(S, items[i]);
        lua_rawseti(S, -2, (lua_Integer)i + 1);
    }
}

/* [-0, +1] what the report was built with, for the JSON checker */
static void push_expected(lua_State *S, const run_report *r)
{
    lua_createtable(S, 0, 10);
    set_string(S, "checks_dir", r->checks_dir);
    set_string(S, "stack", r->stack_file);
    set_string(S, "operator", r->operator_name);
    set_string(S, "host_os", r->host_os);
    set_number(S, "duration", r->duration_ms);
    set_number(S, "started", r->started_wall);
    lua_pushboolean(S, r->interrupted);
    lua_setfield(S, -2, "interrupted");
    lua_createtable(S, (int)r->nfacts, 0);
    for (size_t i = 0; i < r->nfacts; i++) {
        lua_createtable(S, 2, 0);
        lua_pushstring(S, r->fact_keys[i]);
        lua_rawseti(S, -2, 1);
        lua_pushstring(S, r->fact_values[i]);
        lua_rawseti(S, -2, 2);
        lua_rawseti(S, -2, (lua_Integer)i + 1);
    }
    lua_setfield(S, -2, "facts");
    lua_createtable(S, (int)r->nchecks, 0);
    for (size_t i = 0; i < r->nchecks; i++) {
        const check_result *c = r->checks[i];
        lua_createtable(S, 0, 16);
        set_string(S, "id", c->id);
        set_string(S, "title", c->title);
        set_string(S, "status", status_name(c->status));
        set_string(S, "message", c->message);
        set_string(S, "file", c->file);
        set_string(S, "current_step", c->current_step);
        set_number(S, "duration", c->duration_ms);
        push_strings(S, c->tags, c->ntags);
        lua_setfield(S, -2, "tags");
        push_strings(S, c->failures, c->nfailures);
        lua_setfield(S, -2, "failures");
        push_strings(S, c->requests, c->nrequests);
        lua_setfield(S, -2, "requests");
        push_strings(S, c->actions, c->nactions);
        lua_setfield(S, -2, "actions");
        lua_createtable(S, (int)c->nevidence, 0);
        for (size_t k = 0; k < c->nevidence; k++) {
            lua_createtable(S, 3, 0);
            lua_pushstring(S, c->evidence[k].key);
            lua_rawseti(S, -2, 1);
            lua_pushstring(S, c->evidence[k].value);
            lua_rawseti(S, -2, 2);
            lua_pushboolean(S, c->evidence[k].form == EVIDENCE_TEXT);
            lua_rawseti(S, -2, 3);
            lua_rawseti(S, -2, (lua_Integer)k + 1);
        }
        lua_setfield(S, -2, "evidence");
        lua_createtable(S, (int)c->nsteps, 0);
        for (size_t k = 0; k < c->nsteps; k++) {
            lua_createtable(S, 0, 4);
            set_string(S, "name", c->steps[k].name);
            set_string(S, "status", status_name(c->steps[k].status));
            set_number(S, "duration", c->steps[k].duration_ms);
            set_number(S, "started", c->steps[k].started_ms);
            lua_rawseti(S, -2, (lua_Integer)k + 1);
        }
        lua_setfield(S, -2, "steps");
        lua_createtable(S, (int)c->nlogs, 0);
        for (size_t k = 0; k < c->nlogs; k++) {
            lua_createtable(S, 0, 3);
            set_string(S, "level", c->logs[k].level);
            set_string(S, "text", c->logs[k].text);
            set_number(S, "at", c->logs[k].at_ms);
            lua_rawseti(S, -2, (lua_Integer)k + 1);
        }
        lua_setfield(S, -2, "logs");
        lua_rawseti(S, -2, (lua_Integer)i + 1);
    }
    lua_setfield(S, -2, "checks");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!L) setup();
    run_report *r = build(data, size);

    /* The five formats this target checks, and any other report_write knows
     * (html, when it is there), rendered for crashes and leaks only. */
    static const char *const formats[] = {"text", "json", "junit", "tap", "md", "html", "xml", "csv"};
    enum { NFORMATS = sizeof formats / sizeof formats[0] };
    rendered out[NFORMATS], verbose_text;
    /* html makes a sandbox and runs a Lua renderer, 20 times the cost of the
     * others together: one input in four (by its bytes, so a reproducer
     * renders it again) gets it. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 16777619u;
    for (int i = 0; i < NFORMATS; i++) {
        out[i].text = NULL;
        if (i < 5 || (report_format_known(formats[i]) && (strcmp(formats[i], "html") != 0 || (h >> 24) % 4 == 0)))
            out[i] = render(r, formats[i], 0);
    }
    verbose_text = render(r, "text", 1);
    FUZZ_CHECK(report_write(r, "yaml", 0, stdout) == -1, "report_write took an unknown format");

    check_text(r, &out[0]);
    check_text(r, &verbose_text);

    size_t bad = utf8_invalid_at(out[1].text, out[1].len);
    if (bad != out[1].len && !fuzz_known("report-json-utf8"))
        fuzz_fail("[report-json-utf8] the JSON report is not UTF-8 at byte %zu", bad);
    lua_rawgeti(L, LUA_REGISTRYINDEX, json_checker);
    lua_pushlstring(L, out[1].text, out[1].len);
    push_expected(L, r);
    if (lua_pcall(L, 2, 2, 0) != LUA_OK) fuzz_fail("the JSON checker raised: %s", lua_tostring(L, -1));
    if (!lua_isnil(L, -2) && !fuzz_known(lua_tostring(L, -1)))
        fuzz_fail("[%s] %s", lua_tostring(L, -1), lua_tostring(L, -2));
    lua_pop(L, 2);

    size_t testcases = 0;
    const char *why = xml_check(out[2].text, out[2].len, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", &testcases);
    if (why && !fuzz_known("report-junit-xml"))
        fuzz_fail("[report-junit-xml] the JUnit report is not well-formed XML: %s at byte %zu: %.80s", why, xml_error_at,
                  out[2].text + (xml_error_at < out[2].len ? xml_error_at : 0));
    if (!why) FUZZ_CHECK(testcases == r->nchecks, "junit: %zu testcases for %zu checks", testcases, r->nchecks);

    check_tap(r, &out[3]);

    if (out[5].text) { /* html */
        size_t ignored;
        why = xml_check(out[5].text, out[5].len, "<!DOCTYPE html>", &ignored);
        if (why && !fuzz_known("report-html-xml"))
            fuzz_fail("[report-html-xml] the HTML report does not parse as XML: %s at byte %zu: %.80s", why,
                      xml_error_at, out[5].text + (xml_error_at < out[5].len ? xml_error_at : 0));
    }

    for (int i = 0; i < NFORMATS; i++) free(out[i].text);
    free(verbose_text.text);
    free_report(r);
    FUZZ_CHECK(lua_gettop(L) == 0, "the stack holds %d values after a run", lua_gettop(L));
    /* The state lives on to the next input; what this one made is freed now,
     * so that libFuzzer's leak check (mallocs == frees per input) holds. */
    lua_gc(L, LUA_GCCOLLECT);
    return 0;
}
