/*
 * fault.c — what the job model does when the store cannot write (disk full,
 * database locked, I/O error; the store classifies, see store.h "faults").
 *
 * Three rules:
 *
 * 1. A transition a request asks for (pause, resume, cancel, and the
 *    scheduler's queued -> running, which also must not happen unrecorded)
 *    is real only once stored.  gvd_job_transition_begin snapshots what the
 *    transition may change; if the persist effect's write fails, the
 *    reconcile effect calls gvd_job_revert before it touches the process, so
 *    the process never follows, and the caller answers 503 with
 *    gvd_jobs_store_error.  Memory ends exactly as it was.
 *
 * 2. A transition the world made — the process exited, the timeout fired,
 *    the spawn failed — cannot be refused: reverting a finished job to
 *    "running" would make reconcile spawn it again (a duplicate run).  It
 *    stays in memory (streams and GET show the truth), the job stays dirty,
 *    and is written once the store takes writes again.  If galvanid stops
 *    before that (logged as store.unsaved_at_exit), the row still says
 *    running; run.c then kept the supervisor's exit record, from which the
 *    next start learns the true outcome.
 *
 * 3. Recovery is automatic: while the store is unavailable a retry timer
 *    (50 ms doubling to 1 s) writes the dirty jobs in one transaction, or
 *    probes with a tiny write when nothing is dirty.  The first success ends
 *    the fault; the scheduler, which does not start jobs meanwhile, is woken.
 *
 * The progress write-behind joins in: its flush timer does not run while the
 * store is unavailable (the retry timer flushes instead), so progress is
 * retried, never dropped.
 */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>

#include "../util/log.h"

#define GVD_RETRY_FIRST_MS 50
#define GVD_RETRY_MAX_MS 1000

struct gvd_faults {
    gvd_jobs *jobs;
    uv_timer_t timer;
    unsigned backoff_ms; /* the next wait */
};

/* ---- request-driven transitions --------------------------------------- */

static int64_t gvd_peek_i(gv_signal *s) { return gv_value_to_int(gv_signal_peek(s)); }
static double gvd_peek_d(gv_signal *s) { return gv_value_to_double(gv_signal_peek(s)); }

void gvd_job_transition_begin(gvd_job *job)
{
    gvd_job_snap *b = &job->before;
    b->status = gvd_peek_i(job->status);
    b->attempts = gvd_peek_i(job->attempts);
    b->pid = gvd_peek_i(job->pid);
    b->term_signal = gvd_peek_i(job->term_signal);
    b->has_exit = gv_signal_peek(job->exit_status)->type != GV_NONE;
    b->exit_status = gvd_peek_i(job->exit_status);
    b->cancel_requested = job->cancel_requested;
    b->current = gvd_peek_d(job->current);
    b->progress_at = gvd_peek_d(job->progress_at);
    b->started_at = gvd_peek_d(job->started_at);
    b->finished_at = gvd_peek_d(job->finished_at);
    job->revertible = true;
}

/* The persist effect ends the revertible window (write done, or nothing to
 * write), or gvd_job_revert does.  Not here: when the scheduler starts a job
 * it runs inside an effect, so the batch's effects — the persist effect
 * among them — only run after the scheduler returns. */
bool gvd_job_transition_end(gvd_job *job, gvd_status want)
{
    return gvd_job_status_peek(job) == want;
}

bool gvd_job_should_revert(const gvd_job *job, gvd_status status)
{
    return job->revertible && job->persist_failed && (int64_t)status != job->before.status;
}

/* Called by the reconcile effect (so before the process is touched, and in
 * the same flush, so the notify and log effects see only the old state).
 * Writing the signals re-runs the persist effect, which finds nothing new
 * to write synchronously. */
void gvd_job_revert(gvd_job *job)
{
    const gvd_job_snap *b = &job->before;
    job->revertible = false;
    job->cancel_requested = b->cancel_requested;
    gv_batch_begin();
    gv_signal_set_int(job->attempts, b->attempts);
    gv_signal_set_int(job->pid, b->pid);
    gv_signal_set_int(job->term_signal, b->term_signal);
    if (b->has_exit)
        gv_signal_set_int(job->exit_status, b->exit_status);
    else
        gv_signal_set(job->exit_status, gv_none());
    gv_signal_set_double(job->current, b->current);
    gv_signal_set_double(job->progress_at, b->progress_at);
    gv_signal_set_double(job->started_at, b->started_at);
    gv_signal_set_double(job->finished_at, b->finished_at);
    gv_signal_set_int(job->status, b->status);
    gv_batch_end();
    gvd_log(GVD_LOG_DEBUG, "job.reverted", "job=%lld to=%s", (long long)job->id,
            gvd_status_name((gvd_status)b->status));
}

void gvd_jobs_store_error(gvd_jobs *jobs, gvd_error *err, const char *what, const char *detail)
{
    gvd_store_health h;
    gvd_store_health_get(jobs->store, &h);
    char msg[600];
    if (h.cause) {
        snprintf(msg, sizeof msg, "%s: the store is unavailable (%s); nothing was changed, retry later (%s)", what,
                 h.cause, detail);
        gvd_error_set(err, 503, "store_unavailable", msg);
        gvd_faults_arm(jobs);
    } else {
        snprintf(msg, sizeof msg, "%s: the store refused the write; nothing was changed (%s)", what, detail);
        gvd_error_set(err, 503, "store_failed", msg);
    }
}

/* ---- the retry timer ------------------------------------------------------ */

static void gvd_faults_retry(uv_timer_t *t)
{
    struct gvd_faults *f = t->data;
    gvd_jobs *jobs = f->jobs;
    if (jobs->dirty_first) {
        (void)gvd_jobs_flush(jobs); /* re-lists what it could not write */
    } else if (!gvd_store_available(jobs->store)) {
        char err[256];
        (void)gvd_store_probe(jobs->store, err, sizeof err);
    }
    if (!gvd_store_available(jobs->store)) {
        f->backoff_ms = f->backoff_ms * 2 > GVD_RETRY_MAX_MS ? GVD_RETRY_MAX_MS : f->backoff_ms * 2;
        uv_timer_start(&f->timer, gvd_faults_retry, f->backoff_ms, 0);
        return;
    }
    f->backoff_ms = GVD_RETRY_FIRST_MS;
    /* Jobs whose write failed for another reason stay dirty: the normal
     * write-behind takes them from here. */
    if (jobs->dirty_first)
        gvd_jobs_mark_dirty(jobs, jobs->dirty_first); /* (re)starts the flush timer */
    /* The scheduler held back queued jobs while the store was down. */
    gv_signal_set_int(jobs->wake, gv_value_to_int(gv_signal_peek(jobs->wake)) + 1);
    gvd_retention_schedule(jobs);
}

void gvd_faults_arm(gvd_jobs *jobs)
{
    struct gvd_faults *f = jobs->faults;
    if (!f || jobs->closing || uv_is_active((uv_handle_t *)&f->timer))
        return;
    uv_timer_start(&f->timer, gvd_faults_retry, f->backoff_ms, 0);
}

int gvd_faults_new(gvd_jobs *jobs)
{
    struct gvd_faults *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->jobs = jobs;
    f->backoff_ms = GVD_RETRY_FIRST_MS;
    uv_timer_init(jobs->loop, &f->timer);
    f->timer.data = f;
    jobs->faults = f;
    return 0;
}

static void gvd_faults_closed(uv_handle_t *h)
{
    free(h->data);
}

/* At shutdown, after gvd_jobs_free's last flush: say what could not be
 * written (those jobs' rows keep their last stored state). */
void gvd_faults_free(gvd_jobs *jobs)
{
    struct gvd_faults *f = jobs->faults;
    if (!f)
        return;
    size_t unsaved = 0;
    for (gvd_job *j = jobs->dirty_first; j; j = j->dirty_next)
        unsaved += j->dirty;
    if (unsaved) {
        gvd_store_health h;
        gvd_store_health_get(jobs->store, &h);
        gvd_log(GVD_LOG_ERROR, "store.unsaved_at_exit", "jobs=%zu cause=\"%s\"", unsaved,
                h.cause ? h.cause : "write failed");
    }
    jobs->faults = NULL;
    uv_timer_stop(&f->timer);
    uv_close((uv_handle_t *)&f->timer, gvd_faults_closed);
}
