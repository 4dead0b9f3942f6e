/* poll(2) event loop with a binary-heap of timers and a self-pipe so signal
 * handlers can cut a wait short. Callbacks only record and wake; nothing
 * here resumes Lua. */
#include "loop.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int fd, events;
    loop_fd_cb cb;
    void *ud;
} watch;

typedef struct {
    double due;
    loop_timer_id id;
    loop_timer_cb cb;
    void *ud;
} timer;

static watch *watches;
static size_t nwatches, capwatches;
static timer *heap;
static size_t nheap, capheap;
static loop_timer_id next_timer_id = 1;
static int wake_pipe[2] = {-1, -1};

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

void loop_reset(void)
{
    if (wake_pipe[0] >= 0) {
        close(wake_pipe[0]);
        close(wake_pipe[1]);
        wake_pipe[0] = wake_pipe[1] = -1;
    }
    nwatches = 0;
    nheap = 0;
    loop_init();
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

void loop_watch(int fd, int events, loop_fd_cb cb, void *ud)
{
    for (size_t i = 0; i < nwatches; i++) {
        if (watches[i].fd == fd) {
            watches[i].events = events;
            watches[i].cb = cb;
            watches[i].ud = ud;
            return;
        }
    }
    watch w = {fd, events, cb, ud};
    VEC_PUSH(watches, nwatches, capwatches, w);
}

void loop_unwatch(int fd)
{
    for (size_t i = 0; i < nwatches; i++) {
        if (watches[i].fd == fd) {
            watches[i] = watches[--nwatches];
            return;
        }
    }
}

static void heap_swap(size_t a, size_t b)
{
    timer t = heap[a];
    heap[a] = heap[b];
    heap[b] = t;
}

static int heap_less(size_t a, size_t b)
{
    if (heap[a].due != heap[b].due) return heap[a].due < heap[b].due;
    return heap[a].id < heap[b].id; /* equal deadlines fire in arming order */
}

static void heap_up(size_t i)
{
    while (i > 0 && heap_less(i, (i - 1) / 2)) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < nheap && heap_less(l, m)) m = l;
        if (r < nheap && heap_less(r, m)) m = r;
        if (m == i) return;
        heap_swap(i, m);
        i = m;
    }
}

static void heap_remove_at(size_t i)
{
    heap[i] = heap[--nheap];
    if (i < nheap) {
        heap_up(i);
        heap_down(i);
    }
}

loop_timer_id loop_timer(double seconds, loop_timer_cb cb, void *ud)
{
    if (seconds < 0) seconds = 0;
    timer t = {clock_mono() + seconds, next_timer_id++, cb, ud};
    VEC_PUSH(heap, nheap, capheap, t);
    heap_up(nheap - 1);
    return t.id;
}

void loop_timer_cancel(loop_timer_id id)
{
    if (!id) return;
    for (size_t i = 0; i < nheap; i++) {
        if (heap[i].id == id) {
            heap_remove_at(i);
            return;
        }
    }
}

int loop_busy(void) { return nwatches > 0 || nheap > 0; }

static int run_due_timers(void)
{
    int ran = 0;
    double now = clock_mono();
    while (nheap > 0 && heap[0].due <= now) {
        timer t = heap[0];
        heap_remove_at(0);
        t.cb(t.ud);
        ran++;
    }
    return ran;
}

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

    size_t n = nwatches;
    struct pollfd stackfds[64];
    struct pollfd *fds = n + 1 <= 64 ? stackfds : xmalloc((n + 1) * sizeof *fds);
    for (size_t i = 0; i < n; i++) {
        fds[i].fd = watches[i].fd;
        fds[i].events = (short)(((watches[i].events & LOOP_READ) ? POLLIN : 0) |
                                ((watches[i].events & LOOP_WRITE) ? POLLOUT : 0));
        fds[i].revents = 0;
    }
    fds[n].fd = wake_pipe[0];
    fds[n].events = POLLIN;
    fds[n].revents = 0;

    int timeout_ms;
    if (wait < 0) timeout_ms = -1;
    else {
        double ms = wait * 1000.0;
        timeout_ms = ms > 86400000.0 ? 86400000 : (int)ms;
        if (timeout_ms == 0 && ms > 0) timeout_ms = 1; /* don't spin before a sub-ms timer */
    }

    int rc = poll(fds, (nfds_t)(n + 1), timeout_ms);
    if (rc > 0) {
        if (fds[n].revents) {
            char buf[64];
            while (read(wake_pipe[0], buf, sizeof buf) > 0) {}
            ran++;
        }
        /* Callbacks may add or remove watches: look each fd up again. */
        for (size_t i = 0; i < n; i++) {
            if (!fds[i].revents) continue;
            int rev = 0;
            if (fds[i].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) rev |= LOOP_READ;
            if (fds[i].revents & (POLLOUT | POLLERR)) rev |= LOOP_WRITE;
            for (size_t k = 0; k < nwatches; k++) {
                if (watches[k].fd == fds[i].fd) {
                    if (fds[i].revents & POLLNVAL) {
                        /* A closed fd left watched would spin the loop. */
                        loop_fd_cb cb = watches[k].cb;
                        void *ud = watches[k].ud;
                        loop_unwatch(fds[i].fd);
                        cb(fds[i].fd, rev, ud);
                    } else {
                        watches[k].cb(fds[i].fd, rev, watches[k].ud);
                    }
                    ran++;
                    break;
                }
            }
        }
    }
    if (fds != stackfds) free(fds);
    ran += run_due_timers();
    return ran;
}
