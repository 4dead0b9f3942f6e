/* The run as TAP version 13, for prove and other TAP harnesses: one test
 * point per check, a YAML diagnostic block (message, failures, evidence)
 * under every FAIL and ERROR, and
 * N/A and deferred checks as SKIP directives. */
#include "report/report.h"

#include "core/util.h"

#include <stdlib.h>

/* A description or directive reason must stay on one line, and an
 * unescaped '#' would start a directive early. */
static void add_tap_text(strbuf *sb, const char *s)
{
    for (const char *p = s ? s : ""; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '#' || ch == '\\') sb_addc(sb, '\\');
        sb_addc(sb, ch < 0x20 || ch == 0x7F ? ' ' : (char)ch);
    }
}

/* A JSON string literal is also a valid YAML double-quoted scalar, so the
 * JSON escaper gives safe YAML for any text. */
static void add_yaml_field(strbuf *sb, const char *key, const char *value)
{
    sb_printf(sb, "  %s: ", key);
    sb_json_string(sb, value);
    sb_addc(sb, '\n');
}

static void add_diagnostics(strbuf *sb, const check_result *c)
{
    sb_adds(sb, "  ---\n");
    sb_printf(sb, "  status: %s\n", status_name(c->status));
    if (c->message) add_yaml_field(sb, "message", c->message);
    if (c->status == ST_ERROR && c->current_step) add_yaml_field(sb, "step", c->current_step);
    if (c->nfailures) {
        sb_adds(sb, "  failures:\n");
        for (size_t i = 0; i < c->nfailures; i++) {
            sb_adds(sb, "    - ");
            sb_json_string(sb, c->failures[i]);
            sb_addc(sb, '\n');
        }
    }
    if (c->nevidence) {
        /* in the order the check recorded it; keys are quoted too, since
         * a check may name one anything */
        sb_adds(sb, "  evidence:\n");
        for (size_t i = 0; i < c->nevidence; i++) {
            char *text = evidence_text(&c->evidence[i]);
            sb_adds(sb, "    ");
            sb_json_string(sb, c->evidence[i].key);
            sb_adds(sb, ": ");
            sb_json_string(sb, text);
            sb_addc(sb, '\n');
            free(text);
        }
    }
    if (c->file && *c->file) add_yaml_field(sb, "file", c->file);
    sb_printf(sb, "  duration_ms: %.0f\n", c->duration_ms > 0 ? c->duration_ms : 0.0);
    sb_adds(sb, "  ...\n");
}

void report_tap(const run_report *r, FILE *out)
{
    strbuf sb;
    sb_init(&sb);
    sb_printf(&sb, "TAP version 13\n1..%zu\n", r->nchecks);
    for (size_t i = 0; i < r->nchecks; i++) {
        const check_result *c = r->checks[i];
        int failed = c->status == ST_FAIL || c->status == ST_ERROR;
        sb_printf(&sb, "%sok %zu - ", failed ? "not " : "", i + 1);
        add_tap_text(&sb, c->id ? c->id : "?");
        sb_adds(&sb, ". ");
        add_tap_text(&sb, c->title);
        switch (c->status) {
        case ST_NA:
            sb_adds(&sb, " # SKIP ");
            add_tap_text(&sb, c->message ? c->message : "N/A");
            break;
        case ST_DEFERRED:
            sb_adds(&sb, " # SKIP deferred");
            break;
        case ST_PENDING:
            sb_adds(&sb, " # SKIP not finished, the run was interrupted");
            break;
        default:
            break;
        }
        sb_addc(&sb, '\n');
        if (failed) add_diagnostics(&sb, c);
    }
    if (r->interrupted) sb_adds(&sb, "# interrupted: SIGINT or SIGTERM ended the run early\n");
    fwrite(sb.buf, 1, sb.len, out);
    sb_free(&sb);
}
