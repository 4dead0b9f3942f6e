/* The automatic undo and the fault journal (undo.c): what a check changed
 * in the target and has not undone yet — a container it killed, a fixture
 * it created — undone at the end of the check, and kept on disk meanwhile
 * so that `halo cleanup` can undo it should the process be killed outright.
 * The internal table (internal.c) offers these to the host's Lua modules. */
#ifndef HALO_UNDO_H
#define HALO_UNDO_H
#include <lua.h>

/* [-0, +0] Put undo, cancel_undo, journal, process_alive and
 * journal_forget into the table at `table` (the internal table), and make
 * the registry's undo list. undo(description, fn [, key, entry_json])
 * registers and journals in one call; cancel_undo(id) cancels and forgets
 * the entry in one call (see undo.c). */
void undo_open(lua_State *L, int table);

/* [-0, +1] The pending automatic undos, newest first, as {fn, label}
 * items; they are marked done, so a second call returns only newer ones. */
void undo_push_pending(lua_State *L);

/* The journal of process pid: <state>/runs/<pid>.json (malloc'ed), or NULL
 * when there is no state directory. */
char *journal_path(long pid);
/* The process's start time in clock ticks since boot, to tell a live run
 * from a dead one whose pid was reused; 0 when gone (or a zombie). */
unsigned long long journal_start_time(long pid);

#endif
