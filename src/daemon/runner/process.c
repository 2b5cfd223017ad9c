/*
 * process.c — the process backend of the runner: a job as a real process
 * group, owned by its supervisor galvani-shim (src/daemon/shim/), driven
 * from the libuv loop over one unix stream connection.
 *
 * What the job sees is unchanged (docs/protocol.md, "What a job gets"): the
 * shim forks it in its own session and process group, /dev/null on stdin,
 * stdout and stderr to pipes the shim reads into the log file (capped), the
 * control socket on fd 3, the spec's env plus GALVANI_CONTROL_FD and
 * GALVANI_JOB_ID.  What galvanid sees is the shim's line protocol
 * (docs/protocol.md, "The supervisor"):
 *   out LINE / ctl LINE    a "::" stdout line / a control-fd line, parsed
 *                          here with gvd_msg_parse exactly as before;
 *   warn TEXT              something for galvanid's log;
 *   sent N                 N bytes reached the job's control fd;
 *   exit STATUS SIG CANC   the job is reaped and its output drained;
 * and it sends pause, resume, send LINE, cancel GRACE_MS and ack.
 *
 * Spawning does not wait: the shim is launched (shimlink.c), its spec
 * written and its first line — "hello PID TICKS ..." or "failed STAGE
 * ERRNO" — read on the loop like every later line, then reported through
 * on_start (the handshake, below).  Until then the job is "starting":
 * the model holds back pause / resume / cancel, which the shim could not
 * read before its answer anyway.  Re-adopting still blocks briefly for a
 * live shim's hello (once per job, at start-up).  The
 * connection ending without an exit line means the shim died: its exit
 * record is used if it wrote one, else the job's group is killed (if pid +
 * start time still match) and the exit is reported with lost = true.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../obs/obs.h"
#include "../util/log.h"
#include "exec_int.h"

/* uv_timer_start fails only for a closing handle or a NULL callback; our
 * timer closes only in gvd_exec_free, after which nothing starts it. */

/* ---- what the shim says --------------------------------------------------- */

static void gvd_lost(gvd_exec *x);
static void gvd_start_answer(gvd_exec *x, char *line, size_t len);
static void gvd_start_failed(gvd_exec *x, const char *why, bool refused, bool abort_shim);

static void gvd_finish_with(gvd_exec *x, int64_t status, int sig, bool cancelled, bool lost)
{
    x->reaped = true;
    x->exit.exit_status = status;
    x->exit.term_signal = sig;
    x->exit.cancelled = cancelled;
    x->exit.lost = lost;
    gvd__exec_finish(x);
}

static bool gvd_shim_line(void *ud, char *line, size_t len)
{
    gvd_exec *x = ud;
    if (x->freed || x->finished)
        return false;
    if (x->starting) {
        gvd_start_answer(x, line, len); /* the first line; what follows is read as usual */
        return !x->freed && !x->finished;
    }
    char *rest;
    size_t rl;
    size_t wl = gvd_wire_word(line, len, &rest, &rl);
    if (gvd_wire_is(line, wl, "out") || gvd_wire_is(line, wl, "ctl")) {
        long n = gvd_wire_unescape(rest, rl);
        gvd_msg m;
        if (n >= 0 && gvd_msg_parse(rest, (size_t)n, line[0] == 'o', &m) != GVD_MSG_NONE)
            gvd__exec_message(x, &m);
    } else if (gvd_wire_is(line, wl, "warn")) {
        long n = gvd_wire_unescape(rest, rl);
        char q[600];
        if (n >= 0) {
            rest[n] = '\0';
            gvd_log(GVD_LOG_WARN, "job.shim", "job=%lld message=%s", (long long)x->job_id,
                    gvd_log_quote(rest, q, sizeof q));
        }
    } else if (gvd_wire_is(line, wl, "sent")) {
        rest[rl] = '\0';
        uint64_t n = strtoull(rest, NULL, 10);
        x->ctl_pending = n < x->ctl_pending ? x->ctl_pending - n : 0;
    } else if (gvd_wire_is(line, wl, "hello")) {
        gvd_hello h;
        line[len] = '\0';
        if (gvd__hello_parse(line, len, &h) == 0)
            x->ctl_pending = h.ctl_queued;
    } else if (gvd_wire_is(line, wl, "exit")) {
        rest[rl] = '\0';
        long long st;
        int sig, canc;
        if (sscanf(rest, "%lld %d %d", &st, &sig, &canc) == 3)
            gvd_finish_with(x, st, sig, canc != 0, false);
        else
            gvd_lost(x);
    }
    return !x->freed && !x->finished;
}

static void gvd_conn_close(gvd_exec *x)
{
    if (!x->conn_open)
        return;
    x->conn_open = false;
    gvd__exec_close(x, (uv_handle_t *)&x->conn);
}

/* Replay an exit record (or nothing, for a lost shim) from the loop. */
static void gvd_replay_cb(uv_timer_t *t)
{
    gvd_exec *x = t->data;
    if (x->freed || x->finished)
        return;
    gvd_lines_init(&x->lines, x->line_buf, GVD_WIRE_MAX);
    (void)gvd_lines_feed(&x->lines, x->replay.p, x->replay.len, gvd_shim_line, x);
    gvd_buf_free(&x->replay);
    if (!x->freed && !x->finished)
        gvd_lost(x); /* a record without its exit line: treat as lost */
}

/* The shim is gone without an exit line: its record if it wrote one, else
 * the job is orphaned — kill its group if it is still the same process. */
static void gvd_lost(gvd_exec *x)
{
    gvd_conn_close(x);
    if (x->replay.len == 0 && gvd__run_read(x->run_dir, "exit", &x->replay) == 0 && x->replay.len > 0) {
        gvd_log(GVD_LOG_WARN, "job.shim_gone", "job=%lld reason=\"supervisor exited; using its exit record\"",
                (long long)x->job_id);
        gvd_replay_cb(&x->tick);
        return;
    }
    gvd_buf_free(&x->replay);
    int killed = x->pid > 1 ? gvd_exec_kill_stale(x->pid, x->start_ticks) : 0;
    gvd_log(GVD_LOG_WARN, "job.shim_lost", "job=%lld pid=%ld killed=%d reason=\"supervisor died without an exit record\"",
            (long long)x->job_id, (long)x->pid, killed > 0);
    gvd_finish_with(x, -1, 0, x->cancel_requested, true);
}

static void gvd_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    gvd_exec *x = h->data;
    *buf = uv_buf_init(x->rbuf, sizeof x->rbuf);
}

static void gvd_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    gvd_exec *x = s->data;
    if (x->freed)
        return;
    if (n > 0) {
        (void)gvd_lines_feed(&x->lines, buf->base, (size_t)n, gvd_shim_line, x);
        return;
    }
    if (n == 0)
        return;
    if (x->starting) {
        char why[200];
        snprintf(why, sizeof why, "the job supervisor did not answer: %s (it was killed, with anything it started)",
                 strerror(n == UV_EOF ? EPIPE : (int)-n));
        gvd_start_failed(x, why, false, true);
    } else if (!x->finished) {
        gvd_lost(x);
    }
    else
        gvd_conn_close(x);
}

/* ---- the handle ------------------------------------------------------------ */

static gvd_exec *gvd_process_new(uv_loop_t *loop, int64_t job_id, gvd_pause_mode mode, const char *run_dir,
                                 const gvd_exec_events *ev, void *ud)
{
    gvd_exec *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    /* One spare byte: a handler may NUL-terminate a line of the full size. */
    x->line_buf = malloc(GVD_WIRE_MAX + 1);
    x->run_dir = strdup(run_dir);
    if (!x->line_buf || !x->run_dir) {
        free(x->line_buf);
        free(x->run_dir);
        free(x);
        return NULL;
    }
    x->loop = loop;
    x->kind = GVD_EXEC_PROCESS;
    x->ev = ev;
    x->ud = ud;
    x->job_id = job_id;
    x->pause_mode = mode;
    gvd_lines_init(&x->lines, x->line_buf, GVD_WIRE_MAX);
    if (uv_timer_init(loop, &x->tick) != 0)
        abort(); /* cannot fail on Unix */
    x->tick.data = x;
    x->tick_open = true;
    x->handles++;
    return x;
}

/* Take over a connected socket to the shim (closed on failure). */
static int gvd_conn_attach(gvd_exec *x, int fd)
{
    int rc = uv_pipe_init(x->loop, &x->conn, 0);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    x->conn.data = x;
    x->handles++;
    x->conn_open = true;
    rc = uv_pipe_open(&x->conn, fd);
    if (rc != 0) {
        close(fd);
        gvd_conn_close(x);
        return rc;
    }
    rc = uv_read_start((uv_stream_t *)&x->conn, gvd_alloc_cb, gvd_read_cb);
    if (rc != 0)
        gvd_conn_close(x);
    return rc;
}

static void gvd_hello_take(gvd_exec *x, const gvd_hello *h)
{
    x->pid = h->pid;
    x->start_ticks = h->ticks;
    x->paused = h->paused;
    x->ctl_pending = h->ctl_queued;
}

static int gvd_conn_open(gvd_exec *x, int fd, const gvd_hello *h)
{
    gvd_hello_take(x, h);
    return gvd_conn_attach(x, fd);
}

/* Free a handle that never got going (no callbacks were possible). */
static void gvd_process_discard(gvd_exec *x)
{
    x->freed = true;
    free(x->start_cmd);
    free(x->start_log);
    x->start_cmd = x->start_log = NULL;
    gvd_buf_free(&x->replay);
    free(x->line_buf);
    free(x->run_dir);
    x->line_buf = NULL;
    x->run_dir = NULL;
    gvd_conn_close(x);
    x->tick_open = false;
    gvd__exec_close(x, (uv_handle_t *)&x->tick); /* frees x */
}

typedef struct gvd_wreq {
    uv_write_t req;
    char *data;
} gvd_wreq;

static void gvd_write_cb(uv_write_t *req, int status)
{
    (void)status; /* a failed write means the shim is gone: the read side says so */
    gvd_wreq *r = (gvd_wreq *)req;
    free(r->data);
    free(r);
}

/* ---- the handshake ---------------------------------------------------------- */

static int gvd_conn_write(gvd_exec *x, gvd_buf *b);

static void gvd_start_end(gvd_exec *x, bool ok)
{
    x->starting = false;
    uv_timer_stop(&x->tick);
    gvd__shim_reap(x->shim_first);
    free(x->start_cmd);
    free(x->start_log);
    x->start_cmd = x->start_log = NULL;
    gvd_obs_process_spawned(ok, x->start_ns);
}

/* The job did not start.  A shim that refused ("failed ...") touches the
 * dir no more, so it goes whatever its lock says; one that did not answer
 * or answered nonsense may still be starting the job: it is killed first
 * (gvd__shim_abort), and if it could not be, its dir stays (its lock is
 * held) for a restart to resolve.  No callback follows on_start. */
static void gvd_start_failed(gvd_exec *x, const char *why, bool refused, bool abort_shim)
{
    pid_t first = x->shim_first;
    if (abort_shim)
        gvd__shim_abort(first, x->run_dir); /* before the reap: the kill ends the first process too */
    gvd_start_end(x, false);
    gvd_conn_close(x);
    (void)gvd__run_dir_rm(x->run_dir, refused);
    x->keep_record = true; /* nothing for gvd_exec_free to consume */
    x->finished = true;
    gvd_log(GVD_LOG_DEBUG, "job.start_failed", "job=%lld shim=%ld", (long long)x->job_id, (long)first);
    x->ev->on_start(x->ud, why);
}

static void gvd_start_answer(gvd_exec *x, char *line, size_t len)
{
    line[len] = '\0';
    char stage[16], why[600];
    int code;
    gvd_hello h;
    if (sscanf(line, "failed %15s %d", stage, &code) == 2) {
        gvd__shim_start_error(why, sizeof why, x->start_cmd, x->start_log, stage, code);
        gvd_start_failed(x, why, true, false);
    } else if (gvd__hello_parse(line, len, &h) != 0) {
        gvd_start_failed(x, "the job supervisor answered nonsense (it was killed, with anything it started)",
                         false, true);
    } else {
        gvd_hello_take(x, &h);
        gvd_start_end(x, true);
        gvd_log(GVD_LOG_DEBUG, "job.spawned", "job=%lld pid=%ld start_ticks=%llu", (long long)x->job_id,
                (long)x->pid, (unsigned long long)x->start_ticks);
        x->ev->on_start(x->ud, NULL);
    }
}

static void gvd_start_timeout(uv_timer_t *t)
{
    gvd_exec *x = t->data;
    if (!x->freed && x->starting)
        gvd_start_failed(x, "the job supervisor did not answer: Connection timed out (it was killed, with anything "
                            "it started)", false, true);
}

gvd_exec *gvd__process_spawn(uv_loop_t *loop, const gvd_exec_opts *opts, const gvd_exec_events *ev, void *ud,
                             char *err, size_t errlen)
{
    if (!opts->argv || !opts->argv[0] || !opts->argv[0][0]) {
        gvd__set_err(err, errlen, "empty command");
        return NULL;
    }
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
    if (!opts->run_dir) {
        gvd__set_err(err, errlen, "internal error: no run directory for the job");
        return NULL;
    }
    if (!ev->on_start) {
        gvd__set_err(err, errlen, "internal error: no on_start callback");
        return NULL;
    }
    gvd_exec *x = gvd_process_new(loop, opts->job_id, opts->pause_mode, opts->run_dir, ev, ud);
    if (x) {
        x->start_cmd = strdup(opts->argv[0]);
        x->start_log = strdup(opts->log_path ? opts->log_path : "");
    }
    if (!x || !x->start_cmd || !x->start_log) {
        if (x)
            gvd_process_discard(x);
        gvd__set_err(err, errlen, "out of memory");
        return NULL;
    }
    x->start_ns = gvd_obs_clock_ns();
    int fd;
    gvd_buf spec = {0};
    if (gvd__shim_launch(opts, &fd, &x->shim_first, &spec, err, errlen) != 0) {
        gvd_process_discard(x);
        return NULL;
    }
    x->starting = true;
    (void)uv_timer_start(&x->tick, gvd_start_timeout, GVD_SHIM_REPLY_MS, 0);
    /* From here every failure is the shim's silence: reported by the read
     * side (EOF) or the timer, from the loop, like any answer. */
    int rc = gvd_conn_attach(x, fd);
    if (rc == 0)
        rc = gvd_conn_write(x, &spec);
    else
        gvd_buf_free(&spec);
    if (rc != 0) {
        gvd_log(GVD_LOG_ERROR, "job.shim_connect", "job=%lld error=\"%s\"", (long long)x->job_id, uv_strerror(rc));
        gvd_conn_close(x); /* the shim reads EOF and starts nothing; the timer reports it */
    }
    return x;
}

bool gvd_exec_starting(const gvd_exec *x)
{
    return x && x->kind == GVD_EXEC_PROCESS && x->starting;
}

gvd_exec *gvd__process_adopt(uv_loop_t *loop, const gvd_exec_adopt_opts *opts, const gvd_exec_events *ev,
                             void *ud, bool *never_started, char *err, size_t errlen)
{
    *never_started = false;
    gvd_run_state st = gvd__run_probe(opts->run_dir);
    if (st == GVD_RUN_NONE) {
        *never_started = true;
        (void)gvd_exec_remove_run_dir(opts->run_dir);
        return NULL;
    }
    gvd_exec *x = gvd_process_new(loop, opts->job_id, opts->pause_mode, opts->run_dir, ev, ud);
    if (!x) {
        gvd__set_err(err, errlen, "out of memory");
        return NULL;
    }
    x->pid = opts->pid;
    x->start_ticks = opts->start_ticks;
    pid_t pid;
    uint64_t ticks;
    if (gvd__run_read_pid(opts->run_dir, &pid, &ticks) == 0) {
        x->pid = pid;
        x->start_ticks = ticks;
    }
    /* A live shim may be starting (no socket yet) or finishing (socket gone,
     * lock not yet released): retry, bounded, until it answers or is gone. */
    for (int tries = 0; st == GVD_RUN_LIVE; tries++) {
        int fd;
        gvd_hello h;
        int rc = gvd__shim_connect(opts->run_dir, &fd, &h);
        if (rc == 0) {
            rc = gvd_conn_open(x, fd, &h);
            if (rc == 0)
                return x;
            gvd__set_err(err, errlen, "cannot watch the job's supervisor: %s", uv_strerror(rc));
            gvd_process_discard(x);
            return NULL;
        }
        if (tries >= 500) {
            gvd__set_err(err, errlen, "the job's supervisor holds %s but does not answer: %s", opts->run_dir,
                         strerror(-rc));
            gvd_process_discard(x);
            return NULL;
        }
        (void)nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
        st = gvd__run_probe(opts->run_dir);
    }
    if (st == GVD_RUN_NONE) { /* the shim gave up before starting the job */
        *never_started = true;
        gvd_process_discard(x);
        (void)gvd_exec_remove_run_dir(opts->run_dir);
        return NULL;
    }
    if (st == GVD_RUN_EXITED)
        (void)gvd__run_read(opts->run_dir, "exit", &x->replay);
    gvd_log(GVD_LOG_INFO, st == GVD_RUN_EXITED ? "job.exit_replayed" : "job.shim_lost",
            "job=%lld pid=%ld reason=\"%s\"", (long long)x->job_id, (long)x->pid,
            st == GVD_RUN_EXITED ? "it ended while galvanid was down: its exit record is used"
                                 : "its supervisor died while galvanid was down, leaving no exit record");
    /* Exited: replay the record; lost: gvd_replay_cb finds no exit line and
     * reports the job lost.  Either way from the loop. */
    (void)uv_timer_start(&x->tick, gvd_replay_cb, 0, 0);
    return x;
}

/* ---- control ---------------------------------------------------------------- */

/* Queue b's bytes for the shim (b is taken, whatever happens). */
static int gvd_conn_write(gvd_exec *x, gvd_buf *b)
{
    if (!x->conn_open) {
        gvd_buf_free(b);
        return -EPIPE;
    }
    /* uv_try_write first: a command is tiny and the shim reads promptly;
     * what does not fit is queued by libuv (and freed by the write cb). */
    uv_buf_t ub = uv_buf_init(b->p, (unsigned)b->len);
    int w = uv_try_write((uv_stream_t *)&x->conn, &ub, 1);
    if (w == (int)b->len) {
        gvd_buf_free(b);
        return 0;
    }
    size_t done = w > 0 ? (size_t)w : 0;
    if (w < 0 && w != UV_EAGAIN) {
        gvd_buf_free(b);
        return w;
    }
    gvd_wreq *r = malloc(sizeof *r);
    if (!r) {
        gvd_buf_free(b);
        return -ENOMEM;
    }
    r->data = b->p;
    ub = uv_buf_init(b->p + done, (unsigned)(b->len - done));
    *b = (gvd_buf){0};
    int rc = uv_write(&r->req, (uv_stream_t *)&x->conn, &ub, 1, gvd_write_cb);
    if (rc != 0) {
        free(r->data);
        free(r);
    }
    return rc;
}

static int gvd_command(gvd_exec *x, const char *word, const char *data, size_t n)
{
    if (!x->conn_open)
        return -EPIPE;
    gvd_buf b = {0};
    int rc = data ? gvd_wire_put(&b, word, data, n) : gvd_buf_addf(&b, "%s\n", word);
    if (rc != 0) {
        gvd_buf_free(&b);
        return rc;
    }
    return gvd_conn_write(x, &b);
}

int gvd__process_send(gvd_exec *x, const char *line)
{
    size_t len = strlen(line);
    if (len > GVD_SEND_MAX)
        return -EMSGSIZE;
    if (memchr(line, '\n', len))
        return -EINVAL; /* one call, one line: no smuggled second command */
    if (x->starting)
        return -EAGAIN;
    if (x->reaped || x->finished)
        return -EPIPE;
    if (x->ctl_pending + len + 1 > GVD_SEND_QUEUE_MAX)
        return -ENOBUFS; /* the job is not reading its control fd */
    int rc = gvd_command(x, "send", line, len);
    if (rc == 0)
        x->ctl_pending += len + 1;
    return rc;
}

int gvd__process_pause(gvd_exec *x)
{
    if (x->starting)
        return -EAGAIN;
    if (x->reaped || x->finished)
        return -ESRCH;
    if (x->cancel_requested)
        return -EBUSY;
    if (x->paused)
        return 0;
    if (x->pause_mode == GVD_PAUSE_COOPERATIVE && x->ctl_pending + 6 > GVD_SEND_QUEUE_MAX)
        return -ENOBUFS;
    int rc = gvd_command(x, "pause", NULL, 0);
    if (rc == 0) {
        x->paused = true;
        if (x->pause_mode == GVD_PAUSE_COOPERATIVE)
            x->ctl_pending += 6;
    }
    return rc;
}

int gvd__process_resume(gvd_exec *x)
{
    if (x->starting)
        return -EAGAIN;
    if (x->reaped || x->finished)
        return -ESRCH;
    if (!x->paused || x->cancel_requested)
        return 0;
    int rc = gvd_command(x, "resume", NULL, 0);
    if (rc == 0) {
        x->paused = false;
        if (x->pause_mode == GVD_PAUSE_COOPERATIVE)
            x->ctl_pending += 7;
    }
    return rc;
}

int gvd__process_cancel(gvd_exec *x, unsigned grace_ms)
{
    if (x->starting)
        return -EAGAIN;
    if (x->finished)
        return -ESRCH;
    if (x->reaped || x->cancel_requested)
        return 0; /* already over (on_exit on its way) or already cancelling */
    char ms[24];
    int n = snprintf(ms, sizeof ms, "%u", grace_ms);
    int rc = gvd_command(x, "cancel", ms, (size_t)n);
    if (rc != 0)
        return rc;
    x->cancel_requested = true;
    x->paused = false;
    return 0;
}

void gvd__process_kill(gvd_exec *x)
{
    if (x->starting) {
        /* It may be forking the job right now: kill it and what it forked. */
        gvd__shim_abort(x->shim_first, x->run_dir);
        gvd_start_end(x, false);
        gvd_conn_close(x);
        return;
    }
    if (x->finished || x->reaped || x->pid <= 1)
        return;
    int rc = gvd_exec_kill_stale(x->pid, x->start_ticks);
    gvd_conn_close(x);
    if (rc <= 0 || !x->run_dir)
        return;
    for (int i = 0; i < 300 && gvd__run_probe(x->run_dir) == GVD_RUN_LIVE; i++)
        (void)nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
}

void gvd__process_free(gvd_exec *x)
{
    if (x->starting) {
        /* Detached mid-handshake: a shim that has its spec runs the job on
         * its own (a restart re-adopts it); one that has not reads EOF and
         * starts nothing. */
        x->keep_record = true;
        gvd_start_end(x, false);
    }
    bool consumed = x->finished && !x->keep_record;
    if (consumed && x->conn_open) {
        /* The outcome is durable (the caller's promise): the shim may go. */
        uv_buf_t b = uv_buf_init("ack\n", 4);
        (void)uv_try_write((uv_stream_t *)&x->conn, &b, 1);
    }
    gvd_conn_close(x);
    if (consumed && x->run_dir) {
        /* The shim may still hold the lock for a moment while it exits; it
         * writes nothing more, so the dir goes now. */
        int rc = gvd__run_dir_rm(x->run_dir, true);
        if (rc != 0)
            gvd_log(GVD_LOG_WARN, "job.run_dir", "job=%lld dir=%s error=\"%s\"", (long long)x->job_id, x->run_dir,
                    strerror(-rc));
    }
    gvd_buf_free(&x->replay);
    free(x->line_buf);
    free(x->run_dir);
    x->line_buf = NULL;
    x->run_dir = NULL;
    if (x->tick_open) {
        x->tick_open = false;
        gvd__exec_close(x, (uv_handle_t *)&x->tick);
    }
}
