/* realpath() is XSI in glibc's headers */
#define _XOPEN_SOURCE 700
/* Discover, order, run, collect. Each check runs in a forked worker in its
 * own process group; the runner reads its events, enforces the hard
 * deadline (timeout + grace) by killing the group, and turns crashes and
 * kills into ERROR results. Probing check files for their metadata happens
 * in forked children too, so a file that hangs on load cannot hang the run.
 * This file schedules: which check starts when, signals, the stack's
 * harness and facts; run/runner.h names the parts it uses. */
#include "run/runner.h"
#include "check/script.h"
#include "check/stack.h"
#include "check/worker.h"
#include "core/loop.h"
#include "core/util.h"
#include "report/report.h"
#include "run/children.h"
#include "run/discover.h"
#include "run/events_in.h"
#include "run/exits.h"
#include "run/output.h"
#include "run/progress.h"
#include "run/runlock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct {
    const runner_opts *o;
    volatile sig_atomic_t signals;
    volatile sig_atomic_t last_signal;
    int handled_signals;
    int interrupted;
} R;

/* ---- the stack's facts and the harness ------------------------------------ */

static void fact_exit(child *ch, int wstatus)
{
    (void)ch;
    (void)wstatus;
}

/* Versions and images for the report, found before the checks disturb
 * anything; bounded, and skipped quietly when the stack says nothing. */
static void gather_facts(check_result *placeholder)
{
    worker_opts wo = RUN.worker;
    wo.script_name = "check/facts";
    wo.timeout_override = 20;
    child *ch = child_spawn(placeholder, worker_script, &wo, &fact_events, fact_exit);
    if (!ch) return;
    child_listen(ch, 25);
    while (children_alive() > 0 && !R.signals) loop_step(-1);
}

/* The stack file's harness.up or .down, run in the stack file's directory
 * with its output on stderr (the report keeps stdout). Returns its exit
 * status, or -1 when it could not start or was killed. */
static int run_harness(char **argv, const char *dir, const char *what)
{
    progress_note(what);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        dup2(STDERR_FILENO, STDOUT_FILENO);
        if (chdir(dir) != 0) _exit(126);
        execvp(argv[0], argv);
        fprintf(stderr, "halo: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- the run ------------------------------------------------------------------------------ */

static size_t next_pending;

static int running_exclusive(void)
{
    for (size_t i = 0; i < children_alive(); i++)
        if (child_alive(i)->exclusive) return 1;
    return 0;
}

/* Start checks in id order while the parallelism and exclusivity allow. */
static void start_next(void)
{
    run_report *rep = RUN.report;
    if (!rep) return; /* no run yet: halo list */
    while (!R.interrupted && next_pending < rep->nchecks) {
        check_result *c = rep->checks[next_pending];
        if (c->status != ST_PENDING) {
            if (c->status == ST_ERROR || c->status == ST_DEFERRED) progress_finished(c);
            next_pending++;
            continue;
        }
        if (running_exclusive()) break;
        if (c->exclusive && children_alive() > 0) break;
        if ((int)children_alive() >= R.o->parallel) break;
        if (R.o->timeout > 0) c->timeout_s = R.o->timeout;
        c->started_wall = clock_wall();
        child *ch = child_spawn(c, worker_run, &RUN.worker, &worker_events, worker_exit);
        next_pending++;
        if (!ch) {
            c->status = ST_ERROR;
            check_set_message(c, xstrdup("could not start a worker process"));
            progress_finished(c);
            continue;
        }
        ch->exclusive = c->exclusive;
        child_listen(ch, c->timeout_s + check_grace(c));
        progress_started(c);
    }
}

static void on_signal(int sig)
{
    R.signals++;
    R.last_signal = sig;
    loop_interrupt_from_signal();
}

static void handle_signals(void)
{
    if (R.signals == R.handled_signals) return;
    R.handled_signals = R.signals;
    if (!R.interrupted) {
        R.interrupted = 1;
        progress_note(children_alive() ? "halo: interrupted — stopping running checks and running their cleanup "
                                    "(interrupt again to cut cleanup short)"
                                  : "halo: interrupted");
        for (size_t i = 0; i < children_alive(); i++) kill(child_alive(i)->pid, SIGTERM);
        return;
    }
    if (!RUN.cut_short) {
        RUN.cut_short = 1;
        for (size_t i = 0; i < children_alive(); i++) {
            const child *ch = child_alive(i);
            strbuf sb;
            sb_init(&sb);
            sb_printf(&sb, "halo: cleanup of check %s cut short", ch->check->id);
            if (ch->check->current_step) sb_printf(&sb, " (it was in step '%s')", ch->check->current_step);
            sb_adds(&sb, "; what it changed may not be undone");
            progress_note(sb.buf);
            sb_free(&sb);
            kill(-ch->pid, SIGKILL);
        }
    }
}

static void tick(void *ud)
{
    (void)ud;
    progress_tick();
    loop_timer(0.2, tick, NULL);
}

void run_report_free(run_report *rep)
{
    for (size_t i = 0; i < rep->nfacts; i++) {
        free(rep->fact_keys[i]);
        free(rep->fact_values[i]);
    }
    free(rep->fact_keys);
    free(rep->fact_values);
    for (size_t i = 0; i < rep->nchecks; i++) check_result_free(rep->checks[i]);
    free(rep->checks);
    free(rep->operator_name);
    free(rep->host_os);
    free(rep->checks_dir);
    free(rep->checks_title);
    free(rep->stack_file);
}

static void install_runner_signals(void)
{
    on_interrupt_signals(on_signal);
    signal(SIGPIPE, SIG_IGN);
}

/* The REPL that started this run is gone: as its Ctrl-C, stop the checks
 * and run their cleanup. */
static void starter_gone(void) { on_signal(SIGTERM); }

/* What runner_run and runner_list both start from. */
void runner_init(const runner_opts *o)
{
    R.o = o;
    RUN.grace = o->grace;
    loop_init();
    const char *starter = getenv("HALO_LIFELINE_FD");
    if (starter) {
        char *end;
        long fd = strtol(starter, &end, 10);
        if (*starter && !*end && fd > 2 && fd < 65536) loop_lifeline((int)fd, starter_gone);
        unsetenv("HALO_LIFELINE_FD"); /* the workers have a lifeline of their own */
    }
    /* Workers are in process groups of their own, so a kill of the
     * runner's group (a CI timeout, a closed terminal) misses them: they
     * watch this pipe, and its end tells them the runner is gone. Not
     * inherited past an exec. */
    if (pipe(RUN.lifeline) == 0) {
        fcntl(RUN.lifeline[0], F_SETFD, FD_CLOEXEC);
        fcntl(RUN.lifeline[1], F_SETFD, FD_CLOEXEC);
    } else {
        RUN.lifeline[0] = RUN.lifeline[1] = -1;
    }
}

int runner_run(const runner_opts *o)
{
    runner_init(o);
    stack_harness harness;
    memset(&harness, 0, sizeof harness);
    if (o->stack_file) {
        char *err = NULL;
        int checked = stack_check(o->stack_file, &err, &harness);
        if (checked != 0) {
            halo_warn("%s", err);
            free(err);
            stack_harness_free(&harness);
            return checked == -2 ? 3 : 2; /* out of memory is not a bad stack file */
        }
    }
    if ((o->up && !harness.up) || (o->down && !harness.down)) {
        halo_warn("--%s needs harness = { up = {...}, down = {...} } in the stack file", o->up && !harness.up ? "up" : "down");
        stack_harness_free(&harness);
        return 2;
    }
    install_runner_signals();
    run_report rep;
    memset(&rep, 0, sizeof rep);
    rep.started_wall = clock_wall();
    double t0 = clock_mono();
    rep.checks_dir = xstrdup(o->checks_dir);
    rep.checks_title = checks_title(o->checks_dir);
    rep.stack_file = o->stack_file ? xstrdup(o->stack_file) : NULL;
    rep.operator_name = operator_name(o);
    rep.host_os = host_os();

    if (discover(o, &rep) != 0 || select_checks(o, &rep) != 0) {
        run_report_free(&rep);
        stack_harness_free(&harness);
        return 2;
    }
    /* A run that may inject faults takes the stack for itself. */
    int injects = 0;
    for (size_t i = 0; i < rep.nchecks && !injects; i++) {
        const check_result *c = rep.checks[i];
        if (c->status != ST_PENDING) continue;
        for (size_t k = 0; k < c->ntags; k++) injects |= strcmp(c->tags[k], "faults") == 0;
    }
    if (o->stack_file && injects && (o->allow_faults || harness.allow_faults) && !o->force) {
        char *holder = NULL;
        if (runlock_take(o->stack_file, harness.project, o->command, &holder) == 1) {
            halo_warn("another run is injecting faults into %s (%s); wait for it to end, or pass --force",
                      o->stack_file, holder);
            free(holder);
            run_report_free(&rep);
            stack_harness_free(&harness);
            return 2;
        }
    }
    progress_init(o->verbose);
    if (rep.nchecks == 0) progress_note("halo: no checks selected");
    else {
        /* Which checks run against which stack, said before anything runs:
         * the checks directory defaults to scripts/checks wherever halo is
         * started, and the operator must see that before a kill. */
        char *where = realpath(o->checks_dir, NULL);
        char *line = xasprintf("halo: %zu check%s from %s%s%s", rep.nchecks, rep.nchecks == 1 ? "" : "s",
                               where ? where : o->checks_dir, o->stack_file ? " against " : " (no stack file)",
                               o->stack_file ? o->stack_file : "");
        progress_note(line);
        free(line);
        free(where);
    }

    RUN.report = &rep;
    RUN.worker = base_worker_opts(o);
    int harness_failed = 0;
    if (o->up) {
        int rc = run_harness(harness.up, harness.dir, "halo: bringing the stack up (harness.up)");
        if (rc != 0) {
            halo_warn("harness.up failed (status %d): no check runs", rc);
            harness_failed = 1;
            for (size_t i = 0; i < rep.nchecks; i++) {
                if (rep.checks[i]->status != ST_PENDING) continue;
                rep.checks[i]->status = ST_ERROR;
                check_set_message(rep.checks[i], xasprintf("not run: bringing the stack up failed (status %d)", rc));
            }
        }
    }
    if (o->stack_file && !harness_failed && !R.signals) {
        check_result *placeholder = check_result_new(o->stack_file);
        gather_facts(placeholder);
        check_result_free(placeholder);
    }
    /* Only now does a child's end start the next check: were the facts'
     * script to do it, the checks would start inside gather_facts and be
     * walked again from the first below (ERRORs and deferrals shown twice,
     * a check started twice if an interrupt came meanwhile). */
    children_after_reap(start_next);
    next_pending = 0;
    start_next();
    if (progress_is_tty()) loop_timer(0.2, tick, NULL);
    while (children_alive() > 0 || (!R.interrupted && next_pending < rep.nchecks)) {
        loop_step(-1);
        handle_signals();
        start_next();
    }
    progress_end();
    if (R.interrupted) {
        rep.interrupted = 1;
        for (size_t i = 0; i < rep.nchecks; i++) {
            if (rep.checks[i]->status == ST_PENDING) {
                rep.checks[i]->status = ST_ERROR;
                check_set_message(rep.checks[i], xstrdup("not run: the run was interrupted"));
            }
        }
    }
    if (o->down) {
        int rc = run_harness(harness.down, harness.dir, "halo: taking the stack down (harness.down)");
        if (rc != 0) {
            halo_warn("harness.down failed (status %d): the stack may still be running", rc);
            harness_failed = 1;
        }
    }
    stack_harness_free(&harness);
    rep.duration_ms = (clock_mono() - t0) * 1000.0;
    int code = report_exit_code(&rep);
    if (harness_failed && code == 0) code = 3;
    if (write_report(o, &rep) != 0 && code == 0) code = 3;
    if (o->history && output_write_history(o->history, &rep) != 0 && code == 0) code = 3;
    if (R.interrupted) code = R.last_signal == SIGTERM ? 143 : 130;
    run_report_free(&rep);
    return code;
}

int runner_list(const runner_opts *o)
{
    runner_init(o);
    run_report rep;
    memset(&rep, 0, sizeof rep);
    if (discover(o, &rep) != 0) return 2;
    int broken = 0;
    size_t idw = 2, tw = 5;
    for (size_t i = 0; i < rep.nchecks; i++) {
        check_result *c = rep.checks[i];
        if (strlen(c->id) > idw) idw = strlen(c->id);
        if (c->title && strlen(c->title) > tw) tw = strlen(c->title);
    }
    if (tw > 60) tw = 60;
    printf("%-*s  %-*s  %7s  %s\n", (int)idw, "ID", (int)tw, "TITLE", "TIMEOUT", "TAGS");
    for (size_t i = 0; i < rep.nchecks; i++) {
        check_result *c = rep.checks[i];
        if (c->status == ST_ERROR) {
            printf("%-*s  ERROR: %s\n", (int)idw, c->id, c->message ? c->message : "?");
            broken++;
            continue;
        }
        strbuf tags;
        sb_init(&tags);
        for (size_t k = 0; k < c->ntags; k++) sb_printf(&tags, "%s%s", k ? "," : "", c->tags[k]);
        printf("%-*s  %-*s  %6gs  %s\n", (int)idw, c->id, (int)tw, c->title, c->timeout_s,
               tags.buf ? tags.buf : "");
        sb_free(&tags);
    }
    run_report_free(&rep);
    return broken ? 3 : 0;
}
