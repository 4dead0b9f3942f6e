/* Unit test of the report model and its five renderers: builds a run with
 * one check of every status, writes each format into the directory given as
 * argv[1] (check_report_formats.py parses those files afterwards) and checks
 * the content: counts, statuses, escaping, layout. */
#include "report/report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/util.h"

static int failures;

#define EXPECT(cond)                                                          \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                       \
        }                                                                     \
    } while (0)

/* Where an expectation about rendered text fails, show the text too. */
#define EXPECT_HAS(text, needle)                                              \
    do {                                                                      \
        if (!strstr((text), (needle))) {                                      \
            fprintf(stderr, "%s:%d: missing \"%s\" in:\n%s\n", __FILE__, __LINE__, \
                    (needle), (text));                                        \
            failures++;                                                       \
        }                                                                     \
    } while (0)

#define EXPECT_STR(got, want)                                                 \
    do {                                                                      \
        char *got_ = (got);                                                   \
        if (strcmp(got_, (want)) != 0) {                                      \
            fprintf(stderr, "%s:%d: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, \
                    got_, (want));                                            \
            failures++;                                                       \
        }                                                                     \
        free(got_);                                                           \
    } while (0)

static const char *out_dir;

/* 2026-04-21 10:00:00 UTC, the date of the validation report's Run 1. */
#define RUN_STARTED 1776765600.25

static const char *const FAIL_MESSAGE = "expected <200> & \"ok\"\tgot 500";
static const char *const UTF8_TITLE = "Shared asset readability \xE2\x80\x94 \xC3\xBC\x62\x65r \xE2\x9C\x93";

static check_result *add_check(run_report *r, const char *id, const char *title,
                               check_status st, const char *message, double ms)
{
    char *file = xasprintf("checks/%s.lua", id);
    check_result *c = check_result_new(file);
    free(file);
    c->id = xstrdup(id);
    c->title = xstrdup(title);
    c->status = st;
    c->message = message ? xstrdup(message) : NULL;
    c->duration_ms = ms;
    c->started_wall = RUN_STARTED;
    VEC_PUSH(r->checks, r->nchecks, r->capchecks, c);
    return c;
}

static void add_step(check_result *c, const char *name, double ms, check_status st)
{
    step_record s = {xstrdup(name), 0, ms, st};
    VEC_PUSH(c->steps, c->nsteps, c->capsteps, s);
}

static void add_log(check_result *c, double at, const char *level, const char *text)
{
    log_record l = {at, xstrdup(level), xstrdup(text)};
    VEC_PUSH(c->logs, c->nlogs, c->caplogs, l);
}

/* One check of every status, plus a named id, in the runner's id order. */
static run_report *sample_report(void)
{
    run_report *r = xcalloc(1, sizeof *r);
    r->started_wall = RUN_STARTED;
    r->duration_ms = 12345;
    r->checks_dir = xstrdup("checks");
    r->stack_file = xstrdup("tests/stack/compose.yml");
    r->operator_name = NULL; /* the md report must say "unknown" */
    r->host_os = xstrdup("Linux 6.1.0 x86_64");

    check_result *c = add_check(r, "1", UTF8_TITLE, ST_PASS, NULL, 1234);
    char *tag = xstrdup("storage");
    VEC_PUSH(c->tags, c->ntags, c->captags, tag);
    check_set_evidence(c, "bytes", EVIDENCE_JSON, "1");
    check_set_evidence(c, "note", EVIDENCE_JSON, "\"he said \\\"hi\\\"\\nthen \\u00e9 \\ud83d\\ude00\"");
    check_set_evidence(c, "replicas", EVIDENCE_JSON, " [ \"api1\" , \"api2\" ] ");
    check_set_evidence(c, "bytes", EVIDENCE_JSON, "535381"); /* replaces, keeps its place */
    check_set_evidence(c, "ratio", EVIDENCE_JSON, "nan");    /* not JSON: must not break JSON */
    check_set_evidence(c, "url", EVIDENCE_TEXT, "http://lb:8080/ \"as is\""); /* text: never parsed */
    add_step(c, "upload", 800, ST_PASS);
    add_step(c, "fetch", 400, ST_PASS);
    add_log(c, 12, "info", "uploaded via LB");

    c = add_check(r, "2", "Schedule fires exactly once across replicas", ST_FAIL, FAIL_MESSAGE, 400);
    char *f1 = xstrdup("checks/2.lua:31: expected 1 execution, got 2");
    char *f2 = xstrdup("checks/2.lua:40: expected status 200, got 500");
    VEC_PUSH(c->failures, c->nfailures, c->capfailures, f1);
    VEC_PUSH(c->failures, c->nfailures, c->capfailures, f2);
    add_step(c, "tick", 400, ST_FAIL);
    check_set_evidence(c, "seen by", EVIDENCE_TEXT, "api1 #1, api2: \"both\"");
    check_set_evidence(c, "executions", EVIDENCE_JSON, "2");

    c = add_check(r, "3", "Editor token minted on api1 verifies on api2", ST_ERROR,
                  "checks/3.lua:12: attempt to index a nil value (local 'resp')", 50);
    c->current_step = xstrdup("mint token");
    add_step(c, "mint token", 50, ST_ERROR);

    add_check(r, "4", "Tenant archive propagation within TENANT_STATUS_CACHE_TTL_MS", ST_NA,
              "single-tenant stack", 2);
    add_check(r, "5", "API key rotation with *_PREVIOUS, zero 401s #6", ST_DEFERRED, NULL, 0);
    add_check(r, "failover", "Graceful degradation when one replica is killed", ST_PASS, NULL,
              65000);
    return r;
}

static void free_report(run_report *r)
{
    for (size_t i = 0; i < r->nchecks; i++) check_result_free(r->checks[i]);
    free(r->checks);
    free(r->checks_dir);
    free(r->stack_file);
    free(r->operator_name);
    free(r->host_os);
    free(r);
}

/* Renders format into out_dir/name and returns the file's content. */
static char *render(const run_report *r, const char *format, int verbose, const char *name)
{
    char *path = xasprintf("%s/%s", out_dir, name);
    FILE *f = fopen(path, "w+");
    if (!f) {
        perror(path);
        exit(2);
    }
    EXPECT(report_write(r, format, verbose, f) == 0);
    long size = ftell(f);
    rewind(f);
    char *text = xmalloc((size_t)size + 1);
    size_t got = fread(text, 1, (size_t)size, f);
    text[got] = '\0';
    fclose(f);
    free(path);
    return text;
}

static size_t count(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static int starts_with(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

static void test_model(void)
{
    EXPECT(strcmp(status_name(ST_PASS), "PASS") == 0);
    EXPECT(strcmp(status_name(ST_NA), "N/A") == 0);
    EXPECT(strcmp(status_name(ST_DEFERRED), "DEFERRED") == 0);
    for (int st = 0; st < ST_COUNT; st++) EXPECT(status_from_name(status_name((check_status)st)) == st);
    EXPECT(status_from_name("NA") == -1 && status_from_name("pass") == -1 && status_from_name(NULL) == -1);
    EXPECT(strcmp(status_key(ST_NA), "NA") == 0);
    EXPECT(report_format_known("junit") && report_format_known("md"));
    EXPECT(!report_format_known("xml") && !report_format_known(NULL));

    check_result *c = check_result_new("a.lua");
    EXPECT(c->status == ST_PENDING && c->order >= 1e18 && c->timeout_s == 60);
    check_set_evidence(c, "k", EVIDENCE_JSON, "1");
    check_set_evidence(c, "j", EVIDENCE_JSON, "2");
    check_set_evidence(c, "k", EVIDENCE_TEXT, "3");
    EXPECT(c->nevidence == 2 && strcmp(c->evidence[0].key, "k") == 0);
    EXPECT(strcmp(c->evidence[0].value, "3") == 0 && strcmp(c->evidence[1].value, "2") == 0);
    EXPECT(c->evidence[0].form == EVIDENCE_TEXT && c->evidence[1].form == EVIDENCE_JSON);
    EXPECT_STR(evidence_text(&c->evidence[0]), "3");
    check_set_evidence(c, "quoted", EVIDENCE_TEXT, "\"q\"");
    EXPECT_STR(evidence_text(&c->evidence[2]), "\"q\""); /* text is never decoded */
    check_result_free(c);
    check_result_free(NULL);

    EXPECT_STR(evidence_plain("\"a\\\"b\\\\c\\nd\\/e\""), "a\"b\\c\nd/e");
    EXPECT_STR(evidence_plain("\"\\u00e9\\u20AC\""), "\xC3\xA9\xE2\x82\xAC");
    EXPECT_STR(evidence_plain("\"\\ud83d\\ude00\""), "\xF0\x9F\x98\x80");
    EXPECT_STR(evidence_plain("\"\\ud83d x\""), "\xEF\xBF\xBD x"); /* lone surrogate */
    EXPECT_STR(evidence_plain(" \"padded\" "), "padded");
    EXPECT_STR(evidence_plain("{\"a\":[1,2]}"), "{\"a\":[1,2]}");
    EXPECT_STR(evidence_plain("42"), "42");
    EXPECT_STR(evidence_plain(" [1, 2] \n"), "[1, 2]");
    EXPECT_STR(evidence_plain("\"unterminated"), "\"unterminated");
    EXPECT_STR(evidence_plain("\"a\" \"b\""), "\"a\" \"b\"");

    run_report empty = {0};
    EXPECT(report_exit_code(&empty) == 0);
    FILE *devnull = fopen("/dev/null", "w");
    EXPECT(report_write(&empty, "yaml", 0, devnull) == -1);
    for (const char *const *f = (const char *const[]){"text", "json", "junit", "tap", "md", NULL}; *f; f++)
        EXPECT(report_write(&empty, *f, 1, devnull) == 0);
    fclose(devnull);
}

static void test_exit_codes(run_report *r)
{
    report_counts n = report_count(r);
    EXPECT(n.pass == 2 && n.fail == 1 && n.error == 1 && n.na == 1 && n.deferred == 1);
    EXPECT(report_exit_code(r) == 3);
    r->checks[2]->status = ST_PASS;
    EXPECT(report_exit_code(r) == 1);
    r->checks[1]->status = ST_NA;
    EXPECT(report_exit_code(r) == 0);
    r->checks[1]->status = ST_FAIL;
    r->checks[2]->status = ST_ERROR;
}

static void test_text(const run_report *r)
{
    char *text = render(r, "text", 0, "report.txt");
    EXPECT(!strchr(text, '\x1b'));
    EXPECT(starts_with(text, "ID"));
    EXPECT_HAS(text, "STATUS");
    EXPECT_HAS(text, "1.2s");
    EXPECT_HAS(text, "1m05s");
    EXPECT_HAS(text, UTF8_TITLE);
    /* Table rows are cut to about 100 columns; the details are not. */
    for (const char *line = text; *line && *line != '\n'; line = strchr(line, '\n') + 1) {
        size_t cols = 0;
        for (const char *p = line; *p && *p != '\n'; p++)
            if (((unsigned char)*p & 0xC0) != 0x80) cols++;
        EXPECT(cols <= 100);
    }
    EXPECT_HAS(text, "\n    checks/3.lua:12: attempt to index a nil value (local 'resp')\n");
    EXPECT_HAS(text, "in step: mint token");
    EXPECT_HAS(text, "checks/2.lua:31: expected 1 execution, got 2");
    EXPECT_HAS(text, "checks/2.lua:40: expected status 200, got 500");
    EXPECT_HAS(text, FAIL_MESSAGE);
    EXPECT(!strstr(text, "535381")); /* evidence only with verbose */
    EXPECT_HAS(text, "\n6 checks: 2 passed, 1 failed, 1 error, 1 N/A, 1 deferred in 12.3s\n");
    free(text);

    text = render(r, "text", 1, "report-verbose.txt");
    EXPECT_HAS(text, "bytes: 535381");
    EXPECT_HAS(text, "      note: he said \"hi\"\n        then");
    EXPECT_HAS(text, "then \xC3\xA9 \xF0\x9F\x98\x80");
    EXPECT_HAS(text, "uploaded via LB");
    EXPECT_HAS(text, "      url: http://lb:8080/ \"as is\"\n");
    /* in the order recorded; "bytes" recorded again keeps its place */
    EXPECT(strstr(text, "bytes: ") < strstr(text, "note: ") && strstr(text, "ratio: ") < strstr(text, "url: "));
    free(text);
}

static void test_json(const run_report *r)
{
    char *text = render(r, "json", 0, "report.json");
    EXPECT(text[0] == '{');
    EXPECT_HAS(text, "\"id\":1,");
    EXPECT_HAS(text, "\"id\":\"failover\"");
    EXPECT_HAS(text, "\"message\":null");
    EXPECT_HAS(text, "\"message\":\"expected <200> & \\\"ok\\\"\\tgot 500\"");
    EXPECT_HAS(text, "\"bytes\":535381,");
    EXPECT_HAS(text, "\"replicas\":[\"api1\",\"api2\"]");
    EXPECT_HAS(text, "\"ratio\":\"nan\",\"url\":\"http://lb:8080/ \\\"as is\\\"\"}");
    EXPECT_HAS(text, "\"evidence\":{\"seen by\":\"api1 #1, api2: \\\"both\\\"\",\"executions\":2}");
    EXPECT_HAS(text, "\"summary\":{\"pass\":2,\"fail\":1,\"error\":1,\"na\":1,\"deferred\":1");
    EXPECT_HAS(text, "\"started_at\":\"2026-04-21T10:00:00.250Z\"");
    EXPECT_HAS(text, "\"status\":\"N/A\"");
    EXPECT_HAS(text, "\"interrupted\":false");
    free(text);
}

static void test_junit(const run_report *r)
{
    char *text = render(r, "junit", 0, "report.xml");
    EXPECT(starts_with(text, "<?xml"));
    EXPECT_HAS(text, "tests=\"6\" failures=\"1\" errors=\"1\" skipped=\"2\" time=\"12.345\"");
    EXPECT_HAS(text, "name=\"2. Schedule fires exactly once across replicas\" time=\"0.400\"");
    EXPECT_HAS(text, "<failure message=\"expected &lt;200&gt; &amp; &quot;ok&quot;\tgot 500\">");
    EXPECT_HAS(text, "checks/2.lua:31: expected 1 execution, got 2\nchecks/2.lua:40");
    EXPECT_HAS(text, "<error message=\"checks/3.lua:12: attempt to index a nil value (local &apos;resp&apos;)\">");
    EXPECT_HAS(text, "<skipped message=\"single-tenant stack\"/>");
    EXPECT_HAS(text, "<skipped message=\"deferred\"/>");
    EXPECT_HAS(text, "<system-out>bytes: 535381\nnote: he said &quot;hi&quot;");
    EXPECT(count(text, "<testcase ") == 6);
    EXPECT_HAS(text, "(local &apos;resp&apos;)\nin step: mint token\n</error>");
    free(text);
}

static void test_tap(const run_report *r)
{
    char *text = render(r, "tap", 0, "report.tap");
    EXPECT(starts_with(text, "TAP version 13\n1..6\n"));
    EXPECT_HAS(text, "\nok 1 - 1. Shared asset readability");
    EXPECT_HAS(text, "\nnot ok 2 - 2. Schedule fires exactly once across replicas\n  ---\n  status: FAIL\n");
    EXPECT_HAS(text, "  message: \"expected <200> & \\\"ok\\\"\\tgot 500\"\n");
    EXPECT_HAS(text, "    - \"checks/2.lua:40: expected status 200, got 500\"\n");
    EXPECT_HAS(text, "\nnot ok 3 - 3. Editor token");
    EXPECT_HAS(text, "  status: ERROR\n");
    EXPECT_HAS(text, "\nok 4 - 4. Tenant archive propagation within TENANT_STATUS_CACHE_TTL_MS # SKIP single-tenant stack\n");
    EXPECT_HAS(text, "\nok 5 - 5. API key rotation with *_PREVIOUS, zero 401s \\#6 # SKIP deferred\n");
    EXPECT_HAS(text, "\nok 6 - failover. Graceful degradation");
    EXPECT_HAS(text, "  evidence:\n    \"seen by\": \"api1 #1, api2: \\\"both\\\"\"\n    \"executions\": \"2\"\n");
    EXPECT(count(text, "\nnot ok ") == 2 && count(text, "  ...\n") == 2);
    free(text);
}

static void test_md(run_report *r)
{
    char *text = render(r, "md", 0, "report.md");
    EXPECT(starts_with(text, "#### Run \xE2\x80\x94 2026-04-21 (2/6 PASS, 1/6 FAIL, 1/6 ERROR, "
                             "1/6 deferred, 1/6 N/A)\n\n"));
    EXPECT_HAS(text, "Date: 2026-04-21  \n");
    EXPECT_HAS(text, "Operator: unknown  \n");
    EXPECT_HAS(text, "Host OS: Linux 6.1.0 x86_64  \n");
    EXPECT_HAS(text, "Stack: tests/stack/compose.yml  \n");
    EXPECT_HAS(text, "Run time: 12.3 s  \n");
    EXPECT_HAS(text, "[\xE2\x9C\x93] 1. Shared asset readability");
    EXPECT_HAS(text, "[\xE2\x9C\x97] 2. Schedule fires exactly once across replicas \xE2\x80\x94 FAIL  \n");
    EXPECT_HAS(text, "[\xE2\x9C\x97] 3. Editor token minted on api1 verifies on api2 \xE2\x80\x94 ERROR  \n");
    EXPECT_HAS(text, "[N/A] 4. Tenant archive propagation within TENANT_STATUS_CACHE_TTL_MS "
                     "\xE2\x80\x94 N/A (single-tenant stack)  \n");
    EXPECT_HAS(text, "[-] 5. API key rotation with *_PREVIOUS, zero 401s #6 \xE2\x80\x94 DEFERRED  \n");
    EXPECT_HAS(text, "Detail per check:");
    EXPECT_HAS(text, "[2] expected <200> & \"ok\"\tgot 500  \n");
    EXPECT_HAS(text, "    bytes: 535381  \n");
    EXPECT_HAS(text, "    replicas: [ \"api1\" , \"api2\" ]  \n");
    EXPECT_HAS(text, "    note: he said \"hi\"  \n      then \xC3\xA9 \xF0\x9F\x98\x80  \n");
    EXPECT_HAS(text, "Notes / anomalies:");
    EXPECT_HAS(text, "- [3] ERROR: checks/3.lua:12: attempt to index a nil value (local 'resp') (in step: mint token)\n");
    free(text);
}

/* An interrupted run: one check done, one that never finished. Only the
 * non-zero parts follow PASS in the md heading, and every format says the
 * run was cut short without calling the unfinished check a failure. */
static void test_interrupted(void)
{
    run_report small = {0};
    small.started_wall = RUN_STARTED;
    small.interrupted = 1;
    check_result *done = check_result_new("a.lua");
    done->id = xstrdup("1");
    done->title = xstrdup("Only");
    done->status = ST_PASS;
    VEC_PUSH(small.checks, small.nchecks, small.capchecks, done);
    char *text = render(&small, "md", 0, "interrupted.md");
    EXPECT_HAS(text, "(1/1 PASS)\n");
    EXPECT_HAS(text, "- The run was interrupted");
    EXPECT(!strstr(text, "Stack:"));
    free(text);
    text = render(&small, "text", 0, "interrupted.txt");
    EXPECT_HAS(text, "1 check: 1 passed, 0 failed, 0 errors, 0 N/A, 0 deferred in 0.0s (interrupted)\n");
    free(text);

    check_result *cut = check_result_new("b.lua");
    cut->id = xstrdup("2");
    cut->title = xstrdup("Cut short");
    cut->current_step = xstrdup("waiting");
    VEC_PUSH(small.checks, small.nchecks, small.capchecks, cut);
    EXPECT(report_exit_code(&small) == 0);
    text = render(&small, "md", 0, "interrupted2.md");
    EXPECT_HAS(text, "(1/2 PASS, 1/2 not finished)\n");
    EXPECT_HAS(text, "[ ] 2. Cut short \xE2\x80\x94 not finished  \n");
    free(text);
    text = render(&small, "text", 0, "interrupted2.txt");
    EXPECT_HAS(text, "2   PENDING");
    EXPECT_HAS(text, "2 checks: 1 passed, 0 failed, 0 errors, 0 N/A, 0 deferred, 1 not finished in");
    free(text);
    text = render(&small, "json", 0, "interrupted2.json");
    EXPECT_HAS(text, "\"status\":\"PENDING\"");
    EXPECT_HAS(text, "\"current_step\":\"waiting\"");
    EXPECT_HAS(text, "\"interrupted\":true");
    free(text);
    text = render(&small, "junit", 0, "interrupted2.xml");
    EXPECT_HAS(text, "tests=\"2\" failures=\"0\" errors=\"0\" skipped=\"1\"");
    EXPECT_HAS(text, "<property name=\"interrupted\" value=\"true\"/>");
    free(text);
    text = render(&small, "tap", 0, "interrupted2.tap");
    EXPECT_HAS(text, "\nok 2 - 2. Cut short # SKIP not finished");
    EXPECT_HAS(text, "\n# interrupted");
    free(text);
    check_result_free(done);
    check_result_free(cut);
    free(small.checks);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTPUT-DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        perror(out_dir);
        return 2;
    }
    /* The md date is the operator's local date; pin it for the test. */
    setenv("TZ", "UTC", 1);
    tzset();

    test_model();
    run_report *r = sample_report();
    test_exit_codes(r);
    test_text(r);
    test_json(r);
    test_junit(r);
    test_tap(r);
    test_md(r);
    free_report(r);
    test_interrupted();

    if (failures) {
        fprintf(stderr, "%d expectation(s) failed\n", failures);
        return 1;
    }
    printf("report_test: all expectations hold; files in %s\n", out_dir);
    return 0;
}
