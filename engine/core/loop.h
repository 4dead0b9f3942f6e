/* The event loop: file descriptors and timers on poll(2). It knows nothing
 * of Lua; the scheduler and the I/O primitives register callbacks here. */
#ifndef HALO_LOOP_H
#define HALO_LOOP_H
#include <stdint.h>

enum { LOOP_READ = 1, LOOP_WRITE = 2 };

typedef void (*loop_fd_cb)(int fd, int revents, void *ud);
typedef void (*loop_timer_cb)(void *ud);
typedef uint64_t loop_timer_id; /* 0 is never a valid id */

void loop_init(void);
/* In a forked child: forget the parent's fds, timers and wake pipe. */
void loop_reset(void);

/* Watch fd for events (LOOP_READ|LOOP_WRITE); a second call on the same fd
 * replaces the interest. revents may also carry LOOP_READ on hangup/error. */
void loop_watch(int fd, int events, loop_fd_cb cb, void *ud);
void loop_unwatch(int fd);

/* One-shot timer after `seconds` (monotonic). */
loop_timer_id loop_timer(double seconds, loop_timer_cb cb, void *ud);
void loop_timer_cancel(loop_timer_id id);

/* Wait at most max_wait seconds (<0: until something is due) and dispatch
 * what became ready. Returns the number of callbacks run. */
int loop_step(double max_wait);

/* Whether any fd or timer is registered. */
int loop_busy(void);

/* A lifeline: fd is the read end of a pipe whose only writer is the
 * process that started this one, and which never writes; end of file means
 * that process is gone. on_gone is called once, from loop_step, when it
 * is. The lifeline does not count for loop_busy: it wakes no task. */
void loop_lifeline(int fd, void (*on_gone)(void));

/* Async-signal-safe wake-up from a signal handler: makes loop_step return. */
void loop_interrupt_from_signal(void);

#endif
