#include "run/exits.h"
#include "check/script.h"
#include "core/internal.h"
#include "core/undo.h"
#include "core/util.h"
#include "run/events_in.h"
#include "run/progress.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

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
        check_set_message(c, xasprintf("hard deadline: the worker did not finish within %g s (timeout %g s + "
                                       "grace %g s) and was killed%s",
                                       limit + check_grace(c), limit, check_grace(c), where));
    } else if (RUN.cut_short) {
        check_set_message(c, xasprintf("interrupted twice: the worker was killed before its cleanup "
                                       "finished%s; faults it injected may not be undone",
                                       where));
    } else if (WIFSIGNALED(wstatus)) {
        int sig = WTERMSIG(wstatus);
        const char *name = signal_text(sig);
        if (name) check_set_message(c, xasprintf("worker crashed: killed by %s%s", name, where));
        else check_set_message(c, xasprintf("worker crashed: killed by signal %d%s", sig, where));
    } else {
        check_set_message(c, xasprintf("worker exited with status %d without reporting a result%s",
                                       WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1, where));
    }
}

static void undo_exit(child *ch, int wstatus)
{
    (void)wstatus;
    if (ch->got_done != 2) {
        check_add_log(ch->check, "error",
                      xstrdup(ch->got_done ? "runner undo: not every fault could be undone; "
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
    sb_adds(&script, "local internal = ...\nlocal docker, json = require \"docker\", require \"json\"\n"
                     "local failed = false\n");
    for (size_t i = 0; i < dead->nfaults; i++) {
        const pending_fault *f = &dead->faults[i];
        /* ids are hex and undo is start/unpause, but quote them properly anyway */
        strbuf id, undo, action;
        sb_init(&id);
        sb_init(&undo);
        sb_init(&action);
        sb_json_string(&id, f->id);
        sb_json_string(&undo, f->undo);
        sb_json_string(&action, f->action);
        /* on the daemon the check injected it through (a swarm node, a
         * remote host with its TLS files), not only the default one */
        sb_printf(&script,
                  "do local a, c, err = json.decode(%s) or {}\n"
                  "  if type(a.host) == \"string\" then\n"
                  "    c, err = docker.daemon{ host = a.host, tls = a.tls }:container(%s)\n"
                  "  else c, err = docker.container(%s) end\n"
                  "  if not c then print(\"could not find \" .. %s .. \": \" .. tostring(err))\n"
                  "    failed = failed or err.kind ~= \"not_found\"\n"
                  "  else local ok, e = c[%s](c); failed = failed or not ok\n"
                  "    print((ok and \"did \" or \"failed to \") .. %s .. \" \" .. c.name"
                  " .. (ok and \"\" or (\": \" .. tostring(e)))) end end\n",
                  action.buf, id.buf, id.buf, id.buf, undo.buf, undo.buf);
        sb_free(&id);
        sb_free(&undo);
        sb_free(&action);
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
    worker_opts wo = RUN.worker;
    wo.script = script.buf;
    child *ch = child_spawn(dead->check, worker_script, &wo, &undo_events, undo_exit);
    sb_free(&script);
    if (!ch) return -1;
    ch->undoes = dead->pid;
    /* a swarm service's spec put back is a rolling update: the check's own
     * grace (check 6 declares 180 s) is what its undo was given */
    child_listen(ch, 60 + check_grace(dead->check));
    return 0;
}

/* Whether process pid left a journal: what it had not undone. */
static int journal_left(pid_t pid)
{
    char *journal = journal_path((long)pid);
    int left = journal && access(journal, F_OK) == 0;
    free(journal);
    return left;
}

void worker_exit(child *ch, int wstatus)
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
        check_add_log(c, "warn",
                      xasprintf("%zu more log lines, failures or evidence were dropped (the report keeps %d "
                                "lines and %zu MiB of a check's text)",
                                ch->dropped, LOG_MAX, CHECK_TEXT_BUDGET >> 20));
    if (!ch->got_done || ch->killed_by_deadline) {
        worker_vanished(ch, wstatus);
        if ((ch->nfaults > 0 || journal_left(ch->pid)) && spawn_undo(ch) == 0) return; /* reported when the undo ends */
    }
    progress_finished(c);
}
