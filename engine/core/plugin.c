/* Loads halo_<module>.so and finds its luaopen function. The plugin calls
 * back into the host (loop, scheduler, redaction), whose symbols the
 * executable exports. */
/* realpath() is XSI in glibc's headers */
#define _XOPEN_SOURCE 700
#include "core/plugin.h"
#include "core/util.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

char *installed_path(const char *rel)
{
    /* Once per process: every worker asks again, and the answer cannot
     * change while halo runs. */
    static char *exe_dir;
    static int looked;
    if (!looked) {
        looked = 1;
        char *exe = realpath("/proc/self/exe", NULL);
        char *slash = exe ? strrchr(exe, '/') : NULL;
        if (slash) {
            *slash = '\0';
            exe_dir = exe;
        } else {
            free(exe);
        }
    }
    if (!exe_dir) return NULL;
    char *joined = xasprintf("%s/../%s", exe_dir, rel);
    char *real = realpath(joined, NULL);
    free(joined);
    return real;
}

/* HALO_PLUGIN_DIR, else ../lib/halo next to the executable (an installed
 * halo, wherever its prefix was copied to: it never falls back to the build
 * tree), else the build tree's. */
static const char *plugin_dir(void)
{
    const char *dir = getenv("HALO_PLUGIN_DIR");
    if (dir && *dir) return dir;
    static char *installed;
    static int looked;
    if (!looked) {
        looked = 1;
        installed = installed_path("lib/halo");
    }
    return installed ? installed : HALO_PLUGIN_DIR_DEFAULT;
}

lua_CFunction plugin_load(const char *module, char **err)
{
    char *path = xasprintf("%s/halo_%s.so", plugin_dir(), module);
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
