/* Shared by the fuzz targets: failing loudly, tolerating a reported bug
 * while it is open, and running a Lua checker in a state. */
#ifndef HALO_FUZZ_UTIL_H
#define HALO_FUZZ_UTIL_H
#include <lauxlib.h>
#include <lua.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A broken property: a message, then abort(), which libFuzzer records as
 * a crash with the input that caused it. */
static void fuzz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("halo fuzz: property violated: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) fuzz_fail(__VA_ARGS__);                                                       \
    } while (0)

/* HALO_FUZZ_KNOWN=id,id,... names bugs that were reported and are not
 * fixed yet: the checks for them stand down, so fuzzing can go on past
 * them (fuzz/README.md lists the ids). Unset, every check is on. */
static int fuzz_known(const char *id)
{
    const char *list = getenv("HALO_FUZZ_KNOWN");
    size_t n = strlen(id);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, id, n) == 0) return 1;
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

/* [-0, +0] Calls the checker function in the registry at ref with the
 * bytes; the checker returns nil, or a message saying what is wrong (and
 * the id of the check, so HALO_FUZZ_KNOWN can excuse it). A checker that
 * raises is a failure too, unless killed(L) says why the state was stopped
 * (a sandbox at its memory cap: it did its job); then it returns -1. */
static int fuzz_run_checker(lua_State *L, int ref, const uint8_t *data, size_t size,
                            const char *(*killed)(lua_State *))
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
        if (killed && killed(L)) {
            lua_pop(L, 1);
            return -1;
        }
        const char *msg = lua_tostring(L, -1);
        fuzz_fail("the checker raised: %s", msg ? msg : "(not a string)");
    }
    if (!lua_isnil(L, -2)) {
        const char *id = lua_tostring(L, -1);
        if (!(id && fuzz_known(id))) fuzz_fail("[%s] %s", id ? id : "?", lua_tostring(L, -2));
    }
    lua_pop(L, 2);
    return 0;
}

/* [-0, +0] Loads a checker chunk, calls it with the value on top (popped)
 * and keeps the function it returns in the registry. */
static int fuzz_load_checker(lua_State *L, const char *name, const char *source)
{
    if (luaL_loadbufferx(L, source, strlen(source), name, "t") != LUA_OK)
        fuzz_fail("cannot load %s: %s", name, lua_tostring(L, -1));
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) fuzz_fail("cannot run %s: %s", name, lua_tostring(L, -1));
    if (!lua_isfunction(L, -1)) fuzz_fail("%s returned no function", name);
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

#endif
