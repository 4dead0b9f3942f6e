/* Docker log frames: the demultiplexer in engine/mod/docker.lua
 * (M.demux(): feed/finish/lines), loaded the way a check loads it:
 * sandbox_require(L, "docker") from the embedded sources. The input's
 * first byte seeds the chunking; the rest is the log stream (8-byte frame
 * headers: stream byte, three bytes, big-endian length; then the payload).
 * The stream fed in chunks of random sizes (empty ones too) must give the
 * same lines as fed whole, and both the lines a plain reading of the
 * frames gives.
 *
 * The code under test is Lua, which libFuzzer's coverage does not see
 * (liblua is not instrumented): a line hook feeds (previous line, line)
 * pairs of the Lua code into libFuzzer's extra counters instead. */
#include "mod/modules.h"
#include "fuzz_util.h"
#include "core/sandbox.h"

#define LUA_EDGES 8192
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t lua_edges[LUA_EDGES];

static int prev_line;

static void line_hook(lua_State *L, lua_Debug *ar)
{
    unsigned edge = ((unsigned)prev_line * 31u + (unsigned)ar->currentline) % LUA_EDGES;
    if (lua_edges[edge] < 255) lua_edges[edge]++;
    prev_line = ar->currentline;
}

static const char CHECKER[] =
    "local docker = ...\n"
    "local byte, sub, find, unpack, fmt = string.byte, string.sub, string.find, string.unpack, string.format\n"
    "local STREAMS = { [0] = 'stdin', [1] = 'stdout', [2] = 'stderr' }\n"
    "\n"
    "-- The frames as a plain reading finds them, and the lines they make.\n"
    "local function reference(body)\n"
    "  local lines, carry, pos = {}, { stdout = '', stderr = '', stdin = '' }, 1\n"
    "  while #body - pos + 1 >= 8 do\n"
    "    local len = unpack('>I4', body, pos + 4)\n"
    "    if #body - pos + 1 < 8 + len then break end\n"
    "    local stream = STREAMS[byte(body, pos)] or 'stdout'\n"
    "    local text = carry[stream] .. sub(body, pos + 8, pos + 7 + len)\n"
    "    for line in text:gmatch('([^\\n]*)\\n') do lines[#lines + 1] = { stream = stream, text = line } end\n"
    "    carry[stream] = text:match('[^\\n]*$')\n"
    "    pos = pos + 8 + len\n"
    "  end\n"
    "  for _, s in ipairs{ 'stdout', 'stderr', 'stdin' } do\n"
    "    if carry[s] ~= '' then lines[#lines + 1] = { stream = s, text = carry[s] } end\n"
    "  end\n"
    "  if pos <= #body then lines[#lines + 1] = { stream = 'stdout', text = sub(body, pos), partial = true } end\n"
    "  return lines\n"
    "end\n"
    "\n"
    "local function same(a, b, what)\n"
    "  if type(a) ~= 'table' then return fmt('%s: lines() returned a %s', what, type(a)) end\n"
    "  if #a ~= #b then return fmt('%s: %d lines, expected %d', what, #a, #b) end\n"
    "  for i = 1, #a do\n"
    "    local x, y = a[i], b[i]\n"
    "    if x.stream ~= y.stream or x.text ~= y.text or (x.partial or false) ~= (y.partial or false) then\n"
    "      return fmt('%s: line %d is %s %q%s, expected %s %q%s', what, i, tostring(x.stream), tostring(x.text),\n"
    "                 x.partial and ' (partial)' or '', y.stream, y.text, y.partial and ' (partial)' or '')\n"
    "    end\n"
    "    if not x.partial and find(x.text, '\\n', 1, true) then return fmt('%s: line %d holds a newline', what, i) end\n"
    "  end\n"
    "end\n"
    "\n"
    "return function(input)\n"
    "  local state = #input > 0 and byte(input, 1) or 0\n"
    "  local body = sub(input, 2)\n"
    "  local want = reference(body)\n"
    "\n"
    "  local whole = docker.demux()\n"
    "  whole.feed(body)\n"
    "  whole.finish()\n"
    "  local why = same(whole.lines(), want, 'fed whole')\n"
    "  if why then return why, 'demux-whole' end\n"
    "\n"
    "  local d, pos, seen = docker.demux(), 1, 0\n"
    "  while pos <= #body do\n"
    "    state = (state * 1103515245 + 12345) % 2147483648\n"
    "    local n = state % 8 == 0 and state % 600 or state % 13 -- 0: an empty chunk\n"
    "    d.feed(sub(body, pos, pos + n - 1))\n"
    "    pos = pos + n\n"
    "    -- lines() so far only grows, and never shows a line it later changes\n"
    "    local now = d.lines()\n"
    "    if #now < seen then return 'lines() lost lines between two feeds', 'demux-chunked' end\n"
    "    seen = #now\n"
    "  end\n"
    "  d.feed('')\n"
    "  d.finish()\n"
    "  why = same(d.lines(), want, 'fed in chunks')\n"
    "  if why then return why, 'demux-chunked' end\n"
    "  d.finish() -- a second finish adds nothing\n"
    "  if #d.lines() ~= #want then return 'a second finish() changed the lines', 'demux-finish' end\n"
    "end\n";

static lua_State *L;
static int checker;

static int open_docker(lua_State *S)
{
    /* docker requires http, a plugin (halo_http.so) that is not part of this
     * target and that demux does not use: a stand-in table takes its place
     * in require's cache. */
    lua_getfield(S, LUA_REGISTRYINDEX, "halo.loaded");
    lua_newtable(S);
    lua_setfield(S, -2, "http");
    lua_pop(S, 1);
    sandbox_require(S, "docker");
    return 1;
}

static void setup(void)
{
    L = sandbox_new(&(sandbox_opts){.modules = halo_modules});
    if (!L) fuzz_fail("sandbox_new: out of memory");
    lua_pushcfunction(L, open_docker);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) fuzz_fail("require 'docker': %s", lua_tostring(L, -1));
    checker = fuzz_load_checker(L, "=demux_checker", CHECKER);
    /* Replaces the sandbox's deadline hook (no deadline here: libFuzzer's
     * -timeout catches a demux that never ends). */
    lua_sethook(L, line_hook, LUA_MASKLINE, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!L) setup();
    prev_line = 0;
    int rc = fuzz_run_checker(L, checker, data, size, sandbox_kill_reason);
    FUZZ_CHECK(lua_gettop(L) == 0, "the stack holds %d values after a run", lua_gettop(L));
    /* The state lives on to the next input; what this one made is freed now,
     * so that libFuzzer's leak check (mallocs == frees per input) holds. */
    lua_gc(L, LUA_GCCOLLECT);
    if (rc != 0 || sandbox_kill_reason(L)) {
        sandbox_close(L);
        L = NULL;
    }
    return 0;
}
