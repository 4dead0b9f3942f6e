/* `halo repl`. The terminal (libedit in its callback mode) and the
 * scheduler share one event loop: tasks a line spawned keep running
 * between prompts, and every line runs as a task of its own, which Ctrl-C
 * stops without ending the REPL. What a line means, how values print and
 * what completes is engine/run/repl.lua; this file is the terminal, the
 * loop, the history and the way out (every fault undone). Without a
 * terminal it reads lines from stdin, prints results, and exits 3 if a line
 * raised. */
#include "run/repl.h"
#include "run/adhoc.h"
#include "core/cleanup.h"
#include "core/internal.h"
#include "core/loop.h"
#include "mod/modules.h"
#include "core/sandbox.h"
#include "core/sched.h"
#include "check/stack.h"
#include "core/util.h"
#include "core/events.h"

#include <editline/readline.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROMPT "halo> "
#define PROMPT_MORE ">> "
#define HISTORY_MAX 1000
#define EXIT_GRACE 10.0      /* seconds for the session's defers, then for each undo */
#define CHILD_POLL 0.05      /* how often a .run child is looked at */

static struct {
    const repl_opts *o;
    lua_State *L;
    int repl;                /* registry ref of repl.lua's table */
    int tty;
    int quit;
    int have_line;           /* the terminal (or stdin) delivered a line */
    char *line;              /* that line; NULL with have_line: end of input */
    strbuf pipe_in;          /* stdin without a terminal: what is not a line yet */
    int pipe_eof;
    int failed;              /* a line raised (the exit status without a terminal) */
    char *history_path;
    char *last_history;
    pid_t child;             /* a .run/.list child being waited for */
    double started;
} R;

static volatile sig_atomic_t got_sigint, got_sigterm;

static void on_sigint(int sig)
{
    (void)sig;
    got_sigint = 1;
    sandbox_interrupt_target();
    loop_interrupt_from_signal();
}

static void on_sigterm(int sig)
{
    (void)sig;
    got_sigterm = 1;
    sandbox_interrupt_target();
    loop_interrupt_from_signal();
}

static void say(const char *fmt, ...) HALO_PRINTF(1, 2);
static void say(const char *fmt, ...)
{
    strbuf sb;
    sb_init(&sb);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    char *clean = redact(sb.buf ? sb.buf : "");
    fputs(clean, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    free(clean);
    sb_free(&sb);
}

/* [-0, +1] a function of repl.lua */
static void push_repl_fn(lua_State *L, const char *name)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, R.repl);
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
}

/* ---- history -------------------------------------------------------------- */

/* $XDG_STATE_HOME/halo/history, else ~/.local/state/halo/history */
static char *history_file(void)
{
    char *dir = state_dir("");
    if (!dir) return NULL;
    char *path = xasprintf("%s/history", dir);
    free(dir);
    return path;
}

static void remember(const char *line)
{
    if (!R.tty || !*line || (R.last_history && strcmp(R.last_history, line) == 0)) return;
    add_history(line);
    free(R.last_history);
    R.last_history = xstrdup(line);
    /* written at once: a REPL killed later keeps what was typed */
    if (R.history_path && write_history(R.history_path) != 0 && errno)
        halo_warn("cannot write the history to %s: %s", R.history_path, strerror(errno));
}

/* ---- reading lines -------------------------------------------------------- */

static void on_terminal_line(char *line)
{
    R.line = line;
    R.have_line = 1;
    /* nothing more is read until this line has run */
    loop_unwatch(STDIN_FILENO);
    rl_callback_handler_remove();
}

static void on_terminal_input(int fd, int revents, void *ud)
{
    (void)fd;
    (void)revents;
    (void)ud;
    rl_callback_read_char();
}

/* Without a terminal: one line out of what stdin sent, if there is one. */
static int take_pipe_line(void)
{
    char *buf = R.pipe_in.buf;
    char *nl = buf ? memchr(buf, '\n', R.pipe_in.len) : NULL;
    if (!nl && !(R.pipe_eof && R.pipe_in.len)) {
        if (!R.pipe_eof) return 0;
        R.line = NULL; /* end of input */
        R.have_line = 1;
        return 1;
    }
    size_t n = nl ? (size_t)(nl - buf) : R.pipe_in.len;
    R.line = xstrndup(buf, n);
    size_t rest = nl ? R.pipe_in.len - n - 1 : 0;
    memmove(buf, buf + R.pipe_in.len - rest, rest);
    R.pipe_in.len = rest;
    R.have_line = 1;
    return 1;
}

static void on_pipe_input(int fd, int revents, void *ud)
{
    (void)revents;
    (void)ud;
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) R.pipe_eof = 1;
    else sb_addn(&R.pipe_in, chunk, (size_t)n);
    if (take_pipe_line()) loop_unwatch(fd);
}

static int continuing(void)
{
    push_repl_fn(R.L, "continuing");
    lua_call(R.L, 0, 1);
    int more = lua_toboolean(R.L, -1);
    lua_pop(R.L, 1);
    return more;
}

static void ask_for_line(void)
{
    if (R.tty) {
        rl_callback_handler_install(continuing() ? PROMPT_MORE : PROMPT, on_terminal_line);
        loop_watch(STDIN_FILENO, LOOP_READ, on_terminal_input, NULL);
    } else if (!take_pipe_line()) {
        loop_watch(STDIN_FILENO, LOOP_READ, on_pipe_input, NULL);
    }
}

/* ---- completion ----------------------------------------------------------- */

static char **complete(const char *text, int start, int end)
{
    (void)start;
    rl_attempted_completion_over = 1; /* no file names: this is Lua */
    lua_State *L = R.L;
    int top = lua_gettop(L);
    push_repl_fn(L, "complete");
    lua_pushlstring(L, rl_line_buffer ? rl_line_buffer : "", (size_t)(end > 0 ? end : 0));
    lua_pushstring(L, text);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
        lua_settop(L, top);
        return NULL;
    }
    size_t n = (size_t)lua_rawlen(L, -1);
    if (n == 0) {
        lua_settop(L, top);
        return NULL;
    }
    /* readline's shape: [0] what replaces the word (the common prefix),
     * then every candidate, then NULL */
    char **matches = xcalloc(n + 2, sizeof *matches);
    size_t common = 0;
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i);
        const char *s = lua_tostring(L, -1);
        matches[i] = xstrdup(s ? s : "");
        lua_pop(L, 1);
        if (i == 1) common = strlen(matches[1]);
        else
            for (size_t k = 0; k < common; k++)
                if (matches[i][k] != matches[1][k]) {
                    common = k;
                    break;
                }
    }
    lua_settop(L, top);
    matches[0] = xstrndup(matches[1], common);
    if (n == 1) { /* the only candidate is the replacement itself */
        free(matches[0]);
        matches[0] = matches[1];
        matches[1] = NULL;
    }
    return matches;
}

/* ---- the host side of repl.lua ---------------------------------------------- */

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
        R.child = 0;
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
    R.child = 0;
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
    const repl_opts *o = R.o;
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
    pid_t pid = fork();
    if (pid < 0) {
        free(argv.items);
        return luaL_error(L, "cannot start halo: %s", strerror(errno));
    }
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, STDIN_FILENO);
        execv(o->self, (char *const *)argv.items);
        fprintf(stderr, "halo: cannot run %s: %s\n", o->self, strerror(errno));
        _exit(127);
    }
    free(argv.items);
    cw->pid = pid;
    R.child = pid;
    cw->timer = loop_timer(CHILD_POLL, child_poll, cw);
    return sched_wait(L, child_cancel, cw, halo_k, (lua_KContext)cw);
}

static void push_host(lua_State *L)
{
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
    if (R.o->stack_file) {
        lua_pushstring(L, R.o->stack_file);
        lua_setfield(L, -2, "stack_file");
    }
    lua_pushnumber(L, R.started);
    lua_setfield(L, -2, "started");
}

/* ---- running a line ---------------------------------------------------------- */

static void report_error(const char *text)
{
    if (R.o->verbose) {
        say("%s", text ? text : "error");
        return;
    }
    char *first = xstrdup(text ? text : "error");
    first[strcspn(first, "\n")] = '\0';
    say("%s", first);
    free(first);
}

static void background_failure(int id, const char *text, void *ud)
{
    (void)ud;
    char *first = xstrdup(text ? text : "?");
    first[strcspn(first, "\n")] = '\0';
    say("background task %d failed: %s", id, first);
    free(first);
}

/* Run the function on top of the stack as a task, until it ends or Ctrl-C
 * stops it; the tasks it spawned run on. */
static void run_line(lua_State *L)
{
    task *t = sched_spawn(L, 0);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX); /* the handle: its outcome stays readable */
    sched_observe(t);
    sandbox_set_interrupt_target(L, t);
    int interrupted = 0;
    while (!sched_task_done(t)) {
        if (got_sigint || got_sigterm) {
            if (R.child > 0) {
                /* a .run child has the Ctrl-C too (on a terminal, the whole
                 * foreground group does): it ends itself, with its report */
                if (!R.tty) kill(R.child, got_sigterm ? SIGTERM : SIGINT);
                got_sigint = 0;
                if (got_sigterm) break;
                continue;
            }
            interrupted = 1;
            break;
        }
        if (sched_step(L, -1) < 0) {
            say("this line waits on nothing that can ever wake it: stopped");
            break;
        }
    }
    if (!sched_task_done(t)) sched_cancel(L, t);
    sandbox_set_interrupt_target(L, NULL);
    interrupted |= got_sigint;
    got_sigint = 0;
    if (interrupted) {
        say("interrupted");
    } else if (!sched_task_ok(t)) {
        R.failed = 1;
        report_error(sched_error_text(t));
    }
    const char *kill = sandbox_kill_reason(L);
    if (kill) {
        /* memory or the like: the line is gone, the session goes on */
        say("%s: the line was stopped", kill);
        R.failed = 1;
        sandbox_rearm(L, 0, NULL, 0);
    }
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
}

static void handle_line(void)
{
    lua_State *L = R.L;
    char *line = R.line;
    R.line = NULL;
    R.have_line = 0;
    if (!line) {
        if (R.tty) fputc('\n', stdout);
        R.quit = 1;
        return;
    }
    remember(line);
    int top = lua_gettop(L);
    push_repl_fn(L, "feed");
    lua_pushstring(L, line);
    free(line);
    if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
        report_error(lua_tostring(L, -1));
        R.failed = 1;
    } else if (lua_isfunction(L, -2)) {
        lua_pop(L, 1);
        run_line(L);
    } else if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "exit") == 0) {
        R.quit = 1;
    } else if (lua_isstring(L, -1)) {
        report_error(lua_tostring(L, -1));
        R.failed = 1;
    }
    lua_settop(L, top);
}

/* Ctrl-C at the prompt: what was typed (and an unfinished chunk) goes. */
static void discard_input(void)
{
    push_repl_fn(R.L, "reset");
    lua_call(R.L, 0, 0);
    if (R.tty) {
        rl_replace_line("", 0);
        rl_callback_handler_remove();
        fputs("^C\n", stdout);
        fflush(stdout);
        ask_for_line();
    }
}

/* ---- the way out --------------------------------------------------------- */

static void warn_cleanup(const char *message, const char *detail, void *ud)
{
    (void)detail;
    (void)ud;
    halo_warn("%s", message);
}

static void leave(lua_State *L)
{
    if (R.tty) rl_callback_handler_remove();
    loop_unwatch(STDIN_FILENO);
    got_sigint = 0;
    /* the session's t:defer functions, then every fault it injected */
    push_repl_fn(L, "run_defers");
    task *t = sched_spawn(L, 0);
    sched_observe(t);
    if (sched_run(L, t, clock_mono() + EXIT_GRACE) != SCHED_DONE) {
        say("cleanup of the session's defers did not finish within %g s", EXIT_GRACE);
        if (!sched_task_done(t)) sched_cancel(L, t);
    }
    lua_pop(L, 1);
    int stopped = sched_cancel_all(L);
    if (stopped) say("stopped %d background task%s", stopped, stopped == 1 ? "" : "s");
    sched_clear_interrupt();
    sandbox_rearm(L, 0, NULL, (size_t)16 << 20);
    internal_push_undos(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_getfield(L, -1, "label");
        /* "automatic undo (unpause halo_api2_1): " -> "unpause halo_api2_1" */
        const char *label = lua_tostring(L, -1) ? lua_tostring(L, -1) : "?";
        const char *open = strchr(label, '('), *close = strrchr(label, ')');
        if (open && close > open) say("undoing: %.*s", (int)(close - open - 1), open + 1);
        else say("undoing: %s", label);
        lua_pop(L, 2);
    }
    if (cleanup_run(L, -1, EXIT_GRACE, 0, warn_cleanup, NULL)) R.failed = 1;
    lua_pop(L, 1);
    internal_remove_temps(L);
}

/* ---- setup ------------------------------------------------------------------ */

static int load_repl_lua(lua_State *L)
{
    if (adhoc_push_show(L) != 0) return -1;
    int show = lua_gettop(L);
    if (sandbox_load_embedded(L, "run/repl") != LUA_OK) return -1;
    push_host(L);
    internal_push(L);
    lua_pushvalue(L, show);
    if (lua_pcall(L, 3, 1, 0) != LUA_OK) return -1;
    lua_getfield(L, -1, "t");
    lua_setglobal(L, "t");
    R.repl = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    return 0;
}

static void setup_terminal(void)
{
    rl_readline_name = "halo";
    rl_catch_signals = 0;
    rl_attempted_completion_function = complete;
    /* '.' and ':' are part of a word: "http.ge" and "res:js" complete whole */
    static char breaks[] = " \t\n\"\\'`@$><=;|&{(,+-*/%^~#[]";
    rl_completer_word_break_characters = breaks;
    rl_basic_word_break_characters = breaks;
    rl_completion_append_character = '\0';
    using_history();
    stifle_history(HISTORY_MAX);
    R.history_path = history_file();
    if (R.history_path) read_history(R.history_path);
}

int repl_run(const repl_opts *o)
{
    memset(&R, 0, sizeof R);
    R.o = o;
    R.tty = isatty(STDIN_FILENO);
    signal(SIGPIPE, SIG_IGN);
    on_interrupt_signals(on_sigint);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_sigterm;
    sigaction(SIGTERM, &sa, NULL);

    R.started = events_origin();
    sandbox_opts so = {.mem_limit = o->mem_limit, .modules = halo_modules,
                       .lib_dirs = o->lib_dirs, .nlib_dirs = o->nlib_dirs};
    lua_State *L = sandbox_new(&so);
    if (!L) {
        halo_warn("out of memory");
        return 3;
    }
    R.L = L;
    char *err = NULL;
    if (stack_load(L, o->stack_file, &err) != 0) {
        halo_warn("%s", err);
        free(err);
        sandbox_close(L);
        return 2;
    }
    lua_setglobal(L, "stack");
    adhoc_globals(L);
    if (load_repl_lua(L) != 0) {
        halo_warn("internal: %s", lua_tostring(L, -1));
        sandbox_close(L);
        return 3;
    }
    if (R.tty) {
        setup_terminal();
        say("halo %s REPL%s%s — .help for commands, Ctrl-D to leave", HALO_VERSION,
            o->stack_file ? " on " : "", o->stack_file ? o->stack_file : "");
    }
    ask_for_line();
    while (!R.quit && !got_sigterm) {
        if (R.have_line) {
            handle_line();
            if (sched_unobserved_failures(L, background_failure, NULL)) {}
            if (!R.quit && !got_sigterm) ask_for_line();
            continue;
        }
        if (got_sigint) {
            got_sigint = 0;
            sandbox_set_interrupt_target(L, NULL);
            discard_input();
            continue;
        }
        if (sched_step(L, -1) < 0) break; /* cannot happen: stdin is watched */
        sched_unobserved_failures(L, background_failure, NULL);
    }
    leave(L);
    free(R.line);
    free(R.last_history);
    free(R.history_path);
    sb_free(&R.pipe_in);
    sandbox_close(L);
    if (got_sigterm) return 143;
    return R.failed && !R.tty ? 3 : 0;
}
