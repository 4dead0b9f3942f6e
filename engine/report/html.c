/* --format html: one self-contained file an operator opens after a run —
 * the summary, each check's steps, evidence and failure, and the failover
 * itself drawn as inline SVG from the request history and the actions.
 * Drawn by engine/report/html.lua from the JSON report with every
 * request record; this file hands it over and writes what comes back. */
#include "report/report.h"
#include "core/sandbox.h"
#include "core/util.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

/* a history of 500 000 requests is a few hundred MiB as Lua tables */
#define HTML_MEMORY ((size_t)2 << 30)

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
    sandbox_opts so = {.mem_limit = HTML_MEMORY};
    lua_State *L = sandbox_new(&so);
    if (!L) {
        free(json);
        halo_warn("html report: out of memory");
        return -1;
    }
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
