/* The links: their listeners, their faults, their JSON, and the log line
 * each change of them writes. The connections themselves are
 * proxy/conn.c's. */
#define _GNU_SOURCE /* accept4 */
#include "proxy/link.h"
#include "proxy/conn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static px_link **links;
static size_t nlinks, caplinks;

void px_log(const char *event, const char *fields)
{
    strbuf sb;
    sb_init(&sb);
    sb_printf(&sb, "{\"t\":%.3f,\"event\":", clock_wall());
    sb_json_string(&sb, event);
    if (fields && *fields) sb_printf(&sb, ",%s", fields);
    sb_adds(&sb, "}\n");
    fwrite(sb.buf, 1, sb.len, stdout);
    fflush(stdout);
    sb_free(&sb);
}

/* `"link":NAME` and more fields, for px_log. */
static void log_link(const px_link *l, const char *event, const char *fmt, ...)
{
    strbuf sb;
    sb_init(&sb);
    sb_adds(&sb, "\"link\":");
    sb_json_string(&sb, l->name);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        sb_addc(&sb, ',');
        sb_vprintf(&sb, fmt, ap);
        va_end(ap);
    }
    px_log(event, sb.buf);
    sb_free(&sb);
}

size_t px_link_count(void) { return nlinks; }
px_link *px_link_at(size_t i) { return i < nlinks ? links[i] : NULL; }

px_link *px_link_find(const char *name)
{
    for (size_t i = 0; i < nlinks; i++)
        if (strcmp(links[i]->name, name) == 0) return links[i];
    return NULL;
}

/* ---- the listener -------------------------------------------------------- */

static void on_accept(int fd, int rev, void *ud)
{
    px_link *l = ud;
    /* a bounded batch: a flood of clients does not starve the others */
    for (int i = 0; i < 64 && l->lfd == fd; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) break; /* EAGAIN, or out of descriptors: the next round */
        px_conn_start(l, cfd);
    }
}

int px_listen(const char *addr, char *err, size_t errsz)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (px_resolve(addr, 1, &ss, &len, err, errsz) != 0) return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errsz, "socket: %s", strerror(errno));
        return -1;
    }
    /* reopened after a cut, the port may still hold connections in TIME_WAIT */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 512) != 0) {
        snprintf(err, errsz, "cannot listen on %.100s: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void close_listener(px_link *l)
{
    loop_timer_cancel(l->relisten);
    l->relisten = 0;
    if (l->lfd < 0) return;
    loop_unwatch(l->lfd);
    close(l->lfd);
    l->lfd = -1;
}

static int has_cut(const px_link *l)
{
    for (int i = 0; i < l->nfaults; i++)
        if (l->faults[i].type == F_CUT) return 1;
    return 0;
}

static void reopen(void *ud);

/* Opens the listener again unless a cut is in place; while the port is
 * taken (by someone else: the link's own is closed) it tries again. */
static void ensure_listening(px_link *l)
{
    if (l->lfd >= 0 || has_cut(l) || l->relisten) return;
    char err[200];
    l->lfd = px_listen(l->listen, err, sizeof err);
    if (l->lfd >= 0) {
        loop_watch(l->lfd, LOOP_READ, on_accept, l);
        return;
    }
    strbuf sb;
    sb_init(&sb);
    sb_json_string(&sb, err);
    log_link(l, "listen failed", "\"error\":%s", sb.buf);
    sb_free(&sb);
    l->relisten = loop_timer(0.25, reopen, l);
}

static void reopen(void *ud)
{
    px_link *l = ud;
    l->relisten = 0;
    ensure_listening(l);
}

/* ---- links ------------------------------------------------------------------ */

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
              *s == '_' || *s == '.'))
            return 0;
    return 1;
}

int px_link_create(const char *name, const char *listen_addr, const char *upstream, char *err, size_t errsz)
{
    if (!name_ok(name)) {
        snprintf(err, errsz, "name must be 1 to 64 of A-Z a-z 0-9 - _ .");
        return PX_EINVAL;
    }
    if (px_link_find(name)) {
        snprintf(err, errsz, "link %s exists", name);
        return PX_EEXIST;
    }
    struct sockaddr_storage ss;
    socklen_t len;
    /* the upstream's syntax now; its name is resolved at each connection */
    const char *colon = strrchr(upstream, ':');
    if (!colon || colon == upstream || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        strlen(colon + 1) > 5 || atoi(colon + 1) < 1 || atoi(colon + 1) > 65535) {
        snprintf(err, errsz, "upstream '%.100s' is not HOST:PORT", upstream);
        return PX_EINVAL;
    }
    if (px_resolve(listen_addr, 1, &ss, &len, err, errsz) != 0) return PX_EINVAL;
    int fd = px_listen(listen_addr, err, errsz);
    if (fd < 0) return PX_ELISTEN;
    px_link *l = xcalloc(1, sizeof *l);
    l->name = xstrdup(name);
    l->listen = xstrdup(listen_addr);
    l->upstream = xstrdup(upstream);
    l->lfd = fd;
    loop_watch(fd, LOOP_READ, on_accept, l);
    VEC_PUSH(links, nlinks, caplinks, l);
    strbuf sb;
    sb_init(&sb);
    sb_adds(&sb, "\"listen\":");
    sb_json_string(&sb, l->listen);
    sb_adds(&sb, ",\"upstream\":");
    sb_json_string(&sb, l->upstream);
    log_link(l, "link created", "%s", sb.buf);
    sb_free(&sb);
    return PX_OK;
}

void px_link_delete(px_link *l)
{
    px_conn_reset_all(l);
    close_listener(l);
    for (size_t i = 0; i < nlinks; i++)
        if (links[i] == l) {
            memmove(links + i, links + i + 1, (nlinks - i - 1) * sizeof *links);
            nlinks--;
            break;
        }
    log_link(l, "link deleted", NULL);
    free(l->name);
    free(l->listen);
    free(l->upstream);
    free(l);
}

void px_links_close_all(void)
{
    while (nlinks) px_link_delete(links[nlinks - 1]);
    free(links);
    links = NULL;
    caplinks = 0;
}

void px_reap(void) { px_conn_reap(); }

/* ---- faults ------------------------------------------------------------------ */

int px_link_add_fault(px_link *l, const px_fault *f, const px_fault **out)
{
    if (l->nfaults >= PX_MAX_FAULTS) return PX_EFULL;
    px_fault *stored = &l->faults[l->nfaults++];
    *stored = *f;
    stored->id = ++l->next_fault_id;
    stored->affected = 0;
    if (stored->type == F_CUT) close_listener(l);
    px_conn_fault_added(l, stored);
    strbuf sb;
    sb_init(&sb);
    px_fault_json(stored, &sb);
    log_link(l, "fault added", "\"fault\":%s", sb.buf);
    sb_free(&sb);
    *out = stored;
    return PX_OK;
}

int px_link_remove_fault(px_link *l, int id)
{
    for (int i = 0; i < l->nfaults; i++) {
        if (l->faults[i].id != id) continue;
        px_fault_type type = l->faults[i].type;
        memmove(l->faults + i, l->faults + i + 1, (size_t)(l->nfaults - i - 1) * sizeof *l->faults);
        l->nfaults--;
        log_link(l, "fault removed", "\"id\":%d,\"type\":\"%s\"", id, px_fault_type_name(type));
        if (type == F_CUT) ensure_listening(l);
        px_conn_faults_changed(l);
        return 0;
    }
    return -1;
}

void px_link_heal(px_link *l)
{
    int had = l->nfaults;
    l->nfaults = 0;
    ensure_listening(l);
    px_conn_faults_changed(l);
    log_link(l, "heal", "\"faults_removed\":%d,\"listening\":%s", had, l->lfd >= 0 ? "true" : "false");
}

/* ---- JSON ---------------------------------------------------------------------- */

void px_link_json(const px_link *l, strbuf *sb)
{
    sb_adds(sb, "{\"name\":");
    sb_json_string(sb, l->name);
    sb_adds(sb, ",\"listen\":");
    sb_json_string(sb, l->listen);
    sb_adds(sb, ",\"upstream\":");
    sb_json_string(sb, l->upstream);
    sb_printf(sb, ",\"listening\":%s,\"faults\":[", l->lfd >= 0 ? "true" : "false");
    for (int i = 0; i < l->nfaults; i++) {
        if (i) sb_addc(sb, ',');
        px_fault_json(&l->faults[i], sb);
    }
    const px_counters *n = &l->n;
    sb_printf(sb,
              "],\"counters\":{\"accepted\":%llu,\"active\":%llu,\"refused\":%llu,\"resets\":%llu,"
              "\"bytes_up\":%llu,\"bytes_down\":%llu}}",
              (unsigned long long)n->accepted, (unsigned long long)n->active, (unsigned long long)n->refused,
              (unsigned long long)n->resets, (unsigned long long)n->bytes_up, (unsigned long long)n->bytes_down);
}
