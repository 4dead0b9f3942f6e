#include "core/events.h"
#include "core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const event_spec events[EV_COUNT] = {
#define EVENT(name, kind, nfields, fields, meaning) [EV_##name] = {#name, kind, nfields, fields, meaning},
#include "core/events.def"
#undef EVENT
};

static struct {
    int fd;
    double t0;
} sink = {-1, 0};

const event_spec *events_spec(event_kind kind)
{
    return (unsigned)kind < EV_COUNT ? &events[kind] : NULL;
}

int events_kind_of(const char *kind)
{
    for (int k = 0; k < EV_COUNT; k++)
        if (kind && strcmp(events[k].kind, kind) == 0) return k;
    return -1;
}

void events_attach(int fd)
{
    sink.fd = fd;
    sink.t0 = clock_mono();
}

static void write_all(const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(sink.fd, buf + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        /* The runner is gone. Keep going without an audience: the check's
         * cleanup must still run. */
        if (n <= 0) break;
        off += (size_t)n;
    }
}

/* Whether field i of an event is a JSON document: events.def names such a
 * field "json". */
static int field_is_json(const event_spec *spec, int i)
{
    const char *p = spec->fields;
    for (int k = 0; k < i && p; k++) {
        p = strchr(p, ' ');
        if (p) p++;
    }
    return p && strncmp(p, "json", 4) == 0 && (p[4] == ' ' || p[4] == '\0');
}

/* how much of an over-long JSON document its stand-in keeps, as a string */
#define JSON_HEAD_MAX 1024

/* text as an event field: redacted first, so that cutting cannot leave
 * half a secret, then cut at EVENT_FIELD_MAX on a character boundary with
 * a note of the whole length. A JSON document cut anywhere is no JSON
 * any more (a --history line would not parse): one that long becomes
 * {"cut": its head as a string, "bytes": its length}. */
static char *field_text(const char *text, size_t len, int json)
{
    char *clean = redact_n(text, len);
    len = strlen(clean);
    if (len <= EVENT_FIELD_MAX) return clean;
    char *cut;
    if (json) {
        strbuf sb;
        sb_init(&sb);
        char *head = xasprintf("%.*s…", (int)utf8_prefix(clean, JSON_HEAD_MAX), clean);
        sb_adds(&sb, "{\"cut\":");
        sb_json_string(&sb, head);
        sb_printf(&sb, ",\"bytes\":%zu}", len);
        free(head);
        cut = sb_take(&sb);
    } else {
        cut = text_cut(clean, len, EVENT_FIELD_MAX);
    }
    free(clean);
    return cut;
}

int events_send(event_kind kind, int nfields, const char *const *fields)
{
    const event_spec *spec = events_spec(kind);
    /* Refused even with no runner attached, so that eval and the REPL
     * show the mistake as loudly as a run would. */
    if (!spec || nfields != spec->nfields) {
        halo_warn("internal: event %s with %d field(s) refused (core/events.def: %s)", spec ? spec->kind : "?",
                  nfields, spec ? spec->fields : "no such event");
        return -1;
    }
    if (sink.fd < 0) return 0;
    strbuf sb;
    sb_init(&sb);
    sb_adds(&sb, spec->kind);
    for (int i = 0; i < nfields; i++) {
        sb_addc(&sb, '\t');
        /* Every field is cut here, whoever sent it: an error message or a
         * log line of 20 MB would otherwise cross the pipe whole and be
         * printed whole by the runner. */
        const char *text = fields[i] ? fields[i] : "";
        char *clean = field_text(text, strlen(text), field_is_json(spec, i));
        sb_field(&sb, clean);
        free(clean);
    }
    sb_addc(&sb, '\n');
    write_all(sb.buf, sb.len);
    sb_free(&sb);
    return 0;
}

int events_emit(const char *kind, int nfields, const char *const *fields)
{
    int k = events_kind_of(kind);
    if (k < 0) {
        halo_warn("internal: unknown event kind '%s' refused (core/events.def lists them)", kind ? kind : "(null)");
        return -1;
    }
    return events_send((event_kind)k, nfields, fields);
}

void events_log(const char *level, const char *text)
{
    char at[32];
    snprintf(at, sizeof at, "%.1f", events_elapsed_ms());
    const char *fields[] = {level, at, text};
    events_send(EV_LOG, 3, fields);
}

int events_streaming(void) { return sink.fd >= 0; }

double events_origin(void)
{
    if (sink.t0 == 0) sink.t0 = clock_mono();
    return sink.t0;
}

double events_elapsed_ms(void) { return (clock_mono() - events_origin()) * 1000.0; }
