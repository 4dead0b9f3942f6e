/* The request history. Kept in C, not in the sandbox: a request can end
 * while no Lua stack is free to touch (cancelled from the host), and the
 * check must not be able to rewrite its own history. http.history() copies
 * it out; a runner that streams gets one event line per request.
 *
 * A check may send tens of thousands of requests, so a record keeps
 * numbers and interned strings, and its event line is written only when a
 * runner reads it. */
#include "mod/http/http.h"

#include "core/events.h"
#include "core/sched.h"
#include "core/util.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- interned strings ------------------------------------------------------ */

/* The history names methods, URLs and replicas by number: a check sends
 * the same few over and over. The strings live as long as the process. */
typedef struct {
    char *s;
    size_t len;
    uint32_t hash;
} interned;

static struct {
    interned *strs; /* id - 1 */
    size_t n, cap;
    uint32_t *slots; /* open addressing; 0 is empty, else an id */
    size_t nslots;
} I;

static uint32_t str_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void intern_rehash(void)
{
    size_t nslots = I.nslots ? I.nslots * 2 : 64;
    uint32_t *slots = xcalloc(nslots, sizeof *slots);
    for (size_t id = 1; id <= I.n; id++) {
        size_t i = I.strs[id - 1].hash & (nslots - 1);
        while (slots[i]) i = (i + 1) & (nslots - 1);
        slots[i] = (uint32_t)id;
    }
    free(I.slots);
    I.slots = slots;
    I.nslots = nslots;
}

static uint32_t intern(const char *s)
{
    size_t len = strlen(s);
    if ((I.n + 1) * 2 > I.nslots) intern_rehash();
    uint32_t h = str_hash(s, len);
    size_t i = h & (I.nslots - 1);
    for (; I.slots[i]; i = (i + 1) & (I.nslots - 1)) {
        const interned *e = &I.strs[I.slots[i] - 1];
        if (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0) return I.slots[i];
    }
    interned e = {xstrndup(s, len), len, h};
    VEC_PUSH(I.strs, I.n, I.cap, e);
    I.slots[i] = (uint32_t)I.n;
    return (uint32_t)I.n;
}

static const char *interned_str(uint32_t id) { return id ? I.strs[id - 1].s : NULL; }

/* ---- records ------------------------------------------------------------ */

const char *const http_replica_headers[] = {"x-served-by", "x-replica", "x-upstream", "x-upstream-addr", NULL};

/* A record's id is its place in the list, plus one. */
typedef struct {
    double start, end;
    size_t bytes;
    const char *error;             /* static kind names */
    uint32_t method, url, replica; /* interned; replica 0: none */
    int task;
    int status; /* 0: none */
} request_record;

#define HISTORY_MAX 500000
static request_record *history;
static size_t nhistory, caphistory;
static int next_request;

const char *http_find_replica(const transfer *tr)
{
    const char *found = NULL;
    int rank = 4;
    for (size_t i = 0; i < tr->nheaders && rank > 0; i++) {
        const char *name = HDR_NAME(tr, i);
        if ((name[0] | 0x20) != 'x' || name[1] != '-') continue;
        for (int k = 0; k < rank; k++) {
            if (strcasecmp(name, http_replica_headers[k]) == 0) {
                found = HDR_VALUE(tr, i);
                rank = k;
                break;
            }
        }
    }
    return found;
}

static void sb_uint(strbuf *sb, unsigned long long v)
{
    char buf[24], *p = buf + sizeof buf;
    do *--p = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    sb_addn(sb, p, (size_t)(buf + sizeof buf - p));
}

static void sb_int(strbuf *sb, long long v)
{
    if (v < 0) {
        sb_addc(sb, '-');
        sb_uint(sb, 0ull - (unsigned long long)v);
    } else {
        sb_uint(sb, (unsigned long long)v);
    }
}

/* What "%.6f" prints, without printf: the fraction is rounded from the
 * double's exact value, and a value near a rounding tie (or out of range)
 * goes to printf after all. */
static void sb_fixed6(strbuf *sb, double v)
{
    if (!signbit(v) && v < 1e12) {
        double ip = floor(v);
        double p = (v - ip) * 1e6; /* v - ip is exact; the product errs by < 1e-10 */
        double r = floor(p), d = p - r;
        if (fabs(d - 0.5) > 1e-4) {
            unsigned long long whole = (unsigned long long)ip, frac = (unsigned long long)r + (d > 0.5);
            if (frac >= 1000000) {
                whole++;
                frac -= 1000000;
            }
            char digits[6];
            for (int i = 5; i >= 0; i--) {
                digits[i] = (char)('0' + frac % 10);
                frac /= 10;
            }
            sb_uint(sb, whole);
            sb_addc(sb, '.');
            sb_addn(sb, digits, 6);
            return;
        }
    }
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%.6f", v);
    if (n > 0) sb_addn(sb, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void sb_json_or_null(strbuf *sb, const char *s)
{
    if (s) sb_json_string(sb, s);
    else sb_adds(sb, "null");
}

/* A record's URL past this is cut: a query string of megabytes belongs in
 * no report (http.history() in the check keeps it whole). */
#define RECORD_URL_MAX 8192

/* The event line a runner stores (halo run --history). */
static void emit_record(int id, const request_record *r, const char *method, const char *url, const char *replica)
{
    static strbuf sb;
    sb.len = 0;
    char *cut_url = NULL;
    size_t url_len = strlen(url);
    if (url_len > RECORD_URL_MAX) url = cut_url = text_cut(url, url_len, RECORD_URL_MAX);
    sb_adds(&sb, "{\"id\":");
    sb_int(&sb, id);
    sb_adds(&sb, ",\"task\":");
    sb_int(&sb, r->task);
    sb_adds(&sb, ",\"start\":");
    sb_fixed6(&sb, r->start);
    sb_adds(&sb, ",\"end\":");
    sb_fixed6(&sb, r->end);
    sb_adds(&sb, ",\"method\":");
    sb_json_string(&sb, method);
    sb_adds(&sb, ",\"url\":");
    sb_json_string(&sb, url);
    sb_adds(&sb, ",\"status\":");
    if (r->status > 0) sb_int(&sb, r->status);
    else sb_adds(&sb, "null");
    sb_adds(&sb, ",\"error\":");
    sb_json_or_null(&sb, r->error);
    sb_adds(&sb, ",\"replica\":");
    sb_json_or_null(&sb, replica);
    sb_adds(&sb, ",\"bytes\":");
    sb_uint(&sb, r->bytes);
    sb_addc(&sb, '}');
    free(cut_url);
    const char *fields[] = {sb.buf};
    events_send(EV_REQUEST, 1, fields);
}

void http_history_record(transfer *tr, long status, const char *error_kind)
{
    if (tr->unrecorded) return;
    double origin = events_origin();
    int id = ++next_request;
    const char *replica = http_find_replica(tr);
    int streamed = events_streaming(), kept = nhistory < HISTORY_MAX;
    if (!streamed && !kept) return;
    request_record r = {tr->started - origin, clock_mono() - origin, tr->body.len, error_kind, 0, 0, 0,
                        sched_task_id(tr->waiter), status > 0 ? (int)status : 0};
    size_t secrets = redact_count();
    int known = kept && tr->url_id && tr->url_id_secrets == secrets; /* the URL of the last record */
    char *redacted = secrets && !known ? redact(tr->url.buf) : NULL;
    const char *url = known ? interned_str(tr->url_id) : redacted ? redacted : tr->url.buf;
    if (streamed) emit_record(id, &r, tr->method, url, replica);
    if (kept) {
        r.method = intern(tr->method);
        r.url = known ? tr->url_id : intern(url);
        r.replica = replica ? intern(replica) : 0;
        VEC_PUSH(history, nhistory, caphistory, r);
        if (!known && tr->uh_url && strcmp(tr->uh_url, tr->url.buf) == 0) {
            tr->url_id = r.url;
            tr->url_id_secrets = secrets;
        }
    }
    free(redacted);
}

/* http.history() -> every request this check made so far */
int http_history(lua_State *L)
{
    lua_createtable(L, (int)nhistory, 0);
    for (size_t i = 0; i < nhistory; i++) {
        const request_record *r = &history[i];
        lua_createtable(L, 0, 10);
        lua_pushinteger(L, (lua_Integer)i + 1);
        lua_setfield(L, -2, "id");
        lua_pushinteger(L, r->task);
        lua_setfield(L, -2, "task");
        lua_pushnumber(L, r->start);
        lua_setfield(L, -2, "start");
        lua_pushnumber(L, r->end);
        lua_setfield(L, -2, "end");
        lua_pushstring(L, interned_str(r->method));
        lua_setfield(L, -2, "method");
        lua_pushstring(L, interned_str(r->url));
        lua_setfield(L, -2, "url");
        if (r->status > 0) {
            lua_pushinteger(L, r->status);
            lua_setfield(L, -2, "status");
        }
        if (r->error) {
            lua_pushstring(L, r->error);
            lua_setfield(L, -2, "error");
        }
        if (r->replica) {
            lua_pushstring(L, interned_str(r->replica));
            lua_setfield(L, -2, "replica");
        }
        lua_pushinteger(L, (lua_Integer)r->bytes);
        lua_setfield(L, -2, "bytes");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}
