/* The http module: libcurl's multi interface driven by the engine's event
 * loop. A request yields its task; curl's socket and timer callbacks only
 * register interest with the loop, and completion only records and wakes.
 * Network failures are data (nil, err with a kind); misuse raises.
 * Every request lands in the check's history, streamed to the runner.
 *
 * A check may send tens of thousands of requests, so the path of one is
 * kept short: transfers are pooled with their curl handles and buffers (a
 * reused handle keeps the options every request shares, and the parsed
 * form of a URL it sees again); a client checks its defaults once, when it
 * is made; a response sets status, body and method, and builds the other
 * fields (headers, timing, ...) on first use from a record saved at
 * completion; the history keeps numbers and interned strings, and writes
 * its event line only when a runner reads it. */
#include "core/errors.h"
#include "core/loop.h"
#include "core/sandbox.h"
#include "core/sched.h"
#include "core/util.h"
#include "core/events.h"

#include <curl/curl.h>
#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#define RESPONSE_MT "halo.http.response"
#define HEADERS_MT "halo.http.headers"
#define CLIENT_MT "halo.http.client"
#define DEFAULTS_MT "halo.http.defaults"
#define WAIT_MT "halo.http.wait"
#define DEFAULT_TIMEOUT 30.0
#define DEFAULT_CONNECT_TIMEOUT 10.0
#define DEFAULT_MAX_BODY ((lua_Integer)64 << 20)
#define IDLE_TRANSFERS_MAX 256
#define KEEP_BUFFER_MAX (16 * 1024) /* a pooled transfer keeps buffers up to this size */
#define FD_LIMIT_WANT 65536         /* the soft descriptor limit is raised towards this */
#define FD_RESERVE 128              /* descriptors left to everything but connections */

/* Registry keys (their addresses): weak tables from a response to its
 * lazy record and from a client to its checked defaults. */
static char lazy_key, clients_key;

typedef struct {
    uint32_t name, value; /* offsets of NUL-ended strings in transfer.hdr */
} header_ref;

typedef struct transfer {
    CURL *easy;
    task *waiter;
    struct curl_slist *req_headers;
    curl_mime *mime;
    strbuf body;
    size_t max_body;
    int too_large;
    int max_body_is_memory; /* max_body was the check's memory limit, not the script's */
    strbuf hdr; /* the response's headers: name '\0' value '\0' each */
    header_ref *headers;
    size_t nheaders, capheaders;
    CURLcode result;
    long status;
    char errbuf[CURL_ERROR_SIZE];
    double started; /* monotonic */
    strbuf url;
    /* The last URL this handle saw and, once it repeats, its parsed form:
     * curl then copies the parts instead of parsing the string again. */
    char *uh_url;
    CURLU *uh;
    int uh_set;                          /* CURLOPT_CURLU is uh on easy */
    uint32_t url_id;                     /* uh_url (redacted) among the history's strings; 0: not yet */
    size_t url_id_secrets;               /* how many secrets there were then */
    long timeout_ms, connect_timeout_ms; /* as set on easy; -1: not set */
    char *method;                        /* method_buf, or allocated when longer */
    char method_buf[16];
    int timeout_from_check; /* the check's deadline, not the option, set the timeout */
    int unrecorded;         /* record = false: kept out of the history */
    int finished;           /* curl is done with it (and it is in the history) */
    int prepared;           /* the options every request shares are set on easy */
    int dirty;              /* options past the per-request ones were set: reset before reuse */
} transfer;

static struct {
    CURLM *multi;
    loop_timer_id timer;
    transfer *idle[IDLE_TRANSFERS_MAX];
    int nidle;
    int next_request;
    int no_proxy_env; /* no proxy variable is set: curl need not look at every request */
} H;

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

/* ---- history ------------------------------------------------------------ */

/* Headers that say which replica answered, first match wins. */
static const char *const replica_headers[] = {"x-served-by", "x-replica", "x-upstream", "x-upstream-addr", NULL};

/* Kept in C, not in the sandbox: a request can end while no Lua stack is
 * free to touch (cancelled from the host), and the check must not be able
 * to rewrite its own history. http.history() copies it out. A record's id
 * is its place in the list, plus one. */
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

#define HDR_NAME(tr, i) ((tr)->hdr.buf + (tr)->headers[i].name)
#define HDR_VALUE(tr, i) ((tr)->hdr.buf + (tr)->headers[i].value)

/* The first of replica_headers the response has (its first occurrence). */
static const char *find_replica(const transfer *tr)
{
    const char *found = NULL;
    int rank = 4;
    for (size_t i = 0; i < tr->nheaders && rank > 0; i++) {
        const char *name = HDR_NAME(tr, i);
        if ((name[0] | 0x20) != 'x' || name[1] != '-') continue;
        for (int k = 0; k < rank; k++) {
            if (strcasecmp(name, replica_headers[k]) == 0) {
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

/* The event line a runner stores (halo run --history). */
static void emit_record(int id, const request_record *r, const char *method, const char *url, const char *replica)
{
    static strbuf sb;
    sb.len = 0;
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
    const char *fields[] = {sb.buf};
    events_emit("request", 1, fields);
}

/* One record per request, kept for http.history() and streamed to the
 * runner: when it ran, what it asked, what came back. */
static void history_record(transfer *tr, long status, const char *error_kind)
{
    if (tr->unrecorded) return;
    double origin = events_origin();
    int id = ++H.next_request;
    const char *replica = find_replica(tr);
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

/* ---- transfers and the multi handle ------------------------------------- */

/* Transfers are reused with their handles: curl keeps DNS and connection
 * caches per multi, and a reused handle keeps its options, so a request
 * like the last one sets only what differs (URL, headers, timeouts). */
static transfer *transfer_get(void)
{
    if (H.nidle > 0) return H.idle[--H.nidle];
    CURL *easy = curl_easy_init();
    if (!easy) return NULL;
    transfer *tr = xcalloc(1, sizeof *tr);
    tr->easy = easy;
    tr->timeout_ms = tr->connect_timeout_ms = -1;
    return tr;
}

static void transfer_destroy(transfer *tr)
{
    curl_easy_cleanup(tr->easy);
    curl_url_cleanup(tr->uh);
    free(tr->uh_url);
    sb_free(&tr->body);
    sb_free(&tr->hdr);
    sb_free(&tr->url);
    free(tr->headers);
    free(tr);
}

static void sb_clear(strbuf *sb)
{
    if (sb->cap > KEEP_BUFFER_MAX) sb_free(sb);
    sb->len = 0;
}

/* Back to the pool: only a handle that ran a plain request to its end
 * keeps its options; any other is reset. */
static void transfer_put(transfer *tr)
{
    int reuse = H.nidle < IDLE_TRANSFERS_MAX;
    int reset = tr->dirty || !tr->finished || tr->result != CURLE_OK;
    if (tr->req_headers) {
        if (reuse && !reset) curl_easy_setopt(tr->easy, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(tr->req_headers);
        tr->req_headers = NULL;
    }
    curl_mime_free(tr->mime);
    tr->mime = NULL;
    if (tr->method != tr->method_buf) free(tr->method);
    tr->method = NULL;
    if (!reuse) {
        transfer_destroy(tr);
        return;
    }
    if (reset) {
        curl_easy_reset(tr->easy);
        tr->prepared = 0;
        tr->dirty = 0;
        tr->uh_set = 0;
        tr->timeout_ms = tr->connect_timeout_ms = -1;
    }
    sb_clear(&tr->body);
    sb_clear(&tr->hdr);
    sb_clear(&tr->url);
    tr->nheaders = 0;
    if (tr->capheaders > 256) {
        free(tr->headers);
        tr->headers = NULL;
        tr->capheaders = 0;
    }
    tr->waiter = NULL;
    tr->too_large = 0;
    tr->result = CURLE_OK;
    tr->status = 0;
    tr->errbuf[0] = '\0';
    tr->timeout_from_check = tr->unrecorded = tr->finished = 0;
    H.idle[H.nidle++] = tr;
}

static const char *error_kind(const transfer *tr);

/* A finished transfer goes into the history here, when curl says so, and
 * not when its task resumes: a task cancelled in between must not lose a
 * request the server did answer. */
static void check_done(void)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(H.multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result; /* msg is invalid after remove */
        transfer *tr = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&tr);
        curl_multi_remove_handle(H.multi, easy);
        tr->result = result;
        tr->finished = 1;
        long code = 0;
        if (result == CURLE_OK) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
        tr->status = code;
        history_record(tr, code, result == CURLE_OK ? NULL : error_kind(tr));
        sched_wake(tr->waiter);
    }
}

static void on_socket_ready(int fd, int revents, void *ud)
{
    (void)ud;
    int flags = 0, running;
    if (revents & LOOP_READ) flags |= CURL_CSELECT_IN;
    if (revents & LOOP_WRITE) flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(H.multi, fd, flags, &running);
    check_done();
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)userp;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) loop_unwatch(s);
    else loop_watch(s, (what & CURL_POLL_IN ? LOOP_READ : 0) | (what & CURL_POLL_OUT ? LOOP_WRITE : 0),
                    on_socket_ready, NULL);
    return 0;
}

static void on_timeout(void *ud)
{
    (void)ud;
    H.timer = 0;
    int running;
    curl_multi_socket_action(H.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done();
}

/* curl asks for a timer; acting on it right here would re-enter curl. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    (void)userp;
    loop_timer_cancel(H.timer);
    H.timer = 0;
    if (timeout_ms >= 0) H.timer = loop_timer((double)timeout_ms / 1000.0, on_timeout, NULL);
    return 0;
}

/* A check may hold a thousand requests or more in flight, each on its own
 * connection: the soft descriptor limit goes up to the hard one (within
 * reason), and curl may open as many connections as that leaves room for. */
static long connection_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 512;
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > FD_LIMIT_WANT ? FD_LIMIT_WANT : rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        struct rlimit raised = {want, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl.rlim_cur = want;
    }
    long fds = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > FD_LIMIT_WANT ? FD_LIMIT_WANT : (long)rl.rlim_cur;
    long conns = fds - FD_RESERVE;
    return conns < 32 ? 32 : conns;
}

static void multi_init(void)
{
    if (H.multi) return;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    H.multi = curl_multi_init();
    curl_multi_setopt(H.multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(H.multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    /* Past this many connections curl queues requests instead of running
     * out of descriptors. */
    long conns = connection_limit();
    curl_multi_setopt(H.multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, conns);
    /* Keep as many idle connections as may be open: curl's default cache
     * (four per running transfer) closes and reopens connections when the
     * number of tasks in flight dips between requests. */
    curl_multi_setopt(H.multi, CURLMOPT_MAXCONNECTS, conns);
    /* curl reads the proxy variables at every request; when none is set,
     * "no proxy for any host" says the same once. */
    static const char *const proxy_vars[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                             "all_proxy", "ALL_PROXY", NULL};
    H.no_proxy_env = 1;
    for (int i = 0; proxy_vars[i]; i++) {
        const char *v = getenv(proxy_vars[i]);
        if (v && *v) H.no_proxy_env = 0;
    }
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    transfer *tr = ud;
    size_t len = size * n;
    if (tr->body.len + len > tr->max_body) {
        tr->too_large = 1;
        return 0; /* stops the transfer: CURLE_WRITE_ERROR */
    }
    sb_addn(&tr->body, data, len);
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    transfer *tr = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* a new response (after a redirect or a 100 Continue): start over */
        tr->nheaders = 0;
        tr->hdr.len = 0;
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon) return len;
    const char *v = colon + 1, *end = data + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) end--;
    size_t nlen = (size_t)(colon - data), vlen = (size_t)(end - v);
    grow_array((void **)&tr->hdr.buf, &tr->hdr.cap, tr->hdr.len + nlen + vlen + 2, 1);
    char *at = tr->hdr.buf + tr->hdr.len;
    header_ref h = {(uint32_t)tr->hdr.len, (uint32_t)(tr->hdr.len + nlen + 1)};
    memcpy(at, data, nlen);
    at[nlen] = '\0';
    memcpy(at + nlen + 1, v, vlen);
    at[nlen + 1 + vlen] = '\0';
    tr->hdr.len += nlen + vlen + 2;
    VEC_PUSH(tr->headers, tr->nheaders, tr->capheaders, h);
    return len;
}

/* ---- options ---------------------------------------------------------------- */

static const char *const request_keys[] = {"method", "url", "headers", "query", "body", "json", "form",
                                           "multipart", "timeout", "connect_timeout", "follow", "max_body",
                                           "verify", "ca_file", "cert", "key", "unix_socket", "record", NULL};

static void check_keys(lua_State *L, int opts, const char *const *known, const char *fname)
{
    lua_pushnil(L);
    while (lua_next(L, opts)) {
        lua_pop(L, 1);
        int ok = 0;
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -1);
            for (int i = 0; known[i] && !ok; i++) ok = k[0] == known[i][0] && strcmp(k, known[i]) == 0;
        }
        if (!ok) {
            const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1);
            luaL_error(L, "bad argument #1 to '%s' (unknown option '%s')", fname, k);
        }
    }
}

/* The option table a request reads, and how: http.request{...} reads the
 * caller's table as any Lua code would; the shorthands and clients read
 * only what the table holds, as the copies they once made did. */
typedef struct {
    lua_State *L;
    int opts; /* absolute index; 0: no table */
    int raw;
    const char *fname;
} optsrc;

/* [-0, +1] the option's value (nil when there is no table) */
static int opt_push(const optsrc *o, const char *key)
{
    if (!o->opts) {
        lua_pushnil(o->L);
        return LUA_TNIL;
    }
    if (!o->raw) return lua_getfield(o->L, o->opts, key);
    lua_pushstring(o->L, key);
    return lua_rawget(o->L, o->opts);
}

/* [-0, +1] a string option (numbers become strings), or NULL; the value
 * stays on the stack so the string lives until the caller's settop. */
static const char *opt_string(const optsrc *o, const char *key)
{
    int t = opt_push(o, key);
    if (t == LUA_TNIL) return NULL;
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        luaL_error(o->L, "bad argument #1 to '%s' (option '%s' must be a string, got %s)", o->fname, key,
                   lua_typename(o->L, t));
    return lua_tostring(o->L, -1);
}

/* [-0, +0] the value at the top, checked as each option wants it */
static double check_seconds(lua_State *L, const char *key, const char *fname)
{
    if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) > 0))
        luaL_error(L, "bad argument #1 to '%s' (option '%s' must be a positive number of seconds)", fname, key);
    return lua_tonumber(L, -1);
}

static long check_follow(lua_State *L, const char *fname)
{
    if (lua_isboolean(L, -1)) return lua_toboolean(L, -1) ? 10 : 0;
    if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0) return (long)lua_tointeger(L, -1);
    luaL_error(L, "bad argument #1 to '%s' (option 'follow' must be a boolean or a redirect count)", fname);
    return 0;
}

static lua_Integer check_max_body(lua_State *L, const char *fname)
{
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
        luaL_error(L, "bad argument #1 to '%s' (option 'max_body' must be a byte count)", fname);
    return lua_tointeger(L, -1);
}

static int check_boolean(lua_State *L, const char *key, const char *fname)
{
    if (!lua_isboolean(L, -1)) luaL_error(L, "bad argument #1 to '%s' (option '%s' must be a boolean)", fname, key);
    return lua_toboolean(L, -1);
}

/* The header line curl sends for one pair of a headers table (key at -2,
 * value at -1), checked; an empty value sends the header empty. */
static const char *header_line(lua_State *L, strbuf *line, const char *fname)
{
    if (lua_type(L, -2) != LUA_TSTRING || (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
        luaL_error(L, "bad argument #1 to '%s' (headers must map names to strings)", fname);
    const char *name = lua_tostring(L, -2);
    const char *value = lua_tostring(L, -1);
    if (strpbrk(name, ":\r\n") || strpbrk(value, "\r\n"))
        luaL_error(L, "bad argument #1 to '%s' (header '%s' contains a newline or colon)", fname, name);
    line->len = 0;
    sb_adds(line, name);
    if (*value) {
        sb_addn(line, ": ", 2);
        sb_adds(line, value);
    } else {
        sb_addc(line, ';');
    }
    return line->buf;
}

static void urlencode_pairs(lua_State *L, int tbl, CURL *easy, strbuf *out, const char *what, const char *fname)
{
    /* sorted keys: the same table always gives the same query string */
    lua_newtable(L);
    int keys = lua_gettop(L);
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, tbl)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "bad argument #1 to '%s' (%s keys must be strings)", fname, what);
        lua_pushvalue(L, -1);
        lua_rawseti(L, keys, ++n);
    }
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, keys);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, keys, i);
        const char *k = lua_tostring(L, -1);
        lua_gettable(L, tbl);
        int vt = lua_type(L, -1);
        if (vt != LUA_TSTRING && vt != LUA_TNUMBER && vt != LUA_TBOOLEAN)
            luaL_error(L, "bad argument #1 to '%s' (%s value for '%s' must be a string, number or boolean)", fname,
                       what, k);
        const char *v = vt == LUA_TBOOLEAN ? (lua_toboolean(L, -1) ? "true" : "false") : lua_tostring(L, -1);
        char *ek = curl_easy_escape(easy, k, 0), *ev = curl_easy_escape(easy, v, 0);
        sb_printf(out, "%s%s=%s", out->len ? "&" : "", ek, ev);
        curl_free(ek);
        curl_free(ev);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static int has_header(struct curl_slist *list, const char *name)
{
    size_t n = strlen(name);
    for (; list; list = list->next)
        if (strncasecmp(list->data, name, n) == 0 && list->data[n] == ':') return 1;
    return 0;
}

/* [-0, +0] a string field of a multipart part, or NULL */
static const char *part_string(lua_State *L, int part, const char *key, const char *fname)
{
    optsrc o = {L, part, 0, fname};
    const char *s = opt_string(&o, key);
    lua_pop(L, 1); /* still referenced by the part */
    return s;
}

static void add_multipart(lua_State *L, int parts, transfer *tr, const char *fname)
{
    luaL_argcheck(L, lua_istable(L, parts), 1, "option 'multipart' must be a list of parts");
    tr->mime = curl_mime_init(tr->easy);
    lua_Integer n = (lua_Integer)lua_rawlen(L, parts);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, parts, i);
        int p = lua_gettop(L);
        if (!lua_istable(L, p)) luaL_error(L, "bad argument #1 to '%s' (multipart part %d must be a table)", fname, (int)i);
        static const char *const part_keys[] = {"name", "data", "filename", "content_type", NULL};
        check_keys(L, p, part_keys, fname);
        const char *name = part_string(L, p, "name", fname);
        if (!name) luaL_error(L, "bad argument #1 to '%s' (multipart part %d needs a name)", fname, (int)i);
        curl_mimepart *part = curl_mime_addpart(tr->mime);
        curl_mime_name(part, name);
        lua_getfield(L, p, "data");
        size_t len = 0;
        const char *data = lua_tolstring(L, -1, &len);
        if (!data) luaL_error(L, "bad argument #1 to '%s' (multipart part '%s' needs data, a string)", fname, name);
        curl_mime_data(part, data, len); /* copies */
        lua_pop(L, 1);
        const char *filename = part_string(L, p, "filename", fname);
        if (filename) curl_mime_filename(part, filename);
        const char *ctype = part_string(L, p, "content_type", fname);
        if (ctype) curl_mime_type(part, ctype);
        lua_pop(L, 1);
    }
    curl_easy_setopt(tr->easy, CURLOPT_MIMEPOST, tr->mime);
}

/* A client's defaults, checked once when the client is made. Numbers: 0
 * or -1 when not given. */
typedef struct {
    char *base;
    char **hnames, **hlines; /* header names and the lines curl sends */
    size_t nheaders;
    double timeout, connect_timeout; /* 0: not given */
    long follow;                     /* -1: not given */
    lua_Integer max_body;            /* -1: not given */
    int verify, record;              /* -1: not given */
    char *ca_file, *cert, *key, *unix_socket;
} client_defaults;

/* CURLOPT_URL, or for a URL this handle saw last time too, its parsed
 * form (parsed the way curl parses CURLOPT_URL, which it falls back to
 * when the parse fails, so errors read the same). */
static void set_url(transfer *tr)
{
    const char *url = tr->url.buf;
    if (tr->uh_url && strcmp(tr->uh_url, url) == 0) {
        if (!tr->uh && (tr->uh = curl_url()) &&
            curl_url_set(tr->uh, CURLUPART_URL, url, CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
            curl_url_cleanup(tr->uh);
            tr->uh = NULL;
        }
    } else {
        free(tr->uh_url);
        tr->uh_url = xstrdup(url);
        tr->url_id = 0;
        curl_url_cleanup(tr->uh);
        tr->uh = NULL;
    }
    if (tr->uh) {
        if (!tr->uh_set) curl_easy_setopt(tr->easy, CURLOPT_CURLU, tr->uh);
        tr->uh_set = 1;
        return;
    }
    if (tr->uh_set) curl_easy_setopt(tr->easy, CURLOPT_CURLU, NULL);
    tr->uh_set = 0;
    curl_easy_setopt(tr->easy, CURLOPT_URL, url);
}

static void set_method(transfer *tr, const char *method)
{
    size_t n = strlen(method);
    tr->method = n < sizeof tr->method_buf ? tr->method_buf : xmalloc(n + 1);
    for (size_t i = 0; i <= n; i++) {
        char c = method[i];
        tr->method[i] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
    }
}

/* Builds the transfer from the options (and a client's defaults under
 * them). The URL is `url` when given (a shorthand's, or a client's joined
 * to its base), else the option. Raises on misuse; the caller's wait frees
 * whatever was built so far. */
static void configure(lua_State *L, transfer *tr, const optsrc *o, const client_defaults *cd, const char *url,
                      const char *method)
{
    const char *fname = o->fname;
    const int top = lua_gettop(L);
    luaL_checkstack(L, 24, "http: options");
    if (o->opts) check_keys(L, o->opts, request_keys, fname);
    CURL *e = tr->easy;
    tr->errbuf[0] = '\0';

    if (!url) {
        url = opt_string(o, "url");
        if (!url) luaL_error(L, "bad argument #1 to '%s' (option 'url' is required)", fname);
    }
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        luaL_error(L, "bad argument #1 to '%s' (url must start with http:// or https://)", fname);
    if (url != tr->url.buf) {
        tr->url.len = 0;
        sb_adds(&tr->url, url);
    }
    if (opt_push(o, "query") != LUA_TNIL) {
        if (!lua_istable(L, -1)) luaL_error(L, "bad argument #1 to '%s' (option 'query' must be a table)", fname);
        strbuf q;
        sb_init(&q);
        urlencode_pairs(L, lua_gettop(L), e, &q, "query", fname);
        if (q.len) {
            sb_addc(&tr->url, strchr(tr->url.buf, '?') ? '&' : '?');
            sb_addn(&tr->url, q.buf, q.len);
        }
        sb_free(&q);
    }
    lua_pop(L, 1);
    set_url(tr);

    if (!method) method = opt_string(o, "method");
    set_method(tr, method ? method : "GET");

    /* Headers: the client's, then the call's, which win name by name. */
    static strbuf line;
    int ht = 0;
    if (opt_push(o, "headers") != LUA_TNIL) {
        ht = lua_gettop(L);
        if (!lua_istable(L, ht)) luaL_error(L, "bad argument #1 to '%s' (option 'headers' must be a table)", fname);
    }
    for (size_t i = 0; cd && i < cd->nheaders; i++) {
        if (ht) {
            lua_pushstring(L, cd->hnames[i]);
            int given = lua_rawget(L, ht) != LUA_TNIL;
            lua_pop(L, 1);
            if (given) continue;
        }
        tr->req_headers = curl_slist_append(tr->req_headers, cd->hlines[i]);
    }
    if (ht) {
        lua_pushnil(L);
        while (lua_next(L, ht)) {
            tr->req_headers = curl_slist_append(tr->req_headers, header_line(L, &line, fname));
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);

    int bodies = 0;
    size_t body_len = 0;
    const char *body = NULL;
    if (opt_push(o, "body") != LUA_TNIL) {
        body = lua_tolstring(L, -1, &body_len);
        if (!body) luaL_error(L, "bad argument #1 to '%s' (option 'body' must be a string)", fname);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
        /* a raw body is whatever the script says it is; curl would call
         * it a form unless told otherwise */
        if (!has_header(tr->req_headers, "content-type"))
            tr->req_headers = curl_slist_append(tr->req_headers, "Content-Type:");
        bodies++;
    }
    lua_pop(L, 1);
    if (opt_push(o, "json") != LUA_TNIL) {
        sandbox_require(L, "json");
        lua_getfield(L, -1, "encode");
        lua_pushvalue(L, -3);
        lua_call(L, 1, 1);
        size_t len;
        const char *text = lua_tolstring(L, -1, &len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, text);
        if (!has_header(tr->req_headers, "content-type"))
            tr->req_headers = curl_slist_append(tr->req_headers, "Content-Type: application/json");
        lua_pop(L, 2);
        bodies++;
    }
    lua_pop(L, 1);
    if (opt_push(o, "form") != LUA_TNIL) {
        if (!lua_istable(L, -1)) luaL_error(L, "bad argument #1 to '%s' (option 'form' must be a table)", fname);
        strbuf f;
        sb_init(&f);
        urlencode_pairs(L, lua_gettop(L), e, &f, "form", fname);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)f.len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, f.buf ? f.buf : "");
        sb_free(&f);
        if (!has_header(tr->req_headers, "content-type"))
            tr->req_headers = curl_slist_append(tr->req_headers, "Content-Type: application/x-www-form-urlencoded");
        bodies++;
    }
    lua_pop(L, 1);
    if (opt_push(o, "multipart") != LUA_TNIL) {
        tr->dirty = 1;
        add_multipart(L, lua_gettop(L), tr, fname);
        bodies++;
    }
    lua_pop(L, 1);
    if (bodies) tr->dirty = 1;
    if (bodies > 1) luaL_error(L, "bad argument #1 to '%s' (give one of body, json, form, multipart)", fname);

    /* The method last: POSTFIELDS and MIMEPOST switch curl to POST. */
    if (strcmp(tr->method, "GET") == 0) {
        if (bodies) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "GET");
    } else if (strcmp(tr->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        tr->dirty = 1;
    } else if (strcmp(tr->method, "POST") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, tr->method);
        tr->dirty = 1;
    } else if (!bodies) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, "");
        tr->dirty = 1;
    }
    if (tr->req_headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, tr->req_headers);

    /* Never past the check's own deadline. */
    double timeout = cd && cd->timeout > 0 ? cd->timeout : DEFAULT_TIMEOUT;
    if (opt_push(o, "timeout") != LUA_TNIL) timeout = check_seconds(L, "timeout", fname);
    lua_pop(L, 1);
    double deadline = sandbox_deadline(L);
    if (deadline > 0) {
        double left = deadline - clock_mono();
        if (left < 0.001) left = 0.001;
        if (left < timeout) {
            timeout = left;
            tr->timeout_from_check = 1;
        }
    }
    double connect_timeout = cd && cd->connect_timeout > 0 ? cd->connect_timeout : DEFAULT_CONNECT_TIMEOUT;
    if (opt_push(o, "connect_timeout") != LUA_TNIL) connect_timeout = check_seconds(L, "connect_timeout", fname);
    lua_pop(L, 1);
    if (connect_timeout > timeout) connect_timeout = timeout;
    long timeout_ms = (long)ceil(timeout * 1000), connect_timeout_ms = (long)ceil(connect_timeout * 1000);
    if (timeout_ms != tr->timeout_ms) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (connect_timeout_ms != tr->connect_timeout_ms) curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    tr->timeout_ms = timeout_ms;
    tr->connect_timeout_ms = connect_timeout_ms;

    long follow = cd ? cd->follow : -1;
    if (opt_push(o, "follow") != LUA_TNIL) follow = check_follow(L, fname);
    lua_pop(L, 1);
    if (follow > 0) {
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, follow);
        tr->dirty = 1;
    }

    tr->max_body = (size_t)(cd && cd->max_body >= 0 ? cd->max_body : DEFAULT_MAX_BODY);
    if (opt_push(o, "max_body") != LUA_TNIL) tr->max_body = (size_t)check_max_body(L, fname);
    /* The body becomes a Lua string: past the check's memory limit it could
     * never be kept, and growing it outside the limit would take the whole
     * worker down rather than fail this one request. */
    size_t room = sandbox_mem_limit(L);
    tr->max_body_is_memory = room > 0 && tr->max_body > room;
    if (tr->max_body_is_memory) tr->max_body = room;
    lua_pop(L, 1);

    int verify = cd ? cd->verify : -1;
    if (opt_push(o, "verify") != LUA_TNIL) verify = check_boolean(L, "verify", fname);
    lua_pop(L, 1);
    if (verify >= 0) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, (long)verify);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
        tr->dirty = 1;
    }
    const char *ca = opt_string(o, "ca_file");
    if (!ca && cd) ca = cd->ca_file;
    if (ca) {
        curl_easy_setopt(e, CURLOPT_CAINFO, ca);
        tr->dirty = 1;
    }
    const char *cert = opt_string(o, "cert");
    if (!cert && cd) cert = cd->cert;
    if (cert) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, cert);
        tr->dirty = 1;
    }
    const char *key = opt_string(o, "key");
    if (!key && cd) key = cd->key;
    if (key) {
        curl_easy_setopt(e, CURLOPT_SSLKEY, key);
        tr->dirty = 1;
    }
    int record = cd ? cd->record : -1;
    if (opt_push(o, "record") != LUA_TNIL) record = check_boolean(L, "record", fname);
    lua_pop(L, 1);
    tr->unrecorded = record == 0;
    const char *sock = opt_string(o, "unix_socket");
    if (!sock && cd) sock = cd->unix_socket;
    if (sock) {
        curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, sock);
        tr->dirty = 1;
    }

    if (!tr->prepared) {
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_USERAGENT, "halo/" HALO_VERSION);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, tr->errbuf);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, tr);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, tr);
        curl_easy_setopt(e, CURLOPT_PRIVATE, tr);
        if (H.no_proxy_env) curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
        tr->prepared = 1;
    }
    lua_settop(L, top);
}

/* ---- responses and errors --------------------------------------------------- */

/* A TLS 1.3 server that refuses the client's certificate says so in an
 * alert sent after the client considers the handshake done; when it then
 * resets the connection, the reset can overtake the alert and curl sees only
 * a send or receive failure. On a connection this transfer opened itself,
 * past the TLS handshake and before any byte of a response, that is the TLS
 * layer refusing, not the server being down. */
static int reset_after_handshake(const transfer *tr)
{
    long connects = 0, header_bytes = 0;
    curl_off_t handshake_done = 0;
    if (strncmp(tr->url.buf ? tr->url.buf : "", "https://", 8) != 0) return 0;
    curl_easy_getinfo(tr->easy, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_getinfo(tr->easy, CURLINFO_HEADER_SIZE, &header_bytes);
    curl_easy_getinfo(tr->easy, CURLINFO_APPCONNECT_TIME_T, &handshake_done);
    return connects > 0 && header_bytes == 0 && handshake_done > 0;
}

static const char *error_kind(const transfer *tr)
{
    if (tr->too_large) return "too_large";
    switch (tr->result) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return "dns";
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        /* curl's own cap on the response headers (100k of them, say) */
        if (strstr(tr->errbuf, "Too large response headers")) return "too_large";
        /* TLS 1.3 sends "certificate required" after the handshake: curl
         * sees a receive error, but it is the TLS layer that refused. */
        if (strstr(tr->errbuf, "SSL") || strstr(tr->errbuf, "TLS") || strstr(tr->errbuf, "alert")) return "tls";
        if (reset_after_handshake(tr)) return "tls";
        return "connect";
    case CURLE_COULDNT_CONNECT:
    case CURLE_GOT_NOTHING: return "connect";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED: return "tls";
    case CURLE_ABORTED_BY_CALLBACK: return "cancelled";
    default: return "protocol";
    }
}

/* [-0, +1] err = {kind, message, url, code} */
static void push_error(lua_State *L, transfer *tr, const char *kind)
{
    const char *detail = tr->errbuf[0] ? tr->errbuf : curl_easy_strerror(tr->result);
    char *msg;
    if (strcmp(kind, "too_large") == 0)
        msg = xasprintf("too_large: the response body passed %s (%zu bytes) (%s %s)",
                        tr->max_body_is_memory ? "the check's memory limit" : "max_body", tr->max_body, tr->method,
                        tr->url.buf);
    else if (strcmp(kind, "timeout") == 0 && tr->timeout_from_check)
        msg = xasprintf("timeout: %s; the check's deadline cut the request short (%s %s)", detail, tr->method,
                        tr->url.buf);
    else
        msg = xasprintf("%s: %s (%s %s)", kind, detail, tr->method, tr->url.buf);
    char *clean = redact(msg);
    free(msg);
    halo_error_new(L, kind, clean);
    char *url = redact(tr->url.buf);
    lua_pushstring(L, url);
    free(url);
    lua_setfield(L, -2, "url");
    lua_pushinteger(L, (lua_Integer)tr->result);
    lua_setfield(L, -2, "code");
    free(clean);
}

/* [-0, +1] res.headers: lower-case names (the metatable finds any case) */
static void push_headers(lua_State *L, const char *bytes, const header_ref *refs, size_t nheaders)
{
    lua_createtable(L, 0, (int)nheaders);
    char small[64];
    for (size_t i = 0; i < nheaders; i++) {
        const char *name = bytes + refs[i].name, *value = bytes + refs[i].value;
        size_t n = strlen(name);
        char *lower = n < sizeof small ? small : xmalloc(n + 1);
        for (size_t k = 0; k < n; k++) {
            char c = name[k];
            lower[k] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
        }
        lua_pushlstring(L, lower, n);
        if (lower != small) free(lower);
        /* repeated headers: the lookup gives all values joined, as HTTP
         * allows; res:header_values(name) keeps them apart */
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) == LUA_TSTRING) {
            lua_pushfstring(L, "%s, %s", lua_tostring(L, -1), value);
            lua_remove(L, -2);
        } else {
            lua_pop(L, 1);
            lua_pushstring(L, value);
        }
        lua_rawset(L, -3);
    }
    luaL_setmetatable(L, HEADERS_MT);
}

/* What a response builds on first use, saved from the handle before it
 * goes back to the pool: one block, no finalizer. A check that only looks
 * at status and body never pays for the rest, headers included (a table
 * of ten headers costs more than all the other fields together). */
enum { LAZY_HEADERS, LAZY_TIMING, LAZY_REMOTE, LAZY_VERSION, LAZY_HEADER_LIST, LAZY_URL, LAZY_FIELDS };
static const char *const lazy_names[] = {"headers", "timing", "remote", "http_version", "header_list", "url", NULL};

typedef struct {
    double timing[5]; /* dns, connect, tls, first_byte, total */
    lua_Integer port;
    const char *version;
    unsigned built; /* a bit per field already set in the table */
    uint32_t nheaders;
    size_t hdr_len;
    char ip[48];
    header_ref refs[]; /* then the header bytes, then the effective URL */
} lazy_response;

#define LAZY_BYTES(lz) ((const char *)((lz)->refs + (lz)->nheaders))

static void push_lazy(lua_State *L, const lazy_response *lz, int field)
{
    static const char *const timing_names[] = {"dns", "connect", "tls", "first_byte", "total"};
    const char *bytes = LAZY_BYTES(lz);
    switch (field) {
    case LAZY_HEADERS: push_headers(L, bytes, lz->refs, lz->nheaders); break;
    case LAZY_TIMING:
        lua_createtable(L, 0, 5);
        for (int i = 0; i < 5; i++) {
            lua_pushnumber(L, lz->timing[i]);
            lua_setfield(L, -2, timing_names[i]);
        }
        break;
    case LAZY_REMOTE:
        lua_createtable(L, 0, 2);
        lua_pushstring(L, lz->ip);
        lua_setfield(L, -2, "ip");
        lua_pushinteger(L, lz->port);
        lua_setfield(L, -2, "port");
        break;
    case LAZY_VERSION: lua_pushstring(L, lz->version); break;
    case LAZY_HEADER_LIST:
        lua_createtable(L, (int)lz->nheaders, 0);
        for (uint32_t i = 0; i < lz->nheaders; i++) {
            lua_createtable(L, 2, 0);
            lua_pushstring(L, bytes + lz->refs[i].name);
            lua_rawseti(L, -2, 1);
            lua_pushstring(L, bytes + lz->refs[i].value);
            lua_rawseti(L, -2, 2);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    case LAZY_URL: lua_pushstring(L, bytes + lz->hdr_len); break;
    }
}

static void push_response(lua_State *L, transfer *tr)
{
    CURL *e = tr->easy;
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, tr->status);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, tr->body.buf ? tr->body.buf : "", tr->body.len);
    lua_setfield(L, -2, "body");
    lua_pushstring(L, tr->method);
    lua_setfield(L, -2, "method");

    char *eff = NULL;
    curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &eff);
    if (!eff) eff = tr->url.buf;
    size_t url_len = strlen(eff);
    lazy_response *lz = lua_newuserdatauv(
        L, sizeof *lz + tr->nheaders * sizeof(header_ref) + tr->hdr.len + url_len + 1, 0);
    curl_off_t t[5] = {0, 0, 0, 0, 0};
    curl_easy_getinfo(e, CURLINFO_NAMELOOKUP_TIME_T, &t[0]);
    curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &t[1]);
    curl_easy_getinfo(e, CURLINFO_APPCONNECT_TIME_T, &t[2]);
    curl_easy_getinfo(e, CURLINFO_STARTTRANSFER_TIME_T, &t[3]);
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &t[4]);
    for (int i = 0; i < 5; i++) lz->timing[i] = (double)t[i] / 1e6;
    char *ip = NULL;
    long port = 0, version = 0;
    curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &ip);
    curl_easy_getinfo(e, CURLINFO_PRIMARY_PORT, &port);
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
    size_t ip_len = ip ? strlen(ip) : 0;
    if (ip_len >= sizeof lz->ip) ip_len = sizeof lz->ip - 1;
    memcpy(lz->ip, ip ? ip : "", ip_len);
    lz->ip[ip_len] = '\0';
    lz->port = port;
    lz->version = version == CURL_HTTP_VERSION_1_0   ? "1.0"
                  : version == CURL_HTTP_VERSION_1_1 ? "1.1"
                  : version == CURL_HTTP_VERSION_2_0 ? "2"
                  : version == CURL_HTTP_VERSION_3   ? "3"
                                                     : "?";
    lz->built = 0;
    lz->nheaders = (uint32_t)tr->nheaders;
    lz->hdr_len = tr->hdr.len;
    if (tr->nheaders) memcpy(lz->refs, tr->headers, tr->nheaders * sizeof(header_ref));
    char *bytes = (char *)LAZY_BYTES(lz);
    if (tr->hdr.len) memcpy(bytes, tr->hdr.buf, tr->hdr.len);
    memcpy(bytes + tr->hdr.len, eff, url_len + 1);

    lua_rawgetp(L, LUA_REGISTRYINDEX, &lazy_key);
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3); /* lazy[res] = lz */
    lua_pop(L, 2);
    luaL_setmetatable(L, RESPONSE_MT);
}

/* ---- request ------------------------------------------------------------------- */

typedef struct {
    transfer *tr;
    int in_multi;
} request_wait;

/* Aborted mid-flight (task cancelled, check over, thread collected): out
 * of curl, recorded as cancelled unless it had finished, back to the pool. */
static void request_abandon(request_wait *w)
{
    transfer *tr = w->tr;
    if (!tr) return;
    if (w->in_multi && !tr->finished) {
        curl_multi_remove_handle(H.multi, tr->easy);
        history_record(tr, 0, "cancelled");
    }
    w->tr = NULL;
    transfer_put(tr);
}

static void request_cancel(void *ud) { request_abandon(ud); }

static int request_wait_gc(lua_State *L)
{
    request_abandon(lua_touserdata(L, 1));
    return 0;
}

static int request_done(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    request_wait *w = (request_wait *)ctx;
    transfer *tr = w->tr;
    w->tr = NULL;
    w->in_multi = 0;
    if (tr->result == CURLE_OK) {
        push_response(L, tr);
        transfer_put(tr);
        return 1;
    }
    const char *kind = error_kind(tr);
    lua_pushnil(L);
    push_error(L, tr, kind);
    transfer_put(tr);
    return 2;
}

/* The URL of `path` under a client's base: one slash between them, and an
 * absolute path ignores the base. */
static void join_url(strbuf *out, const char *base, const char *path)
{
    out->len = 0;
    if (!base || strncasecmp(path, "http://", 7) == 0 || strncasecmp(path, "https://", 8) == 0) {
        sb_adds(out, path);
        return;
    }
    size_t bl = strlen(base);
    int base_slash = bl > 0 && base[bl - 1] == '/', path_slash = path[0] == '/';
    sb_adds(out, base);
    if (base_slash && path_slash) sb_adds(out, path + 1);
    else if (!base_slash && !path_slash && path[0]) {
        sb_addc(out, '/');
        sb_adds(out, path);
    } else {
        sb_adds(out, path);
    }
}

/* Every request starts here: `url` set for the shorthands; `path` (and
 * cd) for a client; else the options name it. */
static int request_start(lua_State *L, const optsrc *o, const client_defaults *cd, const char *path, const char *url,
                         const char *method)
{
    multi_init();
    task *me = sched_waiter(L, "http.request");

    /* The wait owns the transfer from the start, so a raised option error
     * hands it back through __gc. */
    request_wait *w = (request_wait *)lua_newuserdatauv(L, sizeof *w, 0);
    w->tr = NULL;
    w->in_multi = 0;
    luaL_setmetatable(L, WAIT_MT);
    transfer *tr = transfer_get();
    if (!tr) return luaL_error(L, "http: curl could not create a handle");
    w->tr = tr;
    if (cd) {
        join_url(&tr->url, cd->base, path);
        url = tr->url.buf;
    }
    configure(L, tr, o, cd, url, method);
    tr->waiter = me;
    tr->started = clock_mono();
    CURLMcode mc = curl_multi_add_handle(H.multi, tr->easy);
    if (mc != CURLM_OK) return luaL_error(L, "http: %s", curl_multi_strerror(mc));
    w->in_multi = 1;
    return sched_wait(L, request_cancel, w, request_done, (lua_KContext)w);
}

/* http.request{...} -> res | nil, err */
static int http_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    optsrc o = {L, 1, 0, "request"};
    return request_start(L, &o, NULL, NULL, NULL, NULL);
}

/* http.get(url [, opts]) and friends: request with method and url set */
static int shorthand(lua_State *L, const char *method)
{
    const char *url = luaL_checkstring(L, 1);
    optsrc o = {L, 0, 1, "request"};
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        o.opts = 2;
    }
    lua_settop(L, 2);
    return request_start(L, &o, NULL, NULL, url, method);
}

static int http_get(lua_State *L) { return shorthand(L, "GET"); }
static int http_post(lua_State *L) { return shorthand(L, "POST"); }
static int http_put(lua_State *L) { return shorthand(L, "PUT"); }
static int http_patch(lua_State *L) { return shorthand(L, "PATCH"); }
static int http_delete(lua_State *L) { return shorthand(L, "DELETE"); }
static int http_head(lua_State *L) { return shorthand(L, "HEAD"); }

/* http.history() -> every request this check made so far */
static int http_history(lua_State *L)
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

/* ---- response methods ---------------------------------------------------------- */

/* res:json() -> value | nil, err */
static int response_json(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    sandbox_require(L, "json");
    lua_getfield(L, -1, "decode");
    lua_getfield(L, 1, "body");
    lua_call(L, 1, 2);
    if (lua_isnil(L, -2)) return 2; /* nil, err */
    lua_pop(L, 1);
    return 1;
}

/* res:header(name) -> value (repeats joined) | nil */
static int response_header(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *name = luaL_checkstring(L, 2);
    lua_getfield(L, 1, "headers");
    lua_pushstring(L, name);
    lua_gettable(L, -2);
    return 1;
}

/* res:header_values(name) -> { value, ... } in the order received */
static int response_header_values(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *name = luaL_checkstring(L, 2);
    lua_newtable(L);
    lua_getfield(L, 1, "header_list");
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1), k = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_rawgeti(L, -1, 1);
        if (strcasecmp(lua_tostring(L, -1), name) == 0) {
            lua_rawgeti(L, -2, 2);
            lua_rawseti(L, -5, ++k);
        }
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    return 1;
}

static int response_tostring(lua_State *L)
{
    lua_getfield(L, 1, "status");
    lua_getfield(L, 1, "method");
    lua_getfield(L, 1, "url");
    lua_getfield(L, 1, "body");
    lua_pushfstring(L, "HTTP %d (%s %s, %d bytes)", (int)lua_tointeger(L, -4), lua_tostring(L, -3),
                    lua_tostring(L, -2), (int)luaL_len(L, -1));
    return 1;
}

/* Sets a lazy field in the response at 1 from its record (upvalue 2 holds
 * the records), unless it was set once already; leaves the value (or nil). */
static void build_lazy(lua_State *L, int field)
{
    lua_pushvalue(L, 1);
    lazy_response *lz = lua_rawget(L, lua_upvalueindex(2)) == LUA_TUSERDATA ? lua_touserdata(L, -1) : NULL;
    lua_pop(L, 1);
    if (!lz || (lz->built & (1u << field))) {
        lua_pushnil(L);
        return;
    }
    lz->built |= 1u << field;
    push_lazy(L, lz, field);
    lua_pushstring(L, lazy_names[field]);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
}

/* res.json, res.header, ... (upvalue 1); res.timing, res.url, ... built on
 * first use and kept in the table from then on. */
static int response_index(lua_State *L)
{
    lua_settop(L, 2);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    if (lua_type(L, 2) != LUA_TSTRING) return 1;
    const char *k = lua_tostring(L, 2);
    for (int i = 0; i < LAZY_FIELDS; i++) {
        if (strcmp(k, lazy_names[i]) == 0) {
            build_lazy(L, i);
            return 1;
        }
    }
    return 1;
}

static int response_next(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    if (lua_next(L, 1)) return 2;
    lua_pushnil(L);
    return 1;
}

/* pairs(res) sees every field, built or not. */
static int response_pairs(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    for (int i = 0; i < LAZY_FIELDS; i++) {
        build_lazy(L, i);
        lua_pop(L, 1);
    }
    lua_pushcfunction(L, response_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* headers["Content-Type"] finds "content-type" */
static int headers_index(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_type(L, 2) != LUA_TSTRING) return 0;
    size_t n;
    const char *k = lua_tolstring(L, 2, &n);
    char small[64];
    char *lower = n < sizeof small ? small : xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) lower[i] = k[i] >= 'A' && k[i] <= 'Z' ? (char)(k[i] + 32) : k[i];
    lower[n] = '\0';
    lua_pushstring(L, lower);
    if (lower != small) free(lower);
    lua_rawget(L, 1);
    return 1;
}

/* ---- client ----------------------------------------------------------------------- */

static const char *const client_keys[] = {"base", "headers", "timeout", "connect_timeout", "follow", "max_body",
                                          "verify", "ca_file", "cert", "key", "unix_socket", "record", NULL};

static int defaults_gc(lua_State *L)
{
    client_defaults *cd = lua_touserdata(L, 1);
    for (size_t i = 0; i < cd->nheaders; i++) {
        free(cd->hnames[i]);
        free(cd->hlines[i]);
    }
    free(cd->hnames);
    free(cd->hlines);
    free(cd->base);
    free(cd->ca_file);
    free(cd->cert);
    free(cd->key);
    free(cd->unix_socket);
    memset(cd, 0, sizeof *cd);
    return 0;
}

/* [-0, +0] a copy of a string option of the defaults, checked, or NULL */
static char *defaults_string(const optsrc *o, const char *key)
{
    const char *s = opt_string(o, key);
    char *copy = s ? xstrdup(s) : NULL;
    lua_pop(o->L, 1);
    return copy;
}

/* Under pcall: (defaults table, client_defaults) -> checks each option as
 * a request would, and keeps it in C. Raises on the first bad one. */
static int defaults_compile(lua_State *L)
{
    client_defaults *cd = lua_touserdata(L, 2);
    optsrc o = {L, 1, 1, "request"};
    if (opt_push(&o, "headers") != LUA_TNIL) {
        int ht = lua_gettop(L);
        luaL_checktype(L, ht, LUA_TTABLE);
        size_t cap = 0;
        strbuf line;
        sb_init(&line);
        lua_pushnil(L);
        while (lua_next(L, ht)) {
            if (lua_type(L, -2) != LUA_TSTRING || (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)) {
                sb_free(&line);
                return luaL_error(L, "headers must map names to strings");
            }
            const char *name = lua_tostring(L, -2), *value = lua_tostring(L, -1);
            if (strpbrk(name, ":\r\n") || strpbrk(value, "\r\n")) {
                sb_free(&line);
                return luaL_error(L, "a header contains a newline or colon");
            }
            header_line(L, &line, "request");
            size_t n = cd->nheaders;
            grow_array((void **)&cd->hnames, &cap, n + 1, sizeof *cd->hnames);
            cd->hlines = xrealloc(cd->hlines, cap * sizeof *cd->hlines);
            cd->hnames[n] = xstrdup(name);
            cd->hlines[n] = xstrdup(line.buf);
            cd->nheaders = n + 1;
            lua_pop(L, 1);
        }
        sb_free(&line);
    }
    lua_pop(L, 1);
    if (opt_push(&o, "timeout") != LUA_TNIL) cd->timeout = check_seconds(L, "timeout", "request");
    lua_pop(L, 1);
    if (opt_push(&o, "connect_timeout") != LUA_TNIL) cd->connect_timeout = check_seconds(L, "connect_timeout", "request");
    lua_pop(L, 1);
    if (opt_push(&o, "follow") != LUA_TNIL) cd->follow = check_follow(L, "request");
    lua_pop(L, 1);
    if (opt_push(&o, "max_body") != LUA_TNIL) cd->max_body = check_max_body(L, "request");
    lua_pop(L, 1);
    if (opt_push(&o, "verify") != LUA_TNIL) cd->verify = check_boolean(L, "verify", "request");
    lua_pop(L, 1);
    if (opt_push(&o, "record") != LUA_TNIL) cd->record = check_boolean(L, "record", "request");
    lua_pop(L, 1);
    cd->ca_file = defaults_string(&o, "ca_file");
    cd->cert = defaults_string(&o, "cert");
    cd->key = defaults_string(&o, "key");
    cd->unix_socket = defaults_string(&o, "unix_socket");
    return 0;
}

/* The checked defaults of the client at idx, or NULL: then its defaults
 * did not pass the checks, and each request takes the table path, which
 * raises as it always did. */
static client_defaults *client_compiled(lua_State *L, int idx)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &clients_key);
    lua_pushvalue(L, idx);
    client_defaults *cd = lua_rawget(L, -2) == LUA_TUSERDATA ? lua_touserdata(L, -1) : NULL;
    lua_pop(L, 2);
    return cd;
}

/* dst[k] = v for every pair of src (absolute indices) */
static void copy_into(lua_State *L, int dst, int src)
{
    lua_pushnil(L);
    while (lua_next(L, src)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, dst);
    }
}

/* [-0, +1] path resolved against the client's base URL */
static void push_client_url(lua_State *L, int client, const char *path)
{
    lua_getfield(L, client, "base");
    const char *base = lua_tostring(L, -1);
    strbuf u;
    sb_init(&u);
    join_url(&u, base, path);
    lua_pushlstring(L, u.buf, u.len);
    sb_free(&u);
    lua_remove(L, -2);
}

/* The table path: the client's defaults under the call's options, merged
 * into one table; headers merge name by name, a relative url joins the
 * base. Only for a client whose defaults did not pass the checks. */
static int client_request_table(lua_State *L)
{
    lua_settop(L, 2);
    lua_getfield(L, 1, "defaults"); /* 3 */
    lua_newtable(L);                /* 4: the options sent */
    copy_into(L, 4, 3);
    copy_into(L, 4, 2);
    if (lua_getfield(L, 3, "headers") == LUA_TTABLE && lua_getfield(L, 2, "headers") == LUA_TTABLE) {
        lua_newtable(L);
        copy_into(L, 7, 5);
        copy_into(L, 7, 6);
        lua_setfield(L, 4, "headers");
    }
    lua_settop(L, 4);
    lua_getfield(L, 4, "url");
    push_client_url(L, 1, lua_isstring(L, 5) ? lua_tostring(L, 5) : "");
    lua_setfield(L, 4, "url");
    lua_settop(L, 4);
    lua_replace(L, 1);
    lua_settop(L, 1);
    return http_request(L);
}

/* client:request{...}: the client's defaults under the call's options;
 * headers merge name by name, a relative url joins the base. */
static int client_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    client_defaults *cd = client_compiled(L, 1);
    if (!cd) return client_request_table(L);
    lua_pushliteral(L, "url");
    lua_rawget(L, 2); /* 3: keeps the path alive */
    const char *path = lua_isstring(L, 3) ? lua_tostring(L, 3) : "";
    optsrc o = {L, 2, 1, "request"};
    return request_start(L, &o, cd, path, NULL, NULL);
}

static int client_shorthand(lua_State *L, const char *method)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *path = luaL_optstring(L, 2, "");
    optsrc o = {L, 0, 1, "request"};
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        o.opts = 3;
    }
    client_defaults *cd = client_compiled(L, 1);
    if (cd) {
        lua_settop(L, 3);
        return request_start(L, &o, cd, path, NULL, method);
    }
    lua_newtable(L);
    if (o.opts) {
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, -4);
        }
    }
    lua_pushstring(L, path);
    lua_setfield(L, -2, "url");
    lua_pushstring(L, method);
    lua_setfield(L, -2, "method");
    lua_replace(L, 2);
    lua_settop(L, 2);
    return client_request_table(L);
}

static int client_get(lua_State *L) { return client_shorthand(L, "GET"); }
static int client_post(lua_State *L) { return client_shorthand(L, "POST"); }
static int client_put(lua_State *L) { return client_shorthand(L, "PUT"); }
static int client_patch(lua_State *L) { return client_shorthand(L, "PATCH"); }
static int client_delete(lua_State *L) { return client_shorthand(L, "DELETE"); }
static int client_head(lua_State *L) { return client_shorthand(L, "HEAD"); }

/* http.client{ base = url, headers = {...}, ...defaults } -> client */
static int http_client(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    check_keys(L, 1, client_keys, "client");
    lua_settop(L, 1);
    lua_newtable(L); /* 2: the client */
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        if (strcmp(lua_tostring(L, -2), "base") == 0) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, -4);
    }
    lua_setfield(L, 2, "defaults");
    lua_getfield(L, 1, "base");
    if (!lua_isnil(L, -1) && !lua_isstring(L, -1)) return luaL_argerror(L, 1, "option 'base' must be a URL");
    lua_setfield(L, 2, "base");
    luaL_setmetatable(L, CLIENT_MT);

    /* The defaults, checked once here rather than at every request. */
    client_defaults *cd = lua_newuserdatauv(L, sizeof *cd, 0); /* 3 */
    memset(cd, 0, sizeof *cd);
    cd->follow = cd->max_body = -1;
    cd->verify = cd->record = -1;
    luaL_setmetatable(L, DEFAULTS_MT);
    lua_pushcfunction(L, defaults_compile);
    lua_getfield(L, 2, "defaults");
    lua_pushvalue(L, 3);
    if (lua_pcall(L, 2, 0, 0) == LUA_OK) {
        lua_getfield(L, 2, "base");
        const char *base = lua_tostring(L, -1);
        cd->base = base ? xstrdup(base) : NULL;
        lua_pop(L, 1);
        lua_rawgetp(L, LUA_REGISTRYINDEX, &clients_key);
        lua_pushvalue(L, 2);
        lua_pushvalue(L, 3);
        lua_rawset(L, -3);
    }
    lua_settop(L, 2);
    return 1;
}

/* [-0, +0] registry[key] = a table with weak keys */
static void new_weak_table(lua_State *L, const void *key)
{
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

int luaopen_http(lua_State *L)
{
    luaL_newmetatable(L, WAIT_MT);
    lua_pushcfunction(L, request_wait_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    new_weak_table(L, &lazy_key);
    new_weak_table(L, &clients_key);

    luaL_newmetatable(L, DEFAULTS_MT);
    lua_pushcfunction(L, defaults_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    static const luaL_Reg response_methods[] = {
        {"json", response_json},
        {"header", response_header},
        {"header_values", response_header_values},
        {NULL, NULL},
    };
    luaL_newmetatable(L, RESPONSE_MT);
    luaL_newlib(L, response_methods);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &lazy_key);
    lua_pushcclosure(L, response_index, 2);
    lua_setfield(L, -2, "__index");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &lazy_key);
    lua_pushnil(L); /* upvalue 1 unused */
    lua_insert(L, -2);
    lua_pushcclosure(L, response_pairs, 2);
    lua_setfield(L, -2, "__pairs");
    lua_pushcfunction(L, response_tostring);
    lua_setfield(L, -2, "__tostring");
    /* scripts never get at the host's methods to call them on the wrong thing */
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);

    luaL_newmetatable(L, HEADERS_MT);
    lua_pushcfunction(L, headers_index);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);

    static const luaL_Reg client_methods[] = {
        {"request", client_request}, {"get", client_get},       {"post", client_post},
        {"put", client_put},         {"patch", client_patch},   {"delete", client_delete},
        {"head", client_head},       {NULL, NULL},
    };
    luaL_newmetatable(L, CLIENT_MT);
    luaL_newlib(L, client_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    static const luaL_Reg funcs[] = {
        {"request", http_request}, {"get", http_get},         {"post", http_post},
        {"put", http_put},         {"patch", http_patch},     {"delete", http_delete},
        {"head", http_head},       {"client", http_client},   {"history", http_history},
        {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    return 1;
}
