/* What a finished transfer gives the script: a response, or nil and an
 * error whose kind tells a timeout from a refused connection.
 *
 * A response sets status, body and method, and builds its other fields
 * (headers, timing, ...) on first use from a record saved at completion:
 * a check that sends tens of thousands of requests and looks only at the
 * status should not pay for header tables it never reads. */
#include "mod/http/http.h"

#include "core/errors.h"
#include "core/sandbox.h"
#include "core/util.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Registry key (its address): a weak table from a response to its lazy
 * record. */
static char lazy_key;

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

const char *http_error_kind(const transfer *tr)
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

void http_push_error(lua_State *L, transfer *tr, const char *kind)
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

void http_push_response_from(lua_State *L, const transfer *tr, const char *url, const char *ip, long port,
                             const char *version, const double *timing)
{
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, tr->status);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, tr->body.buf ? tr->body.buf : "", tr->body.len);
    lua_setfield(L, -2, "body");
    lua_pushstring(L, tr->method);
    lua_setfield(L, -2, "method");

    size_t url_len = strlen(url);
    lazy_response *lz = lua_newuserdatauv(
        L, sizeof *lz + tr->nheaders * sizeof(header_ref) + tr->hdr.len + url_len + 1, 0);
    for (int i = 0; i < 5; i++) lz->timing[i] = timing ? timing[i] : 0;
    size_t ip_len = ip ? strlen(ip) : 0;
    if (ip_len >= sizeof lz->ip) ip_len = sizeof lz->ip - 1;
    memcpy(lz->ip, ip ? ip : "", ip_len);
    lz->ip[ip_len] = '\0';
    lz->port = port;
    lz->version = version;
    lz->built = 0;
    lz->nheaders = (uint32_t)tr->nheaders;
    lz->hdr_len = tr->hdr.len;
    if (tr->nheaders) memcpy(lz->refs, tr->headers, tr->nheaders * sizeof(header_ref));
    char *bytes = (char *)LAZY_BYTES(lz);
    if (tr->hdr.len) memcpy(bytes, tr->hdr.buf, tr->hdr.len);
    memcpy(bytes + tr->hdr.len, url, url_len + 1);

    lua_rawgetp(L, LUA_REGISTRYINDEX, &lazy_key);
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3); /* lazy[res] = lz */
    lua_pop(L, 2);
    luaL_setmetatable(L, RESPONSE_MT);
}

void http_push_response(lua_State *L, transfer *tr)
{
    CURL *e = tr->easy;
    char *eff = NULL;
    curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &eff);
    if (!eff) eff = tr->url.buf;
    curl_off_t t[5] = {0, 0, 0, 0, 0};
    curl_easy_getinfo(e, CURLINFO_NAMELOOKUP_TIME_T, &t[0]);
    curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &t[1]);
    curl_easy_getinfo(e, CURLINFO_APPCONNECT_TIME_T, &t[2]);
    curl_easy_getinfo(e, CURLINFO_STARTTRANSFER_TIME_T, &t[3]);
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &t[4]);
    double timing[5];
    for (int i = 0; i < 5; i++) timing[i] = (double)t[i] / 1e6;
    char *ip = NULL;
    long port = 0, version = 0;
    curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &ip);
    curl_easy_getinfo(e, CURLINFO_PRIMARY_PORT, &port);
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
    http_push_response_from(L, tr, eff, ip, port,
                            version == CURL_HTTP_VERSION_1_0   ? "1.0"
                            : version == CURL_HTTP_VERSION_1_1 ? "1.1"
                            : version == CURL_HTTP_VERSION_2_0 ? "2"
                            : version == CURL_HTTP_VERSION_3   ? "3"
                                                               : "?",
                            timing);
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

void http_response_open(lua_State *L)
{
    http_new_weak_table(L, &lazy_key);

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

    static const luaL_Reg headers_meta[] = {{"__index", headers_index}, {NULL, NULL}};
    halo_type_register(L, &(halo_type){HEADERS_MT, NULL, headers_meta});
}
