/* A check's and a step's outcome. One list, below: the enum, the names the
 * reports print and the event lines carry, and the table a check's Lua
 * context gets (status.FAIL) all come from it, so a status is never spelt
 * anywhere else. It lives in the core, not with the reports, because the
 * worker decides statuses and the worker is below the reports. */
#ifndef HALO_STATUS_H
#define HALO_STATUS_H

/* STATUS(NAME, "printed name", meaning) */
#define HALO_STATUSES(STATUS)                                                       \
    STATUS(PASS, "PASS", "every expectation held")                                  \
    STATUS(FAIL, "FAIL", "an expectation did not hold")                             \
    STATUS(ERROR, "ERROR", "script error, resource limit, timeout, bad file")       \
    STATUS(NA, "N/A", "t:skip() or requires said the check does not apply")         \
    STATUS(DEFERRED, "DEFERRED", "--defer")                                         \
    STATUS(PENDING, "PENDING", "not finished (a run interrupted before its end)")

typedef enum {
#define HALO_STATUS_ENUM(name, printed, meaning) ST_##name,
    HALO_STATUSES(HALO_STATUS_ENUM)
#undef HALO_STATUS_ENUM
} check_status;

/* Counted apart from the enum, so a switch over the statuses need not
 * name it. */
#define HALO_STATUS_ONE(name, printed, meaning) +1
#define ST_COUNT (0 HALO_STATUSES(HALO_STATUS_ONE))

/* "PASS", "FAIL", "ERROR", "N/A", "DEFERRED", "PENDING" */
const char *status_name(check_status st);
/* ST_NAME by its printed name, or -1 when there is no such status. */
int status_from_name(const char *name);
/* NAME as a Lua key: "PASS", ... "NA" (N/A is no identifier). */
const char *status_key(check_status st);

#endif
