/* Progress lines on stderr. On a terminal the running checks are a block
 * at the bottom, redrawn in place; finished checks and log lines scroll
 * above it. Without a terminal every event is one plain line. */
#include "run/progress.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
    int tty, color, verbose;
    check_result **running;
    size_t nrunning, caprunning;
    double *started;
    size_t capstarted;
    int drawn; /* lines of the live block currently on screen */
} P;

int progress_is_tty(void) { return P.tty; }

void progress_init(int verbose)
{
    P.tty = isatty(STDERR_FILENO) && getenv("TERM") && strcmp(getenv("TERM"), "dumb") != 0;
    P.color = P.tty && !getenv("NO_COLOR");
    P.verbose = verbose;
}

static const char *status_color(check_status st)
{
    if (!P.color) return "";
    switch (st) {
    case ST_PASS: return "\033[32m";
    case ST_FAIL: return "\033[31;1m";
    case ST_ERROR: return "\033[35;1m";
    case ST_DEFERRED: return "\033[33m";
    default: return "\033[2m";
    }
}

static const char *reset(void) { return P.color ? "\033[0m" : ""; }

static void erase_block(void)
{
    if (!P.tty || P.drawn == 0) return;
    fprintf(stderr, "\033[%dA\r\033[J", P.drawn);
    P.drawn = 0;
}

static int term_width(void)
{
    const char *cols = getenv("COLUMNS");
    int w = cols ? atoi(cols) : 0;
    return w > 20 ? w : 100;
}

static void draw_block(void)
{
    if (!P.tty) return;
    int width = term_width();
    double now = clock_mono();
    for (size_t i = 0; i < P.nrunning; i++) {
        check_result *c = P.running[i];
        char line[512];
        snprintf(line, sizeof line, "  ▸ [%s] %s%s%s  %.1fs/%gs", c->id ? c->id : "?",
                 c->title ? c->title : "", c->current_step ? " · " : "",
                 c->current_step ? c->current_step : "", now - P.started[i], c->timeout_s);
        /* Cut to the terminal width (bytes, close enough for a status line),
         * never inside a UTF-8 sequence. */
        size_t len = strlen(line), max = (size_t)width - 1;
        if (len > max) line[utf8_prefix(line, max)] = '\0';
        fprintf(stderr, "%s\033[K\n", line);
    }
    P.drawn = (int)P.nrunning;
    fflush(stderr);
}

/* A permanent line: above the live block on a terminal. */
static void say(const char *fmt, ...) HALO_PRINTF(1, 2);
static void say(const char *fmt, ...)
{
    erase_block();
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    draw_block();
    fflush(stderr);
}

void progress_note(const char *text) { say("%s", text); }

void progress_started(check_result *c)
{
    VEC_PUSH(P.running, P.nrunning, P.caprunning, c);
    grow_array((void **)&P.started, &P.capstarted, P.nrunning, sizeof *P.started);
    P.started[P.nrunning - 1] = clock_mono();
    if (P.tty) {
        erase_block();
        draw_block();
    } else {
        say("[%s] start: %s (timeout %gs)", c->id, c->title ? c->title : "", c->timeout_s);
    }
}

/* What was already said about a check as it happened (its first failure,
 * an error's first line): the line that ends the check does not say it
 * again. */
typedef struct {
    const check_result *check;
    char *text;
} said_line;
static said_line *said;
static size_t nsaid, capsaid;

static void remember(const check_result *c, const char *text, size_t len)
{
    for (size_t i = 0; i < nsaid; i++)
        if (said[i].check == c) return; /* the first one is what the message repeats */
    said_line s = {c, xstrndup(text, len)};
    VEC_PUSH(said, nsaid, capsaid, s);
}

/* Whether message only repeats what was said for c; forgets c either way. */
static int already_said(const check_result *c, const char *message)
{
    for (size_t i = 0; i < nsaid; i++) {
        if (said[i].check != c) continue;
        int repeats = message && strncmp(message, said[i].text, strlen(said[i].text)) == 0;
        free(said[i].text);
        said[i] = said[--nsaid];
        return repeats;
    }
    return 0;
}

void progress_step(check_result *c, const char *step)
{
    if (P.tty) progress_tick();
    else say("[%s] step: %s", c->id, step);
}

/* The terminal shows the start of a long text; the reports keep it all
 * (up to the event field limit). */
#define SHOWN_MAX 2000
static int shown(size_t len) { return (int)(len > SHOWN_MAX ? SHOWN_MAX : len); }
static const char *more(size_t len) { return len > SHOWN_MAX ? "… (cut here; the report has more)" : ""; }

void progress_log(check_result *c, const char *level, const char *text)
{
    if (!P.verbose && strcmp(level, "error") != 0) return;
    const char *nl = strchr(text, '\n');
    size_t len = nl && !P.verbose ? (size_t)(nl - text) : strlen(text);
    say("[%s] %s: %.*s%s", c->id, level, shown(len), text, more(len));
    if (strcmp(level, "error") == 0) remember(c, text, nl ? (size_t)(nl - text) : strlen(text));
}

void progress_failure(check_result *c, const char *text)
{
    say("[%s] expectation failed: %.*s%s", c->id, shown(strlen(text)), text, more(strlen(text)));
    remember(c, text, strlen(text));
}

void progress_finished(check_result *c)
{
    for (size_t i = 0; i < P.nrunning; i++) {
        if (P.running[i] == c) {
            P.running[i] = P.running[P.nrunning - 1];
            P.started[i] = P.started[P.nrunning - 1];
            P.nrunning--;
            break;
        }
    }
    const char *mark = c->status == ST_PASS ? "✓" : c->status == ST_FAIL || c->status == ST_ERROR ? "✗"
                     : c->status == ST_DEFERRED ? "-" : "·";
    const char *message = already_said(c, c->message) ? NULL : c->message;
    size_t len = message ? strlen(message) : 0;
    say("%s%s %-8s%s [%s] %s  %.1fs%s%.*s%s", status_color(c->status), mark, status_name(c->status), reset(),
        c->id, c->title ? c->title : "", c->duration_ms / 1000.0, message ? " — " : "", shown(len),
        message ? message : "", more(len));
}

void progress_tick(void)
{
    if (!P.tty) return;
    erase_block();
    draw_block();
}

void progress_end(void)
{
    erase_block();
    fflush(stderr);
}
