/* Links: a listening address, an upstream, the connections between them
 * and the faults in place. Every function runs on the event loop
 * (core/loop.h); the control API (proxy/control.c) drives them. */
#ifndef HALO_PROXY_LINK_H
#define HALO_PROXY_LINK_H
#include "core/util.h"
#include "proxy/faults.h"

#include <stddef.h>

typedef struct px_link px_link;

enum { PX_OK = 0, PX_EINVAL = -1, PX_EEXIST = -2, PX_ELISTEN = -3, PX_EFULL = -4 };

/* Creates a link listening on `listen` (HOST:PORT, bound as given) that
 * forwards to `upstream` (HOST:PORT, resolved at each connection: a
 * container recreated under the same name is found again). Returns PX_OK,
 * or an error with err saying what is wrong. */
int px_link_create(const char *name, const char *listen, const char *upstream, char *err, size_t errsz);
px_link *px_link_find(const char *name);
size_t px_link_count(void);
px_link *px_link_at(size_t i);
/* Resets its connections, closes its listener, forgets it. */
void px_link_delete(px_link *l);

/* Adds a fault (its id assigned here) and applies it to the connections
 * already there; PX_EFULL when the link holds PX_MAX_FAULTS. *out is the
 * fault as stored, valid until the next change of the link's faults. */
int px_link_add_fault(px_link *l, const px_fault *f, const px_fault **out);
/* 0, or -1 when the link has no such fault. */
int px_link_remove_fault(px_link *l, int id);
/* Every fault removed, the listener open again. */
void px_link_heal(px_link *l);

void px_link_json(const px_link *l, strbuf *sb);

/* Every link deleted (at exit). */
void px_links_close_all(void);
/* Frees what connections closed since the last call: called between loop
 * steps, when no callback still holds one. */
void px_reap(void);

/* A non-blocking listening socket bound to HOST:PORT exactly as given
 * (SO_REUSEADDR: reopened after a cut, its port may hold connections in
 * TIME_WAIT). The fd, or -1 with err. */
int px_listen(const char *addr, char *err, size_t errsz);

/* One JSON line on stdout: {"t":..,"event":EVENT,FIELDS}, FIELDS being
 * `"key":value,...` already encoded (or NULL). */
void px_log(const char *event, const char *fields);

#endif
