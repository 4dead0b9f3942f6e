/* Running cleanup: a list of {fn=, label=} items, each as its own task,
 * in order, all under one deadline. Used for a check's defers, for the
 * automatic undo of faults, and at the end of eval/exec. */
#ifndef HALO_CLEANUP_H
#define HALO_CLEANUP_H
#include <lua.h>

typedef void (*cleanup_report)(const char *message, const char *detail, void *ud);

/* list: stack index of the sequence. label ends with ": " (it prefixes
 * "failed: ..."). Each item gets `grace` seconds, never past hard_end (a
 * monotonic time; 0: none). report gets a one-line message and the full
 * error text. Returns how many items failed or did not run. */
int cleanup_run(lua_State *L, int list, double grace, double hard_end, cleanup_report report, void *ud);

#endif
