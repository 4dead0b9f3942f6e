/* A request's options, read and checked into a (possibly reused) curl
 * easy handle. Misuse raises here, before anything is sent. A reused
 * handle keeps what the last request set, so each option is set only
 * when it differs from what every request starts with, and a handle
 * given anything more is marked dirty, to be reset before its next use. */
#include "mod/http/http.h"

#include "core/options.h"
#include "core/sandbox.h"
#include "core/util.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_TIMEOUT 30.0
#define DEFAULT_CONNECT_TIMEOUT 10.0
#define DEFAULT_MAX_BODY ((lua_Integer)64 << 20)

static const char *const request_keys[] = {"method", "url", "headers", "query", "body", "json", "form",
                                           "multipart", "timeout", "connect_timeout", "follow", "max_body",
                                           "verify", "ca_file", "cert", "key", "unix_socket", "record", NULL};

int http_opt_push(const optsrc *o, const char *key)
{
    if (!o->opts) {
        lua_pushnil(o->L);
        return LUA_TNIL;
    }
    if (!o->raw) return lua_getfield(o->L, o->opts, key);
    lua_pushstring(o->L, key);
    return lua_rawget(o->L, o->opts);
}

const char *http_opt_string(const optsrc *o, const char *key)
{
    int t = http_opt_push(o, key);
    if (t == LUA_TNIL) return NULL;
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        luaL_error(o->L, "bad argument #1 to '%s' (option '%s' must be a string, got %s)", o->fname, key,
                   lua_typename(o->L, t));
    return lua_tostring(o->L, -1);
}

double http_opt_seconds(lua_State *L, const char *key, const char *fname)
{
    if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) > 0))
        luaL_error(L, "bad argument #1 to '%s' (option '%s' must be a positive number of seconds)", fname, key);
    return lua_tonumber(L, -1);
}

long http_opt_follow(lua_State *L, const char *fname)
{
    if (lua_isboolean(L, -1)) return lua_toboolean(L, -1) ? 10 : 0;
    if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0) return (long)lua_tointeger(L, -1);
    luaL_error(L, "bad argument #1 to '%s' (option 'follow' must be a boolean or a redirect count)", fname);
    return 0;
}

lua_Integer http_opt_max_body(lua_State *L, const char *fname)
{
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
        luaL_error(L, "bad argument #1 to '%s' (option 'max_body' must be a byte count)", fname);
    return lua_tointeger(L, -1);
}

int http_opt_boolean(lua_State *L, const char *key, const char *fname)
{
    if (!lua_isboolean(L, -1)) luaL_error(L, "bad argument #1 to '%s' (option '%s' must be a boolean)", fname, key);
    return lua_toboolean(L, -1);
}

const char *http_header_line(lua_State *L, strbuf *line, const char *fname)
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
    const char *s = http_opt_string(&o, key);
    lua_pop(L, 1); /* still referenced by the part */
    return s;
}

/* halo_check_options blames the argument at the index it checks: the part
 * takes the options table's place for the check, so that an unknown key
 * in it is blamed on the argument the script wrote it in. */
static void check_part_keys(lua_State *L, int opts, int part)
{
    static const char *const part_keys[] = {"name", "data", "filename", "content_type", NULL};
    lua_pushvalue(L, opts);
    lua_copy(L, part, opts);
    halo_check_options(L, opts, part_keys);
    lua_copy(L, -1, opts);
    lua_pop(L, 1);
}

static void add_multipart(lua_State *L, const optsrc *o, int parts, transfer *tr)
{
    const char *fname = o->fname;
    luaL_argcheck(L, lua_istable(L, parts), 1, "option 'multipart' must be a list of parts");
    tr->mime = curl_mime_init(tr->easy);
    lua_Integer n = (lua_Integer)lua_rawlen(L, parts);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, parts, i);
        int p = lua_gettop(L);
        if (!lua_istable(L, p)) luaL_error(L, "bad argument #1 to '%s' (multipart part %d must be a table)", fname, (int)i);
        check_part_keys(L, o->opts, p);
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

void http_join_url(strbuf *out, const char *base, const char *path)
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

/* The URL is `url` when given (a shorthand's, or a client's joined to its
 * base), else the option. */
void http_configure(lua_State *L, transfer *tr, const optsrc *o, const client_defaults *cd, const char *url,
                    const char *method)
{
    const char *fname = o->fname;
    const int top = lua_gettop(L);
    luaL_checkstack(L, 24, "http: options");
    if (o->opts) halo_check_options(L, o->opts, request_keys);
    CURL *e = tr->easy;
    tr->errbuf[0] = '\0';

    if (!url) {
        url = http_opt_string(o, "url");
        if (!url) luaL_error(L, "bad argument #1 to '%s' (option 'url' is required)", fname);
    }
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        luaL_error(L, "bad argument #1 to '%s' (url must start with http:// or https://)", fname);
    if (url != tr->url.buf) {
        tr->url.len = 0;
        sb_adds(&tr->url, url);
    }
    if (http_opt_push(o, "query") != LUA_TNIL) {
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

    if (!method) method = http_opt_string(o, "method");
    set_method(tr, method ? method : "GET");

    /* Headers: the client's, then the call's, which win name by name. */
    static strbuf line;
    int ht = 0;
    if (http_opt_push(o, "headers") != LUA_TNIL) {
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
            tr->req_headers = curl_slist_append(tr->req_headers, http_header_line(L, &line, fname));
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);

    int bodies = 0;
    size_t body_len = 0;
    const char *body = NULL;
    if (http_opt_push(o, "body") != LUA_TNIL) {
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
    if (http_opt_push(o, "json") != LUA_TNIL) {
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
    if (http_opt_push(o, "form") != LUA_TNIL) {
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
    if (http_opt_push(o, "multipart") != LUA_TNIL) {
        tr->dirty = 1;
        add_multipart(L, o, lua_gettop(L), tr);
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
    if (http_opt_push(o, "timeout") != LUA_TNIL) timeout = http_opt_seconds(L, "timeout", fname);
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
    if (http_opt_push(o, "connect_timeout") != LUA_TNIL)
        connect_timeout = http_opt_seconds(L, "connect_timeout", fname);
    lua_pop(L, 1);
    if (connect_timeout > timeout) connect_timeout = timeout;
    long timeout_ms = (long)ceil(timeout * 1000), connect_timeout_ms = (long)ceil(connect_timeout * 1000);
    if (timeout_ms != tr->timeout_ms) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (connect_timeout_ms != tr->connect_timeout_ms) curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    tr->timeout_ms = timeout_ms;
    tr->connect_timeout_ms = connect_timeout_ms;

    long follow = cd ? cd->follow : -1;
    if (http_opt_push(o, "follow") != LUA_TNIL) follow = http_opt_follow(L, fname);
    lua_pop(L, 1);
    if (follow > 0) {
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, follow);
        tr->dirty = 1;
    }

    tr->max_body = (size_t)(cd && cd->max_body >= 0 ? cd->max_body : DEFAULT_MAX_BODY);
    if (http_opt_push(o, "max_body") != LUA_TNIL) tr->max_body = (size_t)http_opt_max_body(L, fname);
    /* The body becomes a Lua string: past the check's memory limit it could
     * never be kept, and growing it outside the limit would take the whole
     * worker down rather than fail this one request. */
    size_t room = sandbox_mem_limit(L);
    tr->max_body_is_memory = room > 0 && tr->max_body > room;
    if (tr->max_body_is_memory) tr->max_body = room;
    lua_pop(L, 1);

    int verify = cd ? cd->verify : -1;
    if (http_opt_push(o, "verify") != LUA_TNIL) verify = http_opt_boolean(L, "verify", fname);
    lua_pop(L, 1);
    if (verify >= 0) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, (long)verify);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
        tr->dirty = 1;
    }
    const char *ca = http_opt_string(o, "ca_file");
    if (!ca && cd) ca = cd->ca_file;
    if (ca) {
        curl_easy_setopt(e, CURLOPT_CAINFO, ca);
        tr->dirty = 1;
    }
    const char *cert = http_opt_string(o, "cert");
    if (!cert && cd) cert = cd->cert;
    if (cert) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, cert);
        tr->dirty = 1;
    }
    const char *key = http_opt_string(o, "key");
    if (!key && cd) key = cd->key;
    if (key) {
        curl_easy_setopt(e, CURLOPT_SSLKEY, key);
        tr->dirty = 1;
    }
    int record = cd ? cd->record : -1;
    if (http_opt_push(o, "record") != LUA_TNIL) record = http_opt_boolean(L, "record", fname);
    lua_pop(L, 1);
    tr->unrecorded = record == 0;
    const char *sock = http_opt_string(o, "unix_socket");
    if (!sock && cd) sock = cd->unix_socket;
    if (sock) {
        curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, sock);
        tr->dirty = 1;
    }

    http_transfer_prepare(tr);
    lua_settop(L, top);
}
