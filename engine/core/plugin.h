/* Host modules built as shared objects (http on libcurl, sql on libpq),
 * loaded the first time a script requires them: linking those libraries
 * into halo itself costs ~6 ms at every start (30-odd libraries mapped and
 * relocated), five times what the rest of `halo eval` needs. */
#ifndef HALO_PLUGIN_H
#define HALO_PLUGIN_H
#include <lua.h>

/* The luaopen_<module> function of halo_<module>.so, or NULL with *err set
 * (static text or malloc'ed by the caller's free: always free it). */
lua_CFunction plugin_load(const char *module, char **err);

/* PREFIX/REL, resolved, for an executable at PREFIX/bin/halo; NULL when
 * that path does not exist (a build-tree halo). malloc'ed. An installed halo
 * finds its parts this way, so its prefix can be anywhere. */
char *installed_path(const char *rel);

#endif
