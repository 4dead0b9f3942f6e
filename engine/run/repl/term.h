/* The REPL's input (run/repl/term.c): the terminal through libedit, or
 * stdin without one, read on the event loop. */
#ifndef HALO_REPL_TERM_H
#define HALO_REPL_TERM_H
#include <lua.h>

/* Take input from stdin; repl is the registry ref of repl.lua's table
 * (its continuing and complete). On a terminal: history from the state
 * directory, completion. */
void repl_term_open(lua_State *L, int repl, int tty);
/* Prompt (on a terminal) and watch stdin until a line came. */
void repl_term_ask(void);
/* Whether a line came; then *line is it (malloc'ed; NULL: end of input),
 * and nothing is read until repl_term_ask. */
int repl_term_take(char **line);
/* Into the history, written at once: a REPL killed later keeps it. */
void repl_term_remember(const char *line);
/* Ctrl-C at the prompt: what was typed goes, and a fresh prompt. */
void repl_term_discard(void);
/* Stop reading stdin (the way out). */
void repl_term_stop(void);
void repl_term_close(void);

#endif
