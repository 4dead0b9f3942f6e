/* The host side of repl.lua (run/repl/host.c): the table of host functions
 * a REPL line reaches outside the sandbox through. */
#ifndef HALO_REPL_HOST_H
#define HALO_REPL_HOST_H
#include "run/repl.h"
#include <lua.h>
#include <sys/types.h>

/* [-0, +1] the table repl.lua is given: write, read_file, write_file,
 * tasks, stop, halo (this binary with the session's checks, stack and lib
 * directories; waits as a task), modules, stack_file, started. o must
 * outlive the session. */
void repl_push_host(lua_State *L, const repl_opts *o, double started);

/* The pid of the .run/.list child being waited for, or 0: a Ctrl-C that
 * reaches only halo is passed on to it. */
pid_t repl_host_child(void);

#endif
