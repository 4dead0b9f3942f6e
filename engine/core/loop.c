/* poll(2) event loop with a binary-heap of timers and a self-pipe so signal
 * handlers can cut a wait short. Callbacks only record and wake; nothing
 * here resumes Lua.
 *
 * It stays cheap with a thousand descriptors and timers: the pollfd array
 * is kept in step with the watches (not rebuilt at every step), watches
 * are found through an index by fd, and a timer's id names its slot, so
 * cancelling one is a heap removal rather than a search. */
#include "core/loop.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    loop_fd_cb cb;
    void *ud;
} watch;

/* pollfds[i] and watches[i] are one watch; pollfds has a spare entry past
 * the last for the wake pipe. slot_of[fd] is its index plus one (0: not
 * watched); a negative fd, which poll ignores, is found by a search. */
static struct pollfd *pollfds;
static watch *watches;
static size_t nwatches, capwatches;
static size_t *slot_of;
static size_t nslot_of;

typedef struct {
    double due;
    uint64_t seq; /* arming order: equal deadlines fire in it */
    uint32_t slot;
} timer;

#define SLOT_FREE UINT32_MAX

/* A timer's id is its slot and the slot's generation, bumped whenever the
 * slot is freed, so a stale id (fired or cancelled) matches nothing. */
typedef struct {
    loop_timer_cb cb;
    void *ud;
    uint32_t gen;
    uint32_t pos; /* in the heap, or SLOT_FREE */
} timer_slot;

static timer *heap;
static size_t nheap, capheap;
static timer_slot *slots;
static size_t nslots, capslots;
static uint32_t *free_slots;
static size_t nfree, capfree;
static uint64_t next_seq = 1;
static int wake_pipe[2] = {-1, -1};
static int lifeline_fd = -1;
static void (*lifeline_gone)(void);

static void set_nonblock_cloexec(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
}

void loop_init(void)
{
    if (wake_pipe[0] >= 0) return;
    if (pipe(wake_pipe) == 0) {
        set_nonblock_cloexec(wake_pipe[0]);
        set_nonblock_cloexec(wake_pipe[1]);
    }
}

static void slot_free(uint32_t s)
{
    slots[s].gen++;
    slots[s].pos = SLOT_FREE;
    VEC_PUSH(free_slots, nfree, capfree, s);
}

void loop_reset(void)
{
    if (wake_pipe[0] >= 0) {
        close(wake_pipe[0]);
        close(wake_pipe[1]);
        wake_pipe[0] = wake_pipe[1] = -1;
    }
    for (size_t i = 0; i < nwatches; i++)
        if (pollfds[i].fd >= 0 && (size_t)pollfds[i].fd < nslot_of) slot_of[pollfds[i].fd] = 0;
    nwatches = 0;
    lifeline_fd = -1; /* a parent's lifeline is not the child's */
    for (size_t i = 0; i < nheap; i++) slot_free(heap[i].slot);
    nheap = 0;
    loop_init();
}

void loop_lifeline(int fd, void (*on_gone)(void))
{
    lifeline_fd = fd;
    lifeline_gone = on_gone;
    if (fd >= 0) set_nonblock_cloexec(fd);
}

/* The lifeline's end came: say so once. */
static void lifeline_check(short revents)
{
    if (!revents) return;
    char buf[16];
    ssize_t r = read(lifeline_fd, buf, sizeof buf);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    lifeline_fd = -1; /* end of file (the writer is gone), or the fd broke */
    if (lifeline_gone) lifeline_gone();
}

void loop_interrupt_from_signal(void)
{
    int saved = errno;
    if (wake_pipe[1] >= 0) {
        ssize_t r = write(wake_pipe[1], "x", 1);
        (void)r;
    }
    errno = saved;
}

/* ---- watches ------------------------------------------------------------ */

/* The index of fd's watch, or nwatches when it has none. */
static size_t watch_find(int fd)
{
    if (fd >= 0) return (size_t)fd < nslot_of && slot_of[fd] ? slot_of[fd] - 1 : nwatches;
    for (size_t i = 0; i < nwatches; i++)
        if (pollfds[i].fd == fd) return i;
    return nwatches;
}

static short poll_events(int events)
{
    return (short)(((events & LOOP_READ) ? POLLIN : 0) | ((events & LOOP_WRITE) ? POLLOUT : 0));
}

void loop_watch(int fd, int events, loop_fd_cb cb, void *ud)
{
    size_t i = watch_find(fd);
    if (i == nwatches) {
        if (nwatches + 3 > capwatches) {
            size_t cap = capwatches ? capwatches * 2 : 16;
            pollfds = xrealloc(pollfds, cap * sizeof *pollfds);
            watches = xrealloc(watches, cap * sizeof *watches);
            capwatches = cap;
        }
        if (fd >= 0 && (size_t)fd >= nslot_of) {
            size_t n = nslot_of ? nslot_of : 64;
            while (n <= (size_t)fd) n *= 2;
            slot_of = xrealloc(slot_of, n * sizeof *slot_of);
            memset(slot_of + nslot_of, 0, (n - nslot_of) * sizeof *slot_of);
            nslot_of = n;
        }
        pollfds[i].fd = fd;
        pollfds[i].revents = 0;
        if (fd >= 0) slot_of[fd] = i + 1;
        nwatches++;
    }
    pollfds[i].events = poll_events(events);
    watches[i].cb = cb;
    watches[i].ud = ud;
}

void loop_unwatch(int fd)
{
    size_t i = watch_find(fd);
    if (i == nwatches) return;
    if (fd >= 0) slot_of[fd] = 0;
    size_t last = --nwatches;
    if (i != last) {
        pollfds[i] = pollfds[last];
        watches[i] = watches[last];
        if (pollfds[i].fd >= 0) slot_of[pollfds[i].fd] = i + 1;
    }
}

/* ---- timers ------------------------------------------------------------- */

static void heap_set(size_t i, timer t)
{
    heap[i] = t;
    slots[t.slot].pos = (uint32_t)i;
}

static int timer_less(const timer *a, const timer *b)
{
    if (a->due != b->due) return a->due < b->due;
    return a->seq < b->seq;
}

static void heap_up(size_t i)
{
    timer t = heap[i];
    while (i > 0 && timer_less(&t, &heap[(i - 1) / 2])) {
        heap_set(i, heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(i, t);
}

static void heap_down(size_t i)
{
    timer t = heap[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const timer *best = &t;
        if (l < nheap && timer_less(&heap[l], best)) {
            m = l;
            best = &heap[l];
        }
        if (r < nheap && timer_less(&heap[r], best)) m = r;
        if (m == i) break;
        heap_set(i, heap[m]);
        i = m;
    }
    heap_set(i, t);
}

static void heap_remove_at(size_t i)
{
    if (i == --nheap) return;
    heap_set(i, heap[nheap]);
    heap_up(i);
    heap_down(i);
}

loop_timer_id loop_timer(double seconds, loop_timer_cb cb, void *ud)
{
    if (seconds < 0) seconds = 0;
    uint32_t s;
    if (nfree > 0) {
        s = free_slots[--nfree];
    } else {
        timer_slot fresh = {NULL, NULL, 1, SLOT_FREE};
        VEC_PUSH(slots, nslots, capslots, fresh);
        s = (uint32_t)(nslots - 1);
    }
    slots[s].cb = cb;
    slots[s].ud = ud;
    timer t = {clock_mono() + seconds, next_seq++, s};
    grow_array((void **)&heap, &capheap, nheap + 1, sizeof *heap);
    heap_set(nheap++, t);
    heap_up(nheap - 1);
    return ((loop_timer_id)slots[s].gen << 32) | ((loop_timer_id)s + 1);
}

void loop_timer_cancel(loop_timer_id id)
{
    if (!id) return;
    uint64_t s = (id & 0xffffffffu) - 1;
    if (s >= nslots || slots[s].gen != (uint32_t)(id >> 32) || slots[s].pos == SLOT_FREE) return;
    heap_remove_at(slots[s].pos);
    slot_free((uint32_t)s);
}

int loop_busy(void) { return nwatches > 0 || nheap > 0; }

static int run_due_timers(void)
{
    int ran = 0;
    double now = clock_mono();
    while (nheap > 0 && heap[0].due <= now) {
        uint32_t s = heap[0].slot;
        loop_timer_cb cb = slots[s].cb;
        void *ud = slots[s].ud;
        heap_remove_at(0);
        slot_free(s);
        cb(ud);
        ran++;
    }
    return ran;
}

/* ---- one step ------------------------------------------------------------- */

typedef struct {
    int fd;
    short revents;
} ready_fd;

int loop_step(double max_wait)
{
    int ran = run_due_timers();
    double wait = max_wait;
    if (ran) wait = 0;
    if (nheap > 0) {
        double until = heap[0].due - clock_mono();
        if (until < 0) until = 0;
        if (wait < 0 || until < wait) wait = until;
    }

    if (nwatches + 2 > capwatches) { /* only before the first watch */
        capwatches = 16;
        pollfds = xrealloc(pollfds, capwatches * sizeof *pollfds);
        watches = xrealloc(watches, capwatches * sizeof *watches);
    }
    size_t n = nwatches;
    pollfds[n].fd = wake_pipe[0];
    pollfds[n].events = POLLIN;
    pollfds[n].revents = 0;
    /* past the wake pipe: the lifeline, when there is one */
    size_t extra = 1;
    if (lifeline_fd >= 0) {
        pollfds[n + 1].fd = lifeline_fd;
        pollfds[n + 1].events = POLLIN;
        pollfds[n + 1].revents = 0;
        extra = 2;
    }

    int timeout_ms;
    if (wait < 0) timeout_ms = -1;
    else {
        double ms = wait * 1000.0;
        timeout_ms = ms > 86400000.0 ? 86400000 : (int)ms;
        if (timeout_ms == 0 && ms > 0) timeout_ms = 1; /* don't spin before a sub-ms timer */
    }

    int rc = poll(pollfds, (nfds_t)(n + extra), timeout_ms);
    if (rc > 0) {
        if (pollfds[n].revents) {
            char buf[64];
            while (read(wake_pipe[0], buf, sizeof buf) > 0) {}
            ran++;
            rc--;
        }
        if (extra == 2 && pollfds[n + 1].revents) {
            rc--;
            ran++;
            lifeline_check(pollfds[n + 1].revents);
        }
        /* Callbacks may add or remove watches (and move them in the
         * array): note what is ready first, then look each fd up again. */
        ready_fd stackready[64];
        ready_fd *ready = (size_t)rc <= 64 ? stackready : xmalloc((size_t)rc * sizeof *ready);
        size_t nready = 0;
        for (size_t i = 0; i < n && nready < (size_t)rc; i++)
            if (pollfds[i].revents) ready[nready++] = (ready_fd){pollfds[i].fd, pollfds[i].revents};
        for (size_t r = 0; r < nready; r++) {
            int fd = ready[r].fd;
            short revents = ready[r].revents;
            size_t k = watch_find(fd);
            if (k == nwatches) continue;
            int rev = 0;
            if (revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) rev |= LOOP_READ;
            if (revents & (POLLOUT | POLLERR)) rev |= LOOP_WRITE;
            loop_fd_cb cb = watches[k].cb;
            void *ud = watches[k].ud;
            /* A closed fd left watched would spin the loop. */
            if (revents & POLLNVAL) loop_unwatch(fd);
            cb(fd, rev, ud);
            ran++;
        }
        if (ready != stackready) free(ready);
    }
    ran += run_due_timers();
    return ran;
}
