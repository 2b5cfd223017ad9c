/*
 * proc.c — /proc/PID/stat parsing and killing a stale process group.
 *
 * gvd_exec_kill_stale is how a restarted daemon disposes of jobs a previous
 * life left behind.  The stored pid alone is not enough: pids are recycled,
 * and killing "-pid" blindly could hit an unrelated process group.  So the
 * group is killed only if /proc/PID/stat still shows the start time recorded
 * at spawn.  A job is a session leader (the runner spawns it with setsid), so
 * its pid is also its process-group id, and while that process exists the
 * number cannot be reused for another group.
 */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parse an unsigned decimal field of exactly n bytes. */
static int gvd_field_u64(const char *p, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20)
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -EINVAL;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Same for a pid field, which may be negative in principle (ppid/pgrp of
 * some kernel threads read as 0; never negative in practice, but a "-1"
 * should not make the parse fail). */
static int gvd_field_pid(const char *p, size_t n, pid_t *out)
{
    bool neg = n > 0 && p[0] == '-';
    uint64_t v;
    int rc = gvd_field_u64(p + neg, n - neg, &v);
    if (rc != 0 || v > (uint64_t)INT32_MAX)
        return -EINVAL;
    *out = neg ? -(pid_t)v : (pid_t)v;
    return 0;
}

int gvd_proc_stat_parse(const char *text, size_t len, gvd_proc_stat *out)
{
    /* "PID (COMM) STATE PPID PGRP SESSION ... STARTTIME(22) ..." — COMM is
     * whatever the program named itself: find the last ')'. */
    const char *close = NULL;
    for (size_t i = len; i > 0; i--) {
        if (text[i - 1] == ')') {
            close = text + i - 1;
            break;
        }
    }
    if (!close)
        return -EINVAL;
    const char *p = close + 1, *end = text + len;
    /* Fields 3.. are single-space separated; collect 3..22. */
    const char *field[20];
    size_t flen[20];
    int nf = 0;
    while (nf < 20) {
        if (p >= end || *p != ' ')
            return -EINVAL;
        p++;
        const char *s = p;
        while (p < end && *p != ' ' && *p != '\n')
            p++;
        field[nf] = s;
        flen[nf] = (size_t)(p - s);
        nf++;
    }
    gvd_proc_stat st;
    memset(&st, 0, sizeof st);
    if (flen[0] != 1)
        return -EINVAL;
    st.state = field[0][0];
    if (gvd_field_pid(field[1], flen[1], &st.ppid) != 0 || gvd_field_pid(field[2], flen[2], &st.pgrp) != 0 ||
        gvd_field_pid(field[3], flen[3], &st.session) != 0 ||
        gvd_field_u64(field[19], flen[19], &st.start_ticks) != 0)
        return -EINVAL;
    *out = st;
    return 0;
}

int gvd_proc_stat_read(pid_t pid, gvd_proc_stat *out)
{
    if (pid <= 0)
        return -EINVAL;
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -errno;
    /* The line is a few hundred bytes; 2 KiB leaves room for any kernel. */
    char buf[2048];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            /* A process that exits between open and read reads as ESRCH. */
            return e == ESRCH ? -ESRCH : -e;
        }
        if (n == 0 || (len += (size_t)n) == sizeof buf)
            break;
    }
    if (close(fd) != 0 && errno != EINTR)
        return -errno;
    return gvd_proc_stat_parse(buf, len, out);
}

int gvd_kill_group(pid_t pgid, int sig)
{
    if (pgid <= 1)
        return -EINVAL;
    return kill(-pgid, sig) == 0 ? 0 : -errno;
}

int gvd_exec_kill_stale(pid_t pid, uint64_t start_ticks)
{
    if (pid <= 1)
        return -EINVAL;
    gvd_proc_stat st;
    int rc = gvd_proc_stat_read(pid, &st);
    if (rc == -ESRCH)
        return 0;
    if (rc != 0)
        return rc;
    /* A different process now has this pid: not ours.  Ours was a session
     * and group leader, which it cannot stop being: a pid that is not its
     * own group leader is not ours either. */
    if (st.start_ticks != start_ticks || st.pgrp != pid)
        return 0;
    /* SIGKILL needs no SIGCONT: it ends stopped processes too. */
    rc = gvd_kill_group(pid, SIGKILL);
    if (rc == -ESRCH)
        return 0;
    return rc == 0 ? 1 : rc;
}
