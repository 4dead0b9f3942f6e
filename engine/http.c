/* The http module: libcurl's multi interface driven by the engine's event
 * loop. A request yields its task; curl's socket and timer callbacks only
 * register interest with the loop, and completion only records and wakes.
 * Network failures are data (nil, err with a kind); misuse raises.
 * Every request lands in the check's history, streamed to the runner. */
#include "loop.h"
#include "sandbox.h"
#include "sched.h"
#include "util.h"
#include "worker.h"

#include <curl/curl.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RESPONSE_MT "halo.http.response"
#define HEADERS_MT "halo.http.headers"
#define DEFAULT_TIMEOUT 30.0
#define DEFAULT_CONNECT_TIMEOUT 10.0
#define DEFAULT_MAX_BODY ((lua_Integer)64 << 20)
#define IDLE_HANDLES_MAX 256

typedef struct {
    char *name, *value;
} header;

typedef struct transfer {
    CURL *easy;
    task *waiter;
    struct curl_slist *req_headers;
    curl_mime *mime;
    strbuf body;
    size_t max_body;
    int too_large;
    header *headers;
    size_t nheaders, capheaders;
    CURLcode result;
    char errbuf[CURL_ERROR_SIZE];
    double started; /* monotonic */
    char *method, *url;
    int timeout_from_check; /* the check's deadline, not the option, set the timeout */
    int unrecorded;         /* record = false: kept out of the history */
    int finished;           /* curl is done with it (and it is in the history) */
} transfer;

static struct {
    CURLM *multi;
    loop_timer_id timer;
    CURL *idle[IDLE_HANDLES_MAX];
    int nidle;
    int next_request;
} H;

/* ---- history ------------------------------------------------------------ */

/* Headers that say which replica answered, first match wins. */
static const char *const replica_headers[] = {"x-served-by", "x-replica", "x-upstream", "x-upstream-addr", NULL};

/* Kept in C, not in the sandbox: a request can end while no Lua stack is
 * free to touch (cancelled from the host), and the check must not be able
 * to rewrite its own history. http.history() copies it out. */
typedef struct {
    int id, task;
    double start, end;
    char *method, *url, *replica;
    const char *error; /* static kind names */
    long status;
    size_t bytes;
} request_record;

#define HISTORY_MAX 500000
static request_record *history;
static size_t nhistory, caphistory;

static const char *find_header(const transfer *tr, const char *name)
{
    for (size_t i = 0; i < tr->nheaders; i++)
        if (strcasecmp(tr->headers[i].name, name) == 0) return tr->headers[i].value;
    return NULL;
}

/* One record per request, kept for http.history() and streamed to the
 * runner: when it ran, what it asked, what came back. */
static void history_record(transfer *tr, long status, const char *error_kind)
{
    if (tr->unrecorded) return;
    double origin = host_origin();
    const char *replica = NULL;
    for (int i = 0; replica_headers[i] && !replica; i++) replica = find_header(tr, replica_headers[i]);
    request_record r = {++H.next_request, sched_task_id(tr->waiter), tr->started - origin, clock_mono() - origin,
                        xstrdup(tr->method), redact(tr->url), replica ? xstrdup(replica) : NULL,
                        error_kind, status, tr->body.len};

    strbuf sb;
    sb_init(&sb);
    sb_printf(&sb, "{\"id\":%d,\"task\":%d,\"start\":%.6f,\"end\":%.6f,\"method\":", r.id, r.task, r.start,
              r.end);
    sb_json_string(&sb, r.method);
    sb_adds(&sb, ",\"url\":");
    sb_json_string(&sb, r.url);
    if (status > 0) sb_printf(&sb, ",\"status\":%ld", status);
    else sb_adds(&sb, ",\"status\":null");
    sb_adds(&sb, ",\"error\":");
    if (error_kind) sb_json_string(&sb, error_kind);
    else sb_adds(&sb, "null");
    sb_adds(&sb, ",\"replica\":");
    if (replica) sb_json_string(&sb, replica);
    else sb_adds(&sb, "null");
    sb_printf(&sb, ",\"bytes\":%zu}", r.bytes);
    const char *fields[] = {sb.buf};
    host_event("request", 1, fields);
    sb_free(&sb);

    if (nhistory >= HISTORY_MAX) {
        free(r.method);
        free(r.url);
        free(r.replica);
        return;
    }
    VEC_PUSH(history, nhistory, caphistory, r);
}

/* ---- transfers and the multi handle ------------------------------------- */

static CURL *easy_get(void)
{
    if (H.nidle > 0) return H.idle[--H.nidle];
    return curl_easy_init();
}

/* Handles are reused: curl keeps DNS and connection caches per multi, and
 * a reset handle skips the allocation of a new one. */
static void easy_put(CURL *easy)
{
    if (H.nidle < IDLE_HANDLES_MAX) {
        curl_easy_reset(easy);
        H.idle[H.nidle++] = easy;
    } else {
        curl_easy_cleanup(easy);
    }
}

static void transfer_free(transfer *tr)
{
    if (tr->easy) easy_put(tr->easy);
    curl_slist_free_all(tr->req_headers);
    curl_mime_free(tr->mime);
    sb_free(&tr->body);
    for (size_t i = 0; i < tr->nheaders; i++) {
        free(tr->headers[i].name);
        free(tr->headers[i].value);
    }
    free(tr->headers);
    free(tr->method);
    free(tr->url);
    free(tr);
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

static void multi_init(void)
{
    if (H.multi) return;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    H.multi = curl_multi_init();
    curl_multi_setopt(H.multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(H.multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    /* One check may open thousands of requests; past this many connections
     * curl queues them instead of running out of descriptors. */
    curl_multi_setopt(H.multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 512L);
    /* Keep as many idle connections as may be open: curl's default cache
     * (four per running transfer) closes and reopens connections when the
     * number of tasks in flight dips between requests. */
    curl_multi_setopt(H.multi, CURLMOPT_MAXCONNECTS, 512L);
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
        for (size_t i = 0; i < tr->nheaders; i++) {
            free(tr->headers[i].name);
            free(tr->headers[i].value);
        }
        tr->nheaders = 0;
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon) return len;
    const char *v = colon + 1, *end = data + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) end--;
    header h = {xstrndup(data, (size_t)(colon - data)), xstrndup(v, (size_t)(end - v))};
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
        if (lua_type(L, -1) == LUA_TSTRING)
            for (int i = 0; known[i]; i++) ok |= strcmp(lua_tostring(L, -1), known[i]) == 0;
        if (!ok) {
            const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1);
            luaL_error(L, "bad argument #1 to '%s' (unknown option '%s')", fname, k);
        }
    }
}

static const char *opt_string(lua_State *L, int opts, const char *key, const char *fname)
{
    int t = lua_getfield(L, opts, key);
    lua_pop(L, 1);
    if (t == LUA_TNIL) return NULL;
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        luaL_error(L, "bad argument #1 to '%s' (option '%s' must be a string, got %s)", fname, key,
                   lua_typename(L, t));
    lua_getfield(L, opts, key);
    const char *s = lua_tostring(L, -1);
    lua_pop(L, 1); /* still referenced by opts */
    return s;
}

static double opt_seconds(lua_State *L, int opts, const char *key, double dflt, const char *fname)
{
    int t = lua_getfield(L, opts, key);
    double v = dflt;
    if (t != LUA_TNIL) {
        if (t != LUA_TNUMBER || !(lua_tonumber(L, -1) > 0))
            luaL_error(L, "bad argument #1 to '%s' (option '%s' must be a positive number of seconds)", fname, key);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
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
        const char *name = opt_string(L, p, "name", fname);
        if (!name) luaL_error(L, "bad argument #1 to '%s' (multipart part %d needs a name)", fname, (int)i);
        curl_mimepart *part = curl_mime_addpart(tr->mime);
        curl_mime_name(part, name);
        lua_getfield(L, p, "data");
        size_t len = 0;
        const char *data = lua_tolstring(L, -1, &len);
        if (!data) luaL_error(L, "bad argument #1 to '%s' (multipart part '%s' needs data, a string)", fname, name);
        curl_mime_data(part, data, len); /* copies */
        lua_pop(L, 1);
        const char *filename = opt_string(L, p, "filename", fname);
        if (filename) curl_mime_filename(part, filename);
        const char *ctype = opt_string(L, p, "content_type", fname);
        if (ctype) curl_mime_type(part, ctype);
        lua_pop(L, 1);
    }
    curl_easy_setopt(tr->easy, CURLOPT_MIMEPOST, tr->mime);
}

/* Builds the transfer from the option table at index 1. Raises on misuse;
 * everything allocated so far is freed by the caller's userdata __gc. */
static void configure(lua_State *L, transfer *tr, const char *fname)
{
    const int opts = 1;
    check_keys(L, opts, request_keys, fname);
    CURL *e = tr->easy;

    const char *url = opt_string(L, opts, "url", fname);
    if (!url) luaL_error(L, "bad argument #1 to '%s' (option 'url' is required)", fname);
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        luaL_error(L, "bad argument #1 to '%s' (url must start with http:// or https://)", fname);

    strbuf full;
    sb_init(&full);
    sb_adds(&full, url);
    if (lua_getfield(L, opts, "query") != LUA_TNIL) {
        if (!lua_istable(L, -1)) luaL_error(L, "bad argument #1 to '%s' (option 'query' must be a table)", fname);
        strbuf q;
        sb_init(&q);
        urlencode_pairs(L, lua_gettop(L), e, &q, "query", fname);
        if (q.len) sb_printf(&full, "%s%s", strchr(url, '?') ? "&" : "?", q.buf);
        sb_free(&q);
    }
    lua_pop(L, 1);
    tr->url = sb_take(&full);
    curl_easy_setopt(e, CURLOPT_URL, tr->url);

    const char *method = opt_string(L, opts, "method", fname);
    tr->method = xstrdup(method ? method : "GET");
    for (char *m = tr->method; *m; m++)
        if (*m >= 'a' && *m <= 'z') *m = (char)(*m - 32);

    if (lua_getfield(L, opts, "headers") != LUA_TNIL) {
        int ht = lua_gettop(L);
        if (!lua_istable(L, ht)) luaL_error(L, "bad argument #1 to '%s' (option 'headers' must be a table)", fname);
        lua_pushnil(L);
        while (lua_next(L, ht)) {
            if (lua_type(L, -2) != LUA_TSTRING || (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
                luaL_error(L, "bad argument #1 to '%s' (headers must map names to strings)", fname);
            const char *name = lua_tostring(L, -2);
            const char *value = lua_tostring(L, -1);
            if (strpbrk(name, ":\r\n") || strpbrk(value, "\r\n"))
                luaL_error(L, "bad argument #1 to '%s' (header '%s' contains a newline or colon)", fname, name);
            char *line = *value ? xasprintf("%s: %s", name, value) : xasprintf("%s;", name);
            tr->req_headers = curl_slist_append(tr->req_headers, line);
            free(line);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);

    int bodies = 0;
    size_t body_len = 0;
    const char *body = NULL;
    if (lua_getfield(L, opts, "body") != LUA_TNIL) {
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
    if (lua_getfield(L, opts, "json") != LUA_TNIL) {
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
    if (lua_getfield(L, opts, "form") != LUA_TNIL) {
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
    if (lua_getfield(L, opts, "multipart") != LUA_TNIL) {
        add_multipart(L, lua_gettop(L), tr, fname);
        bodies++;
    }
    lua_pop(L, 1);
    if (bodies > 1) luaL_error(L, "bad argument #1 to '%s' (give one of body, json, form, multipart)", fname);

    /* The method last: POSTFIELDS and MIMEPOST switch curl to POST. */
    if (strcmp(tr->method, "HEAD") == 0) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(tr->method, "GET") == 0 && bodies) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "GET");
    else if (strcmp(tr->method, "GET") != 0 && strcmp(tr->method, "POST") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, tr->method);
    } else if (strcmp(tr->method, "POST") == 0 && !bodies) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, "");
    }
    if (tr->req_headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, tr->req_headers);

    /* Never past the check's own deadline. */
    double timeout = opt_seconds(L, opts, "timeout", DEFAULT_TIMEOUT, fname);
    double deadline = sandbox_deadline(L);
    if (deadline > 0) {
        double left = deadline - clock_mono();
        if (left < 0.001) left = 0.001;
        if (left < timeout) {
            timeout = left;
            tr->timeout_from_check = 1;
        }
    }
    double connect_timeout = opt_seconds(L, opts, "connect_timeout", DEFAULT_CONNECT_TIMEOUT, fname);
    if (connect_timeout > timeout) connect_timeout = timeout;
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ceil(timeout * 1000));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)ceil(connect_timeout * 1000));

    if (lua_getfield(L, opts, "follow") != LUA_TNIL) {
        long max = 0;
        if (lua_isboolean(L, -1)) max = lua_toboolean(L, -1) ? 10 : 0;
        else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0) max = (long)lua_tointeger(L, -1);
        else luaL_error(L, "bad argument #1 to '%s' (option 'follow' must be a boolean or a redirect count)", fname);
        if (max > 0) {
            curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
            curl_easy_setopt(e, CURLOPT_MAXREDIRS, max);
        }
    }
    lua_pop(L, 1);

    tr->max_body = (size_t)DEFAULT_MAX_BODY;
    if (lua_getfield(L, opts, "max_body") != LUA_TNIL) {
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
            luaL_error(L, "bad argument #1 to '%s' (option 'max_body' must be a byte count)", fname);
        tr->max_body = (size_t)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);

    if (lua_getfield(L, opts, "verify") != LUA_TNIL) {
        if (!lua_isboolean(L, -1)) luaL_error(L, "bad argument #1 to '%s' (option 'verify' must be a boolean)", fname);
        long v = lua_toboolean(L, -1);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, v);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, v ? 2L : 0L);
    }
    lua_pop(L, 1);
    const char *ca = opt_string(L, opts, "ca_file", fname);
    if (ca) curl_easy_setopt(e, CURLOPT_CAINFO, ca);
    const char *cert = opt_string(L, opts, "cert", fname);
    if (cert) curl_easy_setopt(e, CURLOPT_SSLCERT, cert);
    const char *key = opt_string(L, opts, "key", fname);
    if (key) curl_easy_setopt(e, CURLOPT_SSLKEY, key);
    if (lua_getfield(L, opts, "record") != LUA_TNIL) {
        if (!lua_isboolean(L, -1)) luaL_error(L, "bad argument #1 to '%s' (option 'record' must be a boolean)", fname);
        tr->unrecorded = !lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    const char *sock = opt_string(L, opts, "unix_socket", fname);
    if (sock) curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, sock);

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
}

/* ---- responses and errors --------------------------------------------------- */

static const char *error_kind(const transfer *tr)
{
    if (tr->too_large) return "too_large";
    switch (tr->result) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return "dns";
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        /* TLS 1.3 sends "certificate required" after the handshake: curl
         * sees a receive error, but it is the TLS layer that refused. */
        if (strstr(tr->errbuf, "SSL") || strstr(tr->errbuf, "TLS") || strstr(tr->errbuf, "alert")) return "tls";
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
        msg = xasprintf("too_large: the response body passed max_body (%zu bytes) (%s %s)", tr->max_body,
                        tr->method, tr->url);
    else if (strcmp(kind, "timeout") == 0 && tr->timeout_from_check)
        msg = xasprintf("timeout: %s; the check's deadline cut the request short (%s %s)", detail, tr->method,
                        tr->url);
    else
        msg = xasprintf("%s: %s (%s %s)", kind, detail, tr->method, tr->url);
    char *clean = redact(msg);
    free(msg);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, clean);
    lua_setfield(L, -2, "message");
    char *url = redact(tr->url);
    lua_pushstring(L, url);
    free(url);
    lua_setfield(L, -2, "url");
    lua_pushinteger(L, (lua_Integer)tr->result);
    lua_setfield(L, -2, "code");
    luaL_setmetatable(L, "halo.http.error");
    free(clean);
}

static void push_headers(lua_State *L, transfer *tr)
{
    lua_createtable(L, 0, (int)tr->nheaders);
    for (size_t i = 0; i < tr->nheaders; i++) {
        char *lower = xstrdup(tr->headers[i].name);
        for (char *p = lower; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
        /* repeated headers: the lookup gives all values joined, as HTTP
         * allows; res:header_values(name) keeps them apart */
        if (lua_getfield(L, -1, lower) == LUA_TSTRING) {
            lua_pushfstring(L, "%s, %s", lua_tostring(L, -1), tr->headers[i].value);
            lua_remove(L, -2);
        } else {
            lua_pop(L, 1);
            lua_pushstring(L, tr->headers[i].value);
        }
        lua_setfield(L, -2, lower);
        free(lower);
    }
    luaL_setmetatable(L, HEADERS_MT);
}

static void push_response(lua_State *L, transfer *tr, long status)
{
    CURL *e = tr->easy;
    lua_createtable(L, 0, 10);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, tr->body.buf ? tr->body.buf : "", tr->body.len);
    lua_setfield(L, -2, "body");
    push_headers(L, tr);
    lua_setfield(L, -2, "headers");

    lua_createtable(L, (int)tr->nheaders, 0);
    for (size_t i = 0; i < tr->nheaders; i++) {
        lua_createtable(L, 2, 0);
        lua_pushstring(L, tr->headers[i].name);
        lua_rawseti(L, -2, 1);
        lua_pushstring(L, tr->headers[i].value);
        lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "header_list");

    curl_off_t dns = 0, connect = 0, tls = 0, first = 0, total = 0;
    curl_easy_getinfo(e, CURLINFO_NAMELOOKUP_TIME_T, &dns);
    curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connect);
    curl_easy_getinfo(e, CURLINFO_APPCONNECT_TIME_T, &tls);
    curl_easy_getinfo(e, CURLINFO_STARTTRANSFER_TIME_T, &first);
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &total);
    lua_createtable(L, 0, 5);
    lua_pushnumber(L, (double)dns / 1e6);
    lua_setfield(L, -2, "dns");
    lua_pushnumber(L, (double)connect / 1e6);
    lua_setfield(L, -2, "connect");
    lua_pushnumber(L, (double)tls / 1e6);
    lua_setfield(L, -2, "tls");
    lua_pushnumber(L, (double)first / 1e6);
    lua_setfield(L, -2, "first_byte");
    lua_pushnumber(L, (double)total / 1e6);
    lua_setfield(L, -2, "total");
    lua_setfield(L, -2, "timing");

    char *ip = NULL;
    long port = 0;
    curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &ip);
    curl_easy_getinfo(e, CURLINFO_PRIMARY_PORT, &port);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, ip ? ip : "");
    lua_setfield(L, -2, "ip");
    lua_pushinteger(L, port);
    lua_setfield(L, -2, "port");
    lua_setfield(L, -2, "remote");

    long version = 0;
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
    lua_pushstring(L, version == CURL_HTTP_VERSION_1_0   ? "1.0"
                      : version == CURL_HTTP_VERSION_1_1 ? "1.1"
                      : version == CURL_HTTP_VERSION_2_0 ? "2"
                      : version == CURL_HTTP_VERSION_3   ? "3"
                                                         : "?");
    lua_setfield(L, -2, "http_version");
    char *eff = NULL;
    curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &eff);
    lua_pushstring(L, eff ? eff : tr->url);
    lua_setfield(L, -2, "url");
    lua_pushstring(L, tr->method);
    lua_setfield(L, -2, "method");
    luaL_setmetatable(L, RESPONSE_MT);
}

/* ---- request ------------------------------------------------------------------- */

typedef struct {
    transfer *tr;
    int in_multi;
} request_wait;

/* Aborted mid-flight (task cancelled, check over, thread collected): out
 * of curl, recorded as cancelled unless it had finished, freed. */
static void request_abandon(request_wait *w)
{
    transfer *tr = w->tr;
    if (!tr) return;
    if (w->in_multi && !tr->finished) {
        curl_multi_remove_handle(H.multi, tr->easy);
        history_record(tr, 0, "cancelled");
    }
    w->tr = NULL;
    transfer_free(tr);
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
        long code = 0;
        curl_easy_getinfo(tr->easy, CURLINFO_RESPONSE_CODE, &code);
        push_response(L, tr, code);
        transfer_free(tr);
        return 1;
    }
    const char *kind = error_kind(tr);
    lua_pushnil(L);
    push_error(L, tr, kind);
    transfer_free(tr);
    return 2;
}

/* http.request{...} -> res | nil, err */
static int http_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    multi_init();
    task *me = sched_waiter(L, "http.request");

    /* The wait owns the transfer from the start, so a raised option error
     * frees it through __gc. */
    request_wait *w = (request_wait *)lua_newuserdatauv(L, sizeof *w, 0);
    w->tr = NULL;
    w->in_multi = 0;
    luaL_setmetatable(L, "halo.http.wait");
    transfer *tr = xcalloc(1, sizeof *tr);
    sb_init(&tr->body);
    tr->easy = easy_get();
    w->tr = tr;
    if (!tr->easy) return luaL_error(L, "http: curl could not create a handle");
    configure(L, tr, "request");
    tr->waiter = me;
    tr->started = clock_mono();
    CURLMcode mc = curl_multi_add_handle(H.multi, tr->easy);
    if (mc != CURLM_OK) return luaL_error(L, "http: %s", curl_multi_strerror(mc));
    w->in_multi = 1;
    return sched_wait(L, request_cancel, w, request_done, (lua_KContext)w);
}

/* http.get(url [, opts]) and friends: request with method and url set */
static int shorthand(lua_State *L, const char *method)
{
    const char *url = luaL_checkstring(L, 1);
    lua_newtable(L);
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, 2)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, -4);
        }
    }
    lua_pushstring(L, url);
    lua_setfield(L, -2, "url");
    lua_pushstring(L, method);
    lua_setfield(L, -2, "method");
    lua_replace(L, 1);
    lua_settop(L, 1);
    return http_request(L);
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
        lua_pushinteger(L, r->id);
        lua_setfield(L, -2, "id");
        lua_pushinteger(L, r->task);
        lua_setfield(L, -2, "task");
        lua_pushnumber(L, r->start);
        lua_setfield(L, -2, "start");
        lua_pushnumber(L, r->end);
        lua_setfield(L, -2, "end");
        lua_pushstring(L, r->method);
        lua_setfield(L, -2, "method");
        lua_pushstring(L, r->url);
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
            lua_pushstring(L, r->replica);
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

/* headers["Content-Type"] finds "content-type" */
static int headers_index(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING) return 0;
    const char *k = lua_tostring(L, 2);
    char *lower = xstrdup(k);
    for (char *p = lower; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
    lua_pushstring(L, lower);
    free(lower);
    lua_rawget(L, 1);
    return 1;
}

static int error_tostring(lua_State *L)
{
    lua_getfield(L, 1, "message");
    return 1;
}

/* ---- client ----------------------------------------------------------------------- */

static const char *const client_keys[] = {"base", "headers", "timeout", "connect_timeout", "follow", "max_body",
                                          "verify", "ca_file", "cert", "key", "unix_socket", "record", NULL};

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
    if (!base || strncasecmp(path, "http://", 7) == 0 || strncasecmp(path, "https://", 8) == 0) {
        lua_pop(L, 1);
        lua_pushstring(L, path);
        return;
    }
    size_t bl = strlen(base);
    int base_slash = bl > 0 && base[bl - 1] == '/', path_slash = path[0] == '/';
    if (base_slash && path_slash) lua_pushfstring(L, "%s%s", base, path + 1);
    else if (!base_slash && !path_slash && path[0]) lua_pushfstring(L, "%s/%s", base, path);
    else lua_pushfstring(L, "%s%s", base, path);
    lua_remove(L, -2);
}

/* client:request{...}: the client's defaults under the call's options;
 * headers merge name by name, a relative url joins the base. */
static int client_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
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

static int client_shorthand(lua_State *L, const char *method)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *path = luaL_optstring(L, 2, "");
    lua_newtable(L);
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
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
    return client_request(L);
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
    lua_newtable(L);
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
    lua_setfield(L, -2, "defaults");
    lua_getfield(L, 1, "base");
    if (!lua_isnil(L, -1) && !lua_isstring(L, -1)) return luaL_argerror(L, 1, "option 'base' must be a URL");
    lua_setfield(L, -2, "base");
    luaL_setmetatable(L, "halo.http.client");
    return 1;
}

int luaopen_http(lua_State *L)
{
    luaL_newmetatable(L, "halo.http.wait");
    lua_pushcfunction(L, request_wait_gc);
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
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, response_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);

    luaL_newmetatable(L, HEADERS_MT);
    lua_pushcfunction(L, headers_index);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    luaL_newmetatable(L, "halo.http.error");
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);

    static const luaL_Reg client_methods[] = {
        {"request", client_request}, {"get", client_get},       {"post", client_post},
        {"put", client_put},         {"patch", client_patch},   {"delete", client_delete},
        {"head", client_head},       {NULL, NULL},
    };
    luaL_newmetatable(L, "halo.http.client");
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
