/* The connections of a link and the forwarding of their bytes: what
 * proxy/link.c needs to hand them a client, a fault, a reset. The link's
 * fields are here because both sides read them. */
#ifndef HALO_PROXY_CONN_H
#define HALO_PROXY_CONN_H
#include "core/loop.h"
#include "proxy/faults.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct px_conn px_conn;

/* Bytes queued per direction of a connection before the proxy stops
 * reading from its source: backpressure, and a bound on memory. (A fault
 * that comes while a bulk flow's splice pipe is full queues that pipe's
 * bytes, up to 1 MiB, once.) */
#define PX_QUEUE_CAP (64 * 1024)

typedef struct {
    uint64_t accepted, active, refused, resets, bytes_up, bytes_down;
} px_counters;

struct px_link {
    char *name, *listen, *upstream;
    int lfd; /* -1 while cut (or while reopening it fails) */
    loop_timer_id relisten;
    px_fault faults[PX_MAX_FAULTS];
    int nfaults, next_fault_id;
    px_conn *conns; /* a doubly linked list */
    px_counters n;
};

/* A client accepted on l: its faults tossed for, the upstream dialled. */
void px_conn_start(struct px_link *l, int client_fd);
/* A fault just added to l: tossed for on each connection; a reset or a cut
 * resets those it hits. */
void px_conn_fault_added(struct px_link *l, px_fault *f);
/* After a fault was removed: what waited on it goes on. */
void px_conn_faults_changed(struct px_link *l);
/* Resets every connection of l (the link is going away). */
void px_conn_reset_all(struct px_link *l);
void px_conn_reap(void);

/* HOST:PORT ([V6]:PORT too) to an address; passive for a listener. 0, or
 * -1 with err. */
int px_resolve(const char *hostport, int passive, struct sockaddr_storage *ss, socklen_t *len, char *err,
               size_t errsz);

#endif
