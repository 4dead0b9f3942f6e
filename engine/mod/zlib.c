/* The zlib module: Debian's zlib behind six functions, for the compressed
 * bytes a check meets — a gzip'd body fetched as it was sent, a PNG's
 * chunks, a compressed dump or log — and the checksums that go with them.
 * Bytes that are not a valid stream are data (nil, err with a kind);
 * misuse raises. zlib's own state and the output both come from the Lua
 * state's allocator, so the check's memory cap covers them, and inflate
 * stops at opts.max, so a few kilobytes of bomb cannot fill memory. */
#include "core/errors.h"
#include "core/options.h"
#include "core/types.h"
#include "mod/modules.h"
#include "core/sandbox.h"

#include <lauxlib.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#define STREAM_MT "halo.zlib.stream"
#define FIRST_CHUNK ((size_t)16 << 10)
#define MAX_CHUNK ((size_t)1 << 30) /* avail_out is a uInt */

enum { FMT_ZLIB, FMT_GZIP, FMT_RAW, FMT_AUTO };
static const char *const format_names[] = {"zlib", "gzip", "raw", "auto"};
static const char *const format_stream[] = {"zlib", "gzip", "raw deflate", "zlib or gzip"};
/* zlib picks the framing by windowBits: +16 gzip, +32 either one as the
 * header says, negative none at all */
static const int window_bits[] = {MAX_WBITS, MAX_WBITS + 16, -MAX_WBITS, MAX_WBITS + 32};

enum { OPT_FORMAT = 1, OPT_LEVEL = 2, OPT_MAX = 4 };

typedef struct {
    int format, level;
    size_t max;
} zopts;

/* ---- a stream's state ------------------------------------------------------ */

/* Created before zlib's init, so the handle exists when a memory error
 * strikes anywhere after it: __close ends the stream at once as the error
 * unwinds (__gc is only a backstop: the collector does not see zlib's
 * blocks, so it would come late). */
typedef struct {
    z_stream s;
    lua_Alloc alloc;
    void *ud;
    int live; /* 0, 'i' (inflateEnd to call) or 'd' (deflateEnd) */
} zstate;

/* zlib's free passes no size, and the sandbox's allocator counts sizes:
 * each block carries its own in front. */
typedef union {
    size_t size;
    max_align_t align;
} block_head;

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    zstate *z = opaque;
    if (size && items > (SIZE_MAX - sizeof(block_head)) / size) return Z_NULL;
    size_t n = (size_t)items * size + sizeof(block_head);
    block_head *h = z->alloc(z->ud, NULL, 0, n);
    if (!h) return Z_NULL;
    h->size = n;
    return h + 1;
}

static void z_free(voidpf opaque, voidpf p)
{
    zstate *z = opaque;
    if (!p) return;
    block_head *h = (block_head *)p - 1;
    z->alloc(z->ud, h, h->size, 0);
}

static void zs_end(zstate *z)
{
    if (z->live == 'i') inflateEnd(&z->s);
    else if (z->live == 'd') deflateEnd(&z->s);
    z->live = 0;
}

static int stream_close(lua_State *L)
{
    zs_end(luaL_checkudata(L, 1, STREAM_MT));
    return 0;
}

/* [-0, +1, m] a handle that holds no stream yet, to be closed with its slot */
static zstate *zs_new(lua_State *L)
{
    zstate *z = lua_newuserdatauv(L, sizeof *z, 0);
    memset(z, 0, sizeof *z);
    z->alloc = lua_getallocf(L, &z->ud);
    z->s.zalloc = z_alloc;
    z->s.zfree = z_free;
    z->s.opaque = z;
    luaL_setmetatable(L, STREAM_MT);
    lua_toclose(L, -1);
    return z;
}

/* zlib says Z_MEM_ERROR where Lua itself would have raised: raise as Lua
 * does, with its message, so the sandbox explains it like any other. */
static int raise_memory(lua_State *L, zstate *z)
{
    zs_end(z);
    lua_pushliteral(L, "not enough memory");
    return lua_error(L);
}

/* [-0, +2, m] nil, err{kind, message}; the stream ended first */
static int push_fail(lua_State *L, zstate *z, const char *kind, const char *fmt, ...)
{
    zs_end(z);
    va_list ap;
    va_start(ap, fmt);
    const char *message = lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_pushnil(L);
    halo_error_new(L, kind, message);
    lua_remove(L, -3);
    return 2;
}

/* ---- arguments ------------------------------------------------------------- */

static const char *check_data(lua_State *L, size_t *len)
{
    /* a number would convert, but bytes given as a number are a mistake */
    if (lua_type(L, 1) != LUA_TSTRING) luaL_typeerror(L, 1, "string");
    return lua_tolstring(L, 1, len);
}

static lua_Integer opt_integer(lua_State *L, const char *key, lua_Integer lo, lua_Integer hi, const char *what)
{
    int ok = 0;
    lua_Integer v = lua_type(L, -1) == LUA_TNUMBER ? lua_tointegerx(L, -1, &ok) : 0;
    if (!ok || v < lo || v > hi) luaL_argerror(L, 2, lua_pushfstring(L, "option '%s' must be %s", key, what));
    return v;
}

/* opts at argument 2, which may hold only the options in `allowed`, and
 * a format among the first `nformats` (deflate cannot write "auto") */
static void read_opts(lua_State *L, unsigned allowed, int nformats, zopts *o)
{
    if (lua_isnoneornil(L, 2)) return;
    luaL_checktype(L, 2, LUA_TTABLE);
    static const char *const keys[] = {"format", "level", "max"};
    const char *known[4];
    int n = 0;
    for (unsigned i = 0; i < 3; i++)
        if (allowed & (1u << i)) known[n++] = keys[i];
    known[n] = NULL;
    halo_check_options(L, 2, known);
    if ((allowed & OPT_FORMAT) && lua_getfield(L, 2, "format") != LUA_TNIL) {
        int i = 0;
        if (lua_type(L, -1) == LUA_TSTRING)
            while (i < nformats && strcmp(lua_tostring(L, -1), format_names[i]) != 0) i++;
        if (lua_type(L, -1) != LUA_TSTRING || i == nformats)
            luaL_argerror(L, 2, lua_pushfstring(L, "option 'format' must be %s, got '%s'",
                                                nformats == 4 ? "zlib, gzip, raw or auto" : "zlib, gzip or raw",
                                                luaL_tolstring(L, -1, NULL)));
        o->format = i;
    }
    if ((allowed & OPT_LEVEL) && lua_getfield(L, 2, "level") != LUA_TNIL)
        o->level = (int)opt_integer(L, "level", 0, 9, "an integer from 0 to 9");
    if ((allowed & OPT_MAX) && lua_getfield(L, 2, "max") != LUA_TNIL)
        o->max = (size_t)opt_integer(L, "max", 0, LUA_MAXINTEGER, "a number of bytes (an integer, 0 or more)");
    lua_settop(L, 2);
}

/* The output may reach the memory cap: past it the string could not be
 * held anyway. */
static size_t default_max(lua_State *L)
{
    size_t limit = sandbox_mem_limit(L);
    return limit ? limit : SANDBOX_DEFAULT_MEM;
}

/* ---- the work ----------------------------------------------------------------- */

/* The next piece of input, as zlib's avail_in (a uInt) can take it. */
static void feed(z_stream *s, const char **next, size_t *left)
{
    if (s->avail_in || !*left) return;
    uInt n = *left > UINT_MAX ? UINT_MAX : (uInt)*left;
    s->next_in = (Bytef *)*next;
    s->avail_in = n;
    *next += n;
    *left -= n;
}

/* The output grows by doubling, as luaL_Buffer does anyway. */
static size_t chunk_for(size_t produced)
{
    size_t want = produced > FIRST_CHUNK ? produced : FIRST_CHUNK;
    return want > MAX_CHUNK ? MAX_CHUNK : want;
}

/* [-0, +2] out, consumed | nil, err: one stream from argument 1, in
 * `format` unless the options (those `allowed`) say otherwise */
static int inflate_with(lua_State *L, int format, unsigned allowed)
{
    size_t len, left, produced = 0;
    const char *data = check_data(L, &len), *next = data;
    zopts o = {format, 0, default_max(L)};
    read_opts(L, allowed, 4, &o);
    left = len;
    zstate *z = zs_new(L);
    int rc = inflateInit2(&z->s, window_bits[o.format]);
    if (rc == Z_MEM_ERROR) return raise_memory(L, z);
    if (rc != Z_OK) return luaL_error(L, "inflate: zlib refused to start (%d)", rc);
    z->live = 'i';
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (;;) {
        feed(&z->s, &next, &left);
        /* room for one byte past max, so that the byte tells the stream
         * is too large before more than max is ever held */
        size_t want = chunk_for(produced);
        if (want > o.max - produced + 1) want = o.max - produced + 1;
        z->s.next_out = (Bytef *)luaL_prepbuffsize(&b, want);
        z->s.avail_out = (uInt)want;
        rc = inflate(&z->s, Z_NO_FLUSH);
        size_t got = want - z->s.avail_out;
        luaL_addsize(&b, got);
        produced += got;
        lua_Integer at = (lua_Integer)((const char *)z->s.next_in - data);
        if (produced > o.max)
            return push_fail(L, z, "too_large", "inflate: the output passes max (%I bytes)", (lua_Integer)o.max);
        if (rc == Z_STREAM_END) break;
        if (rc == Z_MEM_ERROR) return raise_memory(L, z);
        if (rc == Z_NEED_DICT)
            return push_fail(L, z, "corrupt", "inflate: the stream needs a preset dictionary (input byte %I)", at);
        if (rc == Z_DATA_ERROR)
            return push_fail(L, z, "corrupt", "inflate: %s (input byte %I of %I)",
                             z->s.msg ? z->s.msg : "invalid data", at, (lua_Integer)len);
        if (rc != Z_OK && rc != Z_BUF_ERROR) return luaL_error(L, "inflate: zlib error %d", rc);
        /* inflate returns when the input or the room ran out; with room
         * left and no input, the stream is cut short */
        if (!z->s.avail_in && !left && z->s.avail_out)
            return push_fail(L, z, "truncated", "inflate: the input ended after %I bytes, before the end of the %s stream",
                             (lua_Integer)len, format_stream[o.format]);
        if (rc == Z_BUF_ERROR && z->s.avail_out)
            return push_fail(L, z, "corrupt", "inflate: no progress at input byte %I", at);
    }
    lua_Integer consumed = (lua_Integer)((const char *)z->s.next_in - data);
    zs_end(z);
    luaL_pushresult(&b);
    lua_pushinteger(L, consumed);
    return 2;
}

/* [-0, +1] a stream holding argument 1, as inflate_with */
static int deflate_with(lua_State *L, int format, unsigned allowed)
{
    size_t left, produced = 0;
    const char *next = check_data(L, &left);
    zopts o = {format, Z_DEFAULT_COMPRESSION, 0};
    read_opts(L, allowed, 3, &o);
    zstate *z = zs_new(L);
    int rc = deflateInit2(&z->s, o.level, Z_DEFLATED, window_bits[o.format], 8, Z_DEFAULT_STRATEGY);
    if (rc == Z_MEM_ERROR) return raise_memory(L, z);
    if (rc != Z_OK) return luaL_error(L, "deflate: zlib refused to start (%d)", rc);
    z->live = 'd';
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    do {
        feed(&z->s, &next, &left);
        size_t want = chunk_for(produced);
        z->s.next_out = (Bytef *)luaL_prepbuffsize(&b, want);
        z->s.avail_out = (uInt)want;
        rc = deflate(&z->s, left ? Z_NO_FLUSH : Z_FINISH);
        luaL_addsize(&b, want - z->s.avail_out);
        produced += want - z->s.avail_out;
    } while (rc == Z_OK);
    /* with room to write and the input in hand, nothing else can come back */
    if (rc != Z_STREAM_END) return luaL_error(L, "deflate: zlib error %d", rc);
    zs_end(z);
    luaL_pushresult(&b);
    return 1;
}

/* ---- the functions ----------------------------------------------------------- */

/* zlib.inflate(data [, {format, max}]) -> out, consumed | nil, err */
static int zlib_inflate(lua_State *L) { return inflate_with(L, FMT_ZLIB, OPT_FORMAT | OPT_MAX); }
/* zlib.gunzip(data [, {max}]) -> out, consumed | nil, err */
static int zlib_gunzip(lua_State *L) { return inflate_with(L, FMT_GZIP, OPT_MAX); }
/* zlib.deflate(data [, {format, level}]) -> out */
static int zlib_deflate(lua_State *L) { return deflate_with(L, FMT_ZLIB, OPT_FORMAT | OPT_LEVEL); }
/* zlib.gzip(data [, {level}]) -> out */
static int zlib_gzip(lua_State *L) { return deflate_with(L, FMT_GZIP, OPT_LEVEL); }

/* A running checksum: the value so far comes back in, so a caller can
 * sum data that arrives in pieces. */
static uLong check_running(lua_State *L, uLong initial, const char *what)
{
    if (lua_isnoneornil(L, 2)) return initial;
    lua_Integer v = luaL_checkinteger(L, 2);
    if (v < 0 || v > 0xffffffff)
        luaL_argerror(L, 2, lua_pushfstring(L, "%s must be an integer from 0 to 0xffffffff", what));
    return (uLong)v;
}

/* zlib.crc32(data [, crc]) -> integer */
static int zlib_crc32(lua_State *L)
{
    size_t len;
    const char *data = check_data(L, &len);
    uLong crc = check_running(L, crc32_z(0, Z_NULL, 0), "crc");
    lua_pushinteger(L, (lua_Integer)crc32_z(crc, (const Bytef *)data, len));
    return 1;
}

/* zlib.adler32(data [, adler]) -> integer */
static int zlib_adler32(lua_State *L)
{
    size_t len;
    const char *data = check_data(L, &len);
    uLong adler = check_running(L, adler32_z(0, Z_NULL, 0), "adler");
    lua_pushinteger(L, (lua_Integer)adler32_z(adler, (const Bytef *)data, len));
    return 1;
}

int luaopen_zlib(lua_State *L)
{
    static const luaL_Reg stream_meta[] = {{"__gc", stream_close}, {"__close", stream_close}, {NULL, NULL}};
    halo_type_register(L, &(halo_type){STREAM_MT, NULL, stream_meta});

    static const luaL_Reg funcs[] = {
        {"inflate", zlib_inflate}, {"deflate", zlib_deflate}, {"gzip", zlib_gzip},
        {"gunzip", zlib_gunzip},   {"crc32", zlib_crc32},     {"adler32", zlib_adler32},
        {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    return 1;
}
