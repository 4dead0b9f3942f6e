/* The http plugin's private header: what its files share and nothing
 * else. The module itself is described in module.c; its files, by concern:
 *
 *   module.c    luaopen_http, the module table, http.request and shorthands
 *   request.c   an option table read and checked into a curl easy handle
 *   transfer.c  pooled transfers, curl's multi handle on the event loop,
 *               a request's wait on the scheduler
 *   response.c  the response object (lazy fields, headers) and errors
 *   client.c    http.client: defaults checked once, merged per request
 *   history.c   the request history and its event lines
 *
 * The halo executable exports its symbols to plugins, and a plugin's own
 * global of the same name would be bound to the executable's: every name
 * shared between these files is hidden, so it binds inside the plugin. */
#ifndef HALO_MOD_HTTP_H
#define HALO_MOD_HTTP_H
#include "core/sched.h"
#include "core/types.h"
#include "core/util.h"

#include <curl/curl.h>
#include <lua.h>
#include <stdint.h>

#define RESPONSE_MT "halo.http.response"
#define HEADERS_MT "halo.http.headers"
#define CLIENT_MT "halo.http.client"
#define DEFAULTS_MT "halo.http.defaults"
#define WAIT_MT "halo.http.wait"

#pragma GCC visibility push(hidden)

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

#define HDR_NAME(tr, i) ((tr)->hdr.buf + (tr)->headers[i].name)
#define HDR_VALUE(tr, i) ((tr)->hdr.buf + (tr)->headers[i].value)

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

/* The option table a request reads, and how: http.request{...} reads the
 * caller's table as any Lua code would; the shorthands and clients read
 * only what the table holds, as the copies they once made did. opts is
 * where the script passed the table, so that an unknown option is blamed
 * on the argument it wrote. */
typedef struct {
    lua_State *L;
    int opts; /* absolute index; 0: no table */
    int raw;
    const char *fname;
} optsrc;

/* ---- module.c ---- */
/* [-0, +0] registry[key] = a table with weak keys */
void http_new_weak_table(lua_State *L, const void *key);

/* ---- request.c ---- */
/* [-0, +1] the option's value (nil when there is no table) */
int http_opt_push(const optsrc *o, const char *key);
/* [-0, +1] a string option (numbers become strings), or NULL; the value
 * stays on the stack so the string lives until the caller's settop. */
const char *http_opt_string(const optsrc *o, const char *key);
/* [-0, +0] the value at the top, checked as each option wants it */
double http_opt_seconds(lua_State *L, const char *key, const char *fname);
long http_opt_follow(lua_State *L, const char *fname);
lua_Integer http_opt_max_body(lua_State *L, const char *fname);
int http_opt_boolean(lua_State *L, const char *key, const char *fname);
/* The header line curl sends for one pair of a headers table (key at -2,
 * value at -1), checked; an empty value sends the header empty. */
const char *http_header_line(lua_State *L, strbuf *line, const char *fname);
/* The URL of `path` under a client's base: one slash between them, and an
 * absolute path ignores the base. */
void http_join_url(strbuf *out, const char *base, const char *path);
/* Builds the transfer from the options (and a client's defaults under
 * them). Raises on misuse; the caller's wait frees whatever was built. */
void http_configure(lua_State *L, transfer *tr, const optsrc *o, const client_defaults *cd, const char *url,
                    const char *method);

/* ---- transfer.c ---- */
/* Every request starts here: `url` set for the shorthands; `path` (and
 * cd) for a client; else the options name it. Yields; returns the
 * response or nil, err. */
int http_request_start(lua_State *L, const optsrc *o, const client_defaults *cd, const char *path, const char *url,
                       const char *method);
/* The options of http.request{...} checked as a request would check them,
 * without sending it: misuse raises here, for code that sends later
 * (traffic). Returns 0. */
int http_request_check(lua_State *L, const optsrc *o);
/* The options every request shares, set once on a fresh or reset handle. */
void http_transfer_prepare(transfer *tr);
/* The header state as a pooled transfer leaves it for its next request. */
void http_transfer_clear_headers(transfer *tr);
/* libcurl's header callback: one header line into tr->hdr/tr->headers. */
size_t http_on_header(char *data, size_t size, size_t n, void *ud);
/* [-0, +0] the wait's metatable */
void http_transfer_open(lua_State *L);

/* ---- response.c ---- */
const char *http_error_kind(const transfer *tr);
/* [-0, +1] err = {kind, message, url, code} */
void http_push_error(lua_State *L, transfer *tr, const char *kind);
/* [-0, +1] the response of a finished transfer */
void http_push_response(lua_State *L, transfer *tr);
/* [-0, +1] a response from tr's status, body, method and headers and the
 * rest given (timing: dns, connect, tls, first_byte, total; NULL: zeros),
 * without a curl handle: what http_push_response builds once it has read
 * the handle. */
void http_push_response_from(lua_State *L, const transfer *tr, const char *url, const char *ip, long port,
                             const char *version, const double *timing);
/* [-0, +0] the response and headers metatables */
void http_response_open(lua_State *L);

/* ---- client.c ---- */
int http_client(lua_State *L);
/* [-0, +0] the client and defaults metatables */
void http_client_open(lua_State *L);

/* ---- history.c ---- */
/* Headers that say which replica answered, first match wins. */
extern const char *const http_replica_headers[];
/* The first of http_replica_headers the response has (its first occurrence). */
const char *http_find_replica(const transfer *tr);
/* One record per request, kept for http.history() and streamed to the
 * runner: when it ran, what it asked, what came back. */
void http_history_record(transfer *tr, long status, const char *error_kind);
int http_history(lua_State *L);

#pragma GCC visibility pop

/* What core/plugin.c looks up in the shared object; not in mod/modules.h,
 * which lists what is compiled into halo. */
int luaopen_http(lua_State *L);

#endif
