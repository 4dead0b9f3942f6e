/* The REPL's input: libedit in its callback mode on a terminal (prompt,
 * history, completion), or lines read from stdin without one. Input
 * arrives through the event loop, so tasks keep running while the prompt
 * waits; nothing more is read until the session took the line. */
#include "run/repl/term.h"
#include "core/loop.h"
#include "core/util.h"

#include <editline/readline.h>
#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROMPT "halo> "
#define PROMPT_MORE ">> "
#define HISTORY_MAX 1000

static struct {
    lua_State *L;
    int repl;                /* registry ref of repl.lua's table */
    int tty;
    int have_line;           /* the terminal (or stdin) delivered a line */
    char *line;              /* that line; NULL with have_line: end of input */
    strbuf pipe_in;          /* stdin without a terminal: what is not a line yet */
    int pipe_eof;
    char *history_path;
    char *last_history;
} T;

/* [-0, +1] a function of repl.lua */
static void push_repl_fn(lua_State *L, const char *name)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, T.repl);
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
    if (!T.tty || !*line || (T.last_history && strcmp(T.last_history, line) == 0)) return;
    add_history(line);
    free(T.last_history);
    T.last_history = xstrdup(line);
    /* written at once: a REPL killed later keeps what was typed */
    if (T.history_path && write_history(T.history_path) != 0 && errno)
        halo_warn("cannot write the history to %s: %s", T.history_path, strerror(errno));
}

/* ---- reading lines -------------------------------------------------------- */

static void on_terminal_line(char *line)
{
    T.line = line;
    T.have_line = 1;
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
    char *buf = T.pipe_in.buf;
    char *nl = buf ? memchr(buf, '\n', T.pipe_in.len) : NULL;
    if (!nl && !(T.pipe_eof && T.pipe_in.len)) {
        if (!T.pipe_eof) return 0;
        T.line = NULL; /* end of input */
        T.have_line = 1;
        return 1;
    }
    size_t n = nl ? (size_t)(nl - buf) : T.pipe_in.len;
    T.line = xstrndup(buf, n);
    size_t rest = nl ? T.pipe_in.len - n - 1 : 0;
    memmove(buf, buf + T.pipe_in.len - rest, rest);
    T.pipe_in.len = rest;
    T.have_line = 1;
    return 1;
}

static void on_pipe_input(int fd, int revents, void *ud)
{
    (void)revents;
    (void)ud;
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) T.pipe_eof = 1;
    else sb_addn(&T.pipe_in, chunk, (size_t)n);
    if (take_pipe_line()) loop_unwatch(fd);
}

static int continuing(void)
{
    push_repl_fn(T.L, "continuing");
    lua_call(T.L, 0, 1);
    int more = lua_toboolean(T.L, -1);
    lua_pop(T.L, 1);
    return more;
}

static void ask_for_line(void)
{
    if (T.tty) {
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
    lua_State *L = T.L;
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

/* ---- the session's side ------------------------------------------------------ */

void repl_term_open(lua_State *L, int repl, int tty)
{
    memset(&T, 0, sizeof T);
    T.L = L;
    T.repl = repl;
    T.tty = tty;
    if (!tty) return;
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
    T.history_path = history_file();
    if (T.history_path) read_history(T.history_path);
}

void repl_term_ask(void) { ask_for_line(); }

int repl_term_take(char **line)
{
    if (!T.have_line) return 0;
    *line = T.line;
    T.line = NULL;
    T.have_line = 0;
    return 1;
}

void repl_term_remember(const char *line) { remember(line); }

void repl_term_discard(void)
{
    if (!T.tty) return;
    rl_replace_line("", 0);
    rl_callback_handler_remove();
    fputs("^C\n", stdout);
    fflush(stdout);
    ask_for_line();
}

void repl_term_stop(void)
{
    if (T.tty) rl_callback_handler_remove();
    loop_unwatch(STDIN_FILENO);
}

void repl_term_close(void)
{
    free(T.line);
    free(T.last_history);
    free(T.history_path);
    sb_free(&T.pipe_in);
    memset(&T, 0, sizeof T);
}
