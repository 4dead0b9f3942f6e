/* The control API: HTTP/1.1 with JSON bodies on a loopback port, one
 * request per connection. The routes are listed in control.c and in
 * docs/operator-guide.md (`halo proxy`). */
#ifndef HALO_PROXY_CONTROL_H
#define HALO_PROXY_CONTROL_H
#include <stddef.h>

/* Listens on HOST:PORT. 0, or -1 with err. */
int px_control_open(const char *addr, char *err, size_t errsz);
/* Closes the listener and every request still being read or answered. */
void px_control_close(void);

#endif
