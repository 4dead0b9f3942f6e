/* The sandbox's require and loading (core/sandbox.h includes this): host
 * modules by short name, Lua sources from the lib directories, source text
 * only. Apart from sandbox.c, which is about limits (memory, deadlines,
 * interrupts) and the allow-listed libraries. */
#ifndef HALO_REQUIRE_H
#define HALO_REQUIRE_H
#include <lua.h>
#include <stddef.h>

/* One requirable host module. The table of them lives a layer up
 * (mod/modules.c, in the style of Lua's linit.c); the sandbox only
 * knows how to open an entry. */
typedef struct {
    const char *name;
    lua_CFunction open;      /* a C module inside halo, or NULL: */
    int plugin;              /* halo_<name>.so, loaded on first require, or */
    const char *source;      /* embedded Lua ("mod/docker"), called with
                                (name, the internal table) */
    const char *summary;     /* one line, for help, completion and docs */
} halo_module;

/* For sandbox_new: L's global require, finding the modules of `modules`
 * (ended by an entry without name; NULL: none, and the table must outlive
 * L) and Lua sources in the lib directories, in order. */
void require_open(lua_State *L, const halo_module *modules, const char *const *lib_dirs, size_t nlib_dirs);

/* [-0, +1, -] Load a Lua source file (never bytecode) as a function, or
 * push an error message "file:line: ..." and return non-zero. */
int sandbox_loadfile(lua_State *L, const char *path);
/* How messages name a file: relative to the working directory when
 * under it, else shortened to its directory and name. */
const char *sandbox_display_path(const char *path, char *buf, size_t size);

/* [-0, +1, -] Load one of the Lua sources embedded in the binary. */
int sandbox_load_embedded(lua_State *L, const char *name);

/* [-0, +1, e] require(name) from C. */
void sandbox_require(lua_State *L, const char *name);

/* Make every host module a global, required on first use: probes are short,
 * and `http.get(...)` reads better than a require line in a one-liner. */
void sandbox_module_globals(lua_State *L);

#endif
