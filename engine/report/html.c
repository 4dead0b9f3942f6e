/* --format html: one self-contained file an operator opens after a run —
 * the summary, each check's steps, evidence and failure, and the failover
 * itself drawn as inline SVG from the request history and the actions.
 * Drawn by engine/report/html.lua from the JSON report with every
 * request record and each check's evidence keys in order; this file hands
 * them over and writes what comes back.
 *
 * The renderer is several embedded files (report/html.lua the page,
 * html_util, html_timeline, html_chart): in its sandbox, require "NAME"
 * loads the embedded report/NAME once; the one host module it gets is
 * json: no network, no processes, no docker. */
#include "report/report.h"
#include "core/embedded.h"
#include "core/sandbox.h"
#include "core/util.h"
#include "mod/modules.h"

#include <lauxlib.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* a history of 500 000 requests is a few hundred MiB as Lua tables */
#define HTML_MEMORY ((size_t)2 << 30)

static const halo_module html_modules[] = {
    {"json", luaopen_json, 0, NULL, "decode and encode JSON; json.null"},
    {NULL, NULL, 0, NULL, NULL},
};

/* require(name): the embedded report/<name>, run once with its name; any
 * other name goes to the sandbox's require (upvalue 1). Upvalue 2 holds
 * what each one returned (false while it loads). */
static int html_require(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    char path[96];
    snprintf(path, sizeof path, "report/%s", name);
    if (strlen(name) > 64 || strchr(name, '/') || strchr(name, '.') || !embedded_find(path)) {
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_pushvalue(L, 1);
        lua_call(L, 1, 1);
        return 1;
    }
    lua_settop(L, 1);
    int t = lua_getfield(L, lua_upvalueindex(2), name);
    if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) return luaL_error(L, "'%s' requires itself", name);
    if (t != LUA_TNIL) return 1;
    lua_pop(L, 1);
    lua_pushboolean(L, 0);
    lua_setfield(L, lua_upvalueindex(2), name);
    if (sandbox_load_embedded(L, path) != LUA_OK) return lua_error(L);
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, lua_upvalueindex(2), name);
    return 1;
}

/* The Lua global html.lua reads each check's evidence keys from, in the
 * order the check recorded them: decoding the JSON report loses the order
 * of an object's keys, so it comes as data of its own. */
#define EVIDENCE_KEYS_GLOBAL "evidence_keys"

/* evidence_keys = { {key, ...} per check, in report order }; run under
 * lua_pcall, as building it can run out of the sandbox's memory */
static int set_evidence_keys(lua_State *L)
{
    const run_report *r = lua_touserdata(L, 1);
    lua_createtable(L, r->nchecks < INT_MAX ? (int)r->nchecks : 0, 0);
    for (size_t i = 0; i < r->nchecks; i++) {
        const check_result *c = r->checks[i];
        lua_createtable(L, c->nevidence < INT_MAX ? (int)c->nevidence : 0, 0);
        for (size_t k = 0; k < c->nevidence; k++) {
            lua_pushstring(L, c->evidence[k].key);
            lua_rawseti(L, -2, (lua_Integer)k + 1);
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setglobal(L, EVIDENCE_KEYS_GLOBAL);
    return 0;
}

int report_html(const run_report *r, FILE *out)
{
    int rc = -1;
    char *json = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&json, &len);
    if (!mem) {
        halo_warn("html report: out of memory");
        return -1;
    }
    report_json_full(r, mem);
    fclose(mem);
    sandbox_opts so = {.mem_limit = HTML_MEMORY, .modules = html_modules};
    lua_State *L = sandbox_new(&so);
    if (!L) {
        free(json);
        halo_warn("html report: out of memory");
        return -1;
    }
    lua_getglobal(L, "require");
    lua_newtable(L);
    lua_pushcclosure(L, html_require, 2);
    lua_setglobal(L, "require");
    lua_pushcfunction(L, set_evidence_keys);
    lua_pushlightuserdata(L, (void *)r);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        halo_warn("html report: %s", lua_tostring(L, -1));
    } else if (sandbox_load_embedded(L, "report/html") != LUA_OK) {
        halo_warn("html report: %s", lua_tostring(L, -1));
    } else {
        lua_pushlstring(L, json, len);
        lua_pushstring(L, HALO_VERSION);
        if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
            halo_warn("html report: %s", lua_tostring(L, -1));
        } else {
            size_t n;
            const char *html = lua_tolstring(L, -1, &n);
            /* every string in the run is redacted already; the page is too */
            char *clean = redact_n(html ? html : "", html ? n : 0);
            fputs(clean, out);
            free(clean);
            rc = 0;
        }
    }
    free(json);
    sandbox_close(L);
    return rc;
}
