/* The run's results as the runner collects them from its workers, and the
 * renderers that turn them into text, JSON, JUnit XML, TAP and markdown.
 * Every string here has already been redacted. */
#ifndef HALO_REPORT_H
#define HALO_REPORT_H
#include <stddef.h>
#include <stdio.h>

#include "core/status.h"

/* check_status, ST_PASS ... ST_PENDING and status_name(): the one list of
 * statuses is core/status.h, which the worker shares. */

typedef struct {
    char *name;
    double started_ms;  /* since the check started */
    double duration_ms; /* < 0 while the step runs */
    check_status status; /* ST_PASS, ST_FAIL (an expectation failed in it) or ST_ERROR (it raised) */
} step_record;

/* What t:evidence recorded: a string stays text; anything else (a number,
 * a table) arrives as the JSON the worker encoded it to. */
typedef enum { EVIDENCE_TEXT, EVIDENCE_JSON } evidence_form;

typedef struct {
    char *key;
    evidence_form form;
    char *value;
} evidence_record;

typedef struct {
    double at_ms; /* since the check started */
    char *level;  /* "info", "warn", "error" */
    char *text;
} log_record;

typedef struct {
    char *file;      /* path of the check file as given */
    char *id;        /* as displayed: "3" or a name */
    double order;    /* sort key: numeric id, or huge for named ids */
    char *title;
    char **tags;
    size_t ntags, captags;
    double timeout_s;
    double grace_s;  /* the check's own cleanup grace (0: none declared) */
    int exclusive;

    check_status status;
    char *message;   /* failure, error or skip reason; NULL on PASS */
    double started_wall; /* epoch seconds */
    double duration_ms;
    char *current_step; /* last step started (for timeouts and crashes) */

    char **failures; /* every expectation that failed, "file:line: message" */
    size_t nfailures, capfailures;
    step_record *steps;
    size_t nsteps, capsteps;
    evidence_record *evidence; /* in the order the check recorded it */
    size_t nevidence, capevidence;
    log_record *logs;
    size_t nlogs, caplogs;

    char **requests; /* the request history: one JSON object per request */
    size_t nrequests, caprequests;
    size_t dropped_requests;
    char **actions;  /* what the check did to the stack (docker), JSON objects */
    size_t nactions, capactions;
} check_result;

typedef struct {
    check_result **checks; /* in id order */
    size_t nchecks, capchecks;
    double started_wall;
    double duration_ms;
    char *checks_dir;
    char *checks_title; /* the heading of the checks directory's README.md ("# ..."), NULL when none */
    char *stack_file;  /* NULL when none */
    char *operator_name;
    char *host_os;     /* "Linux 6.1.0 x86_64" */
    int interrupted;   /* SIGINT/SIGTERM ended the run early */
    char **fact_keys;  /* what halo found out about the stack (versions) */
    char **fact_values;
    size_t nfacts, capfact_keys, capfact_values;
    const char *html_path; /* where the HTML report goes, if it is written (the md entry links it) */
} run_report;

typedef struct {
    size_t pass, fail, error, na, deferred;
} report_counts;

report_counts report_count(const run_report *r);

/* Exit code for a finished run: 3 if any ERROR, else 1 if any FAIL, else 0. */
int report_exit_code(const run_report *r);

/* format: "text", "json", "junit", "tap", "md", "html". Returns 0, or -1 for an
 * unknown format or a renderer that failed. verbose adds evidence and logs to the text format. */
int report_write(const run_report *r, const char *format, int verbose, FILE *out);
int report_format_known(const char *format);

/* One renderer per format, each in its own file. */
void report_text(const run_report *r, int verbose, FILE *out);
void report_json(const run_report *r, FILE *out);
void report_junit(const run_report *r, FILE *out);
void report_tap(const run_report *r, FILE *out);
void report_md(const run_report *r, FILE *out);
int report_html(const run_report *r, FILE *out); /* 0, or -1 (said on stderr) */
/* The HTML renderer runs Lua (engine/report/html.lua), so the report
 * code reaches it through this pointer, which the halo binary sets: the
 * other renderers stay free of the engine. */
extern int (*report_html_renderer)(const run_report *r, FILE *out);
/* The JSON report with every request record (the HTML report draws them). */
void report_json_full(const run_report *r, FILE *out);

/* Helpers the renderers share. */
check_result *check_result_new(const char *file);
void check_result_free(check_result *c);
/* Replaces the message with `message`, which it takes over (may be NULL). */
void check_set_message(check_result *c, char *message);
/* A key recorded again takes the new value and keeps its place. */
void check_set_evidence(check_result *c, const char *key, evidence_form form, const char *value);
/* An evidence value as a person reads it: text as it is, JSON through
 * evidence_plain. Caller frees. */
char *evidence_text(const evidence_record *e);
/* Plain text of a JSON value: a string without quotes and escapes,
 * anything else as compact JSON. Caller frees. */
char *evidence_plain(const char *json);

#endif
