/* require in a sandbox: host modules by short name from the table the
 * sandbox was given, Lua sources from the lib directories and nowhere else,
 * and loading of source text, never bytecode. */
#include "core/require.h"
#include "core/embedded.h"
#include "core/internal.h"
#include "core/plugin.h"
#include "core/util.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOADED_KEY "halo.loaded"
#define LIBDIRS_KEY "halo.libdirs"

static char modules_key; /* its address: the registry key of the module table */
static const halo_module no_modules[] = {{NULL, NULL, 0, NULL, NULL}};

static const halo_module *modules_of(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &modules_key);
    const halo_module *modules = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return modules ? modules : no_modules;
}

static int valid_module_name(const char *name)
{
    if (!*name || *name == '.') return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-' || (c == '.' && p[1] != '.' && p[1] != '\0');
        if (!ok) return 0;
    }
    return 1;
}

static int file_readable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* [-0, +1] the module's opener (a function): 1, or 2 for the host's own
 * embedded Lua; or an error message and 0 */
static int find_module(lua_State *L, const char *name)
{
    const halo_module *modules = modules_of(L);
    for (const halo_module *m = modules; m->name; m++) {
        if (strcmp(m->name, name) != 0) continue;
        if (m->source) {
            if (sandbox_load_embedded(L, m->source) != LUA_OK) lua_error(L);
            return 2; /* the host's own Lua: it gets the internal table too */
        }
        lua_CFunction open = m->open;
        if (!open && m->plugin) {
            char *err = NULL;
            open = plugin_load(name, &err);
            if (!open) {
                lua_pushstring(L, err);
                free(err);
                return lua_error(L);
            }
        }
        if (!open) break;
        lua_pushcfunction(L, open);
        return 1;
    }
    strbuf tried;
    sb_init(&tried);
    sb_printf(&tried, "module '%s' not found: not a host module (", name);
    for (const halo_module *m = modules; m->name; m++)
        sb_printf(&tried, "%s%s", m == modules ? "" : ", ", m->name);
    sb_adds(&tried, ")");
    char *rel = xstrdup(name);
    for (char *p = rel; *p; p++)
        if (*p == '.') *p = '/';
    lua_getfield(L, LUA_REGISTRYINDEX, LIBDIRS_KEY);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        char *path = xasprintf("%s/%s.lua", lua_tostring(L, -1), rel);
        lua_pop(L, 1);
        if (file_readable(path)) {
            lua_pop(L, 1);
            int rc = sandbox_loadfile(L, path);
            free(path);
            free(rel);
            sb_free(&tried);
            if (rc != LUA_OK) lua_error(L);
            return 1;
        }
        sb_printf(&tried, "; no file '%s'", path);
        free(path);
    }
    lua_pop(L, 1);
    free(rel);
    if (n == 0) sb_adds(&tried, "; and there is no lib directory to look in (scripts/lib, --lib DIR)");
    lua_pushstring(L, tried.buf);
    sb_free(&tried);
    return 0;
}

static char loading_sentinel;

static int sb_require(lua_State *L)
{
    size_t name_len;
    const char *name = luaL_checklstring(L, 1, &name_len);
    if (strlen(name) != name_len || !valid_module_name(name))
        return luaL_argerror(L, 1, "module names are dotted words, like 'pulp' or 'lib.http'");
    lua_settop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, LOADED_KEY); /* 2 */
    lua_getfield(L, 2, name);
    if (lua_touserdata(L, -1) == &loading_sentinel)
        return luaL_error(L, "module '%s' requires itself (a require loop)", name);
    if (lua_toboolean(L, -1)) return 1;
    lua_pop(L, 1);
    int found = find_module(L, name);
    if (!found) return lua_error(L);
    lua_pushlightuserdata(L, &loading_sentinel);
    lua_setfield(L, 2, name);
    lua_pushvalue(L, 1);
    if (found == 2) internal_push(L);
    int status = lua_pcall(L, found == 2 ? 2 : 1, 1, 0);
    if (status != LUA_OK) {
        lua_pushnil(L);
        lua_setfield(L, 2, name);
        return lua_error(L);
    }
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, 2, name);
    return 1;
}

void sandbox_require(lua_State *L, const char *name)
{
    lua_pushcfunction(L, sb_require);
    lua_pushstring(L, name);
    lua_call(L, 1, 1);
}

static int lazy_global(lua_State *L)
{
    const char *name = lua_tostring(L, 2);
    if (!name) return 0;
    for (const halo_module *m = modules_of(L); m->name; m++) {
        if (strcmp(m->name, name) == 0) {
            sandbox_require(L, name);
            lua_pushvalue(L, -1);
            lua_setfield(L, 1, name); /* rawset: _G has no __newindex */
            return 1;
        }
    }
    return 0;
}

void sandbox_module_globals(lua_State *L)
{
    lua_pushglobaltable(L);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, lazy_global);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
}

/* ---- loading -------------------------------------------------------------- */

/* Lua shortens long chunk names from the left ("...k/main/tests/x.lua");
 * a path relative to the working directory, or failing that the file's
 * own directory and name, reads better in every message. */
const char *sandbox_display_path(const char *path, char *buf, size_t size)
{
    char cwd[4096];
    if (path[0] == '/' && getcwd(cwd, sizeof cwd)) {
        size_t n = strlen(cwd);
        if (strncmp(path, cwd, n) == 0 && path[n] == '/') path += n + 1;
    }
    if (strlen(path) > 56) {
        const char *last = strrchr(path, '/');
        const char *p = last;
        while (p && p > path && p[-1] != '/') p--;
        if (p) path = p;
    }
    snprintf(buf, size, "%s", path);
    return buf;
}

/* luaL_loadfilex with a readable chunk name; the file is read whole. */
static int load_source_file(lua_State *L, const char *path)
{
    strbuf sb;
    sb_init(&sb);
    if (read_whole_file(path, &sb) != 0) {
        sb_free(&sb);
        lua_pushfstring(L, "cannot open %s: %s", path, strerror(errno));
        return LUA_ERRFILE;
    }
    const char *text = sb.buf ? sb.buf : "";
    size_t len = sb.len;
    /* a #! first line is a comment, as lua.c allows */
    if (len > 0 && text[0] == '#') {
        const char *nl = memchr(text, '\n', len);
        size_t skip = nl ? (size_t)(nl - text) : len;
        text += skip;
        len -= skip;
    }
    char shown[128], name[130];
    snprintf(name, sizeof name, "@%s", sandbox_display_path(path, shown, sizeof shown));
    int rc = luaL_loadbufferx(L, text, len, name, "t");
    sb_free(&sb);
    return rc;
}

int sandbox_loadfile(lua_State *L, const char *path)
{
    int rc = load_source_file(L, path);
    /* Lua's refusal of a binary chunk does not say which file it was. */
    if (rc != LUA_OK && lua_type(L, -1) == LUA_TSTRING && strstr(lua_tostring(L, -1), "binary chunk") &&
        !strstr(lua_tostring(L, -1), path)) {
        lua_pushfstring(L, "%s: %s (halo loads Lua source only)", path, lua_tostring(L, -1));
        lua_remove(L, -2);
    }
    return rc;
}

int sandbox_load_embedded(lua_State *L, const char *name)
{
    const halo_embedded_file *f = embedded_find(name);
    if (!f) {
        lua_pushfstring(L, "no embedded source '%s'", name);
        return LUA_ERRFILE;
    }
    char chunkname[128];
    snprintf(chunkname, sizeof chunkname, "=[halo %s]", name);
    return luaL_loadbufferx(L, f->source, f->size, chunkname, "t");
}

const halo_embedded_file *embedded_find(const char *name)
{
    for (int i = 0; halo_embedded[i].name; i++)
        if (strcmp(halo_embedded[i].name, name) == 0) return &halo_embedded[i];
    return NULL;
}

void require_open(lua_State *L, const halo_module *modules, const char *const *lib_dirs, size_t nlib_dirs)
{
    lua_pushlightuserdata(L, (void *)(modules ? modules : no_modules));
    lua_rawsetp(L, LUA_REGISTRYINDEX, &modules_key);
    /* require of Lua's own pure libraries gives what the globals hold, as in
     * plain Lua; the trimmed os and debug stay globals only (a require of
     * them asks for the C libraries, which are not here) */
    lua_newtable(L);
    static const char *const std_libs[] = {"string", "table", "math", "utf8", "coroutine", NULL};
    for (int i = 0; std_libs[i]; i++) {
        lua_getglobal(L, std_libs[i]);
        lua_setfield(L, -2, std_libs[i]);
    }
    lua_setfield(L, LUA_REGISTRYINDEX, LOADED_KEY);
    lua_newtable(L);
    for (size_t i = 0; i < nlib_dirs; i++) {
        lua_pushstring(L, lib_dirs[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, LUA_REGISTRYINDEX, LIBDIRS_KEY);
    lua_pushcfunction(L, sb_require);
    lua_setglobal(L, "require");
}
