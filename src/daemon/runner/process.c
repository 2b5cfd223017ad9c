/*
 * process.c — the process backend of the runner: a job as a real process
 * group, supervised from the libuv loop.
 *
 * Spawning (uv_spawn, which forks and execs):
 *   - argv is exec'd as given: no shell, unless the spec asked for one, in
 *     which case the model already passes {"/bin/sh", "-c", cmd}.
 *   - UV_PROCESS_DETACHED makes the child call setsid(): it leads its own
 *     session and process group (pgid = pid), so one kill(-pid, sig) reaches
 *     the job and everything it started — that is how pause (SIGSTOP) and
 *     cancel reach grandchildren — and a terminal's ^C to the daemon does not.
 *   - fd 0 is /dev/null (libuv opens it for UV_IGNORE); fds 1 and 2 are pipes
 *     we read; fd 3 is the job's end of a socketpair, the control channel,
 *     announced in GALVANI_CONTROL_FD=3 (with GALVANI_JOB_ID).  The
 *     environment is exactly opts->env plus those two (any copies of them in
 *     opts->env are dropped so ours win).  No other descriptor reaches the
 *     job: descriptors galvanid itself inherited without close-on-exec are
 *     marked close-on-exec before each spawn (gvd_cloexec_inherited).
 *   - We create the pipes and the socketpair ourselves (CLOEXEC) and give
 *     libuv the child ends with UV_INHERIT_FD; our ends become uv_pipe_t
 *     handles only after a successful spawn.  So a failed spawn (ENOENT...)
 *     leaves exactly one handle — the uv_process_t libuv initialised — which
 *     is closed at once and frees the struct from its close callback.
 *
 * Output: stdout and stderr are appended to opts->log_path (O_APPEND, 0644)
 * with synchronous write(2)s from the loop: a local regular file, bounded by
 * the cap, is cheap enough and keeps the order of what we read.  Past
 * log_limit bytes (the file's size at open counts) one "[galvani: log
 * truncated]" line is written and the rest dropped — but the pipes are still
 * read, so a chatty job never blocks on a full pipe.  stdout is also split
 * into lines; "::" lines are protocol messages.  The control fd is split the
 * same way, with the prefix optional.  Lines longer than GVD_LINE_MAX are
 * dropped whole (they stay in the log).
 *
 * Commands to the job (gvd_exec_send: "pause", "resume", "cancel",
 * "params {...}") are uv_write()s on our socketpair end, queued by libuv and
 * bounded by GVD_SEND_QUEUE_MAX.  SIGPIPE: libuv writes with write(2), which
 * raises SIGPIPE if the job closed its end; galvanid ignores SIGPIPE
 * process-wide (main.c, and the tests do the same), so that surfaces as an
 * EPIPE write error instead.  We do not use MSG_NOSIGNAL because libuv owns
 * the writes.
 *
 * Pause: stop mode sends SIGSTOP / SIGCONT to the group; cooperative mode
 * sends "pause" / "resume" lines and the job acknowledges ("ack pause").
 * Cancel, bounded by grace_ms in both modes:
 *   stop:        SIGTERM + SIGCONT to the group at once, SIGKILL at grace_ms;
 *   cooperative: "cancel" at once (for the job to clean up and exit), SIGTERM
 *                + SIGCONT at grace_ms / 2, SIGKILL at grace_ms.  If the
 *                line cannot be sent, it goes straight to SIGTERM.
 *
 * Exit: when libuv reaps the main process, whatever is left of its process
 * group is terminated the way a cancel does it — SIGTERM (+ SIGCONT) at
 * once, SIGKILL after GVD_LEFTOVER_GRACE_MS (or at the running cancel's own
 * deadline).  A job is its process group: a background child left running
 * would escape supervision and hold the output pipes open.  Signals sent
 * after the reap check /proc first, so a recycled pid is never hit (see
 * gvd_signal_group).  on_exit is delivered only once the process is reaped
 * AND stdout, stderr and the control fd have reached EOF, so the log is
 * complete and the last progress line arrives before on_exit.  A process that
 * left the group (its own setsid) could keep a pipe open forever: the wait is
 * bounded (the leftovers' deadline + GVD_DRAIN_MS), then the pipes are closed
 * anyway.
 */
/* pipe2() is a Linux/BSD call, not POSIX.1-2008: ask glibc for it. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/log.h"
#include "exec_int.h"
#include "proc.h"

#define GVD_CONTROL_FD 3
static const char gvd_truncated_marker[] = "[galvani: log truncated]\n";

/* uv_timer_start fails only for a closing handle or a NULL callback; our
 * timers close only in gvd_exec_free, after which nothing starts them: its
 * result is ignored with (void) below. */

/* ---- the log file ------------------------------------------------------ */

static void gvd_close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static int gvd_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void gvd_log_failed(gvd_exec *x, int rc)
{
    gvd_log(GVD_LOG_WARN, "job.log_failed", "job=%lld error=\"%s\" (output of this run is no longer kept)",
            (long long)x->job_id, strerror(-rc));
    close(x->log_fd);
    x->log_fd = -1;
}

static void gvd_log_append(gvd_exec *x, const char *data, size_t n)
{
    if (x->log_fd < 0 || x->log_full || n == 0)
        return;
    uint64_t room = x->log_limit > x->log_size ? x->log_limit - x->log_size : 0;
    size_t keep = (uint64_t)n <= room ? n : (size_t)room;
    if (keep > 0) {
        int rc = gvd_write_all(x->log_fd, data, keep);
        if (rc != 0) {
            gvd_log_failed(x, rc);
            return;
        }
        x->log_size += keep;
        x->log_ends_nl = data[keep - 1] == '\n';
    }
    if (keep < n) {
        /* The marker goes on a line of its own. */
        int rc = x->log_ends_nl ? 0 : gvd_write_all(x->log_fd, "\n", 1);
        if (rc == 0)
            rc = gvd_write_all(x->log_fd, gvd_truncated_marker, sizeof gvd_truncated_marker - 1);
        if (rc != 0) {
            gvd_log_failed(x, rc);
            return;
        }
        x->log_full = true;
        gvd_log(GVD_LOG_INFO, "job.log_truncated", "job=%lld limit=%llu", (long long)x->job_id,
                (unsigned long long)x->log_limit);
    }
}

/* ---- lines ------------------------------------------------------------- */

static void gvd_deliver_line(gvd_exec *x, gvd_stream *st, const char *line, size_t len)
{
    gvd_msg m;
    if (gvd_msg_parse(line, len, st->kind == GVD_STREAM_STDOUT, &m) != GVD_MSG_NONE)
        gvd__exec_message(x, &m);
}

/* Feed bytes to the line splitter; stops early if a callback freed x. */
static void gvd_feed_lines(gvd_exec *x, gvd_stream *st, const char *p, size_t n)
{
    gvd_linebuf *lb = &st->lines;
    while (n > 0 && !x->freed) {
        const char *nl = memchr(p, '\n', n);
        size_t chunk = nl ? (size_t)(nl - p) : n;
        if (!lb->overflow) {
            if (lb->len + chunk > sizeof lb->buf) {
                lb->overflow = true;
                lb->len = 0;
                gvd_log(GVD_LOG_DEBUG, "job.protocol", "job=%lld reason=\"line longer than %d bytes dropped\"",
                        (long long)x->job_id, GVD_LINE_MAX);
            } else {
                memcpy(lb->buf + lb->len, p, chunk);
                lb->len += chunk;
            }
        }
        if (!nl)
            return;
        if (!lb->overflow)
            gvd_deliver_line(x, st, lb->buf, lb->len);
        lb->len = 0;
        lb->overflow = false;
        p = nl + 1;
        n -= chunk + 1;
    }
}

/* ---- streams and the end of the process -------------------------------- */

static void gvd_kill_timer_cb(uv_timer_t *t);

/* Signal the job's process group.  Before the main process is reaped its pid
 * (even as a zombie) pins the group id, so the signal cannot hit anybody
 * else.  After, the id stays pinned only while group members live; a new
 * group with that id can only be made by a new process with that pid, so if
 * /proc shows a process with our pid and another start time, the number was
 * recycled and we stay away. */
static int gvd_signal_group(gvd_exec *x, int sig)
{
    if (x->reaped) {
        gvd_proc_stat st;
        if (gvd_proc_stat_read(x->pid, &st) == 0 && st.start_ticks != x->start_ticks)
            return -ESRCH;
    }
    return gvd_kill_group(x->pid, sig);
}

static void gvd_maybe_finish(gvd_exec *x)
{
    if (x->freed || x->finished || !x->reaped || x->out.open || x->err.open || x->ctl.open)
        return;
    uv_timer_stop(&x->drain_timer);
    /* Leftovers that closed our fds may still be in their grace period: the
     * timer keeps running (gvd_exec_free kills them at once).  If the group
     * is already empty there is nothing to wait for. */
    if (uv_is_active((uv_handle_t *)&x->kill_timer) && gvd_signal_group(x, 0) == -ESRCH)
        uv_timer_stop(&x->kill_timer);
    /* The log is complete: close it now, and say so if the kernel reports a
     * late write error. */
    if (x->log_fd >= 0 && close(x->log_fd) != 0)
        gvd_log(GVD_LOG_WARN, "job.log_failed", "job=%lld error=\"%s\"", (long long)x->job_id, strerror(errno));
    x->log_fd = -1;
    gvd__exec_finish(x);
}

static void gvd_stream_close(gvd_exec *x, gvd_stream *st)
{
    if (!st->open)
        return;
    st->open = false;
    gvd__exec_close(x, (uv_handle_t *)&st->pipe);
}

/* EOF (or a read error, or the drain deadline): a last line without its
 * newline still counts, then the stream is closed. */
static void gvd_stream_end(gvd_exec *x, gvd_stream *st)
{
    if (!st->open)
        return;
    if (st->kind != GVD_STREAM_STDERR && !st->lines.overflow && st->lines.len > 0) {
        size_t len = st->lines.len;
        st->lines.len = 0;
        gvd_deliver_line(x, st, st->lines.buf, len);
    }
    if (!x->freed)
        gvd_stream_close(x, st);
}

static void gvd_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    gvd_stream *st = h->data;
    *buf = uv_buf_init(st->x->rbuf, sizeof st->x->rbuf);
}

static void gvd_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    gvd_stream *st = s->data;
    gvd_exec *x = st->x;
    if (n > 0) {
        if (st->kind != GVD_STREAM_CONTROL)
            gvd_log_append(x, buf->base, (size_t)n);
        if (st->kind != GVD_STREAM_STDERR)
            gvd_feed_lines(x, st, buf->base, (size_t)n);
        return;
    }
    if (n == 0) /* EAGAIN: nothing this time */
        return;
    if (n != UV_EOF && n != UV_ECONNRESET)
        gvd_log(GVD_LOG_WARN, "job.read_failed", "job=%lld stream=%d error=\"%s\"", (long long)x->job_id,
                (int)st->kind, uv_strerror((int)n));
    gvd_stream_end(x, st);
    gvd_maybe_finish(x);
}

static void gvd_drain_cb(uv_timer_t *t)
{
    gvd_exec *x = t->data;
    if (x->freed)
        return;
    gvd_log(GVD_LOG_WARN, "job.output_open",
            "job=%lld reason=\"its output is still open %d ms after exit (a process outside its group?): closed\"",
            (long long)x->job_id, GVD_DRAIN_MS);
    gvd_stream *all[] = {&x->out, &x->err, &x->ctl};
    for (size_t i = 0; i < 3 && !x->freed; i++)
        gvd_stream_end(x, all[i]);
    gvd_maybe_finish(x);
}

static void gvd_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
    gvd_exec *x = p->data;
    x->reaped = true;
    x->proc_open = false;
    gvd__exec_close(x, (uv_handle_t *)&x->proc);
    if (x->freed) /* gvd_exec_free already SIGKILLed the group */
        return;
    x->exit.exit_status = term_signal ? -1 : status;
    x->exit.term_signal = term_signal;
    x->exit.cancelled = x->cancel_requested;
    /* The main process is gone; the rest of its group goes too (see top),
     * the way a cancel does it: SIGTERM now, SIGKILL after a grace.  A cancel
     * already past SIGTERM keeps its own deadline. */
    if (x->cancel_stage == GVD_CANCEL_NONE || x->cancel_stage == GVD_CANCEL_ASKED) {
        uv_timer_stop(&x->kill_timer);
        if (gvd_signal_group(x, SIGTERM) == 0) {
            (void)gvd_signal_group(x, SIGCONT);
            gvd_log(GVD_LOG_DEBUG, "job.leftovers", "job=%lld pgid=%ld signal=TERM", (long long)x->job_id,
                    (long)x->pid);
            x->cancel_stage = GVD_CANCEL_TERM;
            (void)uv_timer_start(&x->kill_timer, gvd_kill_timer_cb, GVD_LEFTOVER_GRACE_MS, 0);
        }
    }
    if (x->out.open || x->err.open || x->ctl.open) {
        uint64_t wait = GVD_DRAIN_MS;
        if (uv_is_active((uv_handle_t *)&x->kill_timer))
            wait += uv_timer_get_due_in(&x->kill_timer);
        (void)uv_timer_start(&x->drain_timer, gvd_drain_cb, wait, 0);
    }
    gvd_maybe_finish(x);
}

/* ---- spawning ---------------------------------------------------------- */

static bool gvd_is_own_var(const char *kv)
{
    return strncmp(kv, "GALVANI_CONTROL_FD=", 19) == 0 || strncmp(kv, "GALVANI_JOB_ID=", 15) == 0;
}

/* opts->env minus our variables, plus ours.  One allocation: the pointer
 * array followed by our two strings. */
static char **gvd_build_env(char *const *env, int64_t job_id)
{
    size_t n = 0;
    for (char *const *e = env; e && *e; e++)
        n++;
    size_t ptrs = (n + 3) * sizeof(char *);
    enum { VAR_MAX = 48 }; /* "GALVANI_JOB_ID=" + 20 digits and a sign fit */
    char **out = malloc(ptrs + 2 * VAR_MAX);
    if (!out)
        return NULL;
    char *ctl = (char *)out + ptrs;
    char *id = ctl + VAR_MAX;
    snprintf(ctl, VAR_MAX, "GALVANI_CONTROL_FD=%d", GVD_CONTROL_FD);
    snprintf(id, VAR_MAX, "GALVANI_JOB_ID=%lld", (long long)job_id);
    size_t k = 0;
    for (char *const *e = env; e && *e; e++)
        if (!gvd_is_own_var(*e))
            out[k++] = *e;
    out[k++] = ctl;
    out[k++] = id;
    out[k] = NULL;
    return out;
}

/* Mark every descriptor above stderr close-on-exec.  Ours all are already
 * (libuv, SQLite and the pipes above use CLOEXEC), but galvanid may have
 * inherited open descriptors from whoever started it, and libuv's child does
 * not close them: without this, every job would get them too.  The child's
 * own fds 0-3 are dup2()ed by libuv, which clears the flag on the copies. */
static void gvd_cloexec_inherited(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return; /* no /proc: nothing better to do than leave them */
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end != '\0' || end == e->d_name || fd < 3 || fd == self)
            continue;
        int flags = fcntl((int)fd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC))
            (void)fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC);
    }
    closedir(d);
}

static void gvd_spawn_error(char *err, size_t errlen, const char *cmd, const char *cwd, int rc)
{
    if (rc == UV_ENOENT) {
        if (!strchr(cmd, '/'))
            gvd__set_err(err, errlen, "no such command: %s (not found in PATH)", cmd);
        else if (access(cmd, F_OK) != 0)
            gvd__set_err(err, errlen, "no such file: %s", cmd);
        else if (cwd && access(cwd, F_OK) != 0)
            gvd__set_err(err, errlen, "no such directory: %s", cwd);
        else
            gvd__set_err(err, errlen, "cannot execute %s: its interpreter or loader was not found", cmd);
    } else if (rc == UV_EACCES) {
        gvd__set_err(err, errlen, "permission denied: cannot execute %s", cmd);
    } else {
        gvd__set_err(err, errlen, "cannot start %s: %s", cmd, uv_strerror(rc));
    }
}

static int gvd_stream_open(gvd_exec *x, gvd_stream *st, gvd_stream_kind kind, int *fd)
{
    st->x = x;
    st->kind = kind;
    int rc = uv_pipe_init(x->loop, &st->pipe, 0);
    if (rc != 0)
        return rc;
    st->pipe.data = st;
    x->handles++;
    st->open = true;
    rc = uv_pipe_open(&st->pipe, *fd);
    if (rc == 0) {
        *fd = -1; /* the handle owns it now */
        rc = uv_read_start((uv_stream_t *)&st->pipe, gvd_alloc_cb, gvd_read_cb);
    }
    if (rc != 0)
        gvd_stream_close(x, st);
    return rc;
}

gvd_exec *gvd__process_spawn(uv_loop_t *loop, const gvd_exec_opts *opts, const gvd_exec_events *ev, void *ud,
                             char *err, size_t errlen)
{
    if (!opts->argv || !opts->argv[0] || !opts->argv[0][0]) {
        gvd__set_err(err, errlen, "empty command");
        return NULL;
    }
    const char *cmd = opts->argv[0];
    if (opts->cwd) {
        struct stat sb;
        if (stat(opts->cwd, &sb) != 0) {
            gvd__set_err(err, errlen, "cannot use directory %s: %s", opts->cwd, strerror(errno));
            return NULL;
        }
        if (!S_ISDIR(sb.st_mode)) {
            gvd__set_err(err, errlen, "not a directory: %s", opts->cwd);
            return NULL;
        }
    }

    gvd_exec *x = calloc(1, sizeof *x);
    if (!x) {
        gvd__set_err(err, errlen, "out of memory");
        return NULL;
    }
    x->loop = loop;
    x->kind = GVD_EXEC_PROCESS;
    x->ev = ev;
    x->ud = ud;
    x->job_id = opts->job_id;
    x->pause_mode = opts->pause_mode;
    x->log_fd = -1;
    x->log_limit = opts->log_limit;
    x->log_ends_nl = true;

    /* fds[0..1]: stdout pipe, [2..3]: stderr pipe, [4..5]: control
     * socketpair; even = ours, odd = the child's. */
    int fds[6] = {-1, -1, -1, -1, -1, -1};
    char **env = NULL;
    bool log_created = false; /* so that a failed spawn can remove it */
    if (opts->log_path) {
        x->log_fd = open(opts->log_path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (x->log_fd >= 0)
            log_created = true;
        else if (errno == EEXIST)
            x->log_fd = open(opts->log_path, O_WRONLY | O_APPEND | O_CLOEXEC);
        struct stat sb;
        if (x->log_fd < 0 || fstat(x->log_fd, &sb) != 0) {
            gvd__set_err(err, errlen, "cannot open log file %s: %s", opts->log_path, strerror(errno));
            goto fail;
        }
        x->log_size = (uint64_t)sb.st_size;
    }
    int pipe_out[2], pipe_err[2], sv[2];
    if (pipe2(pipe_out, O_CLOEXEC) != 0) {
        gvd__set_err(err, errlen, "cannot create a pipe: %s", strerror(errno));
        goto fail;
    }
    fds[0] = pipe_out[0], fds[1] = pipe_out[1];
    if (pipe2(pipe_err, O_CLOEXEC) != 0) {
        gvd__set_err(err, errlen, "cannot create a pipe: %s", strerror(errno));
        goto fail;
    }
    fds[2] = pipe_err[0], fds[3] = pipe_err[1];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        gvd__set_err(err, errlen, "cannot create the control socket: %s", strerror(errno));
        goto fail;
    }
    fds[4] = sv[0], fds[5] = sv[1];
    env = gvd_build_env(opts->env, opts->job_id);
    if (!env) {
        gvd__set_err(err, errlen, "out of memory");
        goto fail;
    }

    uv_stdio_container_t stdio[4];
    stdio[0].flags = UV_IGNORE; /* libuv opens /dev/null for it */
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = fds[1];
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = fds[3];
    stdio[3].flags = UV_INHERIT_FD;
    stdio[3].data.fd = fds[5];
    uv_process_options_t po;
    memset(&po, 0, sizeof po);
    po.exit_cb = gvd_exit_cb;
    po.file = cmd;
    po.args = (char **)opts->argv; /* libuv's type is not const-correct; it does not write */
    po.env = env;
    po.cwd = opts->cwd;
    po.flags = UV_PROCESS_DETACHED;
    po.stdio_count = 4;
    po.stdio = stdio;

    gvd_cloexec_inherited();
    x->proc.data = x;
    int rc = uv_spawn(loop, &x->proc, &po);
    free(env);
    env = NULL;
    /* The child has its copies (or never will): ours go now. */
    gvd_close_fd(&fds[1]);
    gvd_close_fd(&fds[3]);
    gvd_close_fd(&fds[5]);
    if (rc != 0) {
        gvd_spawn_error(err, errlen, cmd, opts->cwd, rc);
        for (int i = 0; i < 6; i++)
            gvd_close_fd(&fds[i]);
        gvd_close_fd(&x->log_fd);
        if (log_created)
            (void)unlink(opts->log_path);
        /* uv_spawn initialised the handle even though it failed: close it;
         * its close callback frees x. */
        x->handles = 1;
        x->freed = true;
        gvd__exec_close(x, (uv_handle_t *)&x->proc);
        return NULL;
    }
    x->handles++;
    x->proc_open = true;
    x->pid = x->proc.pid;

    /* Recorded before anything else can happen: the child cannot have been
     * reaped yet (only the loop reaps it), so /proc/PID exists. */
    gvd_proc_stat st;
    rc = gvd_proc_stat_read(x->pid, &st);
    if (rc == 0)
        x->start_ticks = st.start_ticks;
    else
        gvd_log(GVD_LOG_WARN, "job.start_time", "job=%lld pid=%ld error=\"%s\"", (long long)x->job_id,
                (long)x->pid, strerror(-rc));

    /* From here on the job runs; failures below are reported in the log and
     * degrade (e.g. no progress from stdout), they do not undo the spawn. */
    if (uv_timer_init(loop, &x->kill_timer) == 0 && uv_timer_init(loop, &x->drain_timer) == 0) {
        x->kill_timer.data = x;
        x->drain_timer.data = x;
        x->handles += 2;
        x->timers_open = true;
    } else {
        abort(); /* uv_timer_init cannot fail on Unix */
    }
    struct {
        gvd_stream *st;
        gvd_stream_kind kind;
        int *fd;
    } streams[] = {{&x->out, GVD_STREAM_STDOUT, &fds[0]},
                   {&x->err, GVD_STREAM_STDERR, &fds[2]},
                   {&x->ctl, GVD_STREAM_CONTROL, &fds[4]}};
    for (size_t i = 0; i < 3; i++) {
        rc = gvd_stream_open(x, streams[i].st, streams[i].kind, streams[i].fd);
        if (rc != 0) {
            gvd_log(GVD_LOG_WARN, "job.stream_failed", "job=%lld stream=%d error=\"%s\"", (long long)x->job_id,
                    (int)streams[i].kind, uv_strerror(rc));
            gvd_close_fd(streams[i].fd);
        }
    }
    gvd_log(GVD_LOG_DEBUG, "job.spawned", "job=%lld pid=%ld start_ticks=%llu", (long long)x->job_id, (long)x->pid,
            (unsigned long long)x->start_ticks);
    return x;

fail:
    free(env);
    for (int i = 0; i < 6; i++)
        gvd_close_fd(&fds[i]);
    gvd_close_fd(&x->log_fd);
    if (log_created)
        (void)unlink(opts->log_path);
    free(x);
    return NULL;
}

/* ---- control ----------------------------------------------------------- */

typedef struct gvd_send_req {
    uv_write_t req;
    int64_t job_id;
    char data[];
} gvd_send_req;

static void gvd_write_cb(uv_write_t *req, int status)
{
    gvd_send_req *r = (gvd_send_req *)req;
    /* ECANCELED: the stream closed with the write pending (job gone). */
    if (status < 0 && status != UV_ECANCELED)
        gvd_log(GVD_LOG_DEBUG, "job.send_failed", "job=%lld error=\"%s\"", (long long)r->job_id,
                uv_strerror(status));
    free(r);
}

int gvd__process_send(gvd_exec *x, const char *line)
{
    size_t len = strlen(line);
    if (len > GVD_SEND_MAX)
        return -EMSGSIZE;
    if (memchr(line, '\n', len))
        return -EINVAL; /* one call, one line: no smuggled second command */
    if (x->reaped || !x->ctl.open)
        return -EPIPE;
    if (x->ctl.pipe.write_queue_size + len + 1 > GVD_SEND_QUEUE_MAX)
        return -ENOBUFS; /* the job is not reading its control fd */
    gvd_send_req *r = malloc(sizeof *r + len + 1);
    if (!r)
        return -ENOMEM;
    r->job_id = x->job_id;
    memcpy(r->data, line, len);
    r->data[len] = '\n';
    uv_buf_t b = uv_buf_init(r->data, (unsigned)(len + 1));
    int rc = uv_write(&r->req, (uv_stream_t *)&x->ctl.pipe, &b, 1, gvd_write_cb);
    if (rc != 0) {
        free(r);
        return rc;
    }
    return 0;
}

int gvd__process_pause(gvd_exec *x)
{
    if (x->reaped)
        return -ESRCH;
    if (x->cancel_requested)
        return -EBUSY;
    if (x->paused)
        return 0;
    int rc = x->pause_mode == GVD_PAUSE_COOPERATIVE ? gvd__process_send(x, "pause") : gvd_kill_group(x->pid, SIGSTOP);
    if (rc == 0)
        x->paused = true;
    return rc;
}

int gvd__process_resume(gvd_exec *x)
{
    if (x->reaped)
        return -ESRCH;
    if (!x->paused || x->cancel_requested)
        return 0;
    int rc =
        x->pause_mode == GVD_PAUSE_COOPERATIVE ? gvd__process_send(x, "resume") : gvd_kill_group(x->pid, SIGCONT);
    if (rc == 0)
        x->paused = false;
    return rc;
}

static void gvd_terminate(gvd_exec *x)
{
    /* SIGTERM first, then SIGCONT: a stopped group wakes up with the TERM
     * pending. */
    int rc = gvd_signal_group(x, SIGTERM);
    if (rc == 0)
        rc = gvd_signal_group(x, SIGCONT);
    if (rc != 0 && rc != -ESRCH)
        gvd_log(GVD_LOG_WARN, "job.kill_failed", "job=%lld signal=TERM error=\"%s\"", (long long)x->job_id,
                strerror(-rc));
    x->paused = false;
    x->cancel_stage = GVD_CANCEL_TERM;
}

static void gvd_kill_now(gvd_exec *x)
{
    int rc = gvd_signal_group(x, SIGKILL);
    if (rc != 0 && rc != -ESRCH)
        gvd_log(GVD_LOG_WARN, "job.kill_failed", "job=%lld signal=KILL error=\"%s\"", (long long)x->job_id,
                strerror(-rc));
    x->cancel_stage = GVD_CANCEL_KILL;
}

static void gvd_kill_timer_cb(uv_timer_t *t)
{
    gvd_exec *x = t->data;
    if (x->freed)
        return;
    if (x->cancel_stage == GVD_CANCEL_ASKED) {
        gvd_log(GVD_LOG_INFO, "job.cancel_escalated", "job=%lld signal=TERM", (long long)x->job_id);
        gvd_terminate(x);
        (void)uv_timer_start(&x->kill_timer, gvd_kill_timer_cb, x->grace_ms - x->grace_ms / 2, 0);
    } else if (x->cancel_stage == GVD_CANCEL_TERM) {
        gvd_log(GVD_LOG_INFO, x->reaped ? "job.leftovers_killed" : "job.cancel_escalated", "job=%lld signal=KILL",
                (long long)x->job_id);
        gvd_kill_now(x);
    }
}

int gvd__process_cancel(gvd_exec *x, unsigned grace_ms)
{
    if (x->finished)
        return -ESRCH;
    if (x->reaped || x->cancel_requested)
        return 0; /* already over (on_exit on its way) or already cancelling */
    x->cancel_requested = true;
    x->grace_ms = grace_ms;
    if (grace_ms == 0) {
        gvd_kill_now(x);
        return 0;
    }
    if (x->pause_mode == GVD_PAUSE_COOPERATIVE && gvd__process_send(x, "cancel") == 0) {
        x->cancel_stage = GVD_CANCEL_ASKED;
        return uv_timer_start(&x->kill_timer, gvd_kill_timer_cb, grace_ms / 2, 0);
    }
    gvd_terminate(x);
    return uv_timer_start(&x->kill_timer, gvd_kill_timer_cb, grace_ms, 0);
}

void gvd__process_free(gvd_exec *x)
{
    if (!x->reaped || (x->timers_open && uv_is_active((uv_handle_t *)&x->kill_timer))) {
        /* Still alive, or leftovers in their grace period: kill the group.
         * The process handle stays open until libuv reaps it (closing it now
         * would leave a zombie); gvd_exit_cb closes it and, x being freed,
         * calls nothing back. */
        int rc = gvd_signal_group(x, SIGKILL);
        if (rc != 0 && rc != -ESRCH)
            gvd_log(GVD_LOG_WARN, "job.kill_failed", "job=%lld signal=KILL error=\"%s\"", (long long)x->job_id,
                    strerror(-rc));
    }
    gvd_stream_close(x, &x->out);
    gvd_stream_close(x, &x->err);
    gvd_stream_close(x, &x->ctl);
    if (x->timers_open) {
        x->timers_open = false;
        gvd__exec_close(x, (uv_handle_t *)&x->kill_timer);
        gvd__exec_close(x, (uv_handle_t *)&x->drain_timer);
    }
    gvd_close_fd(&x->log_fd);
}
