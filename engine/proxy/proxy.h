/* `halo proxy`: a long-lived TCP fault proxy (links, faults, a control
 * API), in the spirit of Toxiproxy. docs/operator-guide.md describes it. */
#ifndef HALO_PROXY_PROXY_H
#define HALO_PROXY_PROXY_H
#include <stddef.h>

/* Serves until SIGTERM or SIGINT. control is the API's HOST:PORT; each
 * link is NAME=LISTEN_HOST:PORT,UPSTREAM_HOST:PORT. Returns the exit
 * status: 0 after a signal, 2 for a bad argument, 1 when an address
 * cannot be listened on. */
int proxy_run(const char *control, const char **links, size_t nlinks);

#endif
