/* The scheduler: tasks are Lua threads, and this file is the only caller
 * of lua_resume for them. A waiting primitive ends with
 *     return sched_wait(L, cancel_fn, wait, k, ctx);
 * its I/O or timer callback later calls sched_wake(task), and the
 * scheduler resumes the task, which lands in k. Scheduler yields pass
 * through user coroutines untouched (see the coroutine wrappers). */
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

/* Bind the scheduler to a sandbox's main state; installs the task module's
 * metatable and the coroutine wrappers into L's coroutine table. */
void sched_init(lua_State *L);

/* [-(n+1), +1, -] Spawn the function below n arguments on top of L's
 * stack; leaves the task's handle in their place. */
task *sched_spawn(lua_State *L, int nargs);

/* Run the loop until `until` finishes (or, when NULL, until no task is
 * left), the monotonic deadline passes (<= 0: none), or an interrupt. */
sched_result sched_run(task *until, double deadline);

/* One round: resume the tasks that are ready, else wait at most max_wait
 * seconds (<0: until something is due) for I/O and timers. Returns 1 when
 * tasks ran, 0 when it waited, -1 when nothing is left that could wake a
 * task (no fd, no timer). For hosts with a loop of their own (the REPL). */
int sched_step(double max_wait);

/* Cancel every unfinished task; returns how many there were. */
int sched_cancel_all(void);
/* Cancel one task: its pending wait is cancelled and its thread closed. */
void sched_cancel(task *t);

/* For primitives. */
task *sched_current(void);
/* The task a primitive is about to suspend; raises (naming `what`) when
 * there is none or L cannot yield here (a metamethod, an iterator, a
 * table.sort comparator). Call it before arming any timer or I/O, so a
 * refused wait leaves nothing behind. */
task *sched_waiter(lua_State *L, const char *what);
int sched_wait(lua_State *L, sched_cancel_fn cancel, void *wait, lua_KFunction k, lua_KContext ctx);
void sched_wake(task *t);

/* A finished task's outcome. sched_spawn leaves the task's handle on the
 * stack; keep it (a ref) to read the outcome after the task ended. */
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
/* Report failed tasks nobody joined; returns how many. */
int sched_unobserved_failures(void (*report)(int id, const char *text, void *ud), void *ud);

int sched_live_tasks(void);
/* Every unfinished task, newest first; fn may cancel the task it is given. */
void sched_foreach_live(void (*fn)(task *t, void *ud), void *ud);
task *sched_find(int id); /* an unfinished task by id, or NULL */
lua_State *sched_task_thread(const task *t);
const char *sched_task_state(const task *t); /* ready, waiting, running, done, failed, cancelled */

/* Set by signal handlers; the loop and the instruction hook both read it. */
void sched_request_interrupt(void);
int sched_interrupted(void);
void sched_clear_interrupt(void);

int luaopen_task(lua_State *L);

#endif
