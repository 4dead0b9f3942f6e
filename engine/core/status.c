#include "core/status.h"

#include <string.h>

static const struct {
    const char *key;
    const char *name;
} statuses[ST_COUNT] = {
#define HALO_STATUS_ROW(name, printed, meaning) [ST_##name] = {#name, printed},
    HALO_STATUSES(HALO_STATUS_ROW)
#undef HALO_STATUS_ROW
};

const char *status_name(check_status st)
{
    /* an out-of-range value is a bug; a report still says something */
    return (unsigned)st < ST_COUNT ? statuses[st].name : "PENDING";
}

const char *status_key(check_status st) { return (unsigned)st < ST_COUNT ? statuses[st].key : NULL; }

int status_from_name(const char *name)
{
    for (int st = 0; st < ST_COUNT; st++)
        if (name && strcmp(statuses[st].name, name) == 0) return st;
    return -1;
}
