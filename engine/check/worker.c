/* One check, start to finish, inside a forked worker: sandbox, stack,
 * check file, requires, run, cleanup; every observation is streamed to the
 * runner as an event line. The runner enforces the hard deadline; this file
 * enforces the soft one and runs the defers. */
#include "check/worker.h"
#include "core/events.h"
#include "core/cleanup.h"
#include "core/internal.h"
#include "core/loop.h"
#include "mod/modules.h"
#include "core/sandbox.h"
#include "core/sched.h"
#include "check/stack.h"
#include "core/util.h"

#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A report is read by people: one field past this is cut, with a note. */
#define FIELD_MAX (256 * 1024)

static void emit(const char *kind, int n, const char *const *fields) { events_emit(kind, n, fields); }

static void emit1(const char *kind, const char *a)
{
    const char *f[] = {a};
    emit(kind, 1, f);
}

static void emit_log(const char *level, const char *text)
{
    char at[32];
    snprintf(at, sizeof at, "%.1f", events_elapsed_ms());
    const char *f[] = {level, at, text};
    emit("log", 3, f);
}

/* ---- host functions for the context ------------------------------------ */

/* emit(kind, ...) : every argument as text */
static int host_emit(lua_State *L)
{
    const char *kind = luaL_checkstring(L, 1);
    int n = lua_gettop(L) - 1;
    if (n > 8) n = 8;
    const char *fields[8] = {0};
    char *clean[8] = {0};
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *text = luaL_tolstring(L, i + 2, &len);
        /* redact before cutting: a cut must not leave half a secret */
        clean[i] = redact_n(text, len);
        len = strlen(clean[i]);
        if (len > FIELD_MAX) {
            size_t keep = FIELD_MAX;
            while (keep > 0 && ((unsigned char)clean[i][keep] & 0xC0) == 0x80) keep--;
            char *cut = xasprintf("%.*s… [cut: %zu bytes in all]", (int)keep, clean[i], len);
            free(clean[i]);
            clean[i] = cut;
        }
        fields[i] = clean[i];
    }
    emit(kind, n, fields);
    for (int i = 0; i < n; i++) free(clean[i]);
    lua_settop(L, 0);
    return 0;
}

/* where(level) -> "file:line: " of the function `level` calls up */
static int host_where(lua_State *L)
{
    luaL_where(L, (int)luaL_optinteger(L, 1, 1));
    return 1;
}

static int host_elapsed_ms(lua_State *L)
{
    lua_pushnumber(L, events_elapsed_ms());
    return 1;
}

/* [-0, +1] a copy of the value at idx that json can encode: secrets
 * redacted in every string (before JSON escaping could disguise them),
 * functions and other host values as their names, cycles cut. */
static void push_encodable(lua_State *L, int idx, int depth)
{
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        char *clean = redact_n(s, len);
        lua_pushstring(L, clean);
        free(clean);
        return;
    }
    case LUA_TNUMBER: {
        lua_Number v = lua_tonumber(L, idx);
        if (isnan(v) || isinf(v)) lua_pushstring(L, lua_tostring(L, idx));
        else lua_pushvalue(L, idx);
        return;
    }
    case LUA_TBOOLEAN:
    case LUA_TNIL:
        lua_pushvalue(L, idx);
        return;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) { /* json.null */
            lua_pushvalue(L, idx);
            return;
        }
        break;
    case LUA_TTABLE:
        if (depth >= 16) {
            lua_pushliteral(L, "<nested too deep>");
            return;
        }
        lua_newtable(L);
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            if (lua_type(L, -2) == LUA_TSTRING || lua_type(L, -2) == LUA_TNUMBER) {
                push_encodable(L, -2, depth + 1);
                push_encodable(L, -2, depth + 1);
                lua_rawset(L, -5);
            }
            lua_pop(L, 1);
        }
        return;
    default:
        break;
    }
    luaL_tolstring(L, idx, NULL);
}

/* encode(value) -> JSON text; never raises */
static int host_encode(lua_State *L)
{
    lua_settop(L, 1);
    sandbox_require(L, "json");
    lua_getfield(L, -1, "encode");
    push_encodable(L, 1, 0);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lua_pop(L, 1);
        lua_getfield(L, -1, "encode");
        luaL_tolstring(L, 1, NULL);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK) lua_pushliteral(L, "null");
    }
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    if (text && len > FIELD_MAX) {
        /* Cut the JSON text, not the value, and keep it valid JSON: the
         * evidence becomes a string saying what it was. */
        lua_getfield(L, -2, "encode");
        lua_pushfstring(L, "%s… [cut: %I bytes of JSON in all]", lua_pushlstring(L, text, 4096), (lua_Integer)len);
        lua_remove(L, -2);
        lua_call(L, 1, 1);
    }
    return 1;
}

/* print() inside a check is a log line. */
static int host_print(lua_State *L)
{
    int n = lua_gettop(L);
    strbuf sb;
    sb_init(&sb);
    /* stop joining past what a log line may hold: the joined text lives
     * outside the sandbox's memory cap */
    for (int i = 1; i <= n && sb.len <= FIELD_MAX; i++) {
        if (i > 1) sb_addc(&sb, '\t');
        sb_adds(&sb, luaL_tolstring(L, i, NULL));
        lua_pop(L, 1);
    }
    emit_log("info", sb.buf ? sb.buf : "");
    sb_free(&sb);
    return 0;
}

/* ---- setup -------------------------------------------------------------- */

static lua_State *new_sandbox(const worker_opts *o)
{
    sandbox_opts so = {.mem_limit = o->mem_limit, .modules = halo_modules,
                       .lib_dirs = o->lib_dirs, .nlib_dirs = o->nlib_dirs};
    lua_State *L = sandbox_new(&so);
    if (!L) return NULL;
    lua_pushcfunction(L, host_print);
    lua_setglobal(L, "print");
    return L;
}

/* [-0, +1] the context module; 0 on success */
static int load_context(lua_State *L, char **err)
{
    if (sandbox_load_embedded(L, "check/context") != LUA_OK) goto fail;
    lua_createtable(L, 0, 4);
    static const luaL_Reg host[] = {
        {"emit", host_emit},
        {"where", host_where},
        {"elapsed_ms", host_elapsed_ms},
        {"encode", host_encode},
        {NULL, NULL},
    };
    luaL_setfuncs(L, host, 0);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) goto fail;
    return 0;
fail:
    *err = xasprintf("internal: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
}

/* [-0, +1] the validated spec of the check file; 0 on success */
static int load_spec(lua_State *L, int ctxmod, const char *file, char **err)
{
    char shown[128];
    sandbox_display_path(file, shown, sizeof shown);
    if (sandbox_loadfile(L, file) != LUA_OK) {
        /* a file too big for the memory limit: say which, and that it is the limit */
        const char *msg = lua_tostring(L, -1);
        char *explained = sandbox_explain_memory_error(L, msg);
        *err = msg && strncmp(msg, shown, strlen(shown)) != 0 && strstr(msg, "not enough memory")
                   ? xasprintf("%s: %s", shown, explained)
                   : xstrdup(explained);
        free(explained);
        lua_pop(L, 1);
        return -1;
    }
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        /* runtime errors carry "file:line:" already */
        if (msg && strncmp(msg, shown, strlen(shown)) == 0) *err = xstrdup(msg);
        else *err = xasprintf("%s: %s", shown, msg ? msg : "(error object is not a string)");
        lua_pop(L, 1);
        return -1;
    }
    lua_getfield(L, ctxmod, "validate");
    lua_insert(L, -2);
    lua_pushstring(L, file);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        *err = xasprintf("%s: %s", shown, lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

#if defined(__SANITIZE_ADDRESS__)
#define HALO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HALO_ASAN 1
#endif
#endif

/* The sandbox's cap counts Lua's own memory; a library that mallocs on a
 * script's behalf (cjson building a huge document) is outside it. The
 * address-space limit is the backstop that keeps such a worker from
 * taking the host's memory: it fails, and costs only its own check. */
static void limit_address_space(size_t mem_limit)
{
#ifndef HALO_ASAN /* ASan reserves terabytes of shadow memory */
    size_t cap = (mem_limit ? mem_limit : SANDBOX_DEFAULT_MEM) + ((size_t)512 << 20);
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > cap)) {
        rl.rlim_cur = cap;
        setrlimit(RLIMIT_AS, &rl);
    }
#else
    (void)mem_limit;
#endif
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

static void on_term(int sig)
{
    (void)sig;
    sched_request_interrupt();
}

/* Once cleanup runs, a termination signal (the runner relays the
 * operator's Ctrl-C) must not stop it: the defers and undos run once, to
 * the end, under their grace; a second Ctrl-C makes the runner kill the
 * worker outright and replay its undos. A handler that does nothing, not
 * SIG_IGN, which programs started from cleanup would inherit. */
static void on_term_in_cleanup(int sig) { (void)sig; }

static void keep_cleanup_going(void) { on_interrupt_signals(on_term_in_cleanup); }

static void catch_termination(void) { on_interrupt_signals(on_term); }

static int probe_main(lua_State *L);
static int run_protected(lua_State *L, lua_CFunction fn, const worker_opts *o);

int worker_probe(const worker_opts *o)
{
    events_attach(o->event_fd);
    install_signals();
    lua_State *L = new_sandbox(o);
    if (!L) {
        emit1("error", "out of memory");
        return 0;
    }
    if (run_protected(L, probe_main, o) != 0) emit1("error", "out of memory loading the check file");
    sandbox_close(L);
    return 0;
}

static int probe_main(lua_State *L)
{
    const worker_opts *o = lua_touserdata(L, 1);
    lua_settop(L, 0);
    sandbox_set_deadline(L, clock_mono() + 5, "loading the check file took longer than 5 s");
    char *err = NULL;
    if (load_context(L, &err) != 0 || load_spec(L, lua_gettop(L), o->check_file, &err) != 0) {
        emit1("error", err);
        free(err);
        return 0;
    }
    int spec = lua_gettop(L);
    lua_getfield(L, spec, "id");
    int numeric = lua_type(L, -1) == LUA_TNUMBER; /* before lua_tostring converts it */
    char *id = xstrdup(lua_tostring(L, -1));
    lua_getfield(L, spec, "title");
    char *title = xstrdup(lua_tostring(L, -1));
    lua_getfield(L, spec, "timeout");
    char *timeout = xasprintf("%.17g", lua_tonumber(L, -1));
    lua_pop(L, 3);
    strbuf tags;
    sb_init(&tags);
    lua_getfield(L, spec, "tags");
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
        if (i > 1) sb_addc(&tags, ',');
        sb_adds(&tags, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    const char *f[] = {id, numeric ? "n" : "s", title, timeout, tags.buf ? tags.buf : ""};
    emit("meta", 5, f);
    free(id);
    free(title);
    free(timeout);
    sb_free(&tags);
    return 0;
}

/* A host script in a child of the runner: the undo of a dead worker's
 * faults (o->script, Lua text) or the stack's facts (o->script_name, an
 * embedded source). It gets the stack and the internal table. */
static int script_main(lua_State *L);

int worker_script(const worker_opts *o)
{
    events_attach(o->event_fd);
    install_signals();
    lua_State *L = new_sandbox(o);
    if (!L) {
        emit_log("error", "out of memory");
        const char *f[] = {"ERROR", ""};
        emit("done", 2, f);
        return 0;
    }
    if (run_protected(L, script_main, o) != 0) {
        const char *f[] = {"ERROR", ""};
        emit("done", 2, f);
    }
    sandbox_close(L);
    return 0;
}

static int script_main(lua_State *L)
{
    const worker_opts *o = lua_touserdata(L, 1);
    lua_settop(L, 0);
    char *err = NULL;
    const char *status = "ERROR";
    int rc;
    if (stack_load(L, o->stack_file, &err) != 0) {
        emit_log("error", err);
    } else if ((rc = o->script_name ? sandbox_load_embedded(L, o->script_name)
                                    : luaL_loadbufferx(L, o->script, strlen(o->script), "=runner script", "t")) !=
               LUA_OK) {
        emit_log("error", lua_tostring(L, -1));
    } else {
        double deadline = clock_mono() + (o->timeout_override > 0 ? o->timeout_override : 50);
        sandbox_set_deadline(L, deadline, "the host script took too long");
        internal_push(L);
        task *t = sched_spawn(L, 1);
        sched_observe(t);
        if (sched_run(L, t, deadline) == SCHED_DONE && sched_task_ok(t)) status = "PASS";
        else emit_log("error", sched_error_text(t) ? sched_error_text(t) : "the script did not finish");
        sched_cancel_all(L);
    }
    const char *f[] = {status, ""};
    emit("done", 2, f);
    free(err);
    return 0;
}

/* ---- running ---------------------------------------------------------------- */

typedef struct {
    const char *status; /* "PASS", "FAIL", "ERROR", "N/A" */
    strbuf message;
} outcome;

static void set_outcome(outcome *oc, const char *status, const char *fmt, ...) HALO_PRINTF(3, 4);
static void set_outcome(outcome *oc, const char *status, const char *fmt, ...)
{
    oc->status = status;
    sb_free(&oc->message);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&oc->message, fmt, ap);
    va_end(ap);
}

/* ERROR wins over everything, and its message keeps what came before. */
static void add_error(outcome *oc, const char *text)
{
    if (strcmp(oc->status, "ERROR") != 0 && oc->message.len) {
        char *before = sb_take(&oc->message);
        sb_printf(&oc->message, "%s; and %s", text, before);
        free(before);
    } else if (oc->message.len) {
        sb_printf(&oc->message, "; %s", text);
    } else {
        sb_adds(&oc->message, text);
    }
    oc->status = "ERROR";
}

/* [-0, +0] the current step name from the context, or NULL (malloc'ed) */
static char *current_step(lua_State *L, int control)
{
    lua_getfield(L, control, "current_step");
    char *name = NULL;
    if (lua_pcall(L, 0, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) name = xstrdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    return name;
}

static const char *stop_phrase(sched_result r)
{
    switch (r) {
    case SCHED_DEADLINE: return "timed out";
    case SCHED_INTERRUPTED: return "interrupted";
    case SCHED_STUCK: return "deadlocked: every task waits on another and nothing can wake them";
    default: return "stopped";
    }
}

static void report_unobserved(int id, const char *text, void *ud)
{
    outcome *oc = ud;
    char *msg = xasprintf("background task %d failed: %s", id, text);
    char *nl = strchr(msg, '\n');
    emit_log("error", msg);
    if (nl) *nl = '\0';
    add_error(oc, msg);
    free(msg);
}

/* Runs the spawned task on top of L to completion, the deadline, or an
 * interrupt. Leaves nothing on the stack; returns the scheduler's verdict
 * and the task in *out (with a registry ref in *ref). */
static sched_result run_task(lua_State *L, double deadline, task **out, int *ref)
{
    task *t = (task *)lua_touserdata(L, -1);
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    sched_observe(t);
    *out = t;
    return sched_run(L, t, deadline);
}

static void report_cleanup(const char *message, const char *detail, void *ud)
{
    emit_log("error", detail);
    add_error((outcome *)ud, message);
}

/* The check's defers, newest first, then the automatic undo of faults the
 * check injected and did not undo itself; all within the grace. */
static void run_cleanup(lua_State *L, int control, outcome *oc, double grace, double hard_end)
{
    char reason[96];
    snprintf(reason, sizeof reason, "cleanup exceeded its %g s grace", grace);
    sandbox_rearm(L, 0, reason, (size_t)16 << 20);

    lua_getfield(L, control, "defers");
    if (lua_pcall(L, 0, 1, 0) == LUA_OK) cleanup_run(L, -1, grace, hard_end, report_cleanup, oc);
    lua_pop(L, 1);
    internal_push_undos(L);
    cleanup_run(L, -1, grace, hard_end, report_cleanup, oc);
    lua_pop(L, 1);
    internal_remove_temps(L);
}

static int run_main(lua_State *L)
{
    const worker_opts *o = lua_touserdata(L, 1);
    lua_settop(L, 0);
    outcome oc = {"PASS", {NULL, 0, 0}};
    char *err = NULL;
    /* Loading gets the same budget as the run; it is normally instant. */
    if (load_context(L, &err) != 0) {
        set_outcome(&oc, "ERROR", "%s", err);
        goto done;
    }
    int ctxmod = lua_gettop(L);
    if (stack_load(L, o->stack_file, &err) != 0) {
        set_outcome(&oc, "ERROR", "%s", err);
        goto done;
    }
    int stack = lua_gettop(L);
    sandbox_set_deadline(L, clock_mono() + 5, "loading the check file took longer than 5 s");
    if (load_spec(L, ctxmod, o->check_file, &err) != 0) {
        set_outcome(&oc, "ERROR", "%s", err);
        goto done;
    }
    int spec = lua_gettop(L);

    lua_getfield(L, spec, "timeout");
    double timeout = o->timeout_override > 0 ? o->timeout_override : lua_tonumber(L, -1);
    lua_pop(L, 1);
    double deadline = events_origin() + timeout;
    double hard_end = events_origin() + timeout + o->grace;
    char reason[96];
    snprintf(reason, sizeof reason, "timeout: the check exceeded its %g s limit", timeout);
    sandbox_set_deadline(L, deadline, reason);

    lua_getfield(L, ctxmod, "new");
    lua_pushvalue(L, spec);
    lua_call(L, 1, 2);
    int control = lua_gettop(L);
    int tctx = control - 1;

    task *t;
    int ref = LUA_NOREF;
    lua_getfield(L, spec, "requires");
    if (!lua_isnil(L, -1)) {
        lua_pushvalue(L, stack);
        sched_spawn(L, 1);
        sched_result r = run_task(L, deadline, &t, &ref);
        if (r != SCHED_DONE) {
            set_outcome(&oc, "ERROR", "requires() %s", stop_phrase(r));
            goto cleanup;
        }
        lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
        sched_push_outcome(L, lua_gettop(L));
        if (!sched_task_ok(t)) {
            const char *kill = sandbox_kill_reason(L);
            const char *text = sched_error_text(t);
            if (!kill) emit_log("error", text ? text : "?");
            set_outcome(&oc, "ERROR", "requires() failed: %.*s", (int)strcspn(kill ? kill : text ? text : "?", "\n"),
                        kill ? kill : text ? text : "?");
            lua_pop(L, 2);
            goto cleanup;
        }
        lua_rawgeti(L, -1, 1);
        if (!lua_toboolean(L, -1)) {
            lua_rawgeti(L, -2, 2);
            const char *why = lua_tostring(L, -1);
            set_outcome(&oc, "N/A", "%s", why ? why : "requires() said this check does not apply");
            lua_pop(L, 4);
            goto cleanup;
        }
        lua_pop(L, 3);
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
    } else {
        lua_pop(L, 1);
    }

    lua_getfield(L, spec, "run");
    lua_pushvalue(L, tctx);
    lua_pushvalue(L, stack);
    sched_spawn(L, 2);
    sched_result r = run_task(L, deadline, &t, &ref);
    char *step = current_step(L, control);
    const char *kill = sandbox_kill_reason(L);
    if (r != SCHED_DONE || kill) {
        const char *why = kill ? kill : r == SCHED_DEADLINE ? reason : stop_phrase(r);
        if (step) set_outcome(&oc, "ERROR", "%s (in step '%s')", why, step);
        else set_outcome(&oc, "ERROR", "%s", why);
    } else if (sched_task_ok(t)) {
        lua_getfield(L, control, "skipped");
        lua_call(L, 0, 1);
        if (lua_isstring(L, -1)) set_outcome(&oc, "N/A", "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
    } else {
        lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
        sched_push_outcome(L, lua_gettop(L));
        lua_getfield(L, control, "classify");
        lua_pushvalue(L, -2);
        lua_call(L, 1, 1);
        const char *kind = lua_tostring(L, -1);
        if (kind && strcmp(kind, "assert") == 0) {
            /* the status comes from the recorded failure, below */
        } else if (kind && strcmp(kind, "skip") == 0) {
            lua_getfield(L, control, "skipped");
            lua_call(L, 0, 1);
            set_outcome(&oc, "N/A", "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "skipped");
            lua_pop(L, 1);
        } else {
            char *text = sandbox_explain_memory_error(L, sched_error_text(t));
            emit_log("error", text);
            char *first = xstrdup(text);
            free(text);
            char *nl = strchr(first, '\n');
            if (nl) *nl = '\0';
            if (step) set_outcome(&oc, "ERROR", "%s (in step '%s')", first, step);
            else set_outcome(&oc, "ERROR", "%s", first);
            free(first);
        }
        lua_pop(L, 3);
        /* A failed expectation before an error still counts as a failure
         * in the log; the error decides the status. */
    }
    free(step);

cleanup:
    if (ref != LUA_NOREF) {
        /* the run itself, stopped by a timeout, is not a leftover */
        lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
        sched_cancel(L, (task *)lua_touserdata(L, -1));
        lua_pop(L, 1);
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
    }
    {
        int leftover = sched_cancel_all(L);
        if (leftover > 0) {
            char *msg = xasprintf("cancelled %d task(s) still running when the check ended", leftover);
            emit_log("info", msg);
            free(msg);
        }
        sched_unobserved_failures(L, report_unobserved, &oc);
    }
    /* Cleanup runs after an interrupt too, and a further signal does not
     * stop it (the runner's second Ctrl-C kills the worker instead). */
    keep_cleanup_going();
    sched_clear_interrupt();
    run_cleanup(L, control, &oc, o->grace, hard_end);
    if (strcmp(oc.status, "ERROR") != 0) {
        /* Any failed expectation, in the run or in its cleanup, makes the
         * check FAIL, and its message is the first one: that is what broke. */
        lua_getfield(L, control, "failures");
        lua_call(L, 0, 2);
        lua_Integer fails = lua_tointeger(L, -2);
        if (fails > 0) {
            const char *first = lua_tostring(L, -1);
            if (fails > 1) set_outcome(&oc, "FAIL", "%s (and %lld more)", first ? first : "?", (long long)fails - 1);
            else set_outcome(&oc, "FAIL", "%s", first ? first : "?");
        }
        lua_pop(L, 2);
    }

done:
    {
        const char *f[] = {oc.status, oc.message.buf ? oc.message.buf : ""};
        emit("done", 2, f);
    }
    free(err);
    sb_free(&oc.message);
    return 0;
}

/* The worker's Lua runs under lua_pcall, so that memory running out where
 * no task catches it (making a table for an event, the context) is an error
 * the worker reports, not a panic. Then it ends without "done": the runner
 * takes it for a worker that died, and replays the undo of its faults. */
static int run_protected(lua_State *L, lua_CFunction fn, const worker_opts *o)
{
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, (void *)o);
    if (lua_pcall(L, 1, 0, 0) == LUA_OK) return 0;
    const char *msg = lua_tostring(L, -1);
    char *text = xasprintf("internal: %s", msg ? msg : "error");
    emit_log("error", text);
    free(text);
    return -1;
}

int worker_run(const worker_opts *o)
{
    events_attach(o->event_fd);
    limit_address_space(o->mem_limit);
    install_signals();
    catch_termination();
    lua_State *L = new_sandbox(o);
    if (!L) {
        const char *f[] = {"ERROR", "out of memory creating the sandbox"};
        emit("done", 2, f);
        return 0;
    }
    run_protected(L, run_main, o);
    sandbox_close(L);
    return 0;
}
