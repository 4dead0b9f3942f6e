/* The event sink: how everything a check observes reaches the runner. A
 * worker attaches the pipe to its runner; the worker, the check context
 * and the modules emit events on it, one line each. The events are listed,
 * with their fields and meaning, in core/events.def. Outside a worker
 * (eval, exec, the REPL) nothing is attached and emitting is a no-op. It
 * lives below the modules, so recording history does not make a module
 * depend on the worker. */
#ifndef HALO_EVENTS_H
#define HALO_EVENTS_H

typedef enum {
#define EVENT(name, kind, nfields, fields, meaning) EV_##name,
#include "core/events.def"
#undef EVENT
} event_kind;

/* Counted apart from the enum, so a switch over the kinds need not name it. */
#define EVENT(name, kind, nfields, fields, meaning) +1
enum { EV_COUNT = 0
#include "core/events.def"
};
#undef EVENT

/* One row of core/events.def. */
typedef struct {
    const char *name;    /* "STEP_BEGIN", as in the enum */
    const char *kind;    /* "step+", as on the pipe */
    int nfields;
    const char *fields;  /* "name started_ms" */
    const char *meaning;
} event_spec;

const event_spec *events_spec(event_kind kind);
/* The kind a line starts with, or -1 for none of the table's. */
int events_kind_of(const char *kind);

/* A report is read by people: a field past this is cut, with a note. */
#define EVENT_FIELD_MAX (256 * 1024)

/* From now on events go to fd, and the check's clock starts now. */
void events_attach(int fd);
/* One event. nfields must be the table's count for the kind: an event
 * with the wrong fields is refused, with a warning, as a bug. Returns 0,
 * or -1 when refused. Every field is redacted and cut at EVENT_FIELD_MAX. */
int events_send(event_kind kind, int nfields, const char *const *fields);
/* The same by the kind's name ("log"), for code that names kinds by
 * string; an unknown kind is refused, with a warning. */
int events_emit(const char *kind, int nfields, const char *const *fields);
/* A log line (EV_LOG) stamped with the time since the check started. */
void events_log(const char *level, const char *text);
/* Whether this process streams to a runner. */
int events_streaming(void);
/* Monotonic time the check started (unattached: the first call). */
double events_origin(void);
/* Milliseconds since events_origin. */
double events_elapsed_ms(void);

#endif
