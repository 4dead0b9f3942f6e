/* The runner's children: every worker, probe and script it forks, each in
 * its own process group with a pipe it reports events on; and the run's
 * state the runner's parts share. */
#ifndef HALO_CHILDREN_H
#define HALO_CHILDREN_H
#include "check/worker.h"
#include "core/events.h"
#include "core/loop.h"
#include "core/util.h"
#include "report/report.h"

#include <sys/types.h>

typedef struct child child;

/* One handler per kind of core/events.def, given exactly the event's
 * fields; a kind without one is ignored. */
typedef void (*event_handler)(child *ch, char **fields);
typedef struct {
    event_handler on[EV_COUNT];
} event_handlers;

typedef void (*exit_fn)(child *ch, int wstatus);
typedef int (*child_main)(const worker_opts *wo);

/* A fault the check injected that its worker has not undone yet: what the
 * runner replays itself if the worker dies before its cleanup. `action` is
 * the whole record (JSON): the daemon the container runs on is in it. */
typedef struct {
    char *id, *undo, *action;
} pending_fault;

struct child {
    pid_t pid;
    int fd;
    strbuf inbuf;
    size_t inbuf_scanned; /* bytes of inbuf already searched for a newline */
    check_result *check;
    const event_handlers *events;
    exit_fn on_exit;
    double started;      /* monotonic */
    loop_timer_id kill_timer;
    loop_timer_id reap_timer;
    int killed_by_deadline;
    int got_done;        /* 0, or 1 when its verdict came (an undo: 2 when it passed) */
    int reaped;
    int exclusive;
    size_t dropped;      /* log lines (failures, evidence) past LOG_MAX or the text budget */
    size_t text_bytes;   /* what the check's text added to the report so far */
    pending_fault *faults;
    size_t nfaults, capfaults;
    pid_t undoes;        /* an undo child: the dead worker whose faults it replays */
};

/* What every part of the runner reads of the run. */
typedef struct {
    run_report *report;  /* NULL while discovering */
    worker_opts worker;  /* what every child starts from */
    double grace;        /* cleanup's grace, past a check's timeout */
    int cut_short;       /* a second interrupt: children killed in their cleanup */
    int lifeline[2];     /* every child reads [0]; only the runner holds [1],
                            and never writes: its end is the runner's end */
} run_state;
extern run_state RUN;

/* A check's cleanup grace: the run's, or the check's own when longer. */
static inline double check_grace(const check_result *c)
{
    return c->grace_s > RUN.grace ? c->grace_s : RUN.grace;
}

/* A child running fn(base, with c's file and the pipe); NULL (said on
 * stderr) when it could not start. Its events go to `events`, its end to
 * on_exit; run/events_in.h listens to it. */
child *child_spawn(check_result *c, child_main fn, const worker_opts *base, const event_handlers *events,
                   exit_fn on_exit);
/* Timer callback: the child's hard deadline; its whole group is killed. */
void child_deadline(void *ud);
/* Once its pipe is closed: wait for it (polling while it lingers), kill
 * what is left of its group, call its on_exit and free it. */
void child_reap(void *ud);
/* Called after every reap: the runner starts the next check there. */
void children_after_reap(void (*fn)(void));

size_t children_alive(void);
child *child_alive(size_t i);

#endif
