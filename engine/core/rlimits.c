#include "core/rlimits.h"

#include <sys/resource.h>

static struct {
    int capped;
    rlim_t before;
} as;

void rlimits_cap_address_space(size_t cap)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0) return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max <= cap) return;
    if (!as.capped) as.before = rl.rlim_cur;
    rl.rlim_cur = cap;
    if (setrlimit(RLIMIT_AS, &rl) == 0) as.capped = 1;
}

void rlimits_uncap_for_exec(void)
{
    if (!as.capped) return;
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0) return;
    rl.rlim_cur = as.before;
    setrlimit(RLIMIT_AS, &rl);
}
