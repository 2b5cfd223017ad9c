/*
 * exec.c — the runner's public entry points (exec.h): dispatch to the two
 * backends (process.c, demo.c) and the parts both share: handle lifetime,
 * delivering messages, delivering the exit exactly once.  Process jobs run
 * under their supervisor (process.c, shimlink.c, src/daemon/shim/).
 *
 * Guarantees every backend keeps (the job model relies on them):
 *   - all callbacks come from the loop, never from inside a gvd_exec_* call
 *     (so the model is never re-entered in the middle of its own batch);
 *   - a process job's on_start comes once, first (the supervisor's answer:
 *     the job runs, or why it did not start);
 *   - on_message gets PROGRESS / STATUS / METRIC / ACK messages and, up to
 *     GVD_INVALID_REPORTS per job, INVALID ones (with the reason and the
 *     offending line in text) for the model to log; NONE is never passed;
 *   - on_exit comes exactly once, last, after the output is complete;
 *   - after gvd_exec_free nothing is called back, and the memory is released
 *     once the handles have closed (see exec_int.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "../obs/obs.h"
#include "../util/log.h"
#include "exec_int.h"

void gvd__set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (n < 0)
        err[0] = '\0';
}

static void gvd_exec_closed(uv_handle_t *h)
{
    gvd_exec *x = h->data;
    x->handles--;
    if (x->handles == 0 && x->freed)
        free(x);
}

/* Close one of x's handles; its memory goes when the last one has closed. */
void gvd__exec_close(gvd_exec *x, uv_handle_t *h)
{
    h->data = x;
    uv_close(h, gvd_exec_closed);
}

void gvd__exec_message(gvd_exec *x, const gvd_msg *msg)
{
    if (x->freed || x->finished || msg->kind == GVD_MSG_NONE)
        return;
    if (msg->kind == GVD_MSG_INVALID) {
        /* A job printing garbage in a loop must not flood the daemon's log
         * through the model: pass on the first ones, then say once that the
         * rest are dropped. */
        if (x->invalid_reports == GVD_INVALID_REPORTS) {
            gvd_log(GVD_LOG_WARN, "job.protocol",
                    "job=%lld reason=\"too many malformed lines: further ones are ignored silently\"",
                    (long long)x->job_id);
        }
        if (x->invalid_reports++ >= GVD_INVALID_REPORTS)
            return;
    }
    if (x->ev->on_message)
        x->ev->on_message(x->ud, msg);
}

void gvd__exec_finish(gvd_exec *x)
{
    if (x->freed || x->finished)
        return;
    x->finished = true;
    if (x->kind == GVD_EXEC_PROCESS) /* the demo is no process */
        gvd_obs_process_exited(x->exit.exit_status, x->exit.term_signal, x->exit.cancelled, x->exit.lost);
    if (x->ev->on_exit)
        x->ev->on_exit(x->ud, &x->exit);
}

gvd_exec *gvd_exec_spawn(uv_loop_t *loop, const gvd_exec_opts *opts, const gvd_exec_events *ev, void *ud,
                         char *err, size_t errlen)
{
    if (!loop || !opts || !ev) {
        gvd__set_err(err, errlen, "internal error: missing loop, options or callbacks");
        return NULL;
    }
    switch (opts->kind) {
    case GVD_EXEC_PROCESS: {
        gvd_exec *x = gvd__process_spawn(loop, opts, ev, ud, err, errlen);
        if (!x) /* a start is counted (with its duration) when the shim answers */
            gvd_obs_process_spawned(false, 0);
        return x;
    }
    case GVD_EXEC_DEMO:
        return gvd__demo_spawn(loop, opts, ev, ud, err, errlen);
    }
    gvd__set_err(err, errlen, "internal error: unknown job kind %d", (int)opts->kind);
    return NULL;
}

gvd_exec *gvd_exec_adopt(uv_loop_t *loop, const gvd_exec_adopt_opts *opts, const gvd_exec_events *ev, void *ud,
                         bool *never_started, char *err, size_t errlen)
{
    bool never = false;
    gvd_exec *x = NULL;
    if (!loop || !opts || !opts->run_dir || !ev)
        gvd__set_err(err, errlen, "internal error: missing loop, run directory or callbacks");
    else
        x = gvd__process_adopt(loop, opts, ev, ud, &never, err, errlen);
    if (never_started)
        *never_started = never;
    return x;
}

bool gvd_exec_paused(const gvd_exec *x)
{
    return x && x->paused;
}

int gvd_exec_pause(gvd_exec *x)
{
    if (!x || x->freed)
        return -EINVAL;
    return x->kind == GVD_EXEC_DEMO ? gvd__demo_pause(x) : gvd__process_pause(x);
}

int gvd_exec_resume(gvd_exec *x)
{
    if (!x || x->freed)
        return -EINVAL;
    return x->kind == GVD_EXEC_DEMO ? gvd__demo_resume(x) : gvd__process_resume(x);
}

int gvd_exec_cancel(gvd_exec *x, unsigned grace_ms)
{
    if (!x || x->freed)
        return -EINVAL;
    return x->kind == GVD_EXEC_DEMO ? gvd__demo_cancel(x) : gvd__process_cancel(x, grace_ms);
}

int gvd_exec_send(gvd_exec *x, const char *line)
{
    if (!x || x->freed || !line)
        return -EINVAL;
    /* The demo has no control channel: nothing could act on the line. */
    return x->kind == GVD_EXEC_DEMO ? -ENOTSUP : gvd__process_send(x, line);
}

pid_t gvd_exec_pid(const gvd_exec *x)
{
    return x && x->kind == GVD_EXEC_PROCESS ? x->pid : 0;
}

uint64_t gvd_exec_start_ticks(const gvd_exec *x)
{
    return x && x->kind == GVD_EXEC_PROCESS ? x->start_ticks : 0;
}

void gvd_exec_kill(gvd_exec *x)
{
    if (x && !x->freed && x->kind == GVD_EXEC_PROCESS)
        gvd__process_kill(x);
    gvd_exec_detach(x);
}

void gvd_exec_detach(gvd_exec *x)
{
    if (x && x->kind == GVD_EXEC_PROCESS)
        x->keep_record = true;
    gvd_exec_free(x);
}

void gvd_exec_free(gvd_exec *x)
{
    if (!x || x->freed)
        return;
    x->freed = true;
    if (x->kind == GVD_EXEC_DEMO)
        gvd__demo_free(x);
    else
        gvd__process_free(x);
    /* Not reached in practice (a timer is always open until now), but if no
     * handle is left there is no close callback to free the memory. */
    if (x->handles == 0)
        free(x);
}
