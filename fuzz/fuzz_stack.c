/* Stack files (engine/check/stack.c) on arbitrary bytes: the input is written to
 * a stack file in a private temporary directory and evaluated with
 * stack_load in a fresh sandbox (engine/core/sandbox.c) with a 32 MiB cap and a
 * 0.1 s deadline. It must return 0 with a table pushed, or -1 (-2: out of
 * memory) with an error message and nothing pushed, leave the sandbox
 * closable and leak nothing. A file that loads quickly is also read as
 * the runner reads it (stack_check: the harness commands). The host must
 * survive whatever the file does: an abort ("unprotected Lua error") is a
 * crash like any other. */
#include "mod/modules.h"
#include "fuzz_util.h"
#include "core/sandbox.h"
#include "check/stack.h"
#include "core/util.h"

#include <errno.h>
#include <unistd.h>

#define MEM_CAP ((size_t)32 << 20)
#define DEADLINE 0.1
#define SECRETS_MAX 256

/* secret() and URL passwords register for redaction in a list that lives
 * as long as the process and that every message is scanned against: over
 * millions of inputs it would grow without end, and slow down every later
 * input. Past SECRETS_MAX values registration stops (the redaction the
 * values already there make is unchanged). Linked with
 * -Wl,--wrap=redact_add. */
void __real_redact_add(const char *secret);
void __wrap_redact_add(const char *secret)
{
    if (redact_count() < SECRETS_MAX) __real_redact_add(secret);
}

static char dir[128], path[160];

/* libFuzzer sees the C code only, not what the Lua code of the file does:
 * a line hook feeds (previous line, line) pairs of the stack file into
 * libFuzzer's extra counters. It sits on top of the sandbox's own hook
 * (the deadline), which it calls on every count event. */
#define LUA_EDGES 4096
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t lua_edges[LUA_EDGES];
static lua_Hook sandbox_hook;
static int hook_count, prev_line;

static void line_hook(lua_State *L, lua_Debug *ar)
{
    if (ar->event == LUA_HOOKCOUNT) {
        sandbox_hook(L, ar);
        return;
    }
    unsigned edge = ((unsigned)prev_line * 31u + (unsigned)ar->currentline) % LUA_EDGES;
    if (lua_edges[edge] < 255) lua_edges[edge]++;
    prev_line = ar->currentline;
}

static void remove_dir(void)
{
    unlink(path);
    rmdir(dir);
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/halo-fuzz-stack-XXXXXX", tmp && *tmp && strlen(tmp) < 96 ? tmp : "/tmp");
    if (!mkdtemp(dir)) fuzz_fail("mkdtemp: %s", strerror(errno));
    snprintf(path, sizeof path, "%s/stack.lua", dir);
    atexit(remove_dir);
}

static void write_file(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) fuzz_fail("%s: %s", path, strerror(errno));
    if (size && fwrite(data, 1, size, f) != size) fuzz_fail("%s: short write", path);
    if (fclose(f) != 0) fuzz_fail("%s: %s", path, strerror(errno));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!*dir) setup();
    write_file(data, size);

    sandbox_opts opts = {.mem_limit = MEM_CAP, .modules = halo_modules};
    lua_State *L = sandbox_new(&opts);
    FUZZ_CHECK(L != NULL, "sandbox_new: out of memory");
    double started = clock_mono();
    sandbox_set_deadline(L, started + DEADLINE, "fuzz deadline");
    sandbox_hook = lua_gethook(L);
    hook_count = lua_gethookcount(L);
    prev_line = 0;
    lua_sethook(L, line_hook, LUA_MASKLINE | LUA_MASKCOUNT, hook_count);
    char *err = (char *)1; /* stack_load must set it either way */
    int rc = stack_load(L, path, &err);
    double took = clock_mono() - started;
    if (rc == 0) {
        FUZZ_CHECK(err == NULL, "stack_load succeeded but set an error: %s", err);
        FUZZ_CHECK(lua_gettop(L) == 1 && lua_istable(L, 1), "stack_load succeeded with %d values, the top a %s",
                   lua_gettop(L), luaL_typename(L, -1));
        lua_getfield(L, LUA_REGISTRYINDEX, STACK_REGISTRY_KEY);
        FUZZ_CHECK(lua_rawequal(L, -1, 1), "the registry does not hold the stack table");
        lua_pop(L, 2);
    } else {
        /* -1: the file's fault; -2: memory ran out (the 32 MiB cap) */
        FUZZ_CHECK(rc == -1 || rc == -2, "stack_load returned %d", rc);
        FUZZ_CHECK(err != NULL && err != (char *)1, "stack_load failed without an error message");
        FUZZ_CHECK(lua_gettop(L) == 0, "stack_load failed with %d values pushed", lua_gettop(L));
        free(err);
    }
    sandbox_close(L);

    /* The runner's own reading (harness.up/down): only for a file that
     * evaluates quickly, as stack_check's deadline is 10 s. */
    if (rc == 0 && took < DEADLINE / 4) {
        stack_harness h;
        memset(&h, 0, sizeof h);
        err = NULL;
        int crc = stack_check(path, &err, &h);
        if (crc == 0) {
            FUZZ_CHECK(err == NULL, "stack_check succeeded but set an error: %s", err);
            FUZZ_CHECK(h.dir != NULL, "stack_check succeeded without the file's directory");
            for (size_t i = 0; h.up && h.up[i]; i++) FUZZ_CHECK(h.up[i] != NULL, "harness.up");
        } else {
            FUZZ_CHECK(err != NULL, "stack_check failed without an error message");
            free(err);
        }
        stack_harness_free(&h);
    }
    return 0;
}
