/* Allocation, strings, clocks and redaction shared by the whole host. */
#include "core/util.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void out_of_memory(void)
{
    static const char msg[] = "halo: out of memory\n";
    fwrite(msg, 1, sizeof msg - 1, stderr);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) out_of_memory();
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) out_of_memory();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) out_of_memory();
    return p;
}

char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

size_t utf8_prefix(const char *s, size_t max)
{
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) max--;
    return max;
}

char *text_cut(const char *s, size_t len, size_t max)
{
    return xasprintf("%.*s… [cut: %zu bytes in all]", (int)utf8_prefix(s, max), s, len);
}

char *xasprintf(const char *fmt, ...)
{
    strbuf sb;
    va_list ap;
    sb_init(&sb);
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    return sb_take(&sb);
}

void grow_array(void **items, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need) ncap *= 2;
    *items = xrealloc(*items, ncap * size);
    *cap = ncap;
}

void sb_init(strbuf *sb)
{
    sb->buf = NULL;
    sb->len = sb->cap = 0;
}

void sb_free(strbuf *sb)
{
    free(sb->buf);
    sb_init(sb);
}

static void sb_reserve(strbuf *sb, size_t extra)
{
    grow_array((void **)&sb->buf, &sb->cap, sb->len + extra + 1, 1);
}

void sb_addn(strbuf *sb, const char *s, size_t n)
{
    sb_reserve(sb, n);
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

void sb_adds(strbuf *sb, const char *s) { sb_addn(sb, s, strlen(s)); }
void sb_addc(strbuf *sb, char c) { sb_addn(sb, &c, 1); }

void sb_vprintf(strbuf *sb, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return;
    sb_reserve(sb, (size_t)n);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
}

void sb_printf(strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(sb, fmt, ap);
    va_end(ap);
}

char *sb_take(strbuf *sb)
{
    char *p = sb->buf ? sb->buf : xstrdup("");
    sb_init(sb);
    return p;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s)
{
    if (s[0] < 0x80) return 1;
    size_t n;
    uint32_t cp;
    if ((s[0] & 0xE0) == 0xC0) { n = 2; cp = s[0] & 0x1F; }
    else if ((s[0] & 0xF0) == 0xE0) { n = 3; cp = s[0] & 0x0F; }
    else if ((s[0] & 0xF8) == 0xF0) { n = 4; cp = s[0] & 0x07; }
    else return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

void sb_json_string(strbuf *sb, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    sb_addc(sb, '"');
    while (*p) {
        unsigned char c = *p;
        switch (c) {
        case '"': sb_adds(sb, "\\\""); p++; continue;
        case '\\': sb_adds(sb, "\\\\"); p++; continue;
        case '\n': sb_adds(sb, "\\n"); p++; continue;
        case '\r': sb_adds(sb, "\\r"); p++; continue;
        case '\t': sb_adds(sb, "\\t"); p++; continue;
        default: break;
        }
        if (c < 0x20 || c == 0x7F) {
            sb_printf(sb, "\\u%04x", c);
            p++;
            continue;
        }
        size_t n = utf8_seq(p);
        if (n == 0) {
            sb_adds(sb, "\xEF\xBF\xBD");
            p++;
        } else {
            sb_addn(sb, (const char *)p, n);
            p += n;
        }
    }
    sb_addc(sb, '"');
}

void sb_xml_escape(strbuf *sb, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        unsigned char c = *p;
        switch (c) {
        case '&': sb_adds(sb, "&amp;"); break;
        case '<': sb_adds(sb, "&lt;"); break;
        case '>': sb_adds(sb, "&gt;"); break;
        case '"': sb_adds(sb, "&quot;"); break;
        case '\'': sb_adds(sb, "&apos;"); break;
        case '\n': case '\t': case '\r': sb_addc(sb, (char)c); break;
        default:
            if (c < 0x20) break; /* not representable in XML 1.0 */
            {
                size_t n = utf8_seq(p);
                /* U+FFFE and U+FFFF are not characters XML 1.0 allows */
                if (n == 0 || (n == 3 && p[0] == 0xEF && p[1] == 0xBF && (p[2] == 0xBE || p[2] == 0xBF))) {
                    sb_adds(sb, "\xEF\xBF\xBD");
                    p += n ? n : 1;
                    continue;
                }
                sb_addn(sb, (const char *)p, n);
                p += n;
                continue;
            }
        }
        p++;
    }
}

double clock_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double clock_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char **secrets;
static size_t nsecrets, capsecrets;

static void redact_add_one(const char *secret);

/* A server that echoes a secret back seldom sends it byte for byte: inside
 * JSON it is escaped, in a URL or a form percent-encoded. Those spellings
 * are secrets too. */
static void add_json_spelling(const char *secret, int escape_slash)
{
    strbuf sb;
    sb_init(&sb);
    for (const unsigned char *p = (const unsigned char *)secret; *p; p++) {
        if (*p == '"' || *p == '\\' || (*p == '/' && escape_slash)) {
            sb_addc(&sb, '\\');
            sb_addc(&sb, (char)*p);
        } else if (*p < 0x20) {
            sb_printf(&sb, "\\u%04x", *p);
        } else {
            sb_addc(&sb, (char)*p);
        }
    }
    if (sb.buf) redact_add_one(sb.buf);
    sb_free(&sb);
}

static void add_url_spelling(const char *secret, int keep_slash, int space_as_plus)
{
    strbuf sb;
    sb_init(&sb);
    for (const unsigned char *p = (const unsigned char *)secret; *p; p++) {
        int c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~' || (c == '/' && keep_slash))
            sb_addc(&sb, (char)c);
        else if (c == ' ' && space_as_plus)
            sb_addc(&sb, '+');
        else
            sb_printf(&sb, "%%%02X", c);
    }
    if (sb.buf) redact_add_one(sb.buf);
    sb_free(&sb);
}

void redact_add(const char *secret)
{
    if (!secret || !*secret) return;
    redact_add_one(secret);
    add_json_spelling(secret, 1);
    add_json_spelling(secret, 0);
    add_url_spelling(secret, 0, 0);
    add_url_spelling(secret, 1, 0);
    add_url_spelling(secret, 0, 1);
}

static void redact_add_one(const char *secret)
{
    for (size_t i = 0; i < nsecrets; i++)
        if (strcmp(secrets[i], secret) == 0) return;
    VEC_PUSH(secrets, nsecrets, capsecrets, xstrdup(secret));
    /* Longest first, so a secret containing another is hidden whole. */
    for (size_t i = nsecrets - 1; i > 0 && strlen(secrets[i]) > strlen(secrets[i - 1]); i--) {
        char *tmp = secrets[i];
        secrets[i] = secrets[i - 1];
        secrets[i - 1] = tmp;
    }
}

size_t redact_count(void) { return nsecrets; }

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)
const char *redact_add_checked(const char *secret, size_t len)
{
    if (len < REDACT_MIN_LEN)
        return "halo cannot keep a secret shorter than " STRINGIFY(REDACT_MIN_LEN) " characters out of its output";
    if (strlen(secret) != len) return "a secret with a NUL byte in it: halo hides text only";
    redact_add(secret);
    return NULL;
}

char *redact_n(const char *text, size_t len)
{
    strbuf sb;
    sb_init(&sb);
    size_t i = 0, plain = 0; /* text[plain..i) is copied as it is, in one go */
    while (i < len) {
        size_t hit = 0;
        for (size_t k = 0; k < nsecrets; k++) {
            size_t sl = strlen(secrets[k]);
            if (sl <= len - i && memcmp(text + i, secrets[k], sl) == 0) {
                hit = sl;
                break;
            }
        }
        if (hit) {
            sb_addn(&sb, text + plain, i - plain);
            sb_adds(&sb, "***");
            i += hit;
            plain = i;
        } else {
            i++;
        }
    }
    sb_addn(&sb, text + plain, len - plain);
    return sb_take(&sb);
}

char *redact(const char *text) { return redact_n(text ? text : "", text ? strlen(text) : 0); }

void sb_field(strbuf *sb, const char *s)
{
    for (const char *p = s ? s : ""; *p; p++) {
        switch (*p) {
        case '\t': sb_adds(sb, "%09"); break;
        case '\n': sb_adds(sb, "%0A"); break;
        case '\r': sb_adds(sb, "%0D"); break;
        case '%': sb_adds(sb, "%25"); break;
        default: sb_addc(sb, *p);
        }
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

char *field_unescape(const char *s, size_t n)
{
    strbuf sb;
    sb_init(&sb);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            sb_addc(&sb, (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2])));
            i += 2;
        } else {
            sb_addc(&sb, s[i]);
        }
    }
    return sb_take(&sb);
}

void halo_warn(const char *fmt, ...)
{
    strbuf sb;
    va_list ap;
    sb_init(&sb);
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    char *clean = redact(sb.buf ? sb.buf : "");
    fprintf(stderr, "halo: %s\n", clean);
    free(clean);
    sb_free(&sb);
}

static void make_dirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(path, 0700);
        *p = '/';
    }
    mkdir(path, 0700);
}

char *state_dir(const char *sub)
{
    const char *state = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    char *dir;
    if (state && state[0] == '/') dir = xasprintf("%s/halo%s%s", state, *sub ? "/" : "", sub);
    else if (home && *home) dir = xasprintf("%s/.local/state/halo%s%s", home, *sub ? "/" : "", sub);
    else return NULL;
    make_dirs(dir);
    return dir;
}

int read_whole_file(const char *path, strbuf *sb)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sb_addn(sb, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        errno = EIO;
        return -1;
    }
    return 0;
}

void on_interrupt_signals(void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void puts_redacted(const char *text, FILE *f)
{
    char *clean = redact(text ? text : "");
    fputs(clean, f);
    fputc('\n', f);
    fflush(f);
    free(clean);
}
