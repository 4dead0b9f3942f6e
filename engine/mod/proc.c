/* The proc module: run an allow-listed program with pipes on the event
 * loop. The child gets its own process group, so a timeout (its own or
 * the check's deadline) ends everything it started: SIGTERM, then SIGKILL
 * after a short grace. Only programs the stack file allows may run. */
#include "core/errors.h"
#include "core/internal.h"
#include "core/loop.h"
#include "core/options.h"
#include "core/rlimits.h"
#include "core/types.h"
#include "mod/modules.h"
#include "core/sandbox.h"
#include "core/sched.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_TIMEOUT 60.0
#define KILL_GRACE 2.0
#define DEFAULT_MAX_OUTPUT ((size_t)16 << 20)

/* Used when the stack file sets no allow_exec: the docker and compose clients. */
static const char *const default_allowed[] = {"docker", "docker-compose", NULL};

typedef struct {
    pid_t pid;
    task *waiter;
    int out_fd, err_fd, in_fd;
    strbuf out, err;
    const char *stdin_data;
    size_t stdin_len, stdin_off;
    size_t max_output;
    int truncated;
    int exited, status;
    double started;
    loop_timer_id timeout_timer, kill_timer, reap_timer;
    int timed_out, killed;
    int waiting; /* the task is suspended on this run */
} proc_run;

static void run_wake_if_done(proc_run *r)
{
    if (r->exited && r->out_fd < 0 && r->err_fd < 0 && r->waiting) {
        r->waiting = 0;
        sched_wake(r->waiter);
    }
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        loop_unwatch(*fd);
        close(*fd);
        *fd = -1;
    }
}

static void reap(void *ud)
{
    proc_run *r = ud;
    r->reap_timer = 0;
    if (r->exited) return;
    pid_t p = waitpid(r->pid, &r->status, WNOHANG);
    if (p == r->pid) {
        r->exited = 1;
        loop_timer_cancel(r->timeout_timer);
        loop_timer_cancel(r->kill_timer);
        r->timeout_timer = r->kill_timer = 0;
        /* whatever it left running in its group goes too */
        kill(-r->pid, SIGKILL);
        run_wake_if_done(r);
        return;
    }
    /* No SIGCHLD handler (it would disturb other children): look again. */
    r->reap_timer = loop_timer(0.01, reap, r);
}

static void on_output(int fd, int revents, void *ud)
{
    (void)revents;
    proc_run *r = ud;
    strbuf *sb = fd == r->out_fd ? &r->out : &r->err;
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            size_t keep = (size_t)n;
            if (sb->len + keep > r->max_output) {
                keep = sb->len < r->max_output ? r->max_output - sb->len : 0;
                r->truncated = 1;
            }
            sb_addn(sb, buf, keep);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        close_fd(fd == r->out_fd ? &r->out_fd : &r->err_fd);
        if (r->out_fd < 0 && r->err_fd < 0 && !r->exited && !r->reap_timer) reap(r);
        run_wake_if_done(r);
        return;
    }
}

static void on_stdin(int fd, int revents, void *ud)
{
    (void)revents;
    proc_run *r = ud;
    while (r->stdin_off < r->stdin_len) {
        ssize_t n = write(fd, r->stdin_data + r->stdin_off, r->stdin_len - r->stdin_off);
        if (n > 0) {
            r->stdin_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        break; /* EPIPE: it stopped reading; fine */
    }
    close_fd(&r->in_fd);
}

static void hard_kill(void *ud)
{
    proc_run *r = ud;
    r->kill_timer = 0;
    if (!r->exited) {
        r->killed = 1;
        kill(-r->pid, SIGKILL);
    }
}

static void soft_kill(void *ud)
{
    proc_run *r = ud;
    r->timeout_timer = 0;
    if (r->exited) return;
    r->timed_out = 1;
    kill(-r->pid, SIGTERM);
    r->kill_timer = loop_timer(KILL_GRACE, hard_kill, r);
}

static void run_release(proc_run *r)
{
    close_fd(&r->out_fd);
    close_fd(&r->err_fd);
    close_fd(&r->in_fd);
    loop_timer_cancel(r->timeout_timer);
    loop_timer_cancel(r->kill_timer);
    loop_timer_cancel(r->reap_timer);
    r->timeout_timer = r->kill_timer = r->reap_timer = 0;
    sb_free(&r->out);
    sb_free(&r->err);
}

/* The task gave up waiting (cancelled, check over): the program is killed
 * with its group and reaped, so nothing outlives the check. */
static void run_cancel(void *ud)
{
    proc_run *r = ud;
    r->waiting = 0;
    if (!r->exited) {
        kill(-r->pid, SIGKILL);
        waitpid(r->pid, &r->status, 0);
        r->exited = 1;
    }
    run_release(r);
}

static int run_gc(lua_State *L)
{
    proc_run *r = lua_touserdata(L, 1);
    if (r->pid > 0 && !r->exited) run_cancel(r);
    else run_release(r);
    return 0;
}

static int run_done(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    proc_run *r = (proc_run *)ctx;
    lua_createtable(L, 0, 7);
    if (WIFEXITED(r->status)) {
        lua_pushinteger(L, WEXITSTATUS(r->status));
        lua_setfield(L, -2, "code");
    } else if (WIFSIGNALED(r->status)) {
        lua_pushinteger(L, WTERMSIG(r->status));
        lua_setfield(L, -2, "signal");
    }
    lua_pushlstring(L, r->out.buf ? r->out.buf : "", r->out.len);
    lua_setfield(L, -2, "stdout");
    lua_pushlstring(L, r->err.buf ? r->err.buf : "", r->err.len);
    lua_setfield(L, -2, "stderr");
    lua_pushnumber(L, clock_mono() - r->started);
    lua_setfield(L, -2, "duration");
    lua_pushboolean(L, r->timed_out);
    lua_setfield(L, -2, "timed_out");
    lua_pushboolean(L, r->truncated);
    lua_setfield(L, -2, "truncated");
    run_release(r);
    r->pid = 0;
    return 1;
}

/* argv[0] as a path: itself when it has a slash, else found on PATH */
static char *resolve(const char *prog)
{
    if (strchr(prog, '/')) return access(prog, X_OK) == 0 ? xstrdup(prog) : NULL;
    const char *path = getenv("PATH");
    if (!path) path = "/usr/local/bin:/usr/bin:/bin";
    char *copy = xstrdup(path), *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        char *full = xasprintf("%s/%s", *dir ? dir : ".", prog);
        struct stat st;
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0) {
            free(copy);
            return full;
        }
        free(full);
    }
    free(copy);
    return NULL;
}

/* An allow-list entry without a slash allows that program name as found on
 * PATH (argv[0] given without a slash); one with a slash allows exactly
 * that file. full is NULL when the program was not found: the list is
 * still gathered for the message. */
static int entry_allows(const char *entry, const char *prog, const char *full)
{
    if (!full) return 0;
    if (strchr(entry, '/')) return strcmp(entry, full) == 0;
    return !strchr(prog, '/') && strcmp(entry, prog) == 0;
}

static int allowed(lua_State *L, const char *prog, const char *full, strbuf *names)
{
    int ok = 0;
    lua_getfield(L, LUA_REGISTRYINDEX, STACK_REGISTRY_KEY);
    int has_list = lua_istable(L, -1) && lua_getfield(L, -1, "allow_exec") == LUA_TTABLE;
    if (has_list) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);
            const char *entry = lua_tostring(L, -1);
            if (entry) {
                sb_printf(names, "%s%s", names->len ? ", " : "", entry);
                if (entry_allows(entry, prog, full)) ok = 1;
            }
            lua_pop(L, 1);
        }
    } else {
        for (int i = 0; default_allowed[i]; i++) {
            sb_printf(names, "%s%s", names->len ? ", " : "", default_allowed[i]);
            if (entry_allows(default_allowed[i], prog, full)) ok = 1;
        }
    }
    lua_settop(L, lua_gettop(L) - (has_list ? 2 : 1));
    return ok;
}

static const char *const run_keys[] = {"argv", "env", "cwd", "stdin", "timeout", "max_output", NULL};

/* proc.run{ argv = {...}, env = {K = v}, cwd = dir, stdin = s, timeout = s, max_output = bytes }
 *   -> { code | signal, stdout, stderr, duration, timed_out, truncated } | nil, err */
static int proc_run_l(lua_State *L)
{
    lua_settop(L, 1);
    halo_check_options(L, 1, run_keys);
    task *me = sched_waiter(L, "proc.run");

    if (lua_getfield(L, 1, "argv") != LUA_TTABLE || lua_rawlen(L, -1) == 0)
        return luaL_error(L, "bad argument #1 to 'run' (argv must be a non-empty list of strings)");
    int argv_idx = lua_gettop(L);
    int argc = (int)lua_rawlen(L, argv_idx);
    for (int i = 1; i <= argc; i++) {
        if (lua_rawgeti(L, argv_idx, i) != LUA_TSTRING)
            return luaL_error(L, "bad argument #1 to 'run' (argv[%d] must be a string)", i);
        lua_pop(L, 1);
    }
    lua_rawgeti(L, argv_idx, 1);
    const char *prog = lua_tostring(L, -1);
    lua_pop(L, 1);
    char *full = resolve(prog);
    strbuf names;
    sb_init(&names);
    int ok = allowed(L, prog, full, &names);
    if (!full || !ok) {
        lua_pushfstring(L, full ? "proc.run: '%s' is not on the stack file's allow_exec list (allowed: %s)"
                                : "proc.run: '%s' was not found on PATH, or is not allowed (allowed: %s)",
                        prog, names.buf ? names.buf : "nothing");
        free(full);
        sb_free(&names);
        return lua_error(L);
    }
    sb_free(&names);

    double timeout = DEFAULT_TIMEOUT;
    if (lua_getfield(L, 1, "timeout") != LUA_TNIL) {
        timeout = lua_tonumber(L, -1);
        if (!(timeout > 0)) {
            free(full);
            return luaL_error(L, "bad argument #1 to 'run' (timeout must be positive seconds)");
        }
    }
    lua_pop(L, 1);
    double deadline = sandbox_deadline(L);
    if (deadline > 0 && deadline - clock_mono() < timeout) timeout = deadline - clock_mono();
    if (timeout < 0.001) timeout = 0.001;

    size_t max_output = DEFAULT_MAX_OUTPUT;
    if (lua_getfield(L, 1, "max_output") != LUA_TNIL) {
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) <= 0) {
            free(full);
            return luaL_error(L, "bad argument #1 to 'run' (max_output must be a byte count)");
        }
        max_output = (size_t)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);

    const char *cwd = NULL;
    if (lua_getfield(L, 1, "cwd") != LUA_TNIL) {
        cwd = lua_tostring(L, -1);
        if (!cwd) {
            free(full);
            return luaL_error(L, "bad argument #1 to 'run' (cwd must be a string)");
        }
    }
    lua_pop(L, 1); /* the string stays alive in the options table */

    /* Build argv and envp before forking: the child must not touch Lua. */
    char **argv = xcalloc((size_t)argc + 1, sizeof *argv);
    for (int i = 1; i <= argc; i++) {
        lua_rawgeti(L, argv_idx, i);
        argv[i - 1] = xstrdup(lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    size_t nenv = 0, capenv = 0;
    char **envp = NULL;
    int env_idx = 0;
    if (lua_getfield(L, 1, "env") == LUA_TTABLE) env_idx = lua_gettop(L);
    else if (!lua_isnil(L, -1)) {
        free(full);
        return luaL_error(L, "bad argument #1 to 'run' (env must be a table of NAME = value)");
    }
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (env_idx && eq) {
            lua_pushlstring(L, *e, (size_t)(eq - *e));
            int overridden = lua_rawget(L, env_idx) != LUA_TNIL;
            lua_pop(L, 1);
            if (overridden) continue;
        }
        VEC_PUSH(envp, nenv, capenv, xstrdup(*e));
    }
    if (env_idx) {
        lua_pushnil(L);
        while (lua_next(L, env_idx)) {
            if (lua_type(L, -2) == LUA_TSTRING && (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER))
                VEC_PUSH(envp, nenv, capenv, xasprintf("%s=%s", lua_tostring(L, -2), lua_tostring(L, -1)));
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    VEC_PUSH(envp, nenv, capenv, NULL);

    proc_run *r = (proc_run *)lua_newuserdatauv(L, sizeof *r, 1);
    memset(r, 0, sizeof *r);
    r->out_fd = r->err_fd = r->in_fd = -1;
    luaL_setmetatable(L, "halo.proc.run");
    if (lua_getfield(L, 1, "stdin") != LUA_TNIL) {
        r->stdin_data = lua_tolstring(L, -1, &r->stdin_len);
        if (!r->stdin_data) {
            free(full);
            return luaL_error(L, "bad argument #1 to 'run' (stdin must be a string)");
        }
        lua_setiuservalue(L, -2, 1); /* keeps the string alive while writing */
    } else {
        lua_pop(L, 1);
    }

    int outp[2] = {-1, -1}, errp[2] = {-1, -1}, inp[2] = {-1, -1};
    int fail = pipe(outp) || pipe(errp) || pipe(inp);
    pid_t pid = fail ? -1 : fork();
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGPIPE, SIG_DFL);
        rlimits_uncap_for_exec();
        dup2(inp[0], 0);
        dup2(outp[1], 1);
        dup2(errp[1], 2);
        for (int fd = 3; fd < 1024; fd++) close(fd);
        if (cwd && chdir(cwd) != 0) {
            dprintf(2, "halo proc.run: cannot change to %s: %s\n", cwd, strerror(errno));
            _exit(126);
        }
        execve(full, argv, envp);
        dprintf(2, "halo proc.run: cannot run %s: %s\n", full, strerror(errno));
        _exit(127);
    }
    int saved = errno;
    for (int i = 0; argv[i]; i++) free(argv[i]);
    free(argv);
    for (size_t i = 0; envp[i]; i++) free(envp[i]);
    free(envp);
    free(full);
    close(outp[1]);
    close(errp[1]);
    close(inp[0]);
    if (pid < 0) {
        close(outp[0]);
        close(errp[0]);
        close(inp[1]);
        return halo_error_fail(L, "spawn", "proc.run: cannot start %s: %s", prog, strerror(saved));
    }
    setpgid(pid, pid);
    r->pid = pid;
    r->waiter = me;
    r->max_output = max_output;
    r->started = clock_mono();
    r->out_fd = outp[0];
    r->err_fd = errp[0];
    r->in_fd = inp[1];
    int fds[] = {r->out_fd, r->err_fd, r->in_fd};
    for (int i = 0; i < 3; i++) fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    for (int i = 0; i < 3; i++) fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    loop_watch(r->out_fd, LOOP_READ, on_output, r);
    loop_watch(r->err_fd, LOOP_READ, on_output, r);
    if (r->stdin_len) loop_watch(r->in_fd, LOOP_WRITE, on_stdin, r);
    else close_fd(&r->in_fd);
    r->timeout_timer = loop_timer(timeout, soft_kill, r);
    r->waiting = 1;
    return sched_wait(L, run_cancel, r, run_done, (lua_KContext)r);
}

int luaopen_proc(lua_State *L)
{
    static const luaL_Reg run_meta[] = {{"__gc", run_gc}, {NULL, NULL}};
    halo_type_register(L, &(halo_type){"halo.proc.run", NULL, run_meta});
    static const luaL_Reg funcs[] = {
        {"run", proc_run_l},
        {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    return 1;
}
