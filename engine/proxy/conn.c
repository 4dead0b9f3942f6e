/* Connections and forwarding. Each connection is two flows, up (client to
 * upstream) and down (upstream to client); a flow reads from its source
 * while it holds less than PX_QUEUE_CAP bytes and writes to its
 * destination as its faults allow. Without faults a read is written at
 * once from a scratch buffer, and only what the destination does not take
 * is queued: an idle connection holds no buffer at all.
 *
 * On Linux a flow that moves bulk (a read filled the whole buffer) and that
 * no fault shapes goes through a pipe of its own with splice(2): the bytes
 * stay in the kernel, which saves the two copies through user space. The
 * pipe is made then, not at accept, since it costs two descriptors; bytes
 * in it are treated like queued ones, and a fault that starts shaping the
 * flow turns them into a queued chunk, so every fault acts exactly as it
 * does on the portable path. Build with -DPX_SPLICE=0 for that path alone.
 *
 * A connection that ends is unlinked and closed at once but freed only by
 * px_conn_reap, between loop steps: a callback further up the stack may
 * still hold it. */
#define _GNU_SOURCE /* accept4 flags, MSG_NOSIGNAL, splice are Linux's */
#include "proxy/conn.h"
#include "core/util.h"

#if !defined(PX_SPLICE) && defined(__linux__)
#define PX_SPLICE 1
#endif
#ifndef PX_SPLICE
#define PX_SPLICE 0
#endif

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct px_chunk {
    struct px_chunk *next;
    double due; /* monotonic seconds; 0: now */
    size_t len, off;
    char data[];
} px_chunk;

typedef struct {
    px_conn *c;
    int dir; /* PX_UP or PX_DOWN */
    px_chunk *head, *tail;
    size_t queued;
    int eof;           /* its source said end of file */
    int shut;          /* its destination was told (shutdown SHUT_WR) */
    int write_blocked; /* its destination said EAGAIN */
    double next_free;  /* bandwidth, slices: no write before */
    double last_due;   /* latency keeps the order of chunks */
    uint64_t passed;   /* bytes written to the destination */
    loop_timer_id timer;
    int pr, pw;        /* splice's pipe, -1 until the flow moves bulk */
    int nopipe;        /* making or using one failed: read and write only */
    size_t pipe_cap;   /* what the pipe holds at most */
    size_t piped;      /* bytes in the pipe: read, not yet written */
} px_flow;

/* A fault that hit this connection, and how many bytes each flow had
 * passed then (a limit counts from there). */
typedef struct {
    int id;
    uint64_t base[2];
} px_hit;

struct px_conn {
    struct px_link *l;
    px_conn *prev, *next, *dead_next;
    int cfd, ufd;
    int connecting, dead;
    int cwatch, uwatch; /* the interest registered with the loop */
    px_hit *hits;
    size_t nhits, caphits;
    px_flow up, down;
};

static px_conn *dead_list;
static char scratch[PX_QUEUE_CAP];

/* The pipe asked for, pipe-max-size's default. Bigger splices cost less
 * per byte (fewer calls, fewer pushes of small TCP segments): on a 2 GiB
 * run the proxy spent ~1.1 s of CPU with 64 KiB, ~0.75 s with 256 KiB and
 * ~0.5 s with 1 MiB. Its pages are the source socket's, held rather than
 * copied, and only while the destination is slower than the source. Over
 * the user's pipe quota the kernel keeps a smaller pipe: slower, still
 * right. */
#ifndef PX_PIPE_SIZE
#define PX_PIPE_SIZE (1024 * 1024)
#endif

/* ---- addresses -------------------------------------------------------- */

int px_resolve(const char *hostport, int passive, struct sockaddr_storage *ss, socklen_t *len, char *err,
               size_t errsz)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    const char *h = hostport;
    size_t hn = colon ? (size_t)(colon - hostport) : 0;
    if (!colon || hn == 0 || !colon[1] || strlen(colon + 1) > 5 || strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
        snprintf(err, errsz, "'%.100s' is not HOST:PORT", hostport);
        return -1;
    }
    if (h[0] == '[' && hn >= 2 && h[hn - 1] == ']') h++, hn -= 2;
    if (hn >= sizeof host) {
        snprintf(err, errsz, "'%.100s': host name too long", hostport);
        return -1;
    }
    memcpy(host, h, hn);
    host[hn] = '\0';
    long port = strtol(colon + 1, NULL, 10);
    if (port < 1 || port > 65535 || (passive && port == 0)) {
        snprintf(err, errsz, "'%.100s': port out of range", hostport);
        return -1;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errsz, "'%.100s': %s", hostport, rc ? gai_strerror(rc) : "no address");
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* ---- ending a connection ---------------------------------------------- */

static void pipe_close(px_flow *f)
{
    if (f->pr >= 0) {
        close(f->pr);
        close(f->pw);
    }
    f->pr = f->pw = -1;
    f->piped = 0;
}

static void flow_free(px_flow *f)
{
    pipe_close(f);
    loop_timer_cancel(f->timer);
    f->timer = 0;
    while (f->head) {
        px_chunk *k = f->head;
        f->head = k->next;
        free(k);
    }
    f->tail = NULL;
    f->queued = 0;
}

static void close_fd(int fd, int rst)
{
    if (fd < 0) return;
    loop_unwatch(fd);
    if (rst) {
        /* linger 0: close sends RST, the peer reads ECONNRESET */
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(fd);
}

/* Idempotent: a second call on a dead connection does nothing. */
static void conn_end(px_conn *c, int rst)
{
    if (c->dead) return;
    c->dead = 1;
    struct px_link *l = c->l;
    if (rst) l->n.resets++;
    close_fd(c->cfd, rst);
    close_fd(c->ufd, rst);
    c->cfd = c->ufd = -1;
    flow_free(&c->up);
    flow_free(&c->down);
    if (c->prev) c->prev->next = c->next;
    else l->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    l->n.active--;
    c->dead_next = dead_list;
    dead_list = c;
}

void px_conn_reap(void)
{
    while (dead_list) {
        px_conn *c = dead_list;
        dead_list = c->dead_next;
        free(c->hits);
        free(c);
    }
}

void px_conn_reset_all(struct px_link *l)
{
    while (l->conns) conn_end(l->conns, 1);
}

/* ---- faults on a connection ------------------------------------------- */

static const px_hit *hit_of(const px_conn *c, int id)
{
    for (size_t i = 0; i < c->nhits; i++)
        if (c->hits[i].id == id) return &c->hits[i];
    return NULL;
}

/* The faults of the link that hit this connection, on flow f. */
static void effect_of(const px_flow *f, px_effect *e)
{
    memset(e, 0, sizeof *e);
    const px_conn *c = f->c;
    const struct px_link *l = c->l;
    for (int i = 0; i < l->nfaults; i++) {
        const px_fault *fault = &l->faults[i];
        if (!(fault->dirs & f->dir)) continue;
        const px_hit *h = hit_of(c, fault->id);
        if (!h) continue;
        if (fault->type == F_LIMIT) {
            /* counted from when the fault hit, as an absolute mark */
            px_fault at = *fault;
            at.bytes += h->base[f->dir == PX_UP ? 0 : 1];
            px_effect_add(e, &at);
        } else {
            px_effect_add(e, fault);
        }
    }
}

/* Tosses for fault f on c; 1 if it hit (and was recorded). */
static int toss(px_conn *c, px_fault *f)
{
    if (f->probability < 1 && !(px_random() < f->probability)) return 0;
    f->affected++;
    px_hit h = {f->id, {c->up.passed, c->down.passed}};
    VEC_PUSH(c->hits, c->nhits, c->caphits, h);
    return 1;
}

/* ---- the loop's interest ------------------------------------------------ */

static void on_client(int fd, int rev, void *ud);
static void on_upstream(int fd, int rev, void *ud);

/* A pipe that still holds bytes means the destination is full (its bytes
 * are written as soon as they come in): read nothing more meanwhile. */
static int can_read(const px_flow *f) { return !f->eof && f->queued < PX_QUEUE_CAP && !f->piped; }

static void conn_watch(px_conn *c)
{
    if (c->dead) return;
    int cw = 0, uw = 0;
    if (c->connecting) {
        uw = LOOP_WRITE;
    } else {
        if (can_read(&c->up)) cw |= LOOP_READ;
        if (c->down.write_blocked) cw |= LOOP_WRITE;
        if (can_read(&c->down)) uw |= LOOP_READ;
        if (c->up.write_blocked) uw |= LOOP_WRITE;
    }
    /* an fd watched for nothing would still wake the loop on hangup */
    if (cw != c->cwatch) {
        if (cw) loop_watch(c->cfd, cw, on_client, c);
        else loop_unwatch(c->cfd);
        c->cwatch = cw;
    }
    if (uw != c->uwatch) {
        if (uw) loop_watch(c->ufd, uw, on_upstream, c);
        else loop_unwatch(c->ufd);
        c->uwatch = uw;
    }
}

/* ---- moving bytes --------------------------------------------------------- */

static int src_of(const px_flow *f) { return f->dir == PX_UP ? f->c->cfd : f->c->ufd; }
static int dst_of(const px_flow *f) { return f->dir == PX_UP ? f->c->ufd : f->c->cfd; }

static void count(px_flow *f, size_t n)
{
    f->passed += n;
    if (f->dir == PX_UP) f->c->l->n.bytes_up += n;
    else f->c->l->n.bytes_down += n;
}

/* Bytes sent, 0 when the destination is full, -1 when it is gone. */
static ssize_t send_some(int fd, const char *p, size_t n)
{
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w >= 0) return w;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
    return -1;
}

static void enqueue(px_flow *f, const char *p, size_t n, double due)
{
    px_chunk *k = xmalloc(sizeof *k + n);
    k->next = NULL;
    k->due = due;
    k->len = n;
    k->off = 0;
    memcpy(k->data, p, n);
    if (f->tail) f->tail->next = k;
    else f->head = k;
    f->tail = k;
    f->queued += n;
}

/* ---- splice(2) through a pipe -------------------------------------------- */

/* A bulk flow's pipe, made on its first full read. When that fails (out
 * of descriptors, say) the flow keeps to read and write for good. */
static void pipe_open(px_flow *f)
{
#if PX_SPLICE
    if (f->pr >= 0 || f->nopipe) return;
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
        f->nopipe = 1;
        return;
    }
    int cap = fcntl(p[1], F_SETPIPE_SZ, PX_PIPE_SIZE);
    if (cap < 0) cap = fcntl(p[1], F_GETPIPE_SZ);
    f->pr = p[0];
    f->pw = p[1];
    f->pipe_cap = cap > 0 ? (size_t)cap : 4096;
#else
    (void)f;
#endif
}

/* The pipe's bytes moved to the queue, the pipe closed: a fault now shapes
 * the flow, and they are bytes read before it, as queued ones would be.
 * 0, or -1 when the pipe broke (the connection is then reset). */
static int pipe_drain(px_flow *f)
{
    while (f->piped) {
        size_t want = f->piped < sizeof scratch ? f->piped : sizeof scratch;
        ssize_t r = read(f->pr, scratch, want);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        enqueue(f, scratch, (size_t)r, 0);
        f->piped -= (size_t)r;
    }
    pipe_close(f); /* made again when the flow, healed, moves bulk */
    return 0;
}

/* Splices what the pipe holds to the destination, until the destination
 * is full. 0, or -1 when the connection ended. splice has no MSG_NOSIGNAL:
 * a peer gone is EPIPE here because proxy_run ignores SIGPIPE. */
static int pipe_flush(px_flow *f)
{
#if PX_SPLICE
    while (f->piped && !f->write_blocked) {
        ssize_t w = splice(f->pr, NULL, dst_of(f), NULL, f->piped, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            f->write_blocked = 1;
            break;
        }
        if (w <= 0) { /* the destination is gone (the pipe holds bytes: 0 is no end) */
            conn_end(f->c, 1);
            return -1;
        }
        count(f, (size_t)w);
        f->piped -= (size_t)w;
    }
#else
    (void)f;
#endif
    return 0;
}

/* One splice from the source into the (empty) pipe, then out: 1 when the
 * source may hold more, 0 when it seems drained or ended or the
 * destination is full, -1 when the connection ended. */
static int splice_round(px_flow *f)
{
#if PX_SPLICE
    ssize_t n = splice(src_of(f), NULL, f->pw, NULL, f->pipe_cap, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
        if (errno == EINVAL || errno == ENOSYS) { /* no splice for this socket: the portable way */
            pipe_close(f);
            f->nopipe = 1;
            return 1;
        }
        conn_end(f->c, 1); /* the source reset: so is the other side */
        return -1;
    }
    if (n == 0) {
        f->eof = 1;
        return 0;
    }
    f->piped = (size_t)n;
    if (pipe_flush(f) < 0) return -1;
    /* a short splice most likely emptied the source: poll says when more comes */
    return !f->piped && (size_t)n == f->pipe_cap;
#else
    (void)f;
    return 0;
#endif
}

static void flow_flush(px_flow *f);

static void flow_timer(void *ud)
{
    px_flow *f = ud;
    f->timer = 0;
    flow_flush(f);
    conn_watch(f->c);
}

static void arm(px_flow *f, double at, double now)
{
    f->timer = loop_timer(at - now, flow_timer, f);
}

/* Writes what is due, as the faults allow; then passes on an end of file
 * and ends the connection when both ways are done. */
static void flow_flush(px_flow *f)
{
    px_conn *c = f->c;
    if (c->dead || c->connecting) return;
    loop_timer_cancel(f->timer);
    f->timer = 0;
    px_effect e;
    effect_of(f, &e);
    if (f->piped && (px_effect_shapes(&e) ? pipe_drain(f) : pipe_flush(f)) != 0) {
        conn_end(c, 1); /* idempotent: pipe_flush may have ended it */
        return;
    }
    double now = clock_mono();
    while (f->head && !f->write_blocked) {
        px_chunk *k = f->head;
        if (k->due > now) {
            arm(f, k->due, now);
            break;
        }
        if (f->next_free > now) {
            arm(f, f->next_free, now);
            break;
        }
        size_t want = k->len - k->off;
        if (e.slice && want > e.slice) want = e.slice;
        if (e.bytes_per_s > 0) {
            /* a hundredth of a second's worth at a time: smooth enough */
            size_t quantum = (size_t)(e.bytes_per_s / 100);
            if (quantum < 1) quantum = 1;
            if (want > quantum) want = quantum;
        }
        if (e.has_limit) {
            if (f->passed >= e.limit) {
                conn_end(c, 0);
                return;
            }
            if (want > e.limit - f->passed) want = (size_t)(e.limit - f->passed);
        }
        ssize_t w = send_some(dst_of(f), k->data + k->off, want);
        if (w < 0) {
            conn_end(c, 1);
            return;
        }
        if (w == 0) {
            f->write_blocked = 1;
            break;
        }
        count(f, (size_t)w);
        k->off += (size_t)w;
        f->queued -= (size_t)w;
        if (k->off == k->len) {
            f->head = k->next;
            if (!f->head) f->tail = NULL;
            free(k);
        }
        if (e.bytes_per_s > 0) f->next_free = (f->next_free > now ? f->next_free : now) + (double)w / e.bytes_per_s;
        if (e.slice && e.slice_delay_ms) {
            double after = now + (double)e.slice_delay_ms / 1000.0;
            if (after > f->next_free) f->next_free = after;
        }
        if (e.has_limit && f->passed >= e.limit) {
            conn_end(c, 0); /* the limit closes both ways, cleanly */
            return;
        }
        if ((size_t)w < want) f->write_blocked = 1;
    }
    /* a blackhole keeps the end of file too: the peer waits forever */
    if (!f->head && !f->piped && f->eof && !f->shut && !e.blackhole) {
        shutdown(dst_of(f), SHUT_WR);
        f->shut = 1;
    }
    if (c->up.shut && c->down.shut) conn_end(c, 0);
}

static void flow_read(px_flow *f)
{
    px_conn *c = f->c;
    px_effect e;
    int shaped = 0;
    if (c->l->nfaults) {
        effect_of(f, &e);
        shaped = px_effect_shapes(&e);
    }
    /* a few reads at most, so one busy connection does not starve the rest;
     * and none after a short one, which most likely emptied the socket: a
     * round trip's message costs one recv, not a second one for EAGAIN
     * (poll is level-triggered, so whatever is left wakes us again) */
    for (int round = 0; round < 8 && !c->dead && can_read(f); round++) {
        if (f->pr >= 0 && !shaped && !f->head) {
            int more = splice_round(f);
            if (more <= 0) {
                if (more < 0) return;
                break;
            }
            continue;
        }
        size_t want = PX_QUEUE_CAP - f->queued;
        ssize_t n = recv(src_of(f), scratch, want, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
            conn_end(c, 1); /* the source reset: so is the other side */
            return;
        }
        if (n == 0) {
            f->eof = 1;
            break;
        }
        int drained = (size_t)n < want;
        if (shaped && e.blackhole) { /* swallowed */
            if (drained) break;
            continue;
        }
        if (!shaped && !f->head) {
            ssize_t w = send_some(dst_of(f), scratch, (size_t)n);
            if (w < 0) {
                conn_end(c, 1);
                return;
            }
            count(f, (size_t)w);
            if (w < n) {
                enqueue(f, scratch + w, (size_t)(n - w), 0);
                f->write_blocked = 1;
            } else if (!drained) {
                pipe_open(f); /* a full buffer: bulk, spliced from now on */
            }
            if (drained) break;
            continue;
        }
        double due = 0;
        if (shaped && (e.delay_ms > 0 || e.jitter_ms > 0)) {
            due = clock_mono() + px_effect_delay(&e);
            if (due < f->last_due) due = f->last_due; /* in order, whatever the jitter */
            f->last_due = due;
        }
        enqueue(f, scratch, (size_t)n, due);
        if (drained) break;
    }
    flow_flush(f);
}

static void on_client(int fd, int rev, void *ud)
{
    px_conn *c = ud;
    if (rev & LOOP_WRITE) {
        c->down.write_blocked = 0;
        flow_flush(&c->down);
    }
    if (!c->dead && (rev & LOOP_READ)) flow_read(&c->up);
    conn_watch(c);
}

static void on_upstream(int fd, int rev, void *ud)
{
    px_conn *c = ud;
    if (c->connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err == EINPROGRESS || err == EALREADY) return;
        if (err) {
            /* the client reads ECONNRESET, as it would from the upstream */
            c->l->n.refused++;
            conn_end(c, 1);
            return;
        }
        c->connecting = 0;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* what the client sent meanwhile is waiting in its socket */
        conn_watch(c);
        return;
    }
    if (rev & LOOP_WRITE) {
        c->up.write_blocked = 0;
        flow_flush(&c->up);
    }
    if (!c->dead && (rev & LOOP_READ)) flow_read(&c->down);
    conn_watch(c);
}

/* ---- starting one ------------------------------------------------------- */

void px_conn_start(struct px_link *l, int cfd)
{
    px_conn *c = xcalloc(1, sizeof *c);
    c->l = l;
    c->cfd = cfd;
    c->ufd = -1;
    c->up.c = c->down.c = c;
    c->up.dir = PX_UP;
    c->down.dir = PX_DOWN;
    c->up.pr = c->up.pw = c->down.pr = c->down.pw = -1;
    c->next = l->conns;
    if (l->conns) l->conns->prev = c;
    l->conns = c;
    l->n.accepted++;
    l->n.active++;
    int one = 1;
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int reset = 0;
    for (int i = 0; i < l->nfaults; i++)
        if (toss(c, &l->faults[i]) && (l->faults[i].type == F_RESET || l->faults[i].type == F_CUT)) reset = 1;
    if (reset) {
        conn_end(c, 1);
        return;
    }
    struct sockaddr_storage ss;
    socklen_t len;
    char err[160];
    if (px_resolve(l->upstream, 0, &ss, &len, err, sizeof err) != 0) {
        l->n.refused++;
        conn_end(c, 1);
        return;
    }
    c->ufd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->ufd < 0) {
        conn_end(c, 1);
        return;
    }
    if (connect(c->ufd, (struct sockaddr *)&ss, len) != 0 && errno != EINPROGRESS) {
        l->n.refused++;
        conn_end(c, 1);
        return;
    }
    c->connecting = 1;
    conn_watch(c);
}

void px_conn_fault_added(struct px_link *l, px_fault *f)
{
    for (px_conn *c = l->conns, *next; c; c = next) {
        next = c->next;
        if (!toss(c, f)) continue;
        if (f->type == F_RESET || f->type == F_CUT) conn_end(c, 1);
    }
}

void px_conn_faults_changed(struct px_link *l)
{
    for (px_conn *c = l->conns, *next; c; c = next) {
        next = c->next;
        flow_flush(&c->up);
        if (!c->dead) flow_flush(&c->down);
        conn_watch(c);
    }
}
