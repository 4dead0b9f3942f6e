/* Small helpers every engine file shares: allocation that cannot return
 * NULL, growable strings, clocks, and secret redaction. */
#ifndef HALO_UTIL_H
#define HALO_UTIL_H
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#if defined(__GNUC__)
#define HALO_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define HALO_PRINTF(a, b)
#endif

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) HALO_PRINTF(1, 2);
/* The longest prefix of s of at most max bytes that does not end inside a
 * UTF-8 sequence; s must hold more than max bytes. */
size_t utf8_prefix(const char *s, size_t max);
/* s (of len bytes, more than max) cut at most max bytes in, between
 * characters, ending "… [cut: LEN bytes in all]"; to free. */
char *text_cut(const char *s, size_t len, size_t max);

/* Grow *items (of *cap elements of size) so it holds at least need. */
void grow_array(void **items, size_t *cap, size_t need, size_t size);
#define VEC_PUSH(arr, n, cap, value)                                          \
    do {                                                                      \
        grow_array((void **)&(arr), &(cap), (size_t)(n) + 1, sizeof *(arr));  \
        (arr)[(n)++] = (value);                                               \
    } while (0)

typedef struct {
    char *buf;
    size_t len, cap;
} strbuf;

void sb_init(strbuf *sb);
void sb_free(strbuf *sb);
void sb_addn(strbuf *sb, const char *s, size_t n);
void sb_adds(strbuf *sb, const char *s);
void sb_addc(strbuf *sb, char c);
void sb_printf(strbuf *sb, const char *fmt, ...) HALO_PRINTF(2, 3);
void sb_vprintf(strbuf *sb, const char *fmt, va_list ap);
/* Hand the buffer over (NUL-terminated, never NULL) and reset sb. */
char *sb_take(strbuf *sb);

/* JSON string literal, quotes included; invalid UTF-8 becomes U+FFFD. */
void sb_json_string(strbuf *sb, const char *s);
/* XML text/attribute escaping (&, <, >, ", '; control chars dropped). */
void sb_xml_escape(strbuf *sb, const char *s);

double clock_mono(void); /* seconds, CLOCK_MONOTONIC */
double clock_wall(void); /* seconds since the epoch, sub-millisecond */

/* Secret redaction: every registered value is replaced by "***" wherever it
 * appears in text the host prints, reports or streams. */
void redact_add(const char *secret);
/* Shorter secrets are refused: they would be found inside ordinary text. */
#define REDACT_MIN_LEN 4
/* redact_add of a secret a script hands over (len bytes): NULL, or why
 * halo cannot hide it (too short, a NUL byte in it). */
const char *redact_add_checked(const char *secret, size_t len);
size_t redact_count(void);
/* Returns a new string (caller frees) with every secret replaced. */
char *redact(const char *text);
char *redact_n(const char *text, size_t len);

/* "%"-escaping used by the worker event protocol: tab, newline, CR and '%'
 * become %09, %0A, %0D and %25 so one event is one line of tab fields. */
void sb_field(strbuf *sb, const char *s);
char *field_unescape(const char *s, size_t n);

/* halo's state directory, $XDG_STATE_HOME/halo (else ~/.local/state/halo),
 * with `sub` below it ("" for itself), created (mode 0700) if missing.
 * Returns a new string, or NULL when there is no home to put it in. */
char *state_dir(const char *sub);

/* A whole file into sb (appended). Returns 0, or -1 with errno set (an
 * open or read error). */
int read_whole_file(const char *path, strbuf *sb);

/* The same handler for SIGINT and SIGTERM (sigaction, no flags). */
void on_interrupt_signals(void (*handler)(int));

/* text and a newline on f, redacted, flushed: what the operator sees. */
void puts_redacted(const char *text, FILE *f);

/* One line on stderr, prefixed with "halo: ", redacted. */
void halo_warn(const char *fmt, ...) HALO_PRINTF(1, 2);

#endif
