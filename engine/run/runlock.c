/* realpath() is XSI in glibc's headers */
#define _XOPEN_SOURCE 700
#include "run/runlock.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* The lock's file: $XDG_STATE_HOME/halo/locks/<hash>.lock of the compose
 * project, or of the stack file's real path, so a stack named by two
 * relative paths is one stack. */
static char *lock_path(const char *stack_file, const char *project)
{
    char *real = project ? xasprintf("compose project %s", project) : realpath(stack_file, NULL);
    const char *key = real ? real : stack_file;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *p = key; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    free(real);
    char *dir = state_dir("locks");
    if (!dir) return NULL;
    char *path = xasprintf("%s/%016llx.lock", dir, (unsigned long long)h);
    free(dir);
    return path;
}

int runlock_take(const char *stack_file, const char *project, const char *command, char **holder)
{
    *holder = NULL;
    char *path = lock_path(stack_file, project);
    if (!path) return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(path);
    if (fd < 0) return -1;
    /* flock, not a pid in a file: the kernel lets go of it when the last
     * process holding it ends, however it ends */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        strbuf who;
        sb_init(&who);
        char buf[1024];
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        if (n > 0) {
            buf[n] = '\0';
            while (n > 0 && buf[n - 1] == '\n') buf[--n] = '\0';
            for (char *p = buf; *p; p++) {
                if (*p == '\n') sb_adds(&who, ", ");
                else sb_addc(&who, *p);
            }
        } else {
            sb_adds(&who, "a run that has not said who it is yet");
        }
        close(fd);
        *holder = sb_take(&who);
        return 1;
    }
    char started[64];
    time_t now = time(NULL);
    struct tm tm;
    if (!localtime_r(&now, &tm) || !strftime(started, sizeof started, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(started, sizeof started, "?");
    char *text = xasprintf("pid %ld\nstarted %s\ncommand %s\n", (long)getpid(), started, command ? command : "halo run");
    if (ftruncate(fd, 0) == 0) {
        ssize_t w = pwrite(fd, text, strlen(text), 0);
        (void)w;
    }
    free(text);
    /* fd stays open (and locked) for as long as the run and its workers */
    return 0;
}
