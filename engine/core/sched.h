/* The scheduler: tasks are Lua threads, and this file is the only caller
 * of lua_resume for them. A waiting primitive ends with
 *     return sched_wait(L, cancel_fn, wait, k, ctx);
 * its I/O or timer callback later calls sched_wake(task), and the
 * scheduler resumes the task, which lands in k. Scheduler yields pass
 * through user coroutines untouched (core/coro.h).
 *
 * Every state has a scheduler of its own (its tasks, ready queue, current
 * task, ids), kept in the state's registry and found from any of its
 * threads; a task knows its scheduler. So the driver calls below take the
 * state, and two sandboxes in one process never run each other's tasks.
 * The event loop under them is the process's (core/loop.h): a timer of one
 * state may fire while another's scheduler drives the loop, which only
 * queues the woken task in its own scheduler. */
#ifndef HALO_SCHED_H
#define HALO_SCHED_H
#include <lua.h>

typedef struct task task;
typedef void (*sched_cancel_fn)(void *wait);

typedef enum {
    SCHED_DONE,        /* the awaited task finished */
    SCHED_DEADLINE,    /* the deadline passed first */
    SCHED_INTERRUPTED, /* SIGINT/SIGTERM */
    SCHED_STUCK        /* every task waits and nothing can wake one */
} sched_result;

/* Give L (a main state, before any task) a scheduler of its own: the task
 * handles' metatable and the coroutine wrappers (coro_open) with it. */
void sched_open(lua_State *L);

/* [-(n+1), +1, -] Spawn the function below n arguments on top of L's
 * stack; leaves the task's handle in their place. */
task *sched_spawn(lua_State *L, int nargs);

/* ---- driving: the host, with the state whose tasks are meant ---------- */

/* Run the loop until `until` finishes (or, when NULL, until no task of L
 * is left), the monotonic deadline passes (<= 0: none), or an interrupt. */
sched_result sched_run(lua_State *L, task *until, double deadline);

/* One round: resume L's tasks that are ready, else wait at most max_wait
 * seconds (<0: until something is due) for I/O and timers. Returns 1 when
 * tasks ran, 0 when it waited, -1 when nothing is left that could wake a
 * task (no fd, no timer). For hosts with a loop of their own (the REPL). */
int sched_step(lua_State *L, double max_wait);

/* Cancel every unfinished task of L; returns how many there were. */
int sched_cancel_all(lua_State *L);
/* Cancel one task: its pending wait is cancelled and its thread closed. L
 * is the thread that runs now (the host's, or a task's that cancels). */
void sched_cancel(lua_State *L, task *t);

int sched_live_tasks(lua_State *L);
/* Every unfinished task, newest first; fn may cancel the task it is given. */
void sched_foreach_live(lua_State *L, void (*fn)(task *t, void *ud), void *ud);
task *sched_find(lua_State *L, int id); /* an unfinished task by id, or NULL */
/* Report failed tasks nobody joined; returns how many. */
int sched_unobserved_failures(lua_State *L, void (*report)(int id, const char *text, void *ud), void *ud);

/* ---- for primitives ----------------------------------------------------- */

/* The task running in L's state now, or NULL (the host is running). */
task *sched_current(lua_State *L);
/* The task a primitive is about to suspend; raises (naming `what`) when
 * there is none or L cannot yield here (a metamethod, an iterator, a
 * table.sort comparator). Call it before arming any timer or I/O, so a
 * refused wait leaves nothing behind. */
task *sched_waiter(lua_State *L, const char *what);
int sched_wait(lua_State *L, sched_cancel_fn cancel, void *wait, lua_KFunction k, lua_KContext ctx);
void sched_wake(task *t);

/* ---- a task's outcome ----------------------------------------------------- */

/* sched_spawn leaves the task's handle on the stack; keep it (a ref) to
 * read the outcome after the task ended. */
int sched_task_done(const task *t);
int sched_task_id(const task *t);
int sched_task_ok(const task *t);
int sched_task_cancelled(const task *t);
/* [-0, +1, -] for the handle at idx: a table {n=, ...} of results when the
 * task returned, its error value when it raised */
void sched_push_outcome(lua_State *L, int handle);
/* "message\nstack traceback: ..." of a failed task (NULL if it returned). */
const char *sched_error_text(const task *t);
/* Mark a task whose failure the caller will report itself. */
void sched_observe(task *t);
lua_State *sched_task_thread(const task *t);
/* "file:line" of the innermost Lua code the task is at (waiting, or where
 * it raised), or NULL; caller frees. */
char *sched_task_where(const task *t);
const char *sched_task_state(const task *t); /* ready, waiting, running, done, failed, cancelled */

/* ---- for the task module (mod/task.c) -------------------------------------- */

/* The task whose handle is at idx; raises when the value is not one. */
task *sched_check_task(lua_State *L, int idx);
/* [-0, +(0|1), -] t's handle; pushes nothing and returns 0 once t ended
 * (the scheduler no longer holds it). */
int sched_push_task(lua_State *L, const task *t);
/* [-0, +1, -] the handles' metatable. The scheduler makes it, as handles
 * exist before any script requires task (the host spawns the check's own
 * task) and their memory is the scheduler's; the module gives it methods. */
void sched_push_task_metatable(lua_State *L);
/* Wake `waiter` (sched_wake) when t ends. sched_unjoin takes that back and
 * says whether waiter was still listed (not yet woken by t's end). */
void sched_join(task *t, task *waiter);
int sched_unjoin(task *t, task *waiter);

/* ---- interrupts ---------------------------------------------------------- */

/* Set by signal handlers, so process-wide as signals are: every state's
 * loop and instruction hook read it. */
void sched_request_interrupt(void);
int sched_interrupted(void);
void sched_clear_interrupt(void);

#endif
