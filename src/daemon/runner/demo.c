/*
 * demo.c — the built-in demo job: the seed's task, in process.
 *
 * Progress goes from opts->demo_start to 100 by 1 every demo_step_ms on a
 * uv_timer, each step reported as a GVD_MSG_PROGRESS (current, total = 100,
 * has_total = false: a percentage, exactly like "::progress N").  It behaves
 * like a process job as far as the model can tell: pause stops the timer and
 * resume restarts it (the step in progress starts over), cancel ends it, and
 * on_exit comes once, from the loop.
 *
 * Exit reports: reaching 100 -> exit_status 0, term_signal 0, cancelled
 * false; cancel -> exit_status 0, term_signal 0, cancelled true (there is no
 * signal to report, and -1 means "killed by a signal" in gvd_exit).  The
 * cancel's on_exit is delivered by a zero-delay timer, not from inside
 * gvd_exec_cancel.
 *
 * The pace is the clock's, not the timer's: each step is due at a fixed
 * time (start + n x step), and the timer is re-armed for the next due time.
 * A libuv repeating timer re-arms relative to when its callback ran, so a
 * loop busy fanning frames out to 10,000 clients used to stretch every
 * step; now a late tick makes up the steps it missed at once (each is
 * reported; the streams coalesce them into the latest state), and the job
 * takes demo_step_ms x 100 however many clients watch it.
 */
#include <errno.h>
#include <stdlib.h>

#include "exec_int.h"

#define GVD_DEMO_STEP_DEFAULT_MS 100

static void gvd_demo_tick(uv_timer_t *t);

/* Arm the timer for the step due at x->demo_due_ns. */
static int gvd_demo_arm(gvd_exec *x)
{
    uint64_t now = uv_hrtime();
    uint64_t wait_ms = x->demo_due_ns > now ? (x->demo_due_ns - now + 999999) / 1000000 : 0;
    return uv_timer_start(&x->demo_timer, gvd_demo_tick, wait_ms, 0);
}

static void gvd_demo_tick(uv_timer_t *t)
{
    gvd_exec *x = t->data;
    if (x->freed || x->finished)
        return;
    if (x->cancel_requested || x->progress >= 100.0) {
        uv_timer_stop(&x->demo_timer);
        gvd__exec_finish(x);
        return;
    }
    /* Every step due by now (one, unless the loop was late), each reported:
     * the model coalesces them, the record keeps every one. */
    uint64_t now = uv_hrtime(), step_ns = (uint64_t)x->step_ms * 1000000u;
    uint64_t steps = 1;
    if (now > x->demo_due_ns && step_ns > 0)
        steps += (now - x->demo_due_ns) / step_ns;
    x->demo_due_ns += steps * step_ns;
    for (uint64_t i = 0; i < steps && x->progress < 100.0; i++) {
        x->progress = x->progress + 1.0 < 100.0 ? x->progress + 1.0 : 100.0;
        gvd_msg m = {.kind = GVD_MSG_PROGRESS, .current = x->progress, .total = 100.0, .has_total = false};
        gvd__exec_message(x, &m);
        if (x->freed)
            return;
        if (x->paused || x->cancel_requested)
            break; /* the model paused or cancelled it on this step */
    }
    if (x->progress >= 100.0) {
        uv_timer_stop(&x->demo_timer);
        gvd__exec_finish(x);
    } else if (!x->paused && !x->cancel_requested && gvd_demo_arm(x) != 0) {
        gvd__exec_finish(x); /* cannot happen with a started timer; never hang */
    }
}

gvd_exec *gvd__demo_spawn(uv_loop_t *loop, const gvd_exec_opts *opts, const gvd_exec_events *ev, void *ud,
                          char *err, size_t errlen)
{
    gvd_exec *x = calloc(1, sizeof *x);
    if (!x) {
        gvd__set_err(err, errlen, "out of memory");
        return NULL;
    }
    x->loop = loop;
    x->kind = GVD_EXEC_DEMO;
    x->ev = ev;
    x->ud = ud;
    x->job_id = opts->job_id;
    x->pause_mode = opts->pause_mode;
    x->step_ms = opts->demo_step_ms ? opts->demo_step_ms : GVD_DEMO_STEP_DEFAULT_MS;
    double start = opts->demo_start;
    /* !(start > 0) also catches NaN. */
    x->progress = !(start > 0.0) ? 0.0 : start > 100.0 ? 100.0 : start;

    int rc = uv_timer_init(loop, &x->demo_timer);
    if (rc != 0) {
        gvd__set_err(err, errlen, "cannot start the demo job: %s", uv_strerror(rc));
        free(x);
        return NULL;
    }
    x->demo_timer.data = x;
    x->demo_timer_open = true;
    x->handles++;
    /* Already at 100 (resumed from a finished run): end on the next tick. */
    x->demo_due_ns = uv_hrtime() + (x->progress >= 100.0 ? 0 : (uint64_t)x->step_ms * 1000000u);
    rc = gvd_demo_arm(x);
    if (rc != 0) {
        gvd__set_err(err, errlen, "cannot start the demo job: %s", uv_strerror(rc));
        x->freed = true;
        gvd__exec_close(x, (uv_handle_t *)&x->demo_timer); /* frees x */
        return NULL;
    }
    return x;
}

int gvd__demo_pause(gvd_exec *x)
{
    if (x->finished)
        return -ESRCH;
    if (x->cancel_requested)
        return -EBUSY;
    if (x->paused)
        return 0;
    int rc = uv_timer_stop(&x->demo_timer);
    if (rc != 0)
        return rc;
    x->paused = true;
    return 0;
}

int gvd__demo_resume(gvd_exec *x)
{
    if (x->finished)
        return -ESRCH;
    if (!x->paused || x->cancel_requested)
        return 0;
    /* the step in progress starts over */
    x->demo_due_ns = uv_hrtime() + (uint64_t)x->step_ms * 1000000u;
    int rc = gvd_demo_arm(x);
    if (rc != 0)
        return rc;
    x->paused = false;
    return 0;
}

int gvd__demo_cancel(gvd_exec *x)
{
    if (x->finished)
        return -ESRCH;
    if (x->cancel_requested)
        return 0;
    int rc = uv_timer_start(&x->demo_timer, gvd_demo_tick, 0, 0);
    if (rc != 0)
        return rc;
    x->cancel_requested = true;
    x->paused = false;
    x->exit = (gvd_exit){.exit_status = 0, .term_signal = 0, .cancelled = true};
    return 0;
}

void gvd__demo_free(gvd_exec *x)
{
    if (x->demo_timer_open) {
        x->demo_timer_open = false;
        gvd__exec_close(x, (uv_handle_t *)&x->demo_timer);
    }
}
