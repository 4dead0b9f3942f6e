/* The zlib module (engine/mod/zlib.c over Debian's zlib), through require
 * "zlib" in a sandboxed state as checks see it, so that the glue is what
 * gets fuzzed: options, the output buffer, max, the stream's end on every
 * way out. The input is taken as a compressed stream and as plain data.
 *
 * As a stream, in every format with a small max, inflate must return
 * (out, consumed) or (nil, err) and never raise; what it returns must hold
 * together: out within max, consumed within the input, the same result from
 * the input cut at consumed, "truncated" from one byte less, the trailer's
 * checksum equal to crc32/adler32 of out, a failure the same again with a
 * larger max (too_large excepted, which must then give more than max).
 * As data, deflate in every format and level (from the first byte) must
 * inflate back to it, gzip must be deflate with format gzip, and the
 * checksums must run in pieces.
 *
 * libz itself is not instrumented (it is Debian's): coverage is the
 * glue's, and the checks are on what the glue gives back. */
#include "mod/modules.h"
#include "fuzz_util.h"
#include "core/sandbox.h"

static const char CHECKER[] =
    "local zlib = ...\n"
    "local fmt, sub, unpack = string.format, string.sub, string.unpack\n"
    "local MAX, BIG = 4096, 1 << 20\n"
    "local KINDS = { corrupt = true, truncated = true, too_large = true }\n"
    "\n"
    "local function short(s) s = tostring(s) return #s > 80 and fmt('%q...', s:sub(1, 80)) or fmt('%q', s) end\n"
    "\n"
    "-- a call that must not raise: its results, or a message\n"
    "local function call(what, f, ...)\n"
    "  local r = table.pack(pcall(f, ...))\n"
    "  if not r[1] then return nil, fmt('%s raised: %s', what, tostring(r[2])) end\n"
    "  return r\n"
    "end\n"
    "\n"
    "local function check_err(what, err)\n"
    "  if type(err) ~= 'table' or not KINDS[err.kind] then return fmt('%s: err is %s', what, short(err)) end\n"
    "  if type(err.message) ~= 'string' or tostring(err) ~= err.message then\n"
    "    return fmt('%s: tostring(err) is not its message', what)\n"
    "  end\n"
    "end\n"
    "\n"
    "local function as_stream(input, format)\n"
    "  local what = fmt('inflate(format %s, max %d)', format, MAX)\n"
    "  local r, why = call(what, zlib.inflate, input, { format = format, max = MAX })\n"
    "  if not r then return why, 'zlib-raise' end\n"
    "  local out, consumed = r[2], r[3]\n"
    "  if out == nil then\n"
    "    why = check_err(what, consumed)\n"
    "    if why then return why, 'zlib-err' end\n"
    "    local big = call(what, zlib.inflate, input, { format = format, max = BIG })\n"
    "    if not big then return what .. ' with a larger max raised', 'zlib-raise' end\n"
    "    if consumed.kind == 'too_large' then\n"
    "      if big[2] and #big[2] <= MAX then return fmt('%s: too_large, yet %d bytes with a larger max', what, #big[2]), 'zlib-max' end\n"
    "    elseif big[2] or big[3].kind ~= consumed.kind or big[3].message ~= consumed.message then\n"
    "      return fmt('%s: %s, but with a larger max %s', what, consumed.message, big[2] and 'it decodes' or big[3].message), 'zlib-max'\n"
    "    end\n"
    "    return nil\n"
    "  end\n"
    "  if type(out) ~= 'string' or math.type(consumed) ~= 'integer' then return what .. ': bad result types', 'zlib-result' end\n"
    "  if #out > MAX then return fmt('%s: %d bytes out', what, #out), 'zlib-max' end\n"
    "  if consumed < 1 or consumed > #input then return fmt('%s: consumed %d of %d', what, consumed, #input), 'zlib-consumed' end\n"
    "  local again = call(what, zlib.inflate, sub(input, 1, consumed), { format = format, max = MAX })\n"
    "  if not again or again[2] ~= out or again[3] ~= consumed then\n"
    "    return what .. ': the input cut at consumed decodes differently', 'zlib-consumed'\n"
    "  end\n"
    "  local cut = call(what, zlib.inflate, sub(input, 1, consumed - 1), { format = format, max = MAX })\n"
    "  if not cut or cut[2] ~= nil or cut[3].kind ~= 'truncated' then\n"
    "    local got = not cut and 'it raised' or cut[2] and 'it decodes' or cut[3].message\n"
    "    return fmt('%s: one byte short of consumed is not truncated: %s', what, got), 'zlib-truncated'\n"
    "  end\n"
    "  -- the trailer: gzip's crc32 and length, zlib's adler32\n"
    "  local head = input:byte(1)\n"
    "  if format == 'gzip' or (format == 'auto' and head == 0x1f) then\n"
    "    local crc, len = unpack('<I4I4', input, consumed - 7)\n"
    "    if crc ~= zlib.crc32(out) or len ~= #out % (1 << 32) then return what .. ': crc32 or length differs from the trailer', 'zlib-crc' end\n"
    "  elseif format ~= 'raw' then\n"
    "    if unpack('>I4', input, consumed - 3) ~= zlib.adler32(out) then return what .. ': adler32 differs from the trailer', 'zlib-adler' end\n"
    "  end\n"
    "  if format ~= 'auto' then\n"
    "    local back = zlib.inflate(zlib.deflate(out, { format = format }), { format = format })\n"
    "    if back ~= out then return what .. ': its output does not survive deflate + inflate', 'zlib-roundtrip' end\n"
    "  end\n"
    "end\n"
    "\n"
    "local function as_data(input)\n"
    "  local level = #input > 0 and input:byte(1) % 11 or nil\n"
    "  if level == 10 then level = nil end\n"
    "  for _, format in ipairs({ 'zlib', 'gzip', 'raw' }) do\n"
    "    local what = fmt('deflate(format %s, level %s)', format, tostring(level))\n"
    "    local r, why = call(what, zlib.deflate, input, { format = format, level = level })\n"
    "    if not r then return why, 'zlib-raise' end\n"
    "    local z = r[2]\n"
    "    local back, consumed = zlib.inflate(z .. 'trailing', { format = format, max = #input })\n"
    "    if back ~= input then return fmt('%s: inflate gives %s', what, short(back or consumed)), 'zlib-roundtrip' end\n"
    "    if consumed ~= #z then return fmt('%s: consumed %d of %d', what, consumed, #z), 'zlib-consumed' end\n"
    "    if format == 'gzip' and (zlib.gzip(input, { level = level }) ~= z or zlib.gunzip(z) ~= input) then\n"
    "      return what .. ': gzip/gunzip differ from deflate/inflate with format gzip', 'zlib-gzip'\n"
    "    end\n"
    "  end\n"
    "  local k = #input // 2\n"
    "  local a, b = sub(input, 1, k), sub(input, k + 1)\n"
    "  if zlib.crc32(b, zlib.crc32(a)) ~= zlib.crc32(input) then return 'crc32 does not run in pieces', 'zlib-crc' end\n"
    "  if zlib.adler32(b, zlib.adler32(a)) ~= zlib.adler32(input) then return 'adler32 does not run in pieces', 'zlib-adler' end\n"
    "end\n"
    "\n"
    "return function(input)\n"
    "  for _, format in ipairs({ 'zlib', 'gzip', 'raw', 'auto' }) do\n"
    "    local why, id = as_stream(input, format)\n"
    "    if why then return why, id end\n"
    "  end\n"
    "  return as_data(input)\n"
    "end\n";

static lua_State *L;
static int checker;

static int open_zlib(lua_State *S)
{
    sandbox_require(S, "zlib");
    return 1;
}

static void setup(void)
{
    /* a small cap: a glue that kept what it should free reaches it soon */
    sandbox_opts opts = {.mem_limit = (size_t)64 << 20, .modules = halo_modules};
    L = sandbox_new(&opts);
    if (!L) fuzz_fail("sandbox_new: out of memory");
    lua_pushcfunction(L, open_zlib);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) fuzz_fail("require 'zlib': %s", lua_tostring(L, -1));
    checker = fuzz_load_checker(L, "=zlib_checker", CHECKER);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!L) setup();
    size_t before = sandbox_mem_used(L);
    int rc = fuzz_run_checker(L, checker, data, size, sandbox_kill_reason);
    FUZZ_CHECK(lua_gettop(L) == 0, "the stack holds %d values after a run", lua_gettop(L));
    lua_gc(L, LUA_GCCOLLECT);
    /* zlib's state is counted by the sandbox but not by the collector:
     * what is still in use past the collection was never ended */
    size_t after = sandbox_mem_used(L);
    FUZZ_CHECK(rc != 0 || after <= before + (64 << 10), "[zlib-leak] %zu bytes more in use after a run", after - before);
    if (rc != 0 || sandbox_kill_reason(L)) {
        sandbox_close(L);
        L = NULL;
    }
    return 0;
}
