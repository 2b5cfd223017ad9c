/*
 * loop.c — galvani-shim's poll loop: everything after the job has started.
 *
 * One poll() over: the signalfd (SIGCHLD), the job's stdout / stderr pipes
 * and control socket, the daemon connection (if any) and the listening
 * socket.  Deadlines (cancel escalation, leftovers, output drain, the exit
 * ack) become poll's timeout.  The rules are those galvanid's process.c had
 * when it owned the job itself, so that jobs see no difference:
 *   - stdout and stderr go to the log (capped, one "[galvani: log
 *     truncated]" marker); "::" stdout lines and every control-fd line are
 *     queued for the daemon as "out LINE" / "ctl LINE", which parses them;
 *   - pause/resume: SIGSTOP/SIGCONT to the group, or the line on the control
 *     fd in cooperative mode; cancel: "cancel" first (cooperative), SIGTERM
 *     (+ SIGCONT) at grace/2 or at once, SIGKILL at grace.  Living here, a
 *     cancel completes even if galvanid dies half-way through it;
 *   - when the job is reaped, what is left of its group gets SIGTERM, then
 *     SIGKILL after SHIM_LEFTOVER_GRACE_MS; the exit waits for the output to
 *     reach EOF, bounded by SHIM_DRAIN_MS after that.
 *
 * The queue to the daemon holds at most SHIM_QUEUE_MAX bytes; past that the
 * oldest lines go, except that the latest dropped progress and status lines
 * are kept aside and sent (before the queue) on the next connection, so the
 * daemon always learns the latest state.  A new connection replaces the old
 * one and starts with "hello PID TICKS STATE CTLQ".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner/proc.h"
#include "shim.h"

static const char shim_truncated_marker[] = "[galvani: log truncated]\n";

/* ---- the queue to the daemon -------------------------------------------- */

/* "out ::progress 5" / "ctl progress 5" / "out ::status x" -> which kind to
 * keep aside when dropped: 1 progress, 2 status, 0 neither. */
static int shim_keep_kind(const char *line, size_t n)
{
    if (n < 4 || (memcmp(line, "out ", 4) != 0 && memcmp(line, "ctl ", 4) != 0))
        return 0;
    const char *p = line + 4, *end = line + n;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (end - p >= 2 && p[0] == ':' && p[1] == ':')
        p += 2;
    if (end - p >= 9 && memcmp(p, "progress ", 9) == 0)
        return 1;
    if (end - p >= 6 && memcmp(p, "status", 6) == 0)
        return 2;
    return 0;
}

static void shim_drop_oldest(shim *s)
{
    /* A first line partly written to the daemon stays: it must complete. */
    size_t start = 0;
    if (s->q_off > 0) {
        char *nl = memchr(s->q.p, '\n', s->q.len);
        start = nl ? (size_t)(nl - s->q.p) + 1 : s->q.len;
    }
    while (s->q.len > SHIM_QUEUE_MAX && start < s->q.len) {
        char *nl = memchr(s->q.p + start, '\n', s->q.len - start);
        size_t end = nl ? (size_t)(nl - s->q.p) + 1 : s->q.len;
        int kind = shim_keep_kind(s->q.p + start, end - start);
        if (kind) {
            char **slot = kind == 1 ? &s->keep_progress : &s->keep_status;
            char *copy = malloc(end - start + 1);
            if (copy) {
                memcpy(copy, s->q.p + start, end - start);
                copy[end - start] = '\0';
                free(*slot);
                *slot = copy;
            }
        }
        memmove(s->q.p + start, s->q.p + end, s->q.len - end);
        s->q.len -= end - start;
        s->dropped = true;
    }
}

void shim_queue(shim *s, const char *word, const char *data, size_t n)
{
    if (gvd_wire_put(&s->q, word, data, n) != 0)
        return; /* out of memory: the line is lost, the job goes on */
    if (s->q.len > SHIM_QUEUE_MAX)
        shim_drop_oldest(s);
}

void shim_warn(shim *s, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n > 0)
        shim_queue(s, "warn", msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
}

/* The kept-aside lines, once (they are older than anything in q). */
static void shim_take_kept(shim *s, gvd_buf *into)
{
    char **slots[] = {&s->keep_progress, &s->keep_status};
    for (int i = 0; i < 2; i++) {
        if (*slots[i]) {
            (void)gvd_buf_add(into, *slots[i], strlen(*slots[i]));
            free(*slots[i]);
            *slots[i] = NULL;
        }
    }
    s->dropped = false;
}

static const char *shim_state(const shim *s)
{
    return s->exit_queued ? "exited" : s->paused ? "paused" : "running";
}

static void shim_disconnect(shim *s)
{
    shim_close(&s->conn);
    s->q_off = 0; /* a half-written line is written whole to the next daemon */
    s->pre.len = 0;
    gvd_lines_init(&s->conn_lines, s->conn_buf, SHIM_CMD_MAX);
    if (s->exit_queued)
        s->done = true; /* the exit record is on disk: the next daemon reads it */
}

static void shim_accept(shim *s)
{
    int fd = accept4(s->lst, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    if (s->conn >= 0) {
        shim_close(&s->conn);
        s->pre.len = 0;
    }
    s->conn = fd;
    s->q_off = 0;
    gvd_lines_init(&s->conn_lines, s->conn_buf, SHIM_CMD_MAX);
    (void)gvd_buf_addf(&s->pre, "hello %ld %llu %s %zu\n", (long)s->pid, (unsigned long long)s->ticks, shim_state(s),
                       s->ctlq.len);
    shim_take_kept(s, &s->pre);
    if (s->exit_queued)
        s->ack_at = shim_now_ms() + SHIM_ACK_MS;
}

static void shim_flush(shim *s)
{
    while (s->conn >= 0 && (s->pre.len > 0 || s->q_off < s->q.len)) {
        bool pre = s->pre.len > 0;
        const char *p = pre ? s->pre.p : s->q.p + s->q_off;
        size_t n = pre ? s->pre.len : s->q.len - s->q_off;
        ssize_t w = send(s->conn, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (w < 0) {
            shim_disconnect(s);
            return;
        }
        if (pre) {
            gvd_buf_consume(&s->pre, (size_t)w);
            continue;
        }
        s->q_off += (size_t)w;
        /* Whole lines written are delivered: drop them. */
        char *last = s->q_off > 0 ? memrchr(s->q.p, '\n', s->q_off) : NULL;
        if (last) {
            size_t done = (size_t)(last - s->q.p) + 1;
            gvd_buf_consume(&s->q, done);
            s->q_off -= done;
        }
    }
}

/* ---- signals to the group ------------------------------------------------ */

/* As process.c did: once the leader is reaped, a pid now showing another
 * start time was recycled and is left alone. */
static int shim_signal_group(shim *s, int sig)
{
    if (s->reaped) {
        gvd_proc_stat st;
        if (gvd_proc_stat_read(s->pid, &st) == 0 && st.start_ticks != s->ticks)
            return -ESRCH;
    }
    return gvd_kill_group(s->pid, sig);
}

static void shim_terminate(shim *s)
{
    int rc = shim_signal_group(s, SIGTERM);
    if (rc == 0)
        rc = shim_signal_group(s, SIGCONT);
    if (rc != 0 && rc != -ESRCH)
        shim_warn(s, "cannot send SIGTERM to the job's group: %s", strerror(-rc));
    s->paused = false;
    s->cancel_stage = SHIM_CANCEL_TERM;
}

static void shim_kill_now(shim *s)
{
    int rc = shim_signal_group(s, SIGKILL);
    if (rc != 0 && rc != -ESRCH)
        shim_warn(s, "cannot send SIGKILL to the job's group: %s", strerror(-rc));
    s->cancel_stage = SHIM_CANCEL_KILL;
    s->kill_at = -1;
}

static bool shim_ctl_line(shim *s, const char *line)
{
    size_t n = strlen(line);
    if (s->ctl < 0 || s->ctlq.len + n + 1 > SHIM_CTL_QUEUE_MAX)
        return false;
    return gvd_buf_add(&s->ctlq, line, n) == 0 && gvd_buf_add(&s->ctlq, "\n", 1) == 0;
}

static void shim_cancel(shim *s, unsigned grace_ms)
{
    if (s->reaped || s->cancel_requested)
        return;
    s->cancel_requested = true;
    s->grace_ms = grace_ms;
    int64_t now = shim_now_ms();
    if (grace_ms == 0) {
        shim_kill_now(s);
    } else if (s->coop && shim_ctl_line(s, "cancel")) {
        s->cancel_stage = SHIM_CANCEL_ASKED;
        s->kill_at = now + grace_ms / 2;
    } else {
        shim_terminate(s);
        s->kill_at = now + grace_ms;
    }
}

static void shim_deadline_kill(shim *s)
{
    s->kill_at = -1;
    if (s->cancel_stage == SHIM_CANCEL_ASKED) {
        shim_terminate(s);
        s->kill_at = shim_now_ms() + (s->grace_ms - s->grace_ms / 2);
    } else if (s->cancel_stage == SHIM_CANCEL_TERM) {
        shim_kill_now(s);
    }
}

/* ---- commands from the daemon -------------------------------------------- */

static bool shim_command(void *ud, char *line, size_t len)
{
    shim *s = ud;
    char *rest;
    size_t rl;
    size_t wl = gvd_wire_word(line, len, &rest, &rl);
    bool live = !s->reaped && !s->cancel_requested;
    if (gvd_wire_is(line, wl, "pause")) {
        if (live && !s->paused) {
            int rc = s->coop ? (shim_ctl_line(s, "pause") ? 0 : -ENOBUFS) : gvd_kill_group(s->pid, SIGSTOP);
            if (rc == 0)
                s->paused = true;
        }
    } else if (gvd_wire_is(line, wl, "resume")) {
        if (live && s->paused) {
            int rc = s->coop ? (shim_ctl_line(s, "resume") ? 0 : -ENOBUFS) : gvd_kill_group(s->pid, SIGCONT);
            if (rc == 0)
                s->paused = false;
        }
    } else if (gvd_wire_is(line, wl, "send")) {
        long n = gvd_wire_unescape(rest, rl);
        if (n >= 0 && !s->reaped && s->ctl >= 0 && s->ctlq.len + (size_t)n + 1 <= SHIM_CTL_QUEUE_MAX) {
            (void)gvd_buf_add(&s->ctlq, rest, (size_t)n);
            (void)gvd_buf_add(&s->ctlq, "\n", 1);
        } else if (n >= 0 && !s->reaped) {
            shim_warn(s, "a line for the job's control fd was dropped (the job is not reading it)");
        }
    } else if (gvd_wire_is(line, wl, "cancel")) {
        rest[rl] = '\0'; /* conn_buf has a spare byte after any line */
        shim_cancel(s, (unsigned)strtoul(rest, NULL, 10));
    } else if (gvd_wire_is(line, wl, "ack")) {
        if (s->exit_queued)
            s->done = true;
    }
    return !s->done;
}

/* ---- output -------------------------------------------------------------- */

void shim_log_append(shim *s, const char *data, size_t n)
{
    if (s->log_fd < 0 || s->log_full || n == 0)
        return;
    uint64_t room = s->log_limit > s->log_size ? s->log_limit - s->log_size : 0;
    size_t keep = (uint64_t)n <= room ? n : (size_t)room;
    int rc = 0;
    if (keep > 0) {
        rc = shim_write_all(s->log_fd, data, keep);
        if (rc == 0) {
            s->log_size += keep;
            s->log_ends_nl = data[keep - 1] == '\n';
        }
    }
    if (rc == 0 && keep < n) {
        /* The marker goes on a line of its own. */
        rc = s->log_ends_nl ? 0 : shim_write_all(s->log_fd, "\n", 1);
        if (rc == 0)
            rc = shim_write_all(s->log_fd, shim_truncated_marker, sizeof shim_truncated_marker - 1);
        s->log_full = true;
    }
    if (rc != 0) {
        shim_warn(s, "writing the log failed: %s (output of this run is no longer kept)", strerror(-rc));
        shim_close(&s->log_fd);
    }
}

/* Readers of the log (the dashboard, `galvani logs`) need to tell a retry's
 * output from the attempt before it, which the same file holds (each
 * attempt appends).  The first attempt gets no marker: the log of a job that
 * ran once is exactly what it printed. */
void shim_log_attempt(shim *s)
{
    if (s->attempt < 2 || s->log_fd < 0)
        return;
    if (s->log_size > 0) {
        /* the previous attempt may have ended mid-line: the marker gets a line of its own */
        int rfd = open(s->log_path, O_RDONLY | O_CLOEXEC);
        char last = '\n';
        if (rfd >= 0) {
            if (pread(rfd, &last, 1, (off_t)s->log_size - 1) != 1)
                last = '\n';
            close(rfd);
        }
        s->log_ends_nl = last == '\n';
    }
    struct timespec ts;
    struct tm tm;
    char line[128];
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || !gmtime_r(&ts.tv_sec, &tm))
        return;
    int n = snprintf(line, sizeof line, "%s[galvani: attempt %lld started %04d-%02d-%02dT%02d:%02d:%02d.%03ldZ]\n",
                     s->log_ends_nl ? "" : "\n", s->attempt, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    if (n > 0 && (size_t)n < sizeof line)
        shim_log_append(s, line, (size_t)n);
}

static bool shim_out_line(void *ud, char *line, size_t len)
{
    if (len >= 2 && line[0] == ':' && line[1] == ':')
        shim_queue(ud, "out", line, len);
    return true;
}

static bool shim_ctl_in(void *ud, char *line, size_t len)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    if (i < len) /* blank lines mean nothing */
        shim_queue(ud, "ctl", line, len);
    return true;
}

static void shim_stream_end(shim *s, int *fd)
{
    if (*fd < 0)
        return;
    if (fd == &s->out)
        gvd_lines_end(&s->out_lines, shim_out_line, s);
    else if (fd == &s->ctl)
        gvd_lines_end(&s->ctl_lines, shim_ctl_in, s);
    shim_close(fd);
}

static void shim_read_stream(shim *s, int *fd)
{
    char buf[16384];
    ssize_t n = read(*fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        shim_stream_end(s, fd);
        return;
    }
    if (fd != &s->ctl)
        shim_log_append(s, buf, (size_t)n);
    if (fd == &s->out)
        (void)gvd_lines_feed(&s->out_lines, buf, (size_t)n, shim_out_line, s);
    else if (fd == &s->ctl)
        (void)gvd_lines_feed(&s->ctl_lines, buf, (size_t)n, shim_ctl_in, s);
}

static void shim_write_ctl(shim *s)
{
    ssize_t w = send(s->ctl, s->ctlq.p, s->ctlq.len, MSG_NOSIGNAL);
    if (w > 0) {
        gvd_buf_consume(&s->ctlq, (size_t)w);
        s->ctl_sent += (unsigned long long)w;
    } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        s->ctlq.len = 0; /* the job closed its end: nobody will read these */
    }
}

static void shim_reaped(shim *s, int ws)
{
    s->reaped = true;
    s->exit_status = WIFSIGNALED(ws) ? -1 : WEXITSTATUS(ws);
    s->term_signal = WIFSIGNALED(ws) ? WTERMSIG(ws) : 0;
    s->paused = false;
    int64_t now = shim_now_ms();
    if (s->cancel_stage == SHIM_CANCEL_NONE || s->cancel_stage == SHIM_CANCEL_ASKED) {
        s->kill_at = -1;
        if (shim_signal_group(s, SIGTERM) == 0) {
            (void)shim_signal_group(s, SIGCONT);
            s->cancel_stage = SHIM_CANCEL_TERM;
            s->kill_at = now + SHIM_LEFTOVER_GRACE_MS;
        }
    }
    if (s->out >= 0 || s->err >= 0 || s->ctl >= 0)
        s->drain_at = (s->kill_at >= 0 ? s->kill_at : now) + SHIM_DRAIN_MS;
}

static void shim_signals(shim *s)
{
    struct signalfd_siginfo si;
    while (read(s->sfd, &si, sizeof si) == (ssize_t)sizeof si) {
    }
    int ws;
    if (!s->reaped && waitpid(s->pid, &ws, WNOHANG) == s->pid)
        shim_reaped(s, ws);
}

/* ---- the end ------------------------------------------------------------- */

static void shim_maybe_finish(shim *s)
{
    if (!s->reaped || s->exit_queued || s->out >= 0 || s->err >= 0 || s->ctl >= 0)
        return;
    s->drain_at = -1;
    if (s->kill_at >= 0 && shim_signal_group(s, 0) == -ESRCH)
        s->kill_at = -1;
    shim_close(&s->log_fd);
    char line[96];
    int n = snprintf(line, sizeof line, "%d %d %d", s->exit_status, s->term_signal, s->cancel_requested ? 1 : 0);
    shim_queue(s, "exit", line, (size_t)n);
    s->exit_queued = true;
    /* The record: what the daemon has not been sent, the exit line last. */
    gvd_buf rec = {0};
    if (s->dropped) {
        if (s->keep_progress)
            (void)gvd_buf_add(&rec, s->keep_progress, strlen(s->keep_progress));
        if (s->keep_status)
            (void)gvd_buf_add(&rec, s->keep_status, strlen(s->keep_status));
    }
    /* A line only partly written to the daemon was not delivered: whole. */
    (void)gvd_buf_add(&rec, s->q.p, s->q.len);
    (void)shim_write_file(s->dir, "exit", rec.p ? rec.p : "", rec.len);
    gvd_buf_free(&rec);
    if (s->conn >= 0)
        s->ack_at = shim_now_ms() + SHIM_ACK_MS;
    else
        s->done = true;
}

static int shim_timeout(const shim *s, int64_t now)
{
    int64_t at[] = {s->kill_at, s->drain_at, s->ack_at};
    int64_t best = -1;
    for (int i = 0; i < 3; i++)
        if (at[i] >= 0 && (best < 0 || at[i] < best))
            best = at[i];
    if (best < 0)
        return -1;
    return best <= now ? 0 : (int)(best - now);
}

int shim_run(shim *s)
{
    /* The group's leftovers may still be in their grace period when the
     * exit is acknowledged: the shim stays until they are gone. */
    while (!(s->done && s->kill_at < 0)) {
        if (s->done) {
            s->ack_at = s->drain_at = -1;
            if (s->kill_at >= 0 && shim_signal_group(s, 0) == -ESRCH)
                break;
        }
        struct pollfd p[7];
        int *who[7];
        int np = 0;
        int *fds[] = {&s->sfd, &s->out, &s->err, &s->ctl, &s->conn, &s->lst};
        for (size_t i = 0; i < sizeof fds / sizeof *fds; i++) {
            if (*fds[i] < 0 || (s->done && fds[i] != &s->sfd))
                continue;
            short ev = POLLIN;
            if (fds[i] == &s->ctl && s->ctlq.len > 0)
                ev |= POLLOUT;
            if (fds[i] == &s->conn && (s->pre.len > 0 || s->q_off < s->q.len))
                ev |= POLLOUT;
            p[np] = (struct pollfd){*fds[i], ev, 0};
            who[np++] = fds[i];
        }
        int64_t now = shim_now_ms();
        int pr = poll(p, (nfds_t)np, shim_timeout(s, now));
        if (pr < 0 && errno != EINTR)
            return 1;
        for (int i = 0; pr > 0 && i < np; i++) {
            if (!p[i].revents || *who[i] < 0)
                continue;
            if (who[i] == &s->sfd)
                shim_signals(s);
            else if (who[i] == &s->lst)
                shim_accept(s);
            else if (who[i] == &s->conn) {
                if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                    char buf[16384];
                    ssize_t n = read(s->conn, buf, sizeof buf);
                    if (n > 0)
                        (void)gvd_lines_feed(&s->conn_lines, buf, (size_t)n, shim_command, s);
                    else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                        shim_disconnect(s);
                }
            } else {
                if (who[i] == &s->ctl && (p[i].revents & POLLOUT))
                    shim_write_ctl(s);
                if (*who[i] >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                    shim_read_stream(s, who[i]);
            }
        }
        now = shim_now_ms();
        if (s->kill_at >= 0 && now >= s->kill_at)
            shim_deadline_kill(s);
        if (s->drain_at >= 0 && now >= s->drain_at) {
            shim_warn(s, "its output is still open %d ms after exit (a process outside its group?): closed",
                      SHIM_DRAIN_MS);
            shim_stream_end(s, &s->out);
            shim_stream_end(s, &s->err);
            shim_stream_end(s, &s->ctl);
        }
        if (s->ack_at >= 0 && now >= s->ack_at)
            s->done = true;
        if (s->ctl_sent > 0 && s->conn >= 0 && !s->exit_queued) {
            char n[32];
            int l = snprintf(n, sizeof n, "%llu", s->ctl_sent);
            shim_queue(s, "sent", n, (size_t)l);
        }
        s->ctl_sent = 0;
        shim_maybe_finish(s);
        shim_flush(s);
    }
    return 0;
}
