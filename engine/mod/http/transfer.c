/* Transfers and curl's multi interface driven by the engine's event loop.
 * A request yields its task; curl's socket and timer callbacks only
 * register interest with the loop, and completion only records and wakes:
 * acting inside a callback would re-enter curl, and a task resumed from
 * there could start another transfer while curl is mid-call.
 *
 * Transfers are pooled with their curl handles and buffers, because a
 * check may send tens of thousands of requests: a reused handle keeps the
 * options every request shares and the parsed form of a URL it sees
 * again, and curl keeps its DNS and connection caches per multi. */
#include "mod/http/http.h"

#include "core/loop.h"
#include "core/sched.h"
#include "core/util.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define IDLE_TRANSFERS_MAX 256
#define KEEP_BUFFER_MAX (16 * 1024) /* a pooled transfer keeps buffers up to this size */
#define FD_LIMIT_WANT 65536         /* the soft descriptor limit is raised towards this */
#define FD_RESERVE 128              /* descriptors left to everything but connections */

static struct {
    CURLM *multi;
    loop_timer_id timer;
    transfer *idle[IDLE_TRANSFERS_MAX];
    int nidle;
    int no_proxy_env; /* no proxy variable is set: curl need not look at every request */
} H;

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

void http_transfer_clear_headers(transfer *tr)
{
    sb_clear(&tr->hdr);
    tr->nheaders = 0;
    if (tr->capheaders > 256) {
        free(tr->headers);
        tr->headers = NULL;
        tr->capheaders = 0;
    }
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
    sb_clear(&tr->url);
    http_transfer_clear_headers(tr);
    tr->waiter = NULL;
    tr->too_large = 0;
    tr->result = CURLE_OK;
    tr->status = 0;
    tr->errbuf[0] = '\0';
    tr->timeout_from_check = tr->unrecorded = tr->finished = 0;
    H.idle[H.nidle++] = tr;
}

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
        http_history_record(tr, code, result == CURLE_OK ? NULL : http_error_kind(tr));
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

size_t http_on_header(char *data, size_t size, size_t n, void *ud)
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

void http_transfer_prepare(transfer *tr)
{
    if (tr->prepared) return;
    CURL *e = tr->easy;
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "halo/" HALO_VERSION);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, tr->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, tr);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, tr);
    curl_easy_setopt(e, CURLOPT_PRIVATE, tr);
    if (H.no_proxy_env) curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    tr->prepared = 1;
}

/* ---- a request's wait ---------------------------------------------------- */

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
        http_history_record(tr, 0, "cancelled");
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
        http_push_response(L, tr);
        transfer_put(tr);
        return 1;
    }
    const char *kind = http_error_kind(tr);
    lua_pushnil(L);
    http_push_error(L, tr, kind);
    transfer_put(tr);
    return 2;
}

int http_request_start(lua_State *L, const optsrc *o, const client_defaults *cd, const char *path, const char *url,
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
        http_join_url(&tr->url, cd->base, path);
        url = tr->url.buf;
    }
    http_configure(L, tr, o, cd, url, method);
    tr->waiter = me;
    tr->started = clock_mono();
    CURLMcode mc = curl_multi_add_handle(H.multi, tr->easy);
    if (mc != CURLM_OK) return luaL_error(L, "http: %s", curl_multi_strerror(mc));
    w->in_multi = 1;
    return sched_wait(L, request_cancel, w, request_done, (lua_KContext)w);
}

int http_request_check(lua_State *L, const optsrc *o)
{
    multi_init();
    request_wait *w = (request_wait *)lua_newuserdatauv(L, sizeof *w, 0);
    w->tr = NULL;
    w->in_multi = 0;
    luaL_setmetatable(L, WAIT_MT); /* a raised option error hands it back through __gc */
    transfer *tr = transfer_get();
    if (!tr) return luaL_error(L, "http: curl could not create a handle");
    w->tr = tr;
    http_configure(L, tr, o, NULL, NULL, NULL);
    request_abandon(w); /* never sent: back to the pool at once */
    return 0;
}

void http_transfer_open(lua_State *L)
{
    static const luaL_Reg wait_meta[] = {{"__gc", request_wait_gc}, {NULL, NULL}};
    halo_type_register(L, &(halo_type){WAIT_MT, NULL, wait_meta});
}
