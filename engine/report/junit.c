/* The run as JUnit XML, the format CI servers (Jenkins, GitLab, GitHub
 * test reporters) understand: one testsuite, one testcase per check, with
 * evidence and logs in the testcase's system-out. */
#include "report/report.h"

#include <stdlib.h>
#include <time.h>

#include "core/util.h"

static void add_attr(strbuf *sb, const char *name, const char *value)
{
    sb_printf(sb, " %s=\"", name);
    sb_xml_escape(sb, value);
    sb_addc(sb, '"');
}

static void add_seconds_attr(strbuf *sb, const char *name, double ms)
{
    sb_printf(sb, " %s=\"%.3f\"", name, ms > 0 ? ms / 1000.0 : 0.0);
}

static void add_element(strbuf *sb, const char *tag, const char *message, const char *body)
{
    sb_printf(sb, "      <%s", tag);
    add_attr(sb, "message", message);
    if (!body || !*body) {
        sb_adds(sb, "/>\n");
        return;
    }
    sb_addc(sb, '>');
    sb_xml_escape(sb, body);
    sb_printf(sb, "</%s>\n", tag);
}

static char *failure_lines(const check_result *c)
{
    strbuf sb;
    sb_init(&sb);
    for (size_t i = 0; i < c->nfailures; i++) sb_printf(&sb, "%s\n", c->failures[i]);
    return sb_take(&sb);
}

static void add_outcome(strbuf *sb, const check_result *c)
{
    char *body;
    switch (c->status) {
    case ST_PASS:
        break;
    case ST_FAIL:
        body = failure_lines(c);
        add_element(sb, "failure", c->message ? c->message : c->nfailures ? c->failures[0] : "failed",
                    *body ? body : c->message);
        free(body);
        break;
    case ST_ERROR: {
        /* Some CI viewers show only the body, so it repeats the message. */
        char *failed = failure_lines(c);
        body = xasprintf("%s\n%s%s%s%s", c->message ? c->message : "error", failed,
                         c->current_step ? "in step: " : "",
                         c->current_step ? c->current_step : "", c->current_step ? "\n" : "");
        add_element(sb, "error", c->message ? c->message : "error", body);
        free(failed);
        free(body);
        break;
    }
    case ST_NA:
        add_element(sb, "skipped", c->message ? c->message : "N/A", NULL);
        break;
    case ST_DEFERRED:
        add_element(sb, "skipped", c->message ? c->message : "deferred", NULL);
        break;
    case ST_PENDING:
        add_element(sb, "skipped", "not finished: the run was interrupted", NULL);
        break;
    }
}

/* What a CI reader needs to judge a check without rerunning it. */
static void add_system_out(strbuf *sb, const check_result *c)
{
    if (!c->nevidence && !c->nlogs) return;
    strbuf text;
    sb_init(&text);
    for (size_t i = 0; i < c->nevidence; i++) {
        char *plain = evidence_text(&c->evidence[i]);
        sb_printf(&text, "%s: %s\n", c->evidence[i].key, plain);
        free(plain);
    }
    for (size_t i = 0; i < c->nlogs; i++) {
        const log_record *l = &c->logs[i];
        sb_printf(&text, "[+%.3fs] %s: %s\n", l->at_ms / 1000.0, l->level ? l->level : "",
                  l->text ? l->text : "");
    }
    sb_adds(sb, "      <system-out>");
    sb_xml_escape(sb, text.buf);
    sb_adds(sb, "</system-out>\n");
    sb_free(&text);
}

static void add_testcase(strbuf *sb, const check_result *c)
{
    char *name = xasprintf("%s. %s", c->id ? c->id : "?", c->title ? c->title : "");
    sb_adds(sb, "    <testcase classname=\"halo.checks\"");
    add_attr(sb, "name", name);
    add_seconds_attr(sb, "time", c->duration_ms);
    if (c->file && *c->file) add_attr(sb, "file", c->file);
    strbuf children;
    sb_init(&children);
    add_outcome(&children, c);
    add_system_out(&children, c);
    if (children.len)
        sb_printf(sb, ">\n%s    </testcase>\n", children.buf);
    else
        sb_adds(sb, "/>\n");
    sb_free(&children);
    free(name);
}

void report_junit(const run_report *r, FILE *out)
{
    report_counts n = report_count(r);
    size_t finished = n.pass + n.fail + n.error + n.na + n.deferred;
    size_t skipped = n.na + n.deferred + (r->nchecks - finished);
    strbuf sb;
    sb_init(&sb);
    sb_adds(&sb, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites");
    sb_printf(&sb, " name=\"halo\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\"",
              r->nchecks, n.fail, n.error, skipped);
    add_seconds_attr(&sb, "time", r->duration_ms);
    sb_adds(&sb, ">\n  <testsuite");
    sb_printf(&sb, " name=\"halo\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\"",
              r->nchecks, n.fail, n.error, skipped);
    add_seconds_attr(&sb, "time", r->duration_ms);
    struct tm tm;
    /* a time no clock gives (or NaN) has no date, and casting it is undefined */
    int dated = r->started_wall > 0 && r->started_wall < 253402300800.0;
    time_t t = dated ? (time_t)r->started_wall : 0;
    char stamp[32];
    /* JUnit's timestamp is ISO-8601 without a zone; it is written in UTC. */
    if (dated && gmtime_r(&t, &tm) &&
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm))
        add_attr(&sb, "timestamp", stamp);
    sb_adds(&sb, ">\n");
    if (r->stack_file || r->host_os || r->operator_name || r->interrupted) {
        sb_adds(&sb, "    <properties>\n");
        const char *names[] = {"stack", "host_os", "operator"};
        const char *values[] = {r->stack_file, r->host_os, r->operator_name};
        for (size_t i = 0; i < 3; i++) {
            if (!values[i]) continue;
            sb_adds(&sb, "      <property");
            add_attr(&sb, "name", names[i]);
            add_attr(&sb, "value", values[i]);
            sb_adds(&sb, "/>\n");
        }
        if (r->interrupted) sb_adds(&sb, "      <property name=\"interrupted\" value=\"true\"/>\n");
        sb_adds(&sb, "    </properties>\n");
    }
    for (size_t i = 0; i < r->nchecks; i++) add_testcase(&sb, r->checks[i]);
    sb_adds(&sb, "  </testsuite>\n</testsuites>\n");
    fwrite(sb.buf, 1, sb.len, out);
    sb_free(&sb);
}
