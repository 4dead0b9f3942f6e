#include "core/events.h"
#include "core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static struct {
    int fd;
    double t0;
} sink = {-1, 0};

void events_attach(int fd)
{
    sink.fd = fd;
    sink.t0 = clock_mono();
}

void events_emit(const char *kind, int nfields, const char *const *fields)
{
    if (sink.fd < 0) return;
    strbuf sb;
    sb_init(&sb);
    sb_adds(&sb, kind);
    for (int i = 0; i < nfields; i++) {
        sb_addc(&sb, '\t');
        char *clean = redact(fields[i]);
        sb_field(&sb, clean);
        free(clean);
    }
    sb_addc(&sb, '\n');
    size_t off = 0;
    while (off < sb.len) {
        ssize_t n = write(sink.fd, sb.buf + off, sb.len - off);
        if (n < 0 && errno == EINTR) continue;
        /* The runner is gone. Keep going without an audience: the check's
         * cleanup must still run. */
        if (n <= 0) break;
        off += (size_t)n;
    }
    sb_free(&sb);
}

int events_streaming(void) { return sink.fd >= 0; }

double events_origin(void)
{
    if (sink.t0 == 0) sink.t0 = clock_mono();
    return sink.t0;
}

double events_elapsed_ms(void) { return (clock_mono() - events_origin()) * 1000.0; }
