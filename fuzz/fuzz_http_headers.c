/* HTTP response headers: http_on_header() in engine/mod/http/transfer.c,
 * the libcurl header callback that splits each header line into name and
 * value, and what a check then reads of them (res.headers, res:header(),
 * res:header_values(), res.header_list, the replica a history record
 * names). The plugin's sources are compiled into this target, which so
 * reaches the names its files share (mod/http/http.h).
 *
 * The input is a response's header block; each line (up to and with its
 * '\n') is one callback, in a buffer of exactly its size, as curl calls it
 * (status lines included: "HTTP/..." starts a response over). The stored
 * headers must be what a plain reading of the lines gives, and the Lua
 * views of them must agree with it. */
#include "mod/http/http.h"
#include "core/sandbox.h"
#include "mod/modules.h"
#include "fuzz_util.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A plain reading: the lines of the last response, split at the first
 * colon, the value without leading blanks and trailing blanks and CR/LF. */
typedef struct {
    const uint8_t *name, *value;
    size_t nlen, vlen;
} ref_header;

static size_t reference(const uint8_t *data, size_t size, ref_header *out, size_t max)
{
    size_t n = 0;
    for (size_t at = 0; at < size;) {
        const uint8_t *line = data + at, *nl = memchr(line, '\n', size - at);
        size_t len = nl ? (size_t)(nl - line) + 1 : size - at;
        at += len;
        if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
            n = 0;
            continue;
        }
        const uint8_t *colon = memchr(line, ':', len);
        if (!colon || n == max) continue;
        size_t v = (size_t)(colon - line) + 1, e = len;
        while (v < e && (line[v] == ' ' || line[v] == '\t')) v++;
        while (e > v && strchr("\r\n \t", line[e - 1]) && line[e - 1]) e--;
        out[n++] = (ref_header){line, line + v, (size_t)(colon - line), e - v};
    }
    return n;
}

/* checker(res, expected): expected is { {name, value}, ... } as C strings
 * see them (up to a NUL), in order. */
static const char CHECKER[] =
    "local fmt, lower, concat = string.format, string.lower, table.concat\n"
    "local function ieq(a, b) return lower(a) == lower(b) end\n"
    "return function(res, expected)\n"
    "  local list = res.header_list\n"
    "  if #list ~= #expected then return fmt('header_list has %d entries, expected %d', #list, #expected) end\n"
    "  local joined, order = {}, {}\n"
    "  for i, e in ipairs(expected) do\n"
    "    local got = list[i]\n"
    "    if got[1] ~= e[1] or got[2] ~= e[2] then\n"
    "      return fmt('header_list[%d] is %q: %q, expected %q: %q', i, got[1], got[2], e[1], e[2])\n"
    "    end\n"
    "    local k = lower(e[1])\n"
    "    if not joined[k] then joined[k] = {} order[#order + 1] = k end\n"
    "    local j = joined[k]\n"
    "    j[#j + 1] = e[2]\n"
    "  end\n"
    "  local headers = res.headers\n"
    "  local n = 0\n"
    "  for k, v in pairs(headers) do\n"
    "    n = n + 1\n"
    "    if not joined[k] then return fmt('res.headers has %q, which no header is', k) end\n"
    "  end\n"
    "  if n ~= #order then return fmt('res.headers has %d names, expected %d', n, #order) end\n"
    "  for _, k in ipairs(order) do\n"
    "    local want = concat(joined[k], ', ')\n"
    "    if headers[k] ~= want then return fmt('res.headers[%q] is %q, expected %q', k, tostring(headers[k]), want) end\n"
    "    local upper = k:upper()\n"
    "    if res:header(upper) ~= want then return fmt('res:header(%q) is %q, expected %q', upper, tostring(res:header(upper)), want) end\n"
    "    local values = res:header_values(upper)\n"
    "    if #values ~= #joined[k] then return fmt('res:header_values(%q): %d values, expected %d', upper, #values, #joined[k]) end\n"
    "    for i, v in ipairs(values) do\n"
    "      if v ~= joined[k][i] then return fmt('res:header_values(%q)[%d] is %q, expected %q', upper, i, v, joined[k][i]) end\n"
    "    end\n"
    "  end\n"
    "  if res:header('') ~= (joined[''] and concat(joined[''], ', ') or nil) then return 'res:header(\"\")' end\n"
    "  for k in pairs(res) do end -- builds every lazy field\n"
    "  if res.url ~= 'http://fuzz.test/path' then return 'res.url is ' .. tostring(res.url) end\n"
    "  tostring(res)\n"
    "end\n";

static lua_State *L;
static int checker;
static transfer tr;

static void setup(void)
{
    L = sandbox_new(&(sandbox_opts){.modules = halo_modules});
    if (!L) fuzz_fail("sandbox_new: out of memory");
    luaopen_http(L); /* the metatables: response, headers */
    lua_pop(L, 1);
    if (luaL_loadbufferx(L, CHECKER, strlen(CHECKER), "=headers_checker", "t") != LUA_OK ||
        lua_pcall(L, 0, 1, 0) != LUA_OK)
        fuzz_fail("headers checker: %s", lua_tostring(L, -1));
    checker = luaL_ref(L, LUA_REGISTRYINDEX);
    /* the rest of the response the checker reads: a GET answered 200 */
    tr.status = 200;
    tr.method = strcpy(tr.method_buf, "GET");
}

/* The C-string view of n bytes: up to the first NUL. */
static size_t cstr_len(const uint8_t *p, size_t n)
{
    const uint8_t *z = memchr(p, '\0', n);
    return z ? (size_t)(z - p) : n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!L) setup();
    /* As a pooled transfer is left for its next request. */
    http_transfer_clear_headers(&tr);
    size_t lines = 0;
    for (size_t at = 0; at < size;) {
        const uint8_t *nl = memchr(data + at, '\n', size - at);
        size_t len = nl ? (size_t)(nl - (data + at)) + 1 : size - at;
        char *line = xmalloc(len);
        memcpy(line, data + at, len);
        size_t took = http_on_header(line, 1, len, &tr);
        FUZZ_CHECK(took == len, "http_on_header took %zu of %zu bytes", took, len);
        free(line);
        at += len;
        lines++;
    }

    ref_header *want = xcalloc(lines + 1, sizeof *want);
    size_t nwant = reference(data, size, want, lines + 1);
    FUZZ_CHECK(tr.nheaders == nwant, "%zu headers stored, expected %zu", tr.nheaders, nwant);
    for (size_t i = 0; i < tr.nheaders; i++) {
        header_ref h = tr.headers[i];
        size_t end = i + 1 < tr.nheaders ? tr.headers[i + 1].name : tr.hdr.len;
        FUZZ_CHECK(h.name < h.value && h.value <= end && end <= tr.hdr.len, "header %zu: offsets %u %u %zu", i,
                   h.name, h.value, end);
        size_t nlen = h.value - h.name - 1, vlen = end - h.value - 1;
        FUZZ_CHECK(tr.hdr.buf[h.name + nlen] == '\0' && tr.hdr.buf[h.value + vlen] == '\0',
                   "header %zu is not NUL-terminated", i);
        FUZZ_CHECK(nlen == want[i].nlen && memcmp(tr.hdr.buf + h.name, want[i].name, nlen) == 0,
                   "header %zu: name %.*s, expected %.*s", i, (int)nlen, tr.hdr.buf + h.name, (int)want[i].nlen,
                   want[i].name);
        FUZZ_CHECK(vlen == want[i].vlen && memcmp(tr.hdr.buf + h.value, want[i].value, vlen) == 0,
                   "header %zu: value %.*s, expected %.*s", i, (int)vlen, tr.hdr.buf + h.value,
                   (int)want[i].vlen, want[i].value);
    }

    /* The replica a history record names: the first of replica_headers
     * present, by rank, then by position. */
    const char *replica = http_find_replica(&tr), *expected_replica = NULL;
    for (int k = 0; http_replica_headers[k] && !expected_replica; k++)
        for (size_t i = 0; i < nwant && !expected_replica; i++) {
            size_t n = cstr_len(want[i].name, want[i].nlen);
            if (n == strlen(http_replica_headers[k]) &&
                strncasecmp((const char *)want[i].name, http_replica_headers[k], n) == 0)
                expected_replica = HDR_VALUE(&tr, i);
        }
    FUZZ_CHECK(replica == expected_replica, "http_find_replica gave %s, expected %s", replica ? replica : "none",
               expected_replica ? expected_replica : "none");

    lua_rawgeti(L, LUA_REGISTRYINDEX, checker);
    /* A response as a finished transfer gives one, without a curl handle. */
    http_push_response_from(L, &tr, "http://fuzz.test/path", "127.0.0.1", 80, "1.1", NULL);
    lua_createtable(L, (int)nwant, 0);
    for (size_t i = 0; i < nwant; i++) {
        lua_createtable(L, 2, 0);
        lua_pushlstring(L, (const char *)want[i].name, cstr_len(want[i].name, want[i].nlen));
        lua_rawseti(L, -2, 1);
        lua_pushlstring(L, (const char *)want[i].value, cstr_len(want[i].value, want[i].vlen));
        lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    free(want);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) fuzz_fail("the checker raised: %s", lua_tostring(L, -1));
    if (!lua_isnil(L, -1)) fuzz_fail("%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    FUZZ_CHECK(lua_gettop(L) == 0, "the stack holds %d values after a run", lua_gettop(L));
    /* The state lives on to the next input; what this one made is freed now,
     * so that libFuzzer's leak check (mallocs == frees per input) holds. */
    lua_gc(L, LUA_GCCOLLECT);
    return 0;
}
