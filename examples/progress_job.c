/*
 * progress_job.c — a cooperative galvanid job in C (docs/protocol.md).
 *
 * Does `steps` units of work (argv[1], default 50), reporting progress, a
 * status and a metric on the control fd galvanid passes in
 * $GALVANI_CONTROL_FD, and obeys the commands galvanid writes there:
 * "pause", "resume", "cancel" and "params N {json}" (this job understands
 * {"delay_ms": N}).  Outside galvanid it reports with "::" lines on stdout,
 * so it also runs from a terminal:   build/examples/progress_job 5
 *
 * The shape to copy: do the work in slices, and between slices wait for a
 * command with poll() — a command arriving mid-slice waits at most one slice.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int ctl = -1;       /* the control fd, or -1 outside galvanid */
static char pending[4096]; /* bytes read from ctl, not yet a whole line */
static size_t npending;

/* Send one protocol line.  On the control fd the "::" prefix is optional. */
static void report(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (ctl < 0) {
        printf("::%.*s", n, line);
        fflush(stdout);
        return;
    }
    for (size_t off = 0; off < (size_t)n;) {
        ssize_t w = write(ctl, line + off, (size_t)n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return; /* galvanid went away: nothing to report to */
        off += (size_t)w;
    }
}

/* Wait up to timeout_ms for the next command line; copies it (without the
 * newline) to out and returns 1, or returns 0 if none came. */
static int command(int timeout_ms, char *out, size_t outlen)
{
    for (;;) {
        char *nl = memchr(pending, '\n', npending);
        if (nl) {
            size_t len = (size_t)(nl - pending);
            snprintf(out, outlen, "%.*s", (int)len, pending);
            npending -= len + 1;
            memmove(pending, nl + 1, npending);
            return 1;
        }
        if (ctl < 0) {
            if (timeout_ms > 0)
                poll(NULL, 0, timeout_ms);
            return 0;
        }
        struct pollfd pfd = {.fd = ctl, .events = POLLIN};
        int r = poll(&pfd, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        if (npending == sizeof pending)
            npending = 0; /* an absurdly long line: drop it */
        ssize_t n = read(ctl, pending + npending, sizeof pending - npending);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            /* galvanid closed the channel: no more commands.  Keep working,
             * reporting on stdout from now on. */
            ctl = -1;
            continue;
        }
        npending += (size_t)n;
    }
}

int main(int argc, char **argv)
{
    const char *fd = getenv("GALVANI_CONTROL_FD");
    if (fd)
        ctl = atoi(fd);
    long steps = argc > 1 ? strtol(argv[1], NULL, 10) : 50;
    if (steps <= 0)
        steps = 50;
    int delay_ms = 20;

    report("status working");
    char cmd[4096];
    for (long done = 0; done < steps;) {
        if (!command(delay_ms, cmd, sizeof cmd)) { /* waiting is our "work" */
            done++;
            report("progress %ld/%ld", done, steps);
            report("metric items_per_s %.1f", 1000.0 / delay_ms);
            continue;
        }
        if (strncmp(cmd, "params ", 7) == 0) {
            const char *p = strstr(cmd, "\"delay_ms\"");
            if (p && (p = strchr(p, ':')) != NULL) {
                int v = atoi(p + 1);
                if (v > 0)
                    delay_ms = v;
            }
            /* "params N {...}": acknowledge revision N, so that galvanid
             * knows which change is applied ("params {...}" without N
             * comes from an older galvanid: plain "ack params"). */
            char *end;
            long long rev = strtoll(cmd + 7, &end, 10);
            if (end != cmd + 7 && rev >= 0)
                report("ack params %lld", rev);
            else
                report("ack params");
        } else if (strcmp(cmd, "pause") == 0) {
            report("ack pause");
            report("status paused");
            do {
                if (!command(3600 * 1000, cmd, sizeof cmd))
                    cmd[0] = '\0';
            } while (strcmp(cmd, "resume") != 0 && strcmp(cmd, "cancel") != 0);
            if (strcmp(cmd, "resume") == 0) {
                report("ack resume");
                report("status working");
            }
        }
        if (strcmp(cmd, "cancel") == 0) {
            report("status cleaning up"); /* a real job would save a checkpoint here */
            report("ack cancel");
            return 0;
        }
    }
    report("status done");
    return 0;
}
