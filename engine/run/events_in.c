#include "run/events_in.h"
#include "core/status.h"
#include "core/util.h"
#include "run/progress.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- reading and dispatching ------------------------------------------------ */

/* The most fields an event line is split into; a line with more than its
 * kind has is not one of the table's, and is ignored. */
#define LINE_FIELDS_MAX 16

static void dispatch_line(child *ch, char *line, size_t len)
{
    char *fields[LINE_FIELDS_MAX];
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len && n < LINE_FIELDS_MAX; i++) {
        if (i == len || line[i] == '\t') {
            fields[n++] = field_unescape(line + start, i - start);
            start = i + 1;
        }
    }
    int kind = n > 0 ? events_kind_of(fields[0]) : -1;
    if (kind >= 0 && n - 1 == events_spec((event_kind)kind)->nfields && ch->events->on[kind])
        ch->events->on[kind](ch, fields + 1);
    for (int i = 0; i < n; i++) free(fields[i]);
}

static void child_readable(int fd, int revents, void *ud)
{
    child *ch = ud;
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            sb_addn(&ch->inbuf, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        /* EOF (or an error): the child is done talking */
        loop_unwatch(fd);
        close(fd);
        ch->fd = -1;
        break;
    }
    /* Scan only what arrived since the last call: a long line comes in
     * pipe-sized pieces, and rescanning it from its start each time is
     * quadratic (a 20 MB line took seconds). */
    size_t start = 0;
    for (size_t i = ch->inbuf_scanned; i < ch->inbuf.len; i++) {
        if (ch->inbuf.buf[i] == '\n') {
            dispatch_line(ch, ch->inbuf.buf + start, i - start);
            start = i + 1;
        }
    }
    if (start > 0) {
        memmove(ch->inbuf.buf, ch->inbuf.buf + start, ch->inbuf.len - start);
        ch->inbuf.len -= start;
    }
    ch->inbuf_scanned = ch->inbuf.len;
    if (ch->fd < 0) child_reap(ch);
}

void child_listen(child *ch, double limit)
{
    loop_watch(ch->fd, LOOP_READ, child_readable, ch);
    ch->kill_timer = loop_timer(limit, child_deadline, ch);
}

/* A status the worker named: the one table decodes it. A name it does not
 * know cannot come from core/status.h's own table, so it is taken for the
 * worst. */
static check_status status_field(const char *name)
{
    int st = status_from_name(name);
    return st < 0 ? ST_ERROR : (check_status)st;
}

/* ---- the probe ----------------------------------------------------------------- */

/* id id_kind title timeout_s tags grace_s */
static void probe_meta(child *ch, char **f)
{
    check_result *c = ch->check;
    free(c->id);
    c->id = xstrdup(f[0]);
    c->order = strcmp(f[1], "n") == 0 ? strtod(f[0], NULL) : 1e15;
    free(c->title);
    c->title = xstrdup(f[2]);
    c->timeout_s = strtod(f[3], NULL);
    c->grace_s = strtod(f[5], NULL);
    char *save = NULL;
    for (char *tag = strtok_r(f[4], ",", &save); tag; tag = strtok_r(NULL, ",", &save)) {
        VEC_PUSH(c->tags, c->ntags, c->captags, xstrdup(tag));
        if (strcmp(tag, "exclusive") == 0) c->exclusive = 1;
    }
    ch->got_done = 1;
}

/* message */
static void probe_load_error(child *ch, char **f)
{
    check_result *c = ch->check;
    c->status = ST_ERROR;
    free(c->message);
    c->message = xstrdup(f[0]);
    ch->got_done = 1;
}

const event_handlers probe_events = {.on = {
    [EV_META] = probe_meta,
    [EV_LOAD_ERROR] = probe_load_error,
}};

/* ---- a check's worker ---------------------------------------------------------- */

/* The string value of "key" in a flat JSON object we produced ourselves
 * (cjson: no nesting around it, backslash escapes only). Caller frees. */
static char *json_string_field(const char *obj, const char *key)
{
    char *pat = xasprintf("\"%s\":\"", key);
    const char *p = strstr(obj, pat);
    size_t plen = strlen(pat);
    free(pat);
    if (!p) return NULL;
    p += plen;
    strbuf sb;
    sb_init(&sb);
    for (; *p && *p != '"'; p++) {
        if (*p == '\\' && p[1]) p++;
        sb_addc(&sb, *p);
    }
    return sb_take(&sb);
}

static void track_fault(child *ch, const char *json)
{
    char *id = json_string_field(json, "full_id");
    char *action = json_string_field(json, "action");
    if (!id || !action) {
        free(id);
        free(action);
        return;
    }
    char *undo = json_string_field(json, "undo");
    for (size_t i = 0; i < ch->nfaults; i++) {
        if (strcmp(ch->faults[i].id, id) != 0) continue;
        /* start/restart settle a kill or stop; unpause settles a pause */
        int settles = strcmp(action, "restart") == 0 ||
                      (strcmp(action, "start") == 0 && strcmp(ch->faults[i].undo, "start") == 0) ||
                      (strcmp(action, "unpause") == 0 && strcmp(ch->faults[i].undo, "unpause") == 0);
        if (settles) {
            free(ch->faults[i].id);
            free(ch->faults[i].undo);
            free(ch->faults[i].action);
            ch->faults[i] = ch->faults[--ch->nfaults];
            break;
        }
    }
    if (undo) {
        pending_fault f = {id, undo, xstrdup(json)};
        VEC_PUSH(ch->faults, ch->nfaults, ch->capfaults, f);
        id = NULL;
    }
    free(id);
    free(action);
}

#define MESSAGE_MAX ((size_t)257 << 10) /* a worker cuts its fields at 256 KiB already, with a note */

/* Whether `len` more bytes fit the check's budget (and counts them). */
static int within_budget(child *ch, size_t len)
{
    if (ch->text_bytes + len > CHECK_TEXT_BUDGET) {
        ch->dropped++;
        return 0;
    }
    ch->text_bytes += len;
    return 1;
}

/* A message past MESSAGE_MAX keeps its start and says how long it was,
 * as the worker's own cut does. */
static char *capped(const char *text)
{
    size_t len = strlen(text);
    if (len <= MESSAGE_MAX) return xstrdup(text);
    return text_cut(text, len, MESSAGE_MAX);
}

/* name started_ms */
static void on_step_begin(child *ch, char **f)
{
    check_result *c = ch->check;
    if (c->nsteps < LOG_MAX) {
        step_record s = {xstrdup(f[0]), strtod(f[1], NULL), -1, ST_PENDING};
        VEC_PUSH(c->steps, c->nsteps, c->capsteps, s);
    }
    free(c->current_step);
    c->current_step = xstrdup(f[0]);
    progress_step(c, f[0]);
}

/* name status duration_ms */
static void on_step_end(child *ch, char **f)
{
    check_result *c = ch->check;
    check_status status = status_field(f[1]);
    for (size_t i = c->nsteps; i-- > 0;) {
        if (c->steps[i].duration_ms < 0 && strcmp(c->steps[i].name, f[0]) == 0) {
            c->steps[i].duration_ms = strtod(f[2], NULL);
            c->steps[i].status = status;
            break;
        }
    }
    /* back to the enclosing step, if any is still open; a step that
     * raised stays current, as that is where the check failed */
    int raised = status == ST_ERROR;
    char *enclosing = NULL;
    for (size_t i = c->nsteps; i-- > 0;) {
        if (c->steps[i].duration_ms < 0) {
            enclosing = xstrdup(c->steps[i].name);
            break;
        }
    }
    if (enclosing || !raised) {
        free(c->current_step);
        c->current_step = enclosing;
    }
}

/* text */
static void on_fail(child *ch, char **f)
{
    check_result *c = ch->check;
    if (c->nfailures >= LOG_MAX || !within_budget(ch, strlen(f[0]))) return;
    VEC_PUSH(c->failures, c->nfailures, c->capfailures, capped(f[0]));
    progress_failure(c, f[0]);
}

static void add_evidence(child *ch, const char *key, evidence_form form, const char *value)
{
    if (!within_budget(ch, strlen(key) + strlen(value))) return;
    check_set_evidence(ch->check, key, form, value);
}

/* key text */
static void on_evidence_text(child *ch, char **f) { add_evidence(ch, f[0], EVIDENCE_TEXT, f[1]); }

/* key json */
static void on_evidence_json(child *ch, char **f) { add_evidence(ch, f[0], EVIDENCE_JSON, f[1]); }

/* level at_ms text */
static void on_log(child *ch, char **f)
{
    check_result *c = ch->check;
    if ((c->nlogs >= LOG_MAX || !within_budget(ch, strlen(f[2]))) && strcmp(f[0], "error") != 0) {
        ch->dropped++;
        return;
    }
    log_record l = {strtod(f[1], NULL), xstrdup(f[0]), capped(f[2])};
    VEC_PUSH(c->logs, c->nlogs, c->caplogs, l);
    progress_log(c, f[0], f[2]);
}

/* json */
static void on_action(child *ch, char **f)
{
    check_result *c = ch->check;
    if (c->nactions < LOG_MAX) VEC_PUSH(c->actions, c->nactions, c->capactions, xstrdup(f[0]));
    track_fault(ch, f[0]);
}

/* json */
static void on_request(child *ch, char **f)
{
    check_result *c = ch->check;
    if (c->nrequests >= REQUEST_MAX) c->dropped_requests++;
    else VEC_PUSH(c->requests, c->nrequests, c->caprequests, xstrdup(f[0]));
}

/* status message */
static void on_done(child *ch, char **f)
{
    check_result *c = ch->check;
    c->status = status_field(f[0]);
    free(c->message);
    c->message = f[1][0] ? capped(f[1]) : NULL;
    ch->got_done = 1;
}

/* EV_SKIP needs no handler: the verdict carries the reason. */
const event_handlers worker_events = {.on = {
    [EV_STEP_BEGIN] = on_step_begin,
    [EV_STEP_END] = on_step_end,
    [EV_FAIL] = on_fail,
    [EV_EVIDENCE_TEXT] = on_evidence_text,
    [EV_EVIDENCE_JSON] = on_evidence_json,
    [EV_LOG] = on_log,
    [EV_ACTION] = on_action,
    [EV_REQUEST] = on_request,
    [EV_DONE] = on_done,
}};

/* ---- the undo of a dead worker's faults ------------------------------------------ */

void check_add_log(check_result *c, const char *level, char *text)
{
    log_record l = {c->duration_ms, xstrdup(level), text};
    VEC_PUSH(c->logs, c->nlogs, c->caplogs, l);
}

/* Its lines land in the check's log. */
static void undo_log(child *ch, char **f)
{
    check_add_log(ch->check, f[0], xasprintf("runner undo: %s", f[2]));
}

static void undo_action(child *ch, char **f)
{
    check_result *c = ch->check;
    if (c->nactions < LOG_MAX) VEC_PUSH(c->actions, c->nactions, c->capactions, xstrdup(f[0]));
}

static void undo_done(child *ch, char **f) { ch->got_done = status_field(f[0]) == ST_PASS ? 2 : 1; }

const event_handlers undo_events = {.on = {
    [EV_LOG] = undo_log,
    [EV_ACTION] = undo_action,
    [EV_DONE] = undo_done,
}};

/* ---- the stack's facts ------------------------------------------------------------ */

/* json: {"key": ..., "value": ...} */
static void on_fact(child *ch, char **f)
{
    run_report *rep = RUN.report;
    if (!rep) return;
    char *key = json_string_field(f[0], "key"), *value = json_string_field(f[0], "value");
    if (key && value) {
        grow_array((void **)&rep->fact_keys, &rep->capfact_keys, rep->nfacts + 1, sizeof *rep->fact_keys);
        grow_array((void **)&rep->fact_values, &rep->capfact_values, rep->nfacts + 1, sizeof *rep->fact_values);
        rep->fact_keys[rep->nfacts] = key;
        rep->fact_values[rep->nfacts] = value;
        rep->nfacts++;
    } else {
        free(key);
        free(value);
    }
}

static void fact_done(child *ch, char **f) { ch->got_done = 1; }

const event_handlers fact_events = {.on = {
    [EV_FACT] = on_fact,
    [EV_DONE] = fact_done,
}};
