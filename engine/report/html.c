/* --format html: one self-contained file an operator opens after a run —
 * the summary, each check's steps, evidence and failure, and the failover
 * itself drawn as inline SVG from the request history and the actions.
 * Drawn by engine/report/html.lua from the JSON report with every
 * request record; this file hands it over and writes what comes back.
 *
 * The renderer is several embedded files (report/html.lua the page,
 * html_util, html_timeline, html_chart): in its sandbox, require "NAME"
 * loads the embedded report/NAME once; the one host module it gets is
 * json. */
#include "report/report.h"
#include "mod/modules.h"
#include "core/embedded.h"
#include "core/sandbox.h"
#include "core/util.h"

#include <lauxlib.h>
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
    if (sandbox_load_embedded(L, "report/html") != LUA_OK) {
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
