/*
 * run.c — a job's process: how it is started, followed, timed out, ended
 * and retried, and taken back after a restart.
 *
 * The job's status is the desired state and the process follows it; what
 * the process does (its reports, its exit) is written back to the signals.
 *   gvd_job_begin_run()        the scheduler starts an attempt: in one batch,
 *                              attempts + 1, status = running;
 *   reconcile effect (job.c)   calls gvd_job_follow(): running with no
 *                              process -> gvd_spawn() (../runner/); later
 *                              paused / running again / cancelled ->
 *                              gvd_exec_pause, _resume, _cancel;
 *   gvd_job_started()          it runs (the demo at once, a process once its
 *                              supervisor answered, gvd_on_start): the pid,
 *                              the timeout timer, params patched meanwhile;
 *   gvd_on_message             "::progress", "::status", "::metric", acks:
 *                              written to the job's signals;
 *   gvd_timeout_cb             the timeout (paused time does not count):
 *                              status = failed, so reconcile cancels it;
 *   gvd_on_exit                the exit decides the outcome — succeeded,
 *                              cancelled, failed, or queued again with a
 *                              backoff (gvd_retry_cb wakes the scheduler).
 * Every report is a signal write, so the job's effects (job.c) store it,
 * push it and log it as they do a user's pause; the exit's record stays with
 * the supervisor until its outcome is stored (gvd_job_release_exit).
 * gvd_job_adopt takes a process back from its supervisor after a restart
 * (recover.c).
 */
#include "model.h"

#include <math.h>
#include <string.h>

#include "../util/log.h"

static void gvd_on_message(void *ud, const gvd_msg *msg);
static void gvd_on_exit(void *ud, const gvd_exit *exit);
static void gvd_on_start(void *ud, const char *error);
static const gvd_exec_events gvd_job_events = {gvd_on_message, gvd_on_exit, gvd_on_start};

/* ---- the timeout ------------------------------------------------------ */

static void gvd_timeout_cb(uv_timer_t *t)
{
    gvd_job *job = t->data;
    job->timed_out = true;
    gvd_log(GVD_LOG_INFO, "job.timeout", "job=%lld timeout=%g", (long long)job->id, job->spec.timeout_s);
    gv_batch_begin();
    char msg[128];
    snprintf(msg, sizeof msg, "timed out after %g s", job->spec.timeout_s);
    gv_signal_set_string(job->error, msg);
    gv_signal_set_double(job->finished_at, gvd_now());
    gv_signal_set_int(job->status, GVD_FAILED);
    gv_batch_end();
}

static void gvd_timeout_start(gvd_job *job)
{
    if (job->spec.timeout_s <= 0 || job->timeout_left_ms == 0)
        return;
    job->timer_started = uv_now(job->jobs->loop);
    uv_timer_start(&job->timeout_timer, gvd_timeout_cb, job->timeout_left_ms, 0);
}

static void gvd_timeout_pause(gvd_job *job)
{
    if (!uv_is_active((uv_handle_t *)&job->timeout_timer))
        return;
    uint64_t ran = uv_now(job->jobs->loop) - job->timer_started;
    job->timeout_left_ms = ran >= job->timeout_left_ms ? 1 : job->timeout_left_ms - ran;
    uv_timer_stop(&job->timeout_timer);
}

/* ---- an attempt starts ------------------------------------------------ */

void gvd_job_begin_run(gvd_job *job)
{
    double now = gvd_now();
    gvd_job_rate_sample(job, now, 0, true);
    job->timed_out = false;
    job->not_before = 0;
    gvd_job_transition_begin(job); /* put back if the store refuses it */
    /* On PostgreSQL, staged now, in the scheduler's group window: the
     * persist effect may run only after the window has closed (the
     * scheduler is itself an effect, and the flush runs the effects it
     * triggers after it), and would then write outside the group — a write
     * durable only later, with the reconcile effect spawning meanwhile.
     * Staged, the spawn waits for the tick's commit (group.c). */
    if (gvd_store_deferred(job->jobs->store))
        (void)gvd_group_stage(job);
    gv_batch_begin();
    gv_signal_set_int(job->attempts, gvd_peek_int(job->attempts) + 1);
    if (gvd_peek_double(job->started_at) == 0)
        gv_signal_set_double(job->started_at, now);
    gv_signal_set_double(job->current, 0);
    gv_signal_set_double(job->progress_at, now);
    gv_signal_set(job->exit_status, gv_none());
    gv_signal_set_int(job->term_signal, 0);
    gv_signal_set_int(job->status, GVD_RUNNING);
    gv_batch_end();
}

static void gvd_fail_now(gvd_job *job, const char *why)
{
    gv_batch_begin();
    gv_signal_set_string(job->error, why);
    gv_signal_set_double(job->finished_at, gvd_now());
    gv_signal_set_int(job->status, GVD_FAILED);
    gv_batch_end();
}

/* The process runs (the demo at once, a process once its supervisor said
 * so): its pid, its timeout, params patched before this attempt started. */
static void gvd_job_started(gvd_job *job)
{
    job->exec_state = GVD_EXEC_RUNNING;
    job->pid_start_ticks = gvd_exec_start_ticks(job->exec);
    job->timeout_left_ms = job->spec.timeout_s > 0 ? (uint64_t)ceil(job->spec.timeout_s * 1000.0) : 0;
    gvd_timeout_start(job);
    gv_signal_set_int(job->pid, gvd_exec_pid(job->exec));
    gvd_params_deliver(job);
}

/* It did not start, for the runner's reason, word for word.  A job the user
 * cancelled meanwhile stays cancelled. */
static void gvd_spawn_failed(gvd_job *job, const char *err)
{
    gvd_log(GVD_LOG_WARN, "job.spawn_failed", "job=%lld error=%s", (long long)job->id,
            gvd_log_quote(err, (char[300]){0}, 300));
    if (!gvd_status_finished(gvd_job_status_peek(job)))
        gvd_fail_now(job, *err ? err : "could not start the job");
    gvd_jobs_live_remove(job->jobs, job);
}

static void gvd_spawn(gvd_job *job)
{
    gvd_exec_opts opts = {
        .kind = job->spec.kind,
        .argv = job->spec.argv,
        .env = job->spec.env,
        .cwd = job->spec.cwd,
        .log_path = job->log_path,
        .log_limit = job->jobs->cfg.log_limit,
        .job_id = job->id,
        .attempt = gvd_peek_int(job->attempts),
        .pause_mode = job->spec.pause_mode,
        .demo_step_ms = job->spec.demo_step_ms,
        /* 0 for a new attempt (begin_run reset it); after a restart the
         * demo goes on from where it was. */
        .demo_start = gvd_peek_double(job->current),
        .shim_path = job->jobs->cfg.shim_path,
        .spawner = job->jobs->cfg.spawner,
    };
    char run_dir[4200];
    gvd_jobs_run_dir(job->jobs, job->id, run_dir, sizeof run_dir);
    opts.run_dir = run_dir;
    char err[256] = "";
    job->exec = gvd_exec_spawn(job->jobs->loop, &opts, &gvd_job_events, job, err, sizeof err);
    if (!job->exec) {
        gvd_spawn_failed(job, err);
        return;
    }
    if (gvd_exec_starting(job->exec))
        job->exec_state = GVD_EXEC_STARTING; /* gvd_on_start goes on */
    else
        gvd_job_started(job);
}

/* The supervisor answered.  Meanwhile the user may have paused or cancelled
 * the job (committed, not yet applied: reconcile waits for a starting
 * process), so the process now follows whatever the status is. */
static void gvd_on_start(void *ud, const char *error)
{
    gvd_job *job = ud;
    if (error) {
        gvd_exec *x = job->exec;
        job->exec = NULL;
        job->exec_state = GVD_EXEC_NONE;
        gvd_exec_free(x);
        gvd_spawn_failed(job, error);
    } else {
        gvd_job_started(job);
        gvd_job_follow(job, gvd_job_status_peek(job));
    }
    gvd_jobs_started(job->jobs, job);
}

/* ---- following the status -------------------------------------------- */

/* A starting process (GVD_EXEC_STARTING) is left alone: gvd_on_start calls
 * this again once it runs. */
void gvd_job_follow(gvd_job *job, gvd_status status)
{
    switch (status) {
    case GVD_RUNNING:
        if (job->exec_state == GVD_EXEC_NONE)
            gvd_spawn(job);
        else if (job->exec_state == GVD_EXEC_PAUSED && gvd_exec_resume(job->exec) == 0) {
            job->exec_state = GVD_EXEC_RUNNING;
            gvd_timeout_start(job);
        }
        break;
    case GVD_PAUSED:
        if (job->exec_state == GVD_EXEC_RUNNING && gvd_exec_pause(job->exec) == 0) {
            job->exec_state = GVD_EXEC_PAUSED;
            gvd_timeout_pause(job);
        }
        break;
    case GVD_CANCELLED:
    case GVD_FAILED:
        uv_timer_stop(&job->retry_timer);
        uv_timer_stop(&job->timeout_timer);
        if (job->exec_state == GVD_EXEC_RUNNING || job->exec_state == GVD_EXEC_PAUSED) {
            job->exec_state = GVD_EXEC_STOPPING;
            gvd_exec_cancel(job->exec, job->jobs->cfg.cancel_grace_ms);
        } else if (job->exec_state == GVD_EXEC_NONE) {
            gvd_jobs_live_remove(job->jobs, job);
        }
        break;
    case GVD_QUEUED:
    case GVD_SUCCEEDED:
    case GVD_NSTATUS:
        break;
    }
}

/* ---- after a restart -------------------------------------------------- */

int gvd_job_adopt(gvd_job *job, bool *never_started, char *err, size_t errlen)
{
    char run_dir[4200];
    gvd_jobs_run_dir(job->jobs, job->id, run_dir, sizeof run_dir);
    gvd_exec_adopt_opts o = {.run_dir = run_dir,
                             .job_id = job->id,
                             .pause_mode = job->spec.pause_mode,
                             .pid = (pid_t)gvd_peek_int(job->pid),
                             .start_ticks = job->pid_start_ticks};
    job->exec = gvd_exec_adopt(job->jobs->loop, &o, &gvd_job_events, job, never_started, err, errlen);
    if (!job->exec)
        return -1;
    /* The process's actual state; the reconcile effect, started next, makes
     * it follow the stored status (a pause stored just before a crash is
     * applied now, and so is a resume). */
    job->exec_state = gvd_exec_paused(job->exec) ? GVD_EXEC_PAUSED : GVD_EXEC_RUNNING;
    job->pid_start_ticks = gvd_exec_start_ticks(job->exec);
    /* The timeout counts from the attempt's start when that is known (first
     * attempt), else from now: time spent while the daemon was down counts. */
    double elapsed = gvd_peek_int(job->attempts) <= 1 ? gvd_now() - gvd_peek_double(job->started_at) : 0;
    double left = job->spec.timeout_s - (elapsed > 0 ? elapsed : 0);
    job->timeout_left_ms = job->spec.timeout_s > 0 ? (left > 0.001 ? (uint64_t)ceil(left * 1000.0) : 1) : 0;
    if (job->exec_state == GVD_EXEC_RUNNING)
        gvd_timeout_start(job);
    if (gvd_exec_pid(job->exec) > 0)
        gv_signal_set_int(job->pid, gvd_exec_pid(job->exec));
    return 0;
}

/* ---- what the process reports ----------------------------------------- */

static void gvd_on_message(void *ud, const gvd_msg *msg)
{
    gvd_job *job = ud;
    char q[300];
    switch (msg->kind) {
    case GVD_MSG_PROGRESS: {
        double now = gvd_now(), total = msg->has_total ? msg->total : 100.0;
        gv_batch_begin();
        gv_signal_set_double(job->total, total);
        gv_signal_set_double(job->current, msg->current);
        gvd_job_rate_sample(job, now, gvd_percent_of(msg->current, total), false);
        gv_signal_set_double(job->progress_at, now);
        gv_batch_end();
        break;
    }
    case GVD_MSG_STATUS:
        gv_signal_set_string(job->message, msg->text);
        break;
    case GVD_MSG_METRIC: {
        json_t *old = json_object_get(job->metrics, msg->text);
        /* Every report is a point of the history, also a repeated value;
         * the history holds as many series as `metrics` holds names, so a
         * refusal here is the same limit (or no memory for a new series). */
        bool kept = gvd_metrics_record(job, msg->text, msg->value, gvd_now()) == 0;
        if (!kept || (!old && json_object_size(job->metrics) >= GVD_MAX_METRICS)) {
            gvd_log(GVD_LOG_WARN, "job.protocol", "job=%lld reason=\"too many metrics\" metric=%s",
                    (long long)job->id, gvd_log_quote(msg->text, q, sizeof q));
            break;
        }
        if (old && json_is_real(old) && json_real_value(old) == msg->value)
            break;
        if (json_object_set_new(job->metrics, msg->text, json_real(msg->value)) == 0)
            gv_signal_set_int(job->metrics_rev, gvd_peek_int(job->metrics_rev) + 1);
        break;
    }
    case GVD_MSG_ACK:
        gvd_log(GVD_LOG_DEBUG, "job.ack", "job=%lld ack=%s revision=%lld", (long long)job->id,
                gvd_log_quote(msg->text, q, sizeof q), msg->has_revision ? msg->revision : -1LL);
        if (strcmp(msg->text, "params") == 0)
            gvd_params_ack(job, msg->has_revision, msg->revision);
        break;
    case GVD_MSG_INVALID:
        gvd_log(GVD_LOG_WARN, "job.protocol", "job=%lld reason=%s", (long long)job->id,
                gvd_log_quote(msg->reason ? msg->reason : "malformed line", q, sizeof q));
        break;
    case GVD_MSG_NONE:
        break;
    }
}

/* ---- its end ---------------------------------------------------------- */

static void gvd_retry_cb(uv_timer_t *t)
{
    gvd_job *job = t->data;
    /* The loop's clock and the wall clock disagree by a millisecond or so:
     * the backoff is over when its timer says so. */
    job->not_before = 0;
    gv_signal_set_int(job->jobs->wake, gvd_peek_int(job->jobs->wake) + 1);
}

static void gvd_describe_exit(const gvd_exit *exit, char *buf, size_t n)
{
    if (exit->term_signal)
        snprintf(buf, n, "killed by signal %d (%s)", exit->term_signal, strsignal(exit->term_signal));
    else
        snprintf(buf, n, "exited with status %lld", (long long)exit->exit_status);
}

static void gvd_on_exit(void *ud, const gvd_exit *exit)
{
    gvd_job *job = ud;
    uv_timer_stop(&job->timeout_timer);
    if (!gvd_job_acts(job)) {
        /* Fenced (owner.c): the row is another node's now; this process's
         * end is not the job's outcome.  The record stays for nobody. */
        gvd_exec *fenced = job->exec;
        job->exec = NULL;
        job->exec_state = GVD_EXEC_NONE;
        gvd_exec_free(fenced);
        if (gvd_status_finished(gvd_job_status_peek(job)))
            gvd_jobs_live_remove(job->jobs, job);
        return;
    }
    /* The handle is released after the outcome is stored: releasing it
     * removes the supervisor's exit record, which until then is what a
     * restart would use (docs/guarantees.md). */
    gvd_exec *x = job->exec;
    job->exec = NULL;
    job->exec_state = GVD_EXEC_NONE;
    gvd_status status = gvd_job_status_peek(job);
    char why[200];
    gvd_describe_exit(exit, why, sizeof why);
    if (exit->lost)
        snprintf(why, sizeof why, "supervisor lost: galvani-shim died without recording the job's exit "
                                  "(its processes were killed)");

    /* The exit is the world's: once it is in, a pause staged in the same
     * tick is no longer something to put back if the store refuses. */
    job->revertible = false;
    gvd_jobs_group_begin(job->jobs); /* joins the tick's commit, with the start it frees a slot for */
    gv_batch_begin();
    gv_signal_set_int(job->exit_status, exit->exit_status);
    gv_signal_set_int(job->term_signal, exit->term_signal);
    if (gvd_status_finished(status)) {
        /* cancelled or timed out: the status was final already */
    } else if (exit->exit_status == 0 && exit->term_signal == 0 && !exit->cancelled) {
        gv_signal_set_string(job->error, ""); /* an earlier attempt's "retrying in ..." is no error now */
        gv_signal_set_double(job->finished_at, gvd_now());
        gv_signal_set_int(job->status, GVD_SUCCEEDED);
    } else if (exit->cancelled) {
        gv_signal_set_double(job->finished_at, gvd_now());
        gv_signal_set_int(job->status, GVD_CANCELLED);
    } else if (!exit->lost && gvd_peek_int(job->attempts) <= job->spec.max_retries) {
        int64_t attempt = gvd_peek_int(job->attempts);
        /* Doubling from retry_backoff, up to a day: with max_retries up to
         * 100, 2^99 times any backoff would overflow the conversion to
         * timer milliseconds (and retry at once). */
        double backoff = fmin(job->spec.retry_backoff_s * pow(2.0, (double)(attempt - 1)), GVD_SPEC_MAX_BACKOFF_S);
        char msg[300];
        snprintf(msg, sizeof msg, "attempt %lld %s; retrying in %g s", (long long)attempt, why, backoff);
        gv_signal_set_string(job->error, msg);
        job->not_before = gvd_now() + backoff;
        uv_timer_start(&job->retry_timer, gvd_retry_cb, (uint64_t)ceil(backoff * 1000.0), 0);
        gv_signal_set_int(job->status, GVD_QUEUED);
    } else {
        gv_signal_set_string(job->error, why);
        gv_signal_set_double(job->finished_at, gvd_now());
        gv_signal_set_int(job->status, GVD_FAILED);
    }
    if (gvd_status_finished(gvd_job_status_peek(job)))
        gvd_jobs_live_remove(job->jobs, job);
    gv_batch_end();
    gvd_jobs_group_end(job->jobs);
    if (job->group_pending)
        job->exit_exec = x; /* released by gvd_job_follow_committed */
    else
        gvd_job_release_exit(job, x, !job->persist_failed);
}

/* The exit's outcome is stored (consume the supervisor's record and remove
 * the run dir), or not (keep the record for a restart). */
void gvd_job_release_exit(gvd_job *job, gvd_exec *x, bool stored)
{
    (void)job;
    if (stored)
        gvd_exec_free(x);
    else
        gvd_exec_detach(x);
}
