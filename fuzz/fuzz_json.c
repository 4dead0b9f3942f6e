/* JSON bridging (engine/mod/json.c over lua-cjson), in a sandboxed state as
 * checks see it. The input is JSON text. Whatever it is, json.decode must
 * return a value or (nil, err) and never raise; a decoded value must come
 * back the same from json.encode + json.decode (numbers to the 14 digits
 * cjson writes, big integers exactly), also when its integral numbers are
 * integers (json.c's big-integer path) and when it sits next to a big
 * integer and the raw input as a string. */
#include "mod/modules.h"
#include "fuzz_util.h"
#include "core/sandbox.h"

static const char CHECKER[] =
    "local json = ...\n"
    "local fmt, mtype, tointeger = string.format, math.type, math.tointeger\n"
    "local BIG = 1152921504606846977 -- 2^60 + 1: cjson alone would write 1.1529215046068e+18\n"
    "-- json.c's marker for big integers inside cjson's text: a per-process random\n"
    "-- nonce follows it, which no document can know; libFuzzer can (its strstr and\n"
    "-- memcmp hooks read it out of the process), and a string holding it is left out\n"
    "local MARK = '\\1halo-int-'\n"
    "\n"
    "local function short(s) s = tostring(s) return #s > 160 and s:sub(1, 160) .. '...' or s end\n"
    "\n"
    "-- a: the value encoded; b: what came back (cjson decodes every number as a float)\n"
    "local function num_eq(a, b)\n"
    "  if mtype(a) == 'integer' then return a + 0.0 == b end\n"
    "  return fmt('%.14g', a) == fmt('%.14g', b)\n"
    "end\n"
    "\n"
    "local function deep_eq(a, b, path)\n"
    "  local ta, tb = type(a), type(b)\n"
    "  if ta == 'number' and tb == 'number' then\n"
    "    if num_eq(a, b) then return true end\n"
    "    return false, fmt('%s: the number %s came back as %s', path, fmt('%.17g', a), fmt('%.17g', b))\n"
    "  end\n"
    "  if ta ~= tb then return false, fmt('%s: a %s came back as a %s', path, ta, tb) end\n"
    "  if ta ~= 'table' then\n"
    "    if a == b then return true end\n"
    "    return false, fmt('%s: %q came back as %q', path, short(a), short(b))\n"
    "  end\n"
    "  local n = 0\n"
    "  for k, v in pairs(a) do\n"
    "    n = n + 1\n"
    "    local ok, why = deep_eq(v, b[k], path .. '.' .. short(k))\n"
    "    if not ok then return false, why end\n"
    "  end\n"
    "  for _ in pairs(b) do n = n - 1 end\n"
    "  if n ~= 0 then return false, path .. ': the keys differ' end\n"
    "  return true\n"
    "end\n"
    "\n"
    "local function integerize(v)\n"
    "  if type(v) == 'number' then return tointeger(v) or v end\n"
    "  if type(v) ~= 'table' then return v end\n"
    "  local t = {}\n"
    "  for k, x in pairs(v) do t[k] = integerize(x) end\n"
    "  return t\n"
    "end\n"
    "\n"
    "-- a string (key or value) holding json.c's marker\n"
    "local function has_mark(v)\n"
    "  if type(v) == 'string' then return v:find(MARK, 1, true) ~= nil end\n"
    "  if type(v) ~= 'table' then return false end\n"
    "  for k, x in pairs(v) do if has_mark(k) or has_mark(x) then return true end end\n"
    "  return false\n"
    "end\n"
    "\n"
    "-- what json.encode may refuse: NaN and infinities, too deep a nesting\n"
    "local function refusal(e)\n"
    "  e = tostring(e)\n"
    "  return e:find('Cannot serialise', 1, true) or e:find('nesting', 1, true)\n"
    "end\n"
    "\n"
    "local function round_trip(value, id, big)\n"
    "  local ok, text = pcall(json.encode, value)\n"
    "  if not ok then\n"
    "    if refusal(text) then return nil end\n"
    "    return 'json.encode raised: ' .. short(text), id\n"
    "  end\n"
    "  if type(text) ~= 'string' then return 'json.encode returned a ' .. type(text), id end\n"
    "  local back, err = json.decode(text)\n"
    "  local why\n"
    "  if back == nil then\n"
    "    why = fmt('json.encode wrote what json.decode rejects (%s): %s', short(err), short(text))\n"
    "  else\n"
    "    local same, diff = deep_eq(value, back, '$')\n"
    "    if same then return nil end\n"
    "    why = fmt('the value changed in a round trip: %s; json.encode wrote %s', diff, short(text))\n"
    "  end\n"
    "  -- the marker with its nonce, in a document with a big integer: see MARK\n"
    "  if big and has_mark(value) then return nil end\n"
    "  return why, id\n"
    "end\n"
    "\n"
    "return function(input)\n"
    "  local ok, v, err = pcall(json.decode, input)\n"
    "  if not ok then return 'json.decode raised: ' .. short(v), 'json-decode' end\n"
    "  if v == nil then\n"
    "    if type(err) ~= 'table' or err.kind ~= 'json' or type(err.message) ~= 'string' or tostring(err) ~= err.message then\n"
    "      return 'json.decode gave nil without an error of kind json', 'json-decode'\n"
    "    end\n"
    "  else\n"
    "    local why, id = round_trip(v, 'json-roundtrip', false)\n"
    "    if why then return why, id end\n"
    "    why, id = round_trip(integerize(v), 'json-integers', true)\n"
    "    if why then return why, id end\n"
    "  end\n"
    "  return round_trip({ v = v, s = input, n = BIG }, 'json-wrapped', true)\n"
    "end\n";

static lua_State *L;
static int checker;

static int open_json(lua_State *S)
{
    sandbox_require(S, "json");
    return 1;
}

static void setup(void)
{
    L = sandbox_new(&(sandbox_opts){.modules = halo_modules});
    if (!L) fuzz_fail("sandbox_new: out of memory");
    lua_pushcfunction(L, open_json);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) fuzz_fail("require 'json': %s", lua_tostring(L, -1));
    checker = fuzz_load_checker(L, "=json_checker", CHECKER);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!L) setup();
    int rc = fuzz_run_checker(L, checker, data, size, sandbox_kill_reason);
    FUZZ_CHECK(lua_gettop(L) == 0, "the stack holds %d values after a run", lua_gettop(L));
    /* The state lives on to the next input; what this one made is freed now,
     * so that libFuzzer's leak check (mallocs == frees per input) holds. */
    lua_gc(L, LUA_GCCOLLECT);
    /* The sandbox stopped the state (its memory cap): it has done its job;
     * the next input gets a fresh one. */
    if (rc != 0 || sandbox_kill_reason(L)) {
        sandbox_close(L);
        L = NULL;
    }
    return 0;
}
