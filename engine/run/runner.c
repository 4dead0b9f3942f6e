/* Discover, order, run, collect. Each check runs in a forked worker in its
 * own process group; the runner reads its event lines, enforces the hard
 * deadline (timeout + grace) by killing the group, and turns crashes and
 * kills into ERROR results. Probing check files for their metadata happens
 * in forked children too, so a file that hangs on load cannot hang the run. */
/* realpath() is XSI in glibc's headers */
#define _XOPEN_SOURCE 700
#include "run/runner.h"
#include "core/internal.h"
#include "core/loop.h"
#include "run/progress.h"
#include "report/report.h"
#include "check/stack.h"
#include "core/util.h"
#include "check/worker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <pwd.h>

#define PROBE_LIMIT_S 10.0

typedef struct child child;
typedef void (*line_fn)(child *ch, char **fields, int nfields);
typedef void (*exit_fn)(child *ch, int wstatus);

/* A fault the check injected that its worker has not undone yet: what the
 * runner replays itself if the worker dies before its cleanup. */
typedef struct {
    char *id, *undo, *name;
} pending_fault;

/* A forked worker or probe and the pipe it reports on. */
struct child {
    pid_t pid;
    int fd;
    strbuf inbuf;
    check_result *check;
    line_fn on_line;
    exit_fn on_exit;
    double started;      /* monotonic */
    loop_timer_id kill_timer;
    loop_timer_id reap_timer;
    int killed_by_deadline;
    int got_done;
    int reaped;
    int exclusive;
    size_t dropped; /* log lines (failures, evidence) past LOG_MAX or the text budget */
    size_t text_bytes; /* what the check's text added to the report so far */
    pending_fault *faults;
    size_t nfaults, capfaults;
    pid_t undoes; /* an undo child: the dead worker whose faults it replays */
};

/* A check that logs in a tight loop must not grow the runner without
 * bound; past this many lines only a count is kept. */
#define LOG_MAX 5000
/* Requests are kept for the history file and the timelines; a check that
 * sends more than this keeps a count of the rest. */
#define REQUEST_MAX 500000

static run_report *REP;
static worker_opts WORKER_OPTS;

static struct {
    const runner_opts *o;
    child **children; /* alive */
    size_t nchildren, capchildren;
    volatile sig_atomic_t signals;
    volatile sig_atomic_t last_signal;
    int handled_signals;
    int interrupted;
    int cut_short;
} R;

/* ---- children --------------------------------------------------------------- */

static void close_other_children_fds(void)
{
    for (size_t i = 0; i < R.nchildren; i++) close(R.children[i]->fd);
}

typedef int (*child_main)(const worker_opts *wo);

static child *spawn_child(check_result *c, child_main fn, const worker_opts *base, line_fn on_line, exit_fn on_exit)
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
        fcntl(fds[1], F_SETFD, FD_CLOEXEC); /* never inherited by its own children */
        loop_reset();
        worker_opts wo = *base;
        wo.check_file = c->file;
        wo.event_fd = fds[1];
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
    ch->on_line = on_line;
    ch->on_exit = on_exit;
    ch->started = clock_mono();
    sb_init(&ch->inbuf);
    VEC_PUSH(R.children, R.nchildren, R.capchildren, ch);
    return ch;
}

static void forget_child(child *ch)
{
    for (size_t i = 0; i < R.nchildren; i++) {
        if (R.children[i] == ch) {
            R.children[i] = R.children[--R.nchildren];
            break;
        }
    }
}

static void split_line(child *ch, char *line, size_t len)
{
    char *fields[16];
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len && n < 16; i++) {
        if (i == len || line[i] == '\t') {
            fields[n++] = field_unescape(line + start, i - start);
            start = i + 1;
        }
    }
    if (n > 0) ch->on_line(ch, fields, n);
    for (int i = 0; i < n; i++) free(fields[i]);
}

static void child_reap(void *ud);
static void worker_kill(void *ud);

static void child_readable(int fd, int revents, void *ud)
{
    child *ch = ud;
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            sb_addn(&ch->inbuf, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        /* EOF (or an error): the child is done talking */
        loop_unwatch(fd);
        close(fd);
        ch->fd = -1;
        break;
    }
    size_t start = 0;
    for (size_t i = 0; i < ch->inbuf.len; i++) {
        if (ch->inbuf.buf[i] == '\n') {
            split_line(ch, ch->inbuf.buf + start, i - start);
            start = i + 1;
        }
    }
    if (start > 0) {
        memmove(ch->inbuf.buf, ch->inbuf.buf + start, ch->inbuf.len - start);
        ch->inbuf.len -= start;
    }
    if (ch->fd < 0) child_reap(ch);
}

/* ---- probing check files ------------------------------------------------------- */

static void probe_line(child *ch, char **f, int n)
{
    check_result *c = ch->check;
    if (strcmp(f[0], "meta") == 0 && n >= 6) {
        free(c->id);
        c->id = xstrdup(f[1]);
        c->order = strcmp(f[2], "n") == 0 ? strtod(f[1], NULL) : 1e15;
        free(c->title);
        c->title = xstrdup(f[3]);
        c->timeout_s = strtod(f[4], NULL);
        char *save = NULL;
        for (char *tag = strtok_r(f[5], ",", &save); tag; tag = strtok_r(NULL, ",", &save)) {
            VEC_PUSH(c->tags, c->ntags, c->captags, xstrdup(tag));
            if (strcmp(tag, "exclusive") == 0) c->exclusive = 1;
        }
        ch->got_done = 1;
    } else if (strcmp(f[0], "error") == 0 && n >= 2) {
        c->status = ST_ERROR;
        free(c->message);
        c->message = xstrdup(f[1]);
        ch->got_done = 1;
    }
}

static void probe_kill(void *ud)
{
    child *ch = ud;
    ch->kill_timer = 0;
    ch->killed_by_deadline = 1;
    kill(-ch->pid, SIGKILL);
}

/* ---- running checks --------------------------------------------------------------- */

static check_status parse_status(const char *s)
{
    if (strcmp(s, "PASS") == 0) return ST_PASS;
    if (strcmp(s, "FAIL") == 0) return ST_FAIL;
    if (strcmp(s, "N/A") == 0) return ST_NA;
    if (strcmp(s, "DEFERRED") == 0) return ST_DEFERRED;
    return ST_ERROR;
}

/* The string value of "key" in a flat JSON object we produced ourselves
 * (cjson: no nesting around it, backslash escapes only). Caller frees. */
static char *json_string_field(const char *obj, const char *key)
{
    char *pat = xasprintf("\"%s\":\"", key);
    const char *p = strstr(obj, pat);
    size_t plen = strlen(pat);
    free(pat);
    if (!p) return NULL;
    p += plen;
    strbuf sb;
    sb_init(&sb);
    for (; *p && *p != '"'; p++) {
        if (*p == '\\' && p[1]) p++;
        sb_addc(&sb, *p);
    }
    return sb_take(&sb);
}

static void track_fault(child *ch, const char *json)
{
    char *id = json_string_field(json, "full_id");
    char *action = json_string_field(json, "action");
    if (!id || !action) {
        free(id);
        free(action);
        return;
    }
    char *undo = json_string_field(json, "undo");
    for (size_t i = 0; i < ch->nfaults; i++) {
        if (strcmp(ch->faults[i].id, id) != 0) continue;
        /* start/restart settle a kill or stop; unpause settles a pause */
        int settles = strcmp(action, "restart") == 0 ||
                      (strcmp(action, "start") == 0 && strcmp(ch->faults[i].undo, "start") == 0) ||
                      (strcmp(action, "unpause") == 0 && strcmp(ch->faults[i].undo, "unpause") == 0);
        if (settles) {
            free(ch->faults[i].id);
            free(ch->faults[i].undo);
            free(ch->faults[i].name);
            ch->faults[i] = ch->faults[--ch->nfaults];
            break;
        }
    }
    if (undo) {
        pending_fault f = {id, undo, json_string_field(json, "container")};
        VEC_PUSH(ch->faults, ch->nfaults, ch->capfaults, f);
        id = NULL;
    }
    free(id);
    free(action);
}

/* What one check's text (log lines, failures, evidence, its message) may
 * add to the report: past it, lines are counted, not kept, so a check that
 * floods cannot make a report of gigabytes or the runner that big. */
#define CHECK_TEXT_BUDGET ((size_t)8 << 20)
#define MESSAGE_MAX ((size_t)257 << 10) /* a worker cuts its fields at 256 KiB already, with a note */

/* Whether `len` more bytes fit the check's budget (and counts them). */
static int within_budget(child *ch, size_t len)
{
    if (ch->text_bytes + len > CHECK_TEXT_BUDGET) {
        ch->dropped++;
        return 0;
    }
    ch->text_bytes += len;
    return 1;
}

/* A message past MESSAGE_MAX keeps its start and says how long it was,
 * as the worker's own cut does. */
static char *capped(const char *text)
{
    size_t len = strlen(text);
    if (len <= MESSAGE_MAX) return xstrdup(text);
    return xasprintf("%.*s… [cut: %zu bytes in all]", (int)MESSAGE_MAX, text, len);
}

static void worker_line(child *ch, char **f, int n)
{
    check_result *c = ch->check;
    if (strcmp(f[0], "step+") == 0 && n >= 3) {
        if (c->nsteps < LOG_MAX) {
            step_record s = {xstrdup(f[1]), strtod(f[2], NULL), -1, ST_PENDING};
            VEC_PUSH(c->steps, c->nsteps, c->capsteps, s);
        }
        free(c->current_step);
        c->current_step = xstrdup(f[1]);
        progress_step(c, f[1]);
    } else if (strcmp(f[0], "step-") == 0 && n >= 4) {
        for (size_t i = c->nsteps; i-- > 0;) {
            if (c->steps[i].duration_ms < 0 && strcmp(c->steps[i].name, f[1]) == 0) {
                c->steps[i].duration_ms = strtod(f[3], NULL);
                c->steps[i].status = parse_status(f[2]);
                break;
            }
        }
        /* back to the enclosing step, if any is still open; a step that
         * raised stays current, as that is where the check failed */
        int raised = parse_status(f[2]) == ST_ERROR;
        char *enclosing = NULL;
        for (size_t i = c->nsteps; i-- > 0;) {
            if (c->steps[i].duration_ms < 0) {
                enclosing = xstrdup(c->steps[i].name);
                break;
            }
        }
        if (enclosing || !raised) {
            free(c->current_step);
            c->current_step = enclosing;
        }
    } else if (strcmp(f[0], "fail") == 0 && n >= 2) {
        if (c->nfailures >= LOG_MAX || !within_budget(ch, strlen(f[1]))) return;
        VEC_PUSH(c->failures, c->nfailures, c->capfailures, capped(f[1]));
        progress_failure(c, f[1]);
    } else if (strcmp(f[0], "evidence") == 0 && n >= 3) {
        if (!within_budget(ch, strlen(f[1]) + strlen(f[2]))) return;
        check_set_evidence(c, f[1], f[2]);
    } else if (strcmp(f[0], "log") == 0 && n >= 4) {
        if ((c->nlogs >= LOG_MAX || !within_budget(ch, strlen(f[3]))) && strcmp(f[1], "error") != 0) {
            ch->dropped++;
            return;
        }
        log_record l = {strtod(f[2], NULL), xstrdup(f[1]), capped(f[3])};
        VEC_PUSH(c->logs, c->nlogs, c->caplogs, l);
        progress_log(c, f[1], f[3]);
    } else if (strcmp(f[0], "action") == 0 && n >= 2) {
        if (c->nactions < LOG_MAX) VEC_PUSH(c->actions, c->nactions, c->capactions, xstrdup(f[1]));
        track_fault(ch, f[1]);
    } else if (strcmp(f[0], "request") == 0 && n >= 2) {
        if (c->nrequests >= REQUEST_MAX) c->dropped_requests++;
        else VEC_PUSH(c->requests, c->nrequests, c->caprequests, xstrdup(f[1]));
    } else if (strcmp(f[0], "done") == 0 && n >= 3) {
        c->status = parse_status(f[1]);
        free(c->message);
        c->message = f[2][0] ? capped(f[2]) : NULL;
        ch->got_done = 1;
    }
}

static const char *signal_text(int sig)
{
    switch (sig) {
    case SIGKILL: return "SIGKILL";
    case SIGSEGV: return "SIGSEGV (segmentation fault)";
    case SIGABRT: return "SIGABRT (abort)";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGILL: return "SIGILL";
    default: return NULL;
    }
}

static void set_message(check_result *c, char *msg)
{
    free(c->message);
    c->message = msg;
}

/* What the runner itself saw when a worker ended without a verdict. */
static void worker_vanished(child *ch, int wstatus)
{
    check_result *c = ch->check;
    double limit = c->timeout_s;
    const char *o_step = c->current_step;
    char where[300] = "";
    if (o_step) snprintf(where, sizeof where, " (in step '%s')", o_step);
    c->status = ST_ERROR;
    if (ch->killed_by_deadline) {
        set_message(c, xasprintf("hard deadline: the worker did not finish within %g s (timeout %g s + "
                                 "grace %g s) and was killed%s",
                                 limit + R.o->grace, limit, R.o->grace, where));
    } else if (R.cut_short) {
        set_message(c, xasprintf("interrupted twice: the worker was killed before its cleanup "
                                 "finished%s; faults it injected may not be undone",
                                 where));
    } else if (WIFSIGNALED(wstatus)) {
        int sig = WTERMSIG(wstatus);
        const char *name = signal_text(sig);
        if (name) set_message(c, xasprintf("worker crashed: killed by %s%s", name, where));
        else set_message(c, xasprintf("worker crashed: killed by signal %d%s", sig, where));
    } else {
        set_message(c, xasprintf("worker exited with status %d without reporting a result%s",
                                 WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1, where));
    }
}

static int start_next(void);

static void child_reap(void *ud)
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
        free(ch->faults[i].name);
    }
    free(ch->faults);
    sb_free(&ch->inbuf);
    free(ch);
    start_next();
}

static void probe_exit(child *ch, int wstatus)
{
    check_result *c = ch->check;
    if (ch->got_done) return;
    c->status = ST_ERROR;
    if (ch->killed_by_deadline)
        set_message(c, xasprintf("%s: loading the file did not finish within %g s", c->file, PROBE_LIMIT_S));
    else
        set_message(c, xasprintf("%s: the probe that loads it crashed (status %d)", c->file, wstatus));
}

static void add_log(check_result *c, const char *level, char *text)
{
    log_record l = {c->duration_ms, xstrdup(level), text};
    VEC_PUSH(c->logs, c->nlogs, c->caplogs, l);
}

/* The undo child reports like a worker; its lines land in the check's log. */
static void undo_line(child *ch, char **f, int n)
{
    check_result *c = ch->check;
    if (strcmp(f[0], "log") == 0 && n >= 4) add_log(c, f[1], xasprintf("runner undo: %s", f[3]));
    else if (strcmp(f[0], "action") == 0 && n >= 2 && c->nactions < LOG_MAX)
        VEC_PUSH(c->actions, c->nactions, c->capactions, xstrdup(f[1]));
    else if (strcmp(f[0], "done") == 0 && n >= 3) ch->got_done = strcmp(f[1], "PASS") == 0 ? 2 : 1;
}

static void undo_exit(child *ch, int wstatus)
{
    (void)wstatus;
    if (ch->got_done != 2) {
        add_log(ch->check, "error", xstrdup(ch->got_done ? "runner undo: not every fault could be undone; "
                                                           "`halo cleanup` will try again"
                                                         : "runner undo: the undo process did not finish; "
                                                           "faults may remain (`halo cleanup` will try again)"));
    } else {
        /* replayed: the dead worker's journal has nothing left for `halo cleanup` */
        char *journal = journal_path((long)ch->undoes);
        if (journal) unlink(journal);
        free(journal);
    }
    progress_finished(ch->check);
}

/* A worker died with faults it had not undone, or with fixtures it had not
 * removed: replay their undo from a fresh process, so a crash or a
 * hard-deadline kill does not leave a container killed or paused, or a
 * fixture behind. */
static int spawn_undo(child *dead)
{
    strbuf script;
    sb_init(&script);
    sb_adds(&script, "local internal = ...\nlocal docker = require \"docker\"\nlocal failed = false\n");
    for (size_t i = 0; i < dead->nfaults; i++) {
        const pending_fault *f = &dead->faults[i];
        /* ids are hex and undo is start/unpause, but quote them properly anyway */
        strbuf id, undo;
        sb_init(&id);
        sb_init(&undo);
        sb_json_string(&id, f->id);
        sb_json_string(&undo, f->undo);
        sb_printf(&script,
                  "do local c, err = docker.container(%s)\n"
                  "  if not c then print(\"could not find \" .. %s .. \": \" .. tostring(err))\n"
                  "  else local ok, e = c[%s](c); failed = failed or not ok\n"
                  "    print((ok and \"did \" or \"failed to \") .. %s .. \" \" .. c.name"
                  " .. (ok and \"\" or (\": \" .. tostring(e)))) end end\n",
                  id.buf, id.buf, undo.buf, undo.buf);
        sb_free(&id);
        sb_free(&undo);
    }
    /* and what its journal still holds (mod/undo.lua): fixtures it created,
     * services it recreated, as `halo cleanup` would restore them */
    char *journal = journal_path((long)dead->pid);
    if (journal) {
        strbuf path;
        sb_init(&path);
        sb_json_string(&path, journal);
        sb_printf(&script,
                  "if internal.exists(%s) then require \"undo\"\n"
                  "  if internal.restore_journal(%s, print) > 0 then failed = true end end\n",
                  path.buf, path.buf);
        sb_free(&path);
        free(journal);
    }
    /* a failure keeps the dead worker's journal, for `halo cleanup` */
    sb_adds(&script, "if failed then error(\"not every fault could be undone\", 0) end\n");
    worker_opts wo = WORKER_OPTS;
    wo.script = script.buf;
    child *ch = spawn_child(dead->check, worker_script, &wo, undo_line, undo_exit);
    sb_free(&script);
    if (!ch) return -1;
    ch->undoes = dead->pid;
    loop_watch(ch->fd, LOOP_READ, child_readable, ch);
    ch->kill_timer = loop_timer(60, worker_kill, ch);
    return 0;
}

/* ---- the stack's facts and the harness ------------------------------------ */

static void fact_line(child *ch, char **f, int n)
{
    if (strcmp(f[0], "fact") == 0 && n >= 2 && REP) {
        char *key = json_string_field(f[1], "key"), *value = json_string_field(f[1], "value");
        if (key && value) {
            grow_array((void **)&REP->fact_keys, &REP->capfact_keys, REP->nfacts + 1, sizeof *REP->fact_keys);
            grow_array((void **)&REP->fact_values, &REP->capfact_values, REP->nfacts + 1, sizeof *REP->fact_values);
            REP->fact_keys[REP->nfacts] = key;
            REP->fact_values[REP->nfacts] = value;
            REP->nfacts++;
        } else {
            free(key);
            free(value);
        }
    } else if (strcmp(f[0], "done") == 0) {
        ch->got_done = 1;
    }
}

static void fact_exit(child *ch, int wstatus)
{
    (void)ch;
    (void)wstatus;
}

/* Versions and images for the report, found before the checks disturb
 * anything; bounded, and skipped quietly when the stack says nothing. */
static void gather_facts(check_result *placeholder)
{
    worker_opts wo = WORKER_OPTS;
    wo.script_name = "check/facts";
    wo.timeout_override = 20;
    child *ch = spawn_child(placeholder, worker_script, &wo, fact_line, fact_exit);
    if (!ch) return;
    loop_watch(ch->fd, LOOP_READ, child_readable, ch);
    ch->kill_timer = loop_timer(25, worker_kill, ch);
    while (R.nchildren > 0 && !R.signals) loop_step(-1);
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

/* Whether process pid left a journal: what it had not undone. */
static int journal_left(pid_t pid)
{
    char *journal = journal_path((long)pid);
    int left = journal && access(journal, F_OK) == 0;
    free(journal);
    return left;
}

static void worker_exit(child *ch, int wstatus)
{
    check_result *c = ch->check;
    c->duration_ms = (clock_mono() - ch->started) * 1000.0;
    /* Steps a timeout, an interrupt or a kill cut short end with the check. */
    for (size_t i = 0; i < c->nsteps; i++) {
        if (c->steps[i].duration_ms < 0) {
            c->steps[i].duration_ms = c->duration_ms - c->steps[i].started_ms;
            c->steps[i].status = ST_ERROR;
        }
    }
    if (ch->dropped)
        add_log(c, "warn", xasprintf("%zu more log lines, failures or evidence were dropped (the report keeps %d "
                                     "lines and %zu MiB of a check's text)",
                                     ch->dropped, LOG_MAX, CHECK_TEXT_BUDGET >> 20));
    if (!ch->got_done || ch->killed_by_deadline) {
        worker_vanished(ch, wstatus);
        if ((ch->nfaults > 0 || journal_left(ch->pid)) && spawn_undo(ch) == 0) return; /* reported when the undo ends */
    }
    progress_finished(c);
}

static void worker_kill(void *ud)
{
    child *ch = ud;
    ch->kill_timer = 0;
    ch->killed_by_deadline = 1;
    kill(-ch->pid, SIGKILL);
}

/* ---- discovery ---------------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int by_order(const void *a, const void *b)
{
    const check_result *x = *(check_result *const *)a, *y = *(check_result *const *)b;
    if (x->order != y->order) return x->order < y->order ? -1 : 1;
    int c = strcmp(x->id ? x->id : "", y->id ? y->id : "");
    return c ? c : strcmp(x->file, y->file);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* id and title from the file name, until (unless) the file says better */
static void default_identity(check_result *c)
{
    const char *b = base_name(c->file);
    char *stem = xstrdup(b);
    char *dot = strrchr(stem, '.');
    if (dot) *dot = '\0';
    char *end;
    long num = strtol(stem, &end, 10);
    if (end != stem) {
        c->id = xasprintf("%ld", num);
        c->order = (double)num;
    } else {
        c->id = xstrdup(stem);
        c->order = 1e15;
    }
    c->title = stem;
}

static worker_opts base_worker_opts(const runner_opts *o)
{
    worker_opts wo;
    memset(&wo, 0, sizeof wo);
    wo.stack_file = o->stack_file;
    wo.lib_dirs = o->lib_dirs;
    wo.nlib_dirs = o->nlib_dirs;
    wo.mem_limit = o->mem_limit;
    wo.timeout_override = o->timeout;
    wo.grace = o->grace;
    wo.event_fd = -1;
    return wo;
}

/* Every *.lua file of the directory, probed and sorted by id. Returns -1
 * (after saying why) when the directory cannot be read. */
static int discover(const runner_opts *o, run_report *rep)
{
    DIR *d = opendir(o->checks_dir);
    if (!d) {
        halo_warn("checks directory %s: %s", o->checks_dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 5 || strcmp(e->d_name + len - 4, ".lua") != 0) continue;
        char *path = xasprintf("%s/%s", o->checks_dir, e->d_name);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) VEC_PUSH(names, n, cap, path);
        else free(path);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);

    worker_opts wo = base_worker_opts(o);
    size_t next = 0;
    while (next < n || R.nchildren > 0) {
        /* a handful of probes at a time is plenty; each lasts milliseconds */
        while (next < n && R.nchildren < 8) {
            check_result *c = check_result_new(names[next]);
            default_identity(c);
            c->timeout_s = 60;
            VEC_PUSH(rep->checks, rep->nchecks, rep->capchecks, c);
            child *ch = spawn_child(c, worker_probe, &wo, probe_line, probe_exit);
            next++;
            if (!ch) {
                c->status = ST_ERROR;
                set_message(c, xstrdup("could not start a probe process"));
                continue;
            }
            loop_watch(ch->fd, LOOP_READ, child_readable, ch);
            ch->kill_timer = loop_timer(PROBE_LIMIT_S, probe_kill, ch);
        }
        loop_step(-1);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    qsort(rep->checks, rep->nchecks, sizeof *rep->checks, by_order);

    for (size_t i = 0; i < rep->nchecks; i++) {
        for (size_t k = 0; k < i; k++) {
            if (strcmp(rep->checks[i]->id, rep->checks[k]->id) == 0 && rep->checks[i]->status != ST_ERROR) {
                rep->checks[i]->status = ST_ERROR;
                set_message(rep->checks[i], xasprintf("duplicate id %s (also used by %s)", rep->checks[i]->id,
                                                      rep->checks[k]->file));
                break;
            }
        }
    }
    return 0;
}

static int in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0) return 1;
    return 0;
}

static int has_any_tag(const check_result *c, const char *const *tags, size_t ntags)
{
    for (size_t i = 0; i < c->ntags; i++)
        if (in_list(c->tags[i], tags, ntags)) return 1;
    return 0;
}

/* Keep what the command line selected. Returns -1 for an unknown id. */
static int select_checks(const runner_opts *o, run_report *rep)
{
    for (size_t i = 0; i < o->nonly; i++) {
        int found = 0;
        for (size_t k = 0; k < rep->nchecks; k++) found |= strcmp(rep->checks[k]->id, o->only_ids[i]) == 0;
        if (!found) {
            halo_warn("no check with id %s in %s (see: halo list)", o->only_ids[i], o->checks_dir);
            return -1;
        }
    }
    for (size_t i = 0; i < o->ndefer; i++) {
        int found = 0;
        for (size_t k = 0; k < rep->nchecks; k++) found |= strcmp(rep->checks[k]->id, o->defer_ids[i]) == 0;
        if (!found) {
            halo_warn("--defer %s: no check with that id in %s", o->defer_ids[i], o->checks_dir);
            return -1;
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < rep->nchecks; i++) {
        check_result *c = rep->checks[i];
        int keep = (o->nonly == 0 || in_list(c->id, o->only_ids, o->nonly)) &&
                   (o->ntags == 0 || has_any_tag(c, o->tags, o->ntags));
        if (!keep) {
            check_result_free(c);
            continue;
        }
        if (in_list(c->id, o->defer_ids, o->ndefer) && c->status != ST_ERROR) {
            c->status = ST_DEFERRED;
            set_message(c, xstrdup("deferred (--defer)"));
        }
        rep->checks[kept++] = c;
    }
    rep->nchecks = kept;
    return 0;
}

/* ---- the run ------------------------------------------------------------------------------ */

static size_t next_pending;

static int running_exclusive(void)
{
    for (size_t i = 0; i < R.nchildren; i++)
        if (R.children[i]->exclusive) return 1;
    return 0;
}

/* Start checks in id order while the parallelism and exclusivity allow. */
static int start_next(void)
{
    int started = 0;
    if (!REP) return 0; /* still discovering */
    while (!R.interrupted && next_pending < REP->nchecks) {
        check_result *c = REP->checks[next_pending];
        if (c->status != ST_PENDING) {
            if (c->status == ST_ERROR || c->status == ST_DEFERRED) progress_finished(c);
            next_pending++;
            continue;
        }
        if (running_exclusive()) break;
        if (c->exclusive && R.nchildren > 0) break;
        if ((int)R.nchildren >= R.o->parallel) break;
        if (R.o->timeout > 0) c->timeout_s = R.o->timeout;
        c->started_wall = clock_wall();
        child *ch = spawn_child(c, worker_run, &WORKER_OPTS, worker_line, worker_exit);
        next_pending++;
        if (!ch) {
            c->status = ST_ERROR;
            set_message(c, xstrdup("could not start a worker process"));
            progress_finished(c);
            continue;
        }
        ch->exclusive = c->exclusive;
        loop_watch(ch->fd, LOOP_READ, child_readable, ch);
        ch->kill_timer = loop_timer(c->timeout_s + R.o->grace, worker_kill, ch);
        progress_started(c);
        started++;
    }
    return started;
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
        progress_note(R.nchildren ? "halo: interrupted — stopping running checks and running their cleanup "
                                    "(interrupt again to cut cleanup short)"
                                  : "halo: interrupted");
        for (size_t i = 0; i < R.nchildren; i++) kill(R.children[i]->pid, SIGTERM);
        return;
    }
    if (!R.cut_short) {
        R.cut_short = 1;
        for (size_t i = 0; i < R.nchildren; i++) {
            strbuf sb;
            sb_init(&sb);
            sb_printf(&sb, "halo: cleanup of check %s cut short", R.children[i]->check->id);
            if (R.children[i]->check->current_step)
                sb_printf(&sb, " (it was in step '%s')", R.children[i]->check->current_step);
            sb_adds(&sb, "; what it changed may not be undone");
            progress_note(sb.buf);
            sb_free(&sb);
            kill(-R.children[i]->pid, SIGKILL);
        }
    }
}

static void tick(void *ud)
{
    (void)ud;
    progress_tick();
    loop_timer(0.2, tick, NULL);
}

static char *host_os(void)
{
    struct utsname u;
    if (uname(&u) != 0) return xstrdup("unknown");
    char *pretty = NULL;
    FILE *f = fopen("/etc/os-release", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "PRETTY_NAME=", 12) == 0) {
                char *v = line + 12;
                v[strcspn(v, "\n")] = '\0';
                if (*v == '"') {
                    v++;
                    char *q = strchr(v, '"');
                    if (q) *q = '\0';
                }
                pretty = xstrdup(v);
            }
        }
        fclose(f);
    }
    char *s = pretty ? xasprintf("%s (%s %s %s)", pretty, u.sysname, u.release, u.machine)
                     : xasprintf("%s %s %s", u.sysname, u.release, u.machine);
    free(pretty);
    return s;
}

static char *operator_name(const runner_opts *o)
{
    if (o->operator_name) return xstrdup(o->operator_name);
    const char *env = getenv("HALO_OPERATOR");
    if (env && *env) return xstrdup(env);
    env = getenv("USER");
    if (env && *env) return xstrdup(env);
    struct passwd *pw = getpwuid(getuid());
    return xstrdup(pw ? pw->pw_name : "unknown");
}

static void run_report_free(run_report *rep)
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
    free(rep->stack_file);
}

static int write_report_to(const run_report *rep, const char *format, int verbose, const char *path)
{
    FILE *out = stdout;
    if (path) {
        out = fopen(path, "w");
        if (!out) {
            halo_warn("report %s: %s", path, strerror(errno));
            return -1;
        }
    }
    int bad = report_write(rep, format, verbose, out) != 0;
    bad |= ferror(out);
    if (out != stdout) bad |= fclose(out) != 0;
    else fflush(stdout);
    if (bad) {
        halo_warn("writing the report to %s failed", path ? path : "stdout");
        return -1;
    }
    if (path) fprintf(stderr, "halo: %s report written to %s\n", format, path);
    return 0;
}

static char *dir_part(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? xstrndup(path, (size_t)(slash - path) + 1) : xstrdup("./");
}

static char *html_link(const char *html, const char *md)
{
    char *hd = dir_part(html), *md_dir = md ? dir_part(md) : xstrdup("./");
    char *rh = realpath(hd, NULL), *rm = realpath(md_dir, NULL);
    const char *name = strrchr(html, '/') ? strrchr(html, '/') + 1 : html;
    char *link = rh && rm && strcmp(rh, rm) == 0 ? xstrdup(name) : rh ? xasprintf("%s/%s", rh, name) : xstrdup(html);
    free(hd);
    free(md_dir);
    free(rh);
    free(rm);
    return link;
}

/* The report (--format, --out), then every --report FORMAT:FILE. */
static int write_report(const runner_opts *o, run_report *rep)
{
    /* the md entry links the HTML report when both are written: by its
     * name when the two are side by side, else by its absolute path */
    const char *html = NULL, *md = NULL;
    if (o->out && strcmp(o->format, "html") == 0) html = o->out;
    if (o->out && strcmp(o->format, "md") == 0) md = o->out;
    for (size_t i = 0; i < o->nreports; i++) {
        if (strncmp(o->reports[i], "html:", 5) == 0) html = o->reports[i] + 5;
        if (strncmp(o->reports[i], "md:", 3) == 0) md = o->reports[i] + 3;
    }
    char *link = html ? html_link(html, md) : NULL;
    rep->html_path = link;
    int rc = write_report_to(rep, o->format, o->verbose, o->out);
    for (size_t i = 0; i < o->nreports; i++) {
        const char *colon = strchr(o->reports[i], ':');
        char format[16];
        snprintf(format, sizeof format, "%.*s", (int)(colon - o->reports[i]), o->reports[i]);
        if (write_report_to(rep, format, o->verbose, colon + 1) != 0) rc = -1;
    }
    rep->html_path = NULL;
    free(link);
    return rc;
}

/* One line of the history file: the object with the check's id and the
 * record's type put in front. */
static void history_line(FILE *f, const char *check_id, const char *type, const char *obj)
{
    if (obj[0] != '{') return;
    strbuf sb;
    sb_init(&sb);
    sb_adds(&sb, "{\"check\":");
    sb_json_string(&sb, check_id);
    sb_printf(&sb, ",\"type\":\"%s\"%s%s\n", type, obj[1] == '}' ? "" : ",", obj + 1);
    fputs(sb.buf, f);
    sb_free(&sb);
}

/* --history FILE: every request and every action (docker) of every
 * check, one JSON object a line. */
static int write_history(const char *path, const run_report *rep)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        halo_warn("--history %s: %s", path, strerror(errno));
        return -1;
    }
    size_t total = 0;
    for (size_t i = 0; i < rep->nchecks; i++) {
        const check_result *c = rep->checks[i];
        for (size_t k = 0; k < c->nactions; k++) history_line(f, c->id, "action", c->actions[k]);
        for (size_t k = 0; k < c->nrequests; k++) history_line(f, c->id, "request", c->requests[k]);
        total += c->nrequests + c->nactions;
        if (c->dropped_requests)
            halo_warn("check %s: %zu requests past the first %d are not in the history", c->id,
                      c->dropped_requests, REQUEST_MAX);
    }
    int bad = ferror(f) | (fclose(f) != 0);
    if (bad) {
        halo_warn("writing the history to %s failed", path);
        return -1;
    }
    fprintf(stderr, "halo: %zu records written to %s\n", total, path);
    return 0;
}

static void install_runner_signals(void)
{
    on_interrupt_signals(on_signal);
    signal(SIGPIPE, SIG_IGN);
}

int runner_run(const runner_opts *o)
{
    R.o = o;
    loop_init();
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
    rep.stack_file = o->stack_file ? xstrdup(o->stack_file) : NULL;
    rep.operator_name = operator_name(o);
    rep.host_os = host_os();

    if (discover(o, &rep) != 0 || select_checks(o, &rep) != 0) {
        run_report_free(&rep);
        stack_harness_free(&harness);
        return 2;
    }
    progress_init(o->verbose);
    if (rep.nchecks == 0) progress_note("halo: no checks selected");

    REP = &rep;
    WORKER_OPTS = base_worker_opts(o);
    int harness_failed = 0;
    if (o->up) {
        int rc = run_harness(harness.up, harness.dir, "halo: bringing the stack up (harness.up)");
        if (rc != 0) {
            halo_warn("harness.up failed (status %d): no check runs", rc);
            harness_failed = 1;
            for (size_t i = 0; i < rep.nchecks; i++) {
                if (rep.checks[i]->status != ST_PENDING) continue;
                rep.checks[i]->status = ST_ERROR;
                set_message(rep.checks[i], xasprintf("not run: bringing the stack up failed (status %d)", rc));
            }
        }
    }
    if (o->stack_file && !harness_failed && !R.signals) {
        check_result *placeholder = check_result_new(o->stack_file);
        gather_facts(placeholder);
        check_result_free(placeholder);
    }
    next_pending = 0;
    start_next();
    if (progress_is_tty()) loop_timer(0.2, tick, NULL);
    while (R.nchildren > 0 || (!R.interrupted && next_pending < rep.nchecks)) {
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
                set_message(rep.checks[i], xstrdup("not run: the run was interrupted"));
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
    if (o->history && write_history(o->history, &rep) != 0 && code == 0) code = 3;
    if (R.interrupted) code = R.last_signal == SIGTERM ? 143 : 130;
    run_report_free(&rep);
    return code;
}

int runner_list(const runner_opts *o)
{
    R.o = o;
    loop_init();
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
