/* The json module: Debian's lua-cjson, linked in, behind a small surface
 * with one null sentinel. Invalid JSON text is data (nil, err); values
 * that cannot be encoded are misuse and raise. */
#include "core/errors.h"
#include "mod/modules.h"
#include "core/sandbox.h"

#include <lauxlib.h>
#include <lua-cjson.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* cjson gives every number as a float, though JSON has no such difference:
 * a count of 3 would read "3.0" in every message and RestartCount print
 * 0.0. Integral values that a double holds exactly (|v| <= 2^53) become
 * Lua integers, in place, at every depth. */
#define EXACT_IN_DOUBLE 9007199254740992.0

static int as_integer(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) != LUA_TNUMBER || lua_isinteger(L, idx)) return 0;
    lua_Number v = lua_tonumber(L, idx);
    if (v != floor(v) || fabs(v) > EXACT_IN_DOUBLE) return 0;
    lua_pushinteger(L, (lua_Integer)v);
    lua_replace(L, idx);
    return 1;
}

static void integers_in_place(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 4, "json: nested too deep");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (as_integer(L, -1)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, idx); /* an existing key: lua_next stays valid */
        } else {
            if (lua_type(L, -1) == LUA_TTABLE) integers_in_place(L, -1);
            lua_pop(L, 1);
        }
    }
}

/* json.decode(text) -> value | nil, err (kind "json") */
static int json_decode(lua_State *L)
{
    luaL_checkstring(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        /* cjson's message says what and where ("... at character 3") */
        const char *why = lua_tostring(L, -1);
        lua_pushnil(L);
        halo_error_new(L, "json", lua_pushfstring(L, "json: %s", why ? why : "not JSON"));
        lua_remove(L, -2);
        lua_remove(L, -3);
        return 2;
    }
    if (lua_type(L, -1) == LUA_TTABLE) integers_in_place(L, -1);
    else as_integer(L, -1);
    return 1;
}

/* cjson writes every number with 14 significant digits, so an int8 from
 * the database (an id, a byte count) would come out rounded. Such integers
 * travel through cjson as marked strings and are put back as digits. */
/* The mark carries a random nonce, so that a string a server sent, or a
 * script wrote, can never pass for one: otherwise "\u0001halo-int:1,\"x\":2"
 * would come out unquoted, as JSON of the attacker's making. And only
 * digits are ever unquoted. */
static char big_int_mark[40], big_int_quoted[48];

static void make_marks(void)
{
    if (big_int_mark[0]) return;
    unsigned long long nonce = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd >= 0) {
        if (read(fd, &nonce, sizeof nonce) != (ssize_t)sizeof nonce) nonce = 0;
        close(fd);
    }
    if (!nonce) nonce = (unsigned long long)getpid() * 2654435761ULL ^ (unsigned long long)time(NULL);
    snprintf(big_int_mark, sizeof big_int_mark, "\x01halo-int-%016llx:", nonce);
    snprintf(big_int_quoted, sizeof big_int_quoted, "\"\\u0001halo-int-%016llx:", nonce);
}

static int is_big_integer(lua_State *L, int idx)
{
    if (!lua_isinteger(L, idx)) return 0;
    lua_Integer v = lua_tointeger(L, idx);
    return v >= 100000000000000LL || v <= -100000000000000LL;
}

/* A lower bound of the encoded size of the value at idx, stopping once it
 * passes limit; *big says whether it holds integers cjson would round.
 * cjson builds its text with malloc, outside the sandbox's cap, so a
 * document that cannot fit is refused before it is built. */
static size_t encoded_size(lua_State *L, int idx, size_t limit, int depth, int *big)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        lua_tolstring(L, idx, &len);
        return len + 2;
    }
    case LUA_TNUMBER:
        if (is_big_integer(L, idx)) *big = 1;
        return 4;
    case LUA_TTABLE: {
        if (depth > 1000) return 0; /* cjson refuses this depth itself */
        luaL_checkstack(L, 3, "json.encode: nesting too deep");
        size_t total = 2;
        idx = lua_absindex(L, idx);
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            total += encoded_size(L, -2, limit, depth + 1, big) + encoded_size(L, -1, limit, depth + 1, big) + 2;
            lua_pop(L, 1);
            if (total > limit) {
                lua_pop(L, 1);
                return total;
            }
        }
        return total;
    }
    default:
        return 4;
    }
}

/* [-0, +1] a copy of the value with big integers as marked strings */
static void push_marked(lua_State *L, int idx, int depth)
{
    idx = lua_absindex(L, idx);
    if (is_big_integer(L, idx)) {
        lua_pushfstring(L, "%s%I", big_int_mark, (LUAI_UACINT)lua_tointeger(L, idx));
        return;
    }
    if (lua_type(L, idx) != LUA_TTABLE || depth > 1000) {
        lua_pushvalue(L, idx);
        return;
    }
    luaL_checkstack(L, 4, "json.encode: nesting too deep");
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        /* a big integer key becomes its digits as a string key, which is
         * what JSON object keys are */
        if (is_big_integer(L, -2)) lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, -2));
        else lua_pushvalue(L, -2);
        push_marked(L, -2, depth + 1);
        lua_rawset(L, -5);
        lua_pop(L, 1);
    }
}

/* json.encode(value) -> text; raises for what JSON cannot hold */
static int json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    size_t limit = sandbox_mem_limit(L), used = sandbox_mem_used(L);
    size_t room = limit > used ? limit - used : 0;
    int big = 0;
    size_t need = encoded_size(L, 1, room, 0, &big);
    if (need > room)
        return luaL_error(L, "json.encode: the document would take more than the %d MiB of memory left",
                          (int)(room >> 20));
    lua_pushvalue(L, lua_upvalueindex(1));
    if (big) push_marked(L, 1, 0);
    else lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    if (!big) return 1;
    /* "\u0001halo-int:123" -> 123 */
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *p = text, *end = text + len;
    size_t qlen = strlen(big_int_quoted);
    while (p < end) {
        const char *hit = strstr(p, big_int_quoted);
        if (!hit) {
            luaL_addlstring(&b, p, (size_t)(end - p));
            break;
        }
        const char *digits = hit + qlen, *q = digits;
        if (q < end && *q == '-') q++;
        while (q < end && *q >= '0' && *q <= '9') q++;
        if (q >= end || *q != '"' || q == digits) {
            /* not one of ours after all: copied as it is */
            luaL_addlstring(&b, p, (size_t)(digits - p));
            p = digits;
            continue;
        }
        luaL_addlstring(&b, p, (size_t)(hit - p));
        luaL_addlstring(&b, digits, (size_t)(q - digits));
        p = q + 1;
    }
    luaL_pushresult(&b);
    return 1;
}

int luaopen_json(lua_State *L)
{
    make_marks();
    luaopen_cjson(L); /* a fresh cjson instance: settings stay this state's own */
    int cj = lua_gettop(L);
    lua_createtable(L, 0, 4);
    lua_getfield(L, cj, "encode");
    lua_pushcclosure(L, json_encode, 1);
    lua_setfield(L, -2, "encode");
    lua_getfield(L, cj, "decode");
    lua_pushcclosure(L, json_decode, 1);
    lua_setfield(L, -2, "decode");
    lua_getfield(L, cj, "null");
    lua_setfield(L, -2, "null");
    /* Sparse arrays (holes) encode as arrays with nulls rather than failing
     * on evidence tables like {1, nil, 3}. */
    lua_getfield(L, cj, "encode_sparse_array");
    lua_pushboolean(L, 1);
    lua_call(L, 1, 0);
    lua_remove(L, cj);
    return 1;
}
