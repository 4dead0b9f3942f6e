/* The event sink: how everything a check observes reaches the runner. A
 * worker attaches the pipe to its runner; modules emit lines on it
 * ("kind\tfield\t...\n", fields %-escaped and redacted here). Outside a
 * worker (eval, exec, the REPL) nothing is attached and emitting is a
 * no-op. It lives below the modules, so recording history does not make a
 * module depend on the worker. */
#ifndef HALO_EVENTS_H
#define HALO_EVENTS_H

/* From now on events go to fd, and the check's clock starts now. */
void events_attach(int fd);
void events_emit(const char *kind, int nfields, const char *const *fields);
/* Whether this process streams to a runner. */
int events_streaming(void);
/* Monotonic time the check started (unattached: the first call). */
double events_origin(void);
/* Milliseconds since events_origin. */
double events_elapsed_ms(void);

#endif
