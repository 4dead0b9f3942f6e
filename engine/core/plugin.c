/* Loads halo_<module>.so from HALO_PLUGIN_DIR (or where the build put it)
 * and finds its luaopen function. The plugin calls back into the host
 * (loop, scheduler, redaction), whose symbols the executable exports. */
#include "core/plugin.h"
#include "core/util.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

lua_CFunction plugin_load(const char *module, char **err)
{
    const char *dir = getenv("HALO_PLUGIN_DIR");
    if (!dir || !*dir) dir = HALO_PLUGIN_DIR_DEFAULT;
    char *path = xasprintf("%s/halo_%s.so", dir, module);
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        *err = xasprintf("cannot load module '%s': %s", module, dlerror());
        free(path);
        return NULL;
    }
    free(path);
    char *sym = xasprintf("luaopen_%s", module);
    /* dlsym returns a data pointer; POSIX guarantees it converts. */
    lua_CFunction open;
    void *p = dlsym(handle, sym);
    memcpy(&open, &p, sizeof open);
    free(sym);
    if (!open) {
        *err = xasprintf("module '%s': no luaopen_%s in its shared object", module, module);
        return NULL;
    }
    return open;
}
