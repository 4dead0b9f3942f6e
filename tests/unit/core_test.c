/* Unit tests of the core layer's plain-C parts, linked against their own
 * sources only: the event loop (timers in order, cancel, fds, a wake from a
 * signal handler), strbuf and the event-line escaping, and the redaction of
 * secrets (every occurrence, overlapping secrets, text with NUL bytes).
 * Exit 0 when every case held; each failure is one line on stderr. */
#include "core/events.h"
#include "core/loop.h"
#include "core/util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures, cases;

#define EXPECT(cond, ...)                                                      \
    do {                                                                       \
        cases++;                                                               \
        if (!(cond)) {                                                         \
            failures++;                                                        \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                    \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

/* ---- loop ------------------------------------------------------------------ */

static char fired[16];
static int nfired;
static void note(void *ud) { fired[nfired++] = *(const char *)ud; }

static void timers_fire_in_deadline_order(void)
{
    loop_init();
    nfired = 0;
    static const char a = 'a', b = 'b', c = 'c', d = 'd';
    loop_timer(0.03, note, (void *)&c);
    loop_timer(0.01, note, (void *)&a);
    loop_timer_id cancelled = loop_timer(0.02, note, (void *)&d);
    loop_timer(0.02, note, (void *)&b);
    loop_timer_cancel(cancelled);
    loop_timer_cancel(cancelled); /* twice: harmless */
    double start = clock_mono();
    while (loop_busy() && clock_mono() - start < 2) loop_step(-1);
    EXPECT(nfired == 3 && memcmp(fired, "abc", 3) == 0, "timers fired as '%.*s', want 'abc'", nfired, fired);
    EXPECT(!loop_busy(), "the loop is still busy after every timer fired");
}

static int read_events, read_bytes;
static void on_readable(int fd, int revents, void *ud)
{
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf);
    read_events++;
    if (n > 0) read_bytes += (int)n;
    loop_unwatch(fd);
}

static void a_readable_fd_runs_its_callback_once_watched(void)
{
    loop_init();
    int p[2];
    EXPECT(pipe(p) == 0, "pipe");
    loop_watch(p[0], LOOP_READ, on_readable, NULL);
    EXPECT(loop_step(0) == 0, "a callback ran with nothing to read");
    EXPECT(write(p[1], "hello", 5) == 5, "write");
    loop_step(1);
    EXPECT(read_events == 1 && read_bytes == 5, "read %d bytes in %d callbacks, want 5 in 1", read_bytes, read_events);
    EXPECT(!loop_busy(), "an unwatched fd keeps the loop busy");
    close(p[0]);
    close(p[1]);
}

static void on_alarm(int sig) { (void)sig; loop_interrupt_from_signal(); }

static void a_signal_wakes_a_waiting_loop(void)
{
    loop_init();
    static const char x = 'x';
    loop_timer(10, note, (void *)&x);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    nfired = 0;
    double start = clock_mono();
    alarm(1);
    loop_step(-1);
    double took = clock_mono() - start;
    EXPECT(took < 5, "the signal did not wake the loop (waited %.1f s)", took);
    EXPECT(nfired == 0, "the far timer fired");
    signal(SIGALRM, SIG_DFL);
    loop_reset();
}

static int gone_calls;
static void on_gone(void) { gone_calls++; }

static void a_lifeline_ends_when_its_writer_is_gone(void)
{
    loop_init();
    int p[2];
    EXPECT(pipe(p) == 0, "pipe");
    loop_lifeline(p[0], on_gone);
    EXPECT(!loop_busy(), "a lifeline keeps the loop busy (it wakes no task)");
    loop_step(0);
    EXPECT(gone_calls == 0, "the lifeline ended while its writer lives");
    close(p[1]); /* the runner is gone */
    double start = clock_mono();
    while (gone_calls == 0 && clock_mono() - start < 2) loop_step(0.1);
    EXPECT(gone_calls == 1, "on_gone ran %d times, want 1", gone_calls);
    loop_step(0);
    EXPECT(gone_calls == 1, "on_gone ran again");
    close(p[0]);
    loop_reset();
}

/* ---- strbuf and event fields ----------------------------------------------- */

static void strbuf_grows_and_hands_over(void)
{
    strbuf sb;
    sb_init(&sb);
    for (int i = 0; i < 10000; i++) sb_addc(&sb, (char)('a' + i % 26));
    sb_printf(&sb, "|%d|%s", 42, "end");
    EXPECT(sb.len == 10000 + 7, "length %zu", sb.len);
    char *s = sb_take(&sb);
    EXPECT(strcmp(s + 10000, "|42|end") == 0, "tail '%s'", s + 10000);
    EXPECT(sb.len == 0, "sb_take did not reset");
    free(s);
    sb_free(&sb);
}

static void event_fields_round_trip(void)
{
    const char *nasty = "tab\there\nnew line\r%25 100% done";
    strbuf sb;
    sb_init(&sb);
    sb_field(&sb, nasty);
    EXPECT(!strchr(sb.buf, '\t') && !strchr(sb.buf, '\n') && !strchr(sb.buf, '\r'),
           "an escaped field still holds a separator: %s", sb.buf);
    char *back = field_unescape(sb.buf, sb.len);
    EXPECT(strcmp(back, nasty) == 0, "round trip gave '%s'", back);
    free(back);
    sb_free(&sb);
}

static void json_strings_are_escaped_and_valid(void)
{
    strbuf sb;
    sb_init(&sb);
    sb_json_string(&sb, "q\"b\\n\n\x01 \xff end");
    EXPECT(strcmp(sb.buf, "\"q\\\"b\\\\n\\n\\u0001 \xef\xbf\xbd end\"") == 0, "got %s", sb.buf);
    sb_free(&sb);
}

static void utf8_prefixes_end_between_characters(void)
{
    const char *s = "ab\xc3\xa9" "cd"; /* a, b, é (two bytes), c, d */
    EXPECT(utf8_prefix(s, 3) == 2, "cut inside é: %zu", utf8_prefix(s, 3));
    EXPECT(utf8_prefix(s, 4) == 4, "after é: %zu", utf8_prefix(s, 4));
    EXPECT(utf8_prefix(s, 2) == 2, "before é: %zu", utf8_prefix(s, 2));
}

/* One event sent to a file; its fields back, unescaped. */
static char **send_and_read(event_kind kind, int nfields, const char *const *fields, char **line_out)
{
    FILE *f = tmpfile();
    events_attach(fileno(f));
    events_send(kind, nfields, fields);
    events_attach(-1);
    long size = ftell(f);
    rewind(f);
    char *line = calloc(1, (size_t)size + 1);
    size_t got = fread(line, 1, (size_t)size, f);
    fclose(f);
    line[got] = '\0';
    char **out = calloc((size_t)nfields + 1, sizeof *out);
    char *p = strchr(line, '\t');
    for (int i = 0; i < nfields && p; i++) {
        char *end = strpbrk(p + 1, "\t\n");
        out[i] = field_unescape(p + 1, end ? (size_t)(end - p - 1) : strlen(p + 1));
        p = end && *end == '\t' ? end : NULL;
    }
    *line_out = line;
    return out;
}

static void over_long_fields_are_cut_and_json_stays_json(void)
{
    size_t n = EVENT_FIELD_MAX + 1000;
    char *big = malloc(n + 32);
    memcpy(big, "{\"url\":\"", 8);
    memset(big + 8, 'a', n);
    strcpy(big + 8 + n, "\"}");
    char *line;
    const char *request[] = {big};
    char **got = send_and_read(EV_REQUEST, 1, request, &line);
    EXPECT(got[0] && strncmp(got[0], "{\"cut\":\"{\\\"url\\\":\\\"aaa", 17) == 0,
           "a JSON field cut is not an object with its head: %.60s", got[0] ? got[0] : "(none)");
    char tail[64];
    snprintf(tail, sizeof tail, "\",\"bytes\":%zu}", n + 10);
    EXPECT(got[0] && strlen(got[0]) < 2048 && strstr(got[0], tail) != NULL, "no length %s at the end: %s", tail,
           got[0] ? got[0] + (strlen(got[0]) > 80 ? strlen(got[0]) - 80 : 0) : "(none)");
    free(got[0]);
    free(got);
    free(line);
    const char *log[] = {"info", "1.0", big};
    got = send_and_read(EV_LOG, 3, log, &line);
    EXPECT(got[2] && strlen(got[2]) < EVENT_FIELD_MAX + 64 && strstr(got[2], "[cut: ") != NULL,
           "a text field is not cut with a note: %zu bytes", got[2] ? strlen(got[2]) : 0);
    for (int i = 0; i < 3; i++) free(got[i]);
    free(got);
    free(line);
    free(big);
}

/* ---- redaction ------------------------------------------------------------- */

static void every_occurrence_of_a_secret_is_redacted(void)
{
    redact_add("hunter2");
    redact_add("hunter2-long"); /* the longer one wins where both match */
    redact_add("");             /* an empty secret is ignored, not a match everywhere */
    char *out = redact("a hunter2 b hunter2-long c hunter2hunter2");
    EXPECT(strstr(out, "hunter2") == NULL, "a secret survived: %s", out);
    EXPECT(strcmp(out, "a *** b *** c ******") == 0, "got '%s'", out);
    free(out);
    out = redact("nothing to hide");
    EXPECT(strcmp(out, "nothing to hide") == 0, "a clean text changed: '%s'", out);
    free(out);
    const char with_nul[] = "x\0hunter2 y";
    out = redact_n(with_nul, sizeof with_nul - 1);
    EXPECT(memcmp(out, "x\0*** y", 7) == 0, "a secret after a NUL survived");
    free(out);
}

int main(void)
{
    timers_fire_in_deadline_order();
    a_readable_fd_runs_its_callback_once_watched();
    a_signal_wakes_a_waiting_loop();
    a_lifeline_ends_when_its_writer_is_gone();
    strbuf_grows_and_hands_over();
    event_fields_round_trip();
    json_strings_are_escaped_and_valid();
    every_occurrence_of_a_secret_is_redacted();
    utf8_prefixes_end_between_characters();
    over_long_fields_are_cut_and_json_stays_json();
    if (failures) fprintf(stderr, "core_test: %d of %d checks failed\n", failures, cases);
    else printf("core_test: %d checks passed\n", cases);
    return failures ? 1 : 0;
}
