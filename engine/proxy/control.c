/* The control API. A small, strict HTTP/1.1 server: a request line, headers
 * of which only Content-Length matters, a body of at most MAX_REQUEST
 * bytes, one answer with Connection: close. Anything else is a 4xx with
 * {"error": "..."}.
 *
 *   GET    /health                    200 {"status":"ok"}
 *   GET    /links                     200 {"links":[LINK...]}
 *   POST   /links                     201 LINK | 400 | 409 exists
 *   GET    /links/NAME                200 LINK | 404
 *   DELETE /links/NAME                204 | 404
 *   POST   /links/NAME/faults         201 FAULT | 400 | 404
 *   DELETE /links/NAME/faults/ID      204 | 404
 *   POST   /links/NAME/heal           200 LINK | 404
 *   POST   /heal                      200 {"links":[LINK...]}
 */
#define _GNU_SOURCE /* accept4 */
#include "proxy/control.h"
#include "core/loop.h"
#include "core/util.h"
#include "proxy/jsonflat.h"
#include "proxy/link.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_REQUEST (64 * 1024)
#define IDLE_SECONDS 10.0

typedef struct client {
    int fd;
    strbuf in;
    char *out;
    size_t out_len, out_off;
    loop_timer_id idle;
    struct client *prev, *next;
} client;

static int control_fd = -1;
static client *clients;

static void client_close(client *c)
{
    loop_unwatch(c->fd);
    close(c->fd);
    loop_timer_cancel(c->idle);
    if (c->prev) c->prev->next = c->next;
    else clients = c->next;
    if (c->next) c->next->prev = c->prev;
    sb_free(&c->in);
    free(c->out);
    free(c);
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 507: return "Insufficient Storage";
    default: return "Error";
    }
}

static void on_client(int fd, int rev, void *ud);

/* The answer, written as the socket takes it; the connection closes after. */
static void respond(client *c, int status, const char *body)
{
    strbuf sb;
    sb_init(&sb);
    size_t blen = status == 204 || !body ? 0 : strlen(body);
    sb_printf(&sb, "HTTP/1.1 %d %s\r\nConnection: close\r\n", status, reason(status));
    if (status != 204) sb_printf(&sb, "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen + 1);
    sb_adds(&sb, "\r\n");
    if (status != 204) {
        sb_addn(&sb, body ? body : "", blen);
        sb_addc(&sb, '\n');
    }
    c->out_len = sb.len;
    c->out = sb_take(&sb);
    c->out_off = 0;
    loop_watch(c->fd, LOOP_WRITE, on_client, c);
}

static void respond_error(client *c, int status, const char *message)
{
    strbuf sb;
    sb_init(&sb);
    sb_adds(&sb, "{\"error\":");
    sb_json_string(&sb, message);
    sb_addc(&sb, '}');
    respond(c, status, sb.buf);
    sb_free(&sb);
}

static void respond_link(client *c, int status, const px_link *l)
{
    strbuf sb;
    sb_init(&sb);
    px_link_json(l, &sb);
    respond(c, status, sb.buf);
    sb_free(&sb);
}

static void respond_links(client *c)
{
    strbuf sb;
    sb_init(&sb);
    sb_adds(&sb, "{\"links\":[");
    for (size_t i = 0; i < px_link_count(); i++) {
        if (i) sb_addc(&sb, ',');
        px_link_json(px_link_at(i), &sb);
    }
    sb_adds(&sb, "]}");
    respond(c, 200, sb.buf);
    sb_free(&sb);
}

/* ---- routes ------------------------------------------------------------- */

static int body_fields(client *c, const char *body, size_t n, jf_field *fields)
{
    char err[200];
    int count = jf_parse(body, n, fields, err, sizeof err);
    if (count < 0) respond_error(c, 400, err);
    return count;
}

static const char *string_field(const jf_field *fields, int n, const char *key, int *bad)
{
    for (int i = 0; i < n; i++)
        if (strcmp(fields[i].key, key) == 0) {
            if (fields[i].type != JF_STRING) *bad = 1;
            return fields[i].type == JF_STRING ? fields[i].text : NULL;
        }
    return NULL;
}

static void create_link(client *c, const char *body, size_t n)
{
    jf_field fields[JF_MAX_FIELDS];
    int count = body_fields(c, body, n, fields);
    if (count < 0) return;
    for (int i = 0; i < count; i++)
        if (strcmp(fields[i].key, "name") && strcmp(fields[i].key, "listen") && strcmp(fields[i].key, "upstream")) {
            char msg[128];
            snprintf(msg, sizeof msg, "unknown key '%.64s' (name, listen, upstream)", fields[i].key);
            respond_error(c, 400, msg);
            return;
        }
    int bad = 0;
    const char *name = string_field(fields, count, "name", &bad);
    const char *listen_addr = string_field(fields, count, "listen", &bad);
    const char *upstream = string_field(fields, count, "upstream", &bad);
    if (bad || !name || !listen_addr || !upstream) {
        respond_error(c, 400, "name, listen (HOST:PORT) and upstream (HOST:PORT) are required strings");
        return;
    }
    char err[200];
    int rc = px_link_create(name, listen_addr, upstream, err, sizeof err);
    if (rc == PX_OK) respond_link(c, 201, px_link_find(name));
    else respond_error(c, rc == PX_EEXIST ? 409 : 400, err);
}

static void add_fault(client *c, px_link *l, const char *body, size_t n)
{
    jf_field fields[JF_MAX_FIELDS];
    int count = body_fields(c, body, n, fields);
    if (count < 0) return;
    px_fault f;
    char err[200];
    if (px_fault_parse(fields, count, &f, err, sizeof err) != 0) {
        respond_error(c, 400, err);
        return;
    }
    const px_fault *stored;
    if (px_link_add_fault(l, &f, &stored) != PX_OK) {
        respond_error(c, 507, "the link holds as many faults as it can (32): remove some or heal it");
        return;
    }
    strbuf sb;
    sb_init(&sb);
    px_fault_json(stored, &sb);
    respond(c, 201, sb.buf);
    sb_free(&sb);
}

/* The next path segment after *p ("/links/a/faults": "links", "a", ...),
 * into seg; 0 when there is none. */
static int segment(const char **p, char *seg, size_t size)
{
    if (**p != '/') return 0;
    (*p)++;
    size_t n = strcspn(*p, "/");
    if (n == 0 || n >= size) return 0;
    memcpy(seg, *p, n);
    seg[n] = '\0';
    *p += n;
    return 1;
}

static void route(client *c, const char *method, const char *path, const char *body, size_t n)
{
    char a[80], b[80], d[80], e[80];
    const char *p = path;
    int segs = 0;
    if (segment(&p, a, sizeof a)) segs++;
    if (segs == 1 && segment(&p, b, sizeof b)) segs++;
    if (segs == 2 && segment(&p, d, sizeof d)) segs++;
    if (segs == 3 && segment(&p, e, sizeof e)) segs++;
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0, del = strcmp(method, "DELETE") == 0;
    if (*p && strcmp(p, "/") != 0) segs = -1; /* too deep, or an empty segment */

    if (segs == 1 && strcmp(a, "health") == 0) {
        if (get) respond(c, 200, "{\"status\":\"ok\"}");
        else respond_error(c, 405, "GET /health");
        return;
    }
    if (segs == 1 && strcmp(a, "heal") == 0) {
        if (!post) { respond_error(c, 405, "POST /heal"); return; }
        for (size_t i = 0; i < px_link_count(); i++) px_link_heal(px_link_at(i));
        respond_links(c);
        return;
    }
    if (segs < 1 || strcmp(a, "links") != 0) { respond_error(c, 404, "no such route (see GET /links)"); return; }
    if (segs == 1) {
        if (get) respond_links(c);
        else if (post) create_link(c, body, n);
        else respond_error(c, 405, "GET or POST /links");
        return;
    }
    px_link *l = px_link_find(b);
    if (!l) {
        char msg[128];
        snprintf(msg, sizeof msg, "no link %s", b);
        { respond_error(c, 404, msg); return; }
    }
    if (segs == 2) {
        if (get) respond_link(c, 200, l);
        else if (del) {
            px_link_delete(l);
            respond(c, 204, NULL);
        } else respond_error(c, 405, "GET or DELETE /links/NAME");
        return;
    }
    if (segs == 3 && strcmp(d, "heal") == 0) {
        if (!post) { respond_error(c, 405, "POST /links/NAME/heal"); return; }
        px_link_heal(l);
        respond_link(c, 200, l);
        return;
    }
    if (segs == 3 && strcmp(d, "faults") == 0) {
        if (post) add_fault(c, l, body, n);
        else respond_error(c, 405, "POST /links/NAME/faults");
        return;
    }
    if (segs == 4 && strcmp(d, "faults") == 0) {
        if (!del) { respond_error(c, 405, "DELETE /links/NAME/faults/ID"); return; }
        char *end;
        long id = strtol(e, &end, 10);
        if (*end || id < 1 || px_link_remove_fault(l, (int)id) != 0) {
            char msg[200];
            snprintf(msg, sizeof msg, "no fault %s on link %s", e, b);
            { respond_error(c, 404, msg); return; }
        }
        respond(c, 204, NULL);
        return;
    }
    respond_error(c, 404, "no such route (see GET /links)");
}

/* ---- reading a request ----------------------------------------------------- */

/* Case-insensitive header name match at the start of a line. */
static int header_is(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

/* Parses what has come; answers once the request is whole. */
static void try_request(client *c)
{
    char *buf = c->in.buf;
    char *head_end = strstr(buf, "\r\n\r\n");
    if (!head_end) {
        if (c->in.len > 8192) respond_error(c, 413, "request headers too large");
        return;
    }
    char method[16], target[1024];
    char *line_end = strstr(buf, "\r\n");
    int vminor = -1;
    char version[16];
    if (sscanf(buf, "%15s %1023s %15s", method, target, version) != 3 || strncmp(version, "HTTP/1.", 7) != 0 ||
        (vminor = version[7] - '0', vminor < 0 || vminor > 1 || version[8])) {
        respond_error(c, 400, "not an HTTP/1.x request line");
        return;
    }
    long length = 0;
    for (char *line = line_end + 2; line < head_end;) {
        char *eol = strstr(line, "\r\n");
        size_t len = (size_t)(eol - line);
        if (header_is(line, len, "Content-Length")) {
            char *v = line + 15, *end;
            while (*v == ' ' || *v == '\t') v++;
            errno = 0;
            length = strtol(v, &end, 10);
            while (*end == ' ' || *end == '\t') end++;
            if (v == end || end != eol || errno || length < 0) { respond_error(c, 400, "bad Content-Length"); return; }
        } else if (header_is(line, len, "Transfer-Encoding")) {
            { respond_error(c, 411, "send the body with Content-Length, not chunked"); return; }
        }
        line = eol + 2;
    }
    size_t head = (size_t)(head_end + 4 - buf);
    if (length > MAX_REQUEST) { respond_error(c, 413, "body too large"); return; }
    if (c->in.len < head + (size_t)length) return; /* more to come */
    char *q = strchr(target, '?');
    if (q) *q = '\0'; /* no route takes a query */
    loop_timer_cancel(c->idle);
    c->idle = 0;
    route(c, method, target, buf + head, (size_t)length);
}

static void idle_timeout(void *ud)
{
    client *c = ud;
    c->idle = 0;
    client_close(c);
}

static void on_client(int fd, int rev, void *ud)
{
    client *c = ud;
    if (c->out) {
        if (!(rev & LOOP_WRITE)) return;
        ssize_t w = send(fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) c->out_off += (size_t)w;
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || c->out_off == c->out_len) client_close(c);
        return;
    }
    char buf[4096];
    ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        client_close(c);
        return;
    }
    if (r < 0) return;
    if (c->in.len + (size_t)r > MAX_REQUEST + 8192) { respond_error(c, 413, "request too large"); return; }
    sb_addn(&c->in, buf, (size_t)r);
    try_request(c);
}

static void on_accept(int fd, int rev, void *ud)
{
    for (int i = 0; i < 32; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) return;
        client *c = xcalloc(1, sizeof *c);
        c->fd = cfd;
        sb_init(&c->in);
        c->next = clients;
        if (clients) clients->prev = c;
        clients = c;
        /* a client that says nothing does not hold a descriptor for ever */
        c->idle = loop_timer(IDLE_SECONDS, idle_timeout, c);
        loop_watch(cfd, LOOP_READ, on_client, c);
    }
}

int px_control_open(const char *addr, char *err, size_t errsz)
{
    control_fd = px_listen(addr, err, errsz);
    if (control_fd < 0) return -1;
    loop_watch(control_fd, LOOP_READ, on_accept, NULL);
    return 0;
}

void px_control_close(void)
{
    while (clients) client_close(clients);
    if (control_fd >= 0) {
        loop_unwatch(control_fd);
        close(control_fd);
        control_fd = -1;
    }
}
