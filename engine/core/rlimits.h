/* The address-space cap a check's worker runs under, and taking it off
 * again for the programs a check runs: the cap bounds the check's own
 * Lua, not a dockerd that proc.run starts (Go reserves gigabytes of
 * address space up front and dies of "out of memory" under the cap). */
#ifndef HALO_RLIMITS_H
#define HALO_RLIMITS_H
#include <stddef.h>

/* Lowers the soft RLIMIT_AS to cap bytes (never the hard limit, so that a
 * child can have the old one back); remembers the soft limit it had. */
void rlimits_cap_address_space(size_t cap);
/* In a child between fork and exec: the soft limit from before the cap. */
void rlimits_uncap_for_exec(void);

#endif
