/* The host side of repl.lua: what a REPL line reaches outside the sandbox
 * through the table repl.lua is given (files, the task list, this halo
 * binary for .run and .list). */
#include "run/repl/host.h"
#include "run/repl.h"
#include "core/loop.h"
#include "core/sched.h"
#include "core/util.h"
#include "mod/modules.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_POLL 0.05      /* how often a .run child is looked at */

static const repl_opts *opts;
static pid_t child;          /* a .run/.list child being waited for */

pid_t repl_host_child(void) { return child; }

static int host_write(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char *clean = redact_n(s, len);
    fputs(clean, stdout);
    fflush(stdout);
    free(clean);
    return 0;
}

/* read_file(path) -> text | nil, err */
static int host_read_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    strbuf sb;
    sb_init(&sb);
    if (read_whole_file(path, &sb) != 0) {
        sb_free(&sb);
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(errno));
        return 2;
    }
    lua_pushlstring(L, sb.buf ? sb.buf : "", sb.len);
    sb_free(&sb);
    return 1;
}

/* write_file(path, text) -> true | nil, err */
static int host_write_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    FILE *f = fopen(path, "w");
    int ok = f && fwrite(text, 1, len, f) == len;
    if (f && fclose(f) != 0) ok = 0;
    if (!ok) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(errno));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

typedef struct {
    lua_State *L;
    task *self;
    int n;
} task_list;

/* Where a task's function was defined, "[3]:1" for one a REPL input made. */
static void push_task_where(lua_State *L, lua_State *co)
{
    lua_Debug ar;
    int level = 0;
    while (lua_getstack(co, level + 1, &ar)) level++;
    if (lua_getstack(co, level, &ar) && lua_getinfo(co, "S", &ar))
        lua_pushfstring(L, "function at %s:%d", ar.short_src, ar.linedefined);
    else
        lua_pushliteral(L, "not started");
}

static void list_one(task *t, void *ud)
{
    task_list *tl = ud;
    if (t == tl->self) return;
    lua_State *L = tl->L;
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, sched_task_id(t));
    lua_setfield(L, -2, "id");
    lua_pushstring(L, sched_task_state(t));
    lua_setfield(L, -2, "state");
    push_task_where(L, sched_task_thread(t));
    lua_setfield(L, -2, "where");
    lua_rawseti(L, -2, ++tl->n);
}

/* tasks() -> { { id, state, where }, ... } oldest first, but for the caller */
static int host_tasks(lua_State *L)
{
    lua_newtable(L);
    task_list tl = {L, sched_current(L), 0};
    sched_foreach_live(L, list_one, &tl);
    /* the scheduler lists newest first; people count up */
    for (int i = 1, j = tl.n; i < j; i++, j--) {
        lua_rawgeti(L, -1, i);
        lua_rawgeti(L, -2, j);
        lua_rawseti(L, -3, i);
        lua_rawseti(L, -2, j);
    }
    return 1;
}

/* stop(id) -> whether task id was running */
static int host_stop(lua_State *L)
{
    task *t = sched_find(L, (int)luaL_checkinteger(L, 1));
    if (!t || t == sched_current(L)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    sched_observe(t);
    sched_cancel(L, t);
    lua_pushboolean(L, 1);
    return 1;
}

/* halo(args): this binary with args, and the session's checks, stack and
 * lib directories; its output goes straight to the terminal. Waits (as a
 * task) until it exits; returns its exit status. */
typedef struct {
    pid_t pid;
    task *waiter;
    loop_timer_id timer;
    int status;
    int done;
} child_wait;

static void child_poll(void *ud)
{
    child_wait *cw = ud;
    cw->timer = 0;
    int status;
    pid_t r = waitpid(cw->pid, &status, WNOHANG);
    if (r == cw->pid || (r < 0 && errno == ECHILD)) {
        cw->done = 1;
        cw->status = r == cw->pid ? status : 0;
        child = 0;
        sched_wake(cw->waiter);
        return;
    }
    cw->timer = loop_timer(CHILD_POLL, child_poll, cw);
}

static void child_cancel(void *wait)
{
    child_wait *cw = wait;
    if (cw->timer) loop_timer_cancel(cw->timer);
    cw->timer = 0;
    if (!cw->done && cw->pid > 0) {
        kill(cw->pid, SIGTERM);
        waitpid(cw->pid, NULL, 0);
    }
    child = 0;
}

static int halo_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    child_wait *cw = (child_wait *)ctx;
    int code = WIFEXITED(cw->status) ? WEXITSTATUS(cw->status) : 128 + WTERMSIG(cw->status);
    lua_pushinteger(L, code);
    return 1;
}

static int host_halo(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    task *me = sched_waiter(L, ".run");
    const repl_opts *o = opts;
    struct {
        const char **items;
        size_t n, cap;
    } argv = {0};
#define ARG(s) VEC_PUSH(argv.items, argv.n, argv.cap, (s))
    ARG(o->self);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        ARG(luaL_checkstring(L, -1)); /* kept alive by the table */
        lua_pop(L, 1);
    }
    int is_run = n > 0 && (lua_rawgeti(L, 1, 1), strcmp(lua_tostring(L, -1), "run") == 0);
    if (n > 0) lua_pop(L, 1);
    if (o->checks_dir) {
        ARG("--checks");
        ARG(o->checks_dir);
    }
    if (is_run && o->stack_file) {
        ARG("--stack");
        ARG(o->stack_file);
    }
    for (size_t i = 0; i < o->nlib_dirs; i++) {
        ARG("--lib");
        ARG(o->lib_dirs[i]);
    }
    ARG(NULL);
#undef ARG
    child_wait *cw = lua_newuserdatauv(L, sizeof *cw, 0);
    memset(cw, 0, sizeof *cw);
    cw->waiter = me;
    fflush(stdout);
    fflush(stderr);
    /* The run must not outlive the REPL (a closed terminal, kill -9): it
     * watches a lifeline whose only writer is this process, as its own
     * workers watch it (HALO_LIFELINE_FD, read by run/runner.c). */
    static int lifeline[2] = {-1, -1};
    if (lifeline[1] < 0 && pipe(lifeline) == 0) {
        fcntl(lifeline[0], F_SETFD, FD_CLOEXEC);
        fcntl(lifeline[1], F_SETFD, FD_CLOEXEC);
    }
    pid_t pid = fork();
    if (pid < 0) {
        free(argv.items);
        return luaL_error(L, "cannot start halo: %s", strerror(errno));
    }
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        if (lifeline[1] >= 0) {
            close(lifeline[1]);
            fcntl(lifeline[0], F_SETFD, 0); /* this one goes across the exec */
            char fd[16];
            snprintf(fd, sizeof fd, "%d", lifeline[0]);
            setenv("HALO_LIFELINE_FD", fd, 1);
        }
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, STDIN_FILENO);
        execv(o->self, (char *const *)argv.items);
        fprintf(stderr, "halo: cannot run %s: %s\n", o->self, strerror(errno));
        _exit(127);
    }
    free(argv.items);
    cw->pid = pid;
    child = pid;
    cw->timer = loop_timer(CHILD_POLL, child_poll, cw);
    return sched_wait(L, child_cancel, cw, halo_k, (lua_KContext)cw);
}

void repl_push_host(lua_State *L, const repl_opts *o, double started)
{
    opts = o;
    static const luaL_Reg funcs[] = {
        {"write", host_write}, {"read_file", host_read_file}, {"write_file", host_write_file},
        {"tasks", host_tasks}, {"stop", host_stop},           {"halo", host_halo},
        {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    lua_newtable(L);
    for (int i = 0; halo_modules[i].name; i++) {
        lua_pushstring(L, halo_modules[i].name);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "modules");
    if (o->stack_file) {
        lua_pushstring(L, o->stack_file);
        lua_setfield(L, -2, "stack_file");
    }
    lua_pushnumber(L, started);
    lua_setfield(L, -2, "started");
}
