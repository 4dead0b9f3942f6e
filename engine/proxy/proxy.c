/* `halo proxy`: the links given on the command line, the control API, and
 * the event loop until a signal says stop. */
#include "proxy/proxy.h"
#include "core/loop.h"
#include "core/util.h"
#include "proxy/control.h"
#include "proxy/link.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    stopping = sig;
    loop_interrupt_from_signal();
}

/* NAME=LISTEN,UPSTREAM */
static int add_link(const char *spec)
{
    const char *eq = strchr(spec, '=');
    const char *comma = eq ? strchr(eq, ',') : NULL;
    if (!eq || !comma) {
        fprintf(stderr, "halo proxy: --link %s: give NAME=LISTEN_HOST:PORT,UPSTREAM_HOST:PORT\n", spec);
        return 2;
    }
    char *name = xstrndup(spec, (size_t)(eq - spec));
    char *listen_addr = xstrndup(eq + 1, (size_t)(comma - eq - 1));
    char err[200];
    int rc = px_link_create(name, listen_addr, comma + 1, err, sizeof err);
    free(name);
    free(listen_addr);
    if (rc == PX_OK) return 0;
    fprintf(stderr, "halo proxy: --link %s: %s\n", spec, err);
    return rc == PX_ELISTEN ? 1 : 2;
}

int proxy_run(const char *control, const char **links, size_t nlinks)
{
    if (!control) {
        fprintf(stderr, "halo proxy: --control HOST:PORT is required (see: halo proxy --help)\n");
        return 2;
    }
    /* a peer gone mid-write is an error return (MSG_NOSIGNAL), not a signal */
    signal(SIGPIPE, SIG_IGN);
    loop_init();
    char err[200];
    if (px_control_open(control, err, sizeof err) != 0) {
        fprintf(stderr, "halo proxy: --control %s: %s\n", control, err);
        return 1;
    }
    for (size_t i = 0; i < nlinks; i++) {
        int rc = add_link(links[i]);
        if (rc) {
            px_links_close_all();
            px_control_close();
            return rc;
        }
    }
    strbuf sb;
    sb_init(&sb);
    sb_adds(&sb, "\"control\":");
    sb_json_string(&sb, control);
    sb_printf(&sb, ",\"links\":%zu,\"version\":\"%s\"", nlinks, HALO_VERSION);
    px_log("start", sb.buf);
    sb_free(&sb);
    on_interrupt_signals(on_signal);
    while (!stopping) {
        loop_step(-1);
        px_reap();
    }
    px_control_close();
    px_links_close_all();
    px_reap();
    px_log("stop", stopping == SIGTERM ? "\"signal\":\"SIGTERM\"" : "\"signal\":\"SIGINT\"");
    return 0;
}
