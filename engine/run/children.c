#include "run/children.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

run_state RUN;

static struct {
    child **list; /* alive */
    size_t n, cap;
    void (*after_reap)(void);
} children;

size_t children_alive(void) { return children.n; }

child *child_alive(size_t i) { return i < children.n ? children.list[i] : NULL; }

void children_after_reap(void (*fn)(void)) { children.after_reap = fn; }

static void close_other_children_fds(void)
{
    for (size_t i = 0; i < children.n; i++) close(children.list[i]->fd);
}

child *child_spawn(check_result *c, child_main fn, const worker_opts *base, const event_handlers *events,
                   exit_fn on_exit)
{
    int fds[2];
    if (pipe(fds) != 0) {
        halo_warn("pipe: %s", strerror(errno));
        return NULL;
    }
    fflush(NULL); /* the child must not write out the runner's buffers */
    pid_t pid = fork();
    if (pid < 0) {
        halo_warn("fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return NULL;
    }
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        close(fds[0]);
        close_other_children_fds();
        /* the runner's end of the lifeline, kept here, would keep it alive */
        if (RUN.lifeline[1] >= 0) close(RUN.lifeline[1]);
        fcntl(fds[1], F_SETFD, FD_CLOEXEC); /* never inherited by its own children */
        loop_reset();
        worker_opts wo = *base;
        wo.check_file = c->file;
        wo.event_fd = fds[1];
        wo.lifeline_fd = RUN.lifeline[0];
        int rc = fn(&wo);
        _exit(rc);
    }
    setpgid(pid, pid); /* also here: no race with an early kill */
    close(fds[1]);
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    child *ch = xcalloc(1, sizeof *ch);
    ch->pid = pid;
    ch->fd = fds[0];
    ch->check = c;
    ch->events = events;
    ch->on_exit = on_exit;
    ch->started = clock_mono();
    sb_init(&ch->inbuf);
    VEC_PUSH(children.list, children.n, children.cap, ch);
    return ch;
}

static void forget_child(child *ch)
{
    for (size_t i = 0; i < children.n; i++) {
        if (children.list[i] == ch) {
            children.list[i] = children.list[--children.n];
            break;
        }
    }
}

void child_deadline(void *ud)
{
    child *ch = ud;
    ch->kill_timer = 0;
    ch->killed_by_deadline = 1;
    kill(-ch->pid, SIGKILL);
}

void child_reap(void *ud)
{
    child *ch = ud;
    ch->reap_timer = 0;
    int wstatus = 0;
    pid_t r = waitpid(ch->pid, &wstatus, WNOHANG);
    if (r == 0) {
        /* closed its pipe but not yet gone: look again shortly */
        ch->reap_timer = loop_timer(0.005, child_reap, ch);
        return;
    }
    if (r < 0 && errno == EINTR) {
        ch->reap_timer = loop_timer(0.005, child_reap, ch);
        return;
    }
    /* Anything the worker started in its group goes with it. */
    kill(-ch->pid, SIGKILL);
    loop_timer_cancel(ch->kill_timer);
    ch->reaped = 1;
    forget_child(ch);
    ch->on_exit(ch, wstatus);
    for (size_t i = 0; i < ch->nfaults; i++) {
        free(ch->faults[i].id);
        free(ch->faults[i].undo);
        free(ch->faults[i].action);
    }
    free(ch->faults);
    sb_free(&ch->inbuf);
    free(ch);
    if (children.after_reap) children.after_reap();
}
