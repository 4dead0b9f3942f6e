/* The events a child sends the runner (core/events.def), read from its
 * pipe line by line and dispatched by kind to the handlers of what the
 * child is: a worker running a check, a probe loading one, the undo of a
 * dead worker's faults, the script finding the stack's facts. */
#ifndef HALO_EVENTS_IN_H
#define HALO_EVENTS_IN_H
#include "run/children.h"

/* A check that logs in a tight loop must not grow the runner without
 * bound; past this many lines only a count is kept. */
#define LOG_MAX 5000
/* Requests are kept for the history file and the timelines; a check that
 * sends more than this keeps a count of the rest. */
#define REQUEST_MAX 500000
/* What one check's text (log lines, failures, evidence, its message) may
 * add to the report: past it, lines are counted, not kept, so a check that
 * floods cannot make a report of gigabytes or the runner that big. */
#define CHECK_TEXT_BUDGET ((size_t)8 << 20)

extern const event_handlers worker_events, probe_events, undo_events, fact_events;

/* Read the child's events until its pipe closes (then reap it), and kill
 * its group if it is still there after `limit` seconds. */
void child_listen(child *ch, double limit);
/* A line the runner itself adds to a check's log (text is taken over). */
void check_add_log(check_result *c, const char *level, char *text);

#endif
