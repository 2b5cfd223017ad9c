/*
 * job.c — one job: its signals, its computeds, its effects, its lifetime.
 * Its process (started, followed, timed out, ended, retried) is run.c's.
 *
 * Follow a pause from the HTTP handler down:
 *   gvd_job_pause()            checks the state machine, then in one batch
 *                              writes status = paused;
 *   persist effect             sees status differ from what the store has:
 *                              writes the row now (a 2xx means committed);
 *   reconcile effect           sees status = paused while the process runs:
 *                              gvd_exec_pause() -> SIGSTOP to the group;
 *   notify effect              tells the push hub, which sends the frame;
 *   log effect                 writes "job.status ... from=running to=paused".
 * If the store refused the write, reconcile puts status back and the caller
 * answers 503: a transition reaches the world only once it is durable.
 */
#include "model.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../obs/obs.h"
#include "../util/log.h"

double gvd_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

gvd_status gvd_job_status_peek(const gvd_job *job)
{
    return (gvd_status)gvd_peek_int(job->status);
}

/* ---- derived values --------------------------------------------------- */

double gvd_percent_of(double cur, double tot)
{
    double p = tot > 0 ? cur * 100.0 / tot : 0.0;
    return p < 0 ? 0 : p > 100 ? 100 : p;
}

static void gvd_percent_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    gvd_job *job = ud;
    if (gv_signal_get_int(job->status) == GVD_SUCCEEDED) {
        *out = gv_double(100.0);
        return;
    }
    *out = gv_double(gvd_percent_of(gv_signal_get_double(job->current), gv_signal_get_double(job->total)));
}

void gvd_job_rate_sample(gvd_job *job, double t, double pct, bool fresh)
{
    struct gvd_rate_sample *v = job->rate_samples;
    if (fresh)
        job->rate_n = 0;
    if (job->rate_n > 0 && t < v[job->rate_n - 1].t)
        return; /* the clock went back: keep the points consistent */
    /* The newest point moves with every report until it is far enough
     * from the one before it to be kept. */
    if (job->rate_n >= 2 && v[job->rate_n - 1].t - v[job->rate_n - 2].t < GVD_RATE_SPACING_S)
        job->rate_n--;
    if (job->rate_n == GVD_RATE_SAMPLES) {
        memmove(v, v + 1, (GVD_RATE_SAMPLES - 1) * sizeof *v);
        job->rate_n--;
    }
    v[job->rate_n++] = (struct gvd_rate_sample){t, pct};
}

/* Percent per second from real progress points (see GVD_RATE_WINDOW_S):
 * the newest one back to the newest one at least the window older, else
 * the oldest.  Progress reports are what moves it (progress_at), so after
 * a restart it is computed from the stored points and the new reports,
 * never from when the daemon came back. */
static void gvd_rate_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    gvd_job *job = ud;
    (void)gv_computed_get_double(job->percent);
    (void)gv_signal_get_double(job->progress_at);
    (void)gv_signal_get_double(job->started_at); /* a new attempt starts over */
    *out = gv_double(0);
    unsigned n = job->rate_n;
    if (n < 2)
        return;
    const struct gvd_rate_sample *last = &job->rate_samples[n - 1], *base = &job->rate_samples[0];
    for (unsigned i = n - 1; i-- > 0;) {
        if (last->t - job->rate_samples[i].t >= GVD_RATE_WINDOW_S) {
            base = &job->rate_samples[i];
            break;
        }
    }
    double dt = last->t - base->t;
    if (dt > 0.2 && last->pct > base->pct)
        *out = gv_double((last->pct - base->pct) / dt);
}

static void gvd_eta_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    gvd_job *job = ud;
    double rate = gv_computed_get_double(job->rate);
    if (gv_signal_get_int(job->status) == GVD_RUNNING && rate > 0)
        *out = gv_double((100.0 - gv_computed_get_double(job->percent)) / rate);
}

/* ---- persistence ------------------------------------------------------ */

void gvd_job_to_row(gvd_job *job, gvd_job_row *row, char **owned)
{
    memset(row, 0, sizeof *row);
    /* The spec never changes after the insert: NULL keeps the stored one
     * (and job->spec_json lacks command and env: see gvd_job_new). */
    owned[0] = NULL;
    owned[1] = json_dumps(job->params, JSON_COMPACT);
    owned[2] = json_dumps(job->metrics, JSON_COMPACT);
    row->id = job->id;
    row->name = job->spec.name;
    row->kind = job->spec.kind == GVD_EXEC_DEMO ? "demo" : "process";
    row->status = gvd_status_name(gvd_job_status_peek(job));
    row->priority = job->spec.priority;
    row->spec_json = NULL;
    row->params_json = owned[1] ? owned[1] : "{}";
    row->metrics_json = owned[2] ? owned[2] : "{}";
    row->progress = gvd_peek_double(job->current);
    row->progress_total = gvd_peek_double(job->total);
    row->message = gv_signal_get_string(job->message);
    const char *error = gv_value_to_string(gv_signal_peek(job->error));
    row->error = error && *error ? error : NULL;
    row->pid = gvd_peek_int(job->pid);
    row->pid_start_ticks = job->pid_start_ticks;
    row->has_exit = gv_signal_peek(job->exit_status)->type != GV_NONE;
    row->exit_status = gvd_peek_int(job->exit_status);
    row->term_signal = gvd_peek_int(job->term_signal);
    row->attempts = gvd_peek_int(job->attempts);
    row->created_at = job->created_at;
    row->started_at = gvd_peek_double(job->started_at);
    row->finished_at = gvd_peek_double(job->finished_at);
    row->updated_at = gvd_now();
    row->node = gvd_job_node(job);
}

void gvd_job_row_release(char **owned)
{
    for (int i = 0; i < 3; i++)
        free(owned[i]);
}

int gvd_job_persist_now(gvd_job *job)
{
    gvd_job_row row;
    char *owned[3];
    char err[256];
    gv_untracked_t t = gv_untracked_begin();
    gvd_job_to_row(job, &row, owned);
    gv_untracked_end(t);
    int rc = gvd_store_update(job->jobs->store, &row, err, sizeof err);
    gvd_job_row_release(owned);
    if (rc != 0) {
        snprintf(job->persist_error, sizeof job->persist_error, "%s", err);
        /* A store fault is logged once by the store, not per write. */
        gvd_log(gvd_store_available(job->jobs->store) ? GVD_LOG_ERROR : GVD_LOG_DEBUG, "store.write_failed",
                "job=%lld error=%s", (long long)job->id, gvd_log_quote(err, (char[300]){0}, 300));
        return -1;
    }
    job->dirty = false;
    return 0;
}

/* Reads everything that is stored.  A change of status or params is written
 * at once; progress, message and metrics are written behind (gvd_jobs'
 * flush timer), at most a few times a second. */
static void gvd_persist_fx(void *ud)
{
    gvd_job *job = ud;
    gvd_status status = (gvd_status)gv_signal_get_int(job->status);
    int64_t params_rev = gv_signal_get_int(job->params_rev);
    (void)gv_signal_get(job->current);
    (void)gv_signal_get(job->total);
    (void)gv_signal_get(job->message);
    (void)gv_signal_get(job->metrics_rev);
    (void)gv_signal_get(job->pid);
    (void)gv_signal_get(job->exit_status);
    (void)gv_signal_get(job->attempts);
    (void)gv_signal_get(job->error);
    (void)gv_signal_get(job->params_applied);
    static int64_t const first_run = -1;
    if (job->persisted_params_rev == first_run || !gvd_job_acts(job)) {
        /* the row was just inserted, or it is another node's to write */
        job->persisted_params_rev = params_rev;
        job->persisted_status = status;
        return;
    }
    job->persist_failed = false;
    if (status != job->persisted_status || params_rev != job->persisted_params_rev) {
        if (gvd_group_stage(job))
            return; /* the tick's transaction writes it; the steps below wait (group.c) */
        if (gvd_job_persist_now(job) != 0) {
            job->persist_failed = true;
            gvd_jobs_mark_dirty(job->jobs, job); /* kept and retried unless reverted (fault.c) */
            return;
        }
        job->revertible = false; /* stored: what follows (a failed spawn) is not undone */
        job->persisted_status = status;
        job->persisted_params_rev = params_rev;
        return;
    }
    job->revertible = false; /* nothing new to store synchronously */
    gvd_jobs_mark_dirty(job->jobs, job);
}

/* ---- reconcile -------------------------------------------------------- */

/* Make the process follow `status` (the desired state): gvd_job_follow,
 * run.c. */
static void gvd_reconcile_fx(void *ud)
{
    gvd_job *job = ud;
    gvd_status status = (gvd_status)gv_signal_get_int(job->status);
    if (gvd_job_should_revert(job, status)) {
        /* Not durable, so not real: undo it; the caller answers 503. */
        gvd_job_revert(job);
        return;
    }
    if (job->group_pending || !gvd_job_acts(job))
        return; /* not stored yet (gvd_job_follow_committed follows), or another node's */
    gvd_job_follow(job, status);
}

/* ---- notify and log --------------------------------------------------- */

static void gvd_notify_fx(void *ud)
{
    gvd_job *job = ud;
    gv_signal *visible[] = {job->status, job->current, job->total, job->message, job->metrics_rev,
                            job->params_rev, job->pid, job->exit_status, job->term_signal, job->attempts,
                            job->started_at, job->finished_at, job->error, job->params_applied};
    for (size_t i = 0; i < sizeof visible / sizeof *visible; i++)
        (void)gv_signal_get(visible[i]);
    (void)gv_computed_get(job->percent);
    (void)gv_computed_get(job->rate);
    (void)gv_computed_get(job->eta);
    if (job->group_pending) {
        job->notify_due = true; /* told once it is stored (gvd_job_follow_committed) */
        return;
    }
    gvd_jobs_notify(job->jobs, job, false);
}

static const char *gvd_job_from_name(const gvd_job *job)
{
    return job->logged_status == GVD_NSTATUS ? "new" : gvd_status_name(job->logged_status);
}

static void gvd_log_status(gvd_job *job, gvd_status status);

static void gvd_log_fx(void *ud)
{
    gvd_job *job = ud;
    gvd_status status = (gvd_status)gv_signal_get_int(job->status);
    if (!job->group_pending) /* else logged once stored (gvd_job_follow_committed) */
        gvd_log_status(job, status);
}

static void gvd_log_status(gvd_job *job, gvd_status status)
{
    if (status == job->logged_status)
        return;
    char name[256], err[300];
    gv_untracked_t t = gv_untracked_begin();
    const char *error = gv_signal_get_string(job->error);
    if (gvd_status_finished(status) || (status == GVD_QUEUED && error && *error))
        gvd_log(GVD_LOG_INFO, "job.status", "job=%lld name=%s from=%s to=%s attempts=%lld error=%s",
                (long long)job->id, gvd_log_quote(job->spec.name, name, sizeof name),
                gvd_job_from_name(job), gvd_status_name(status), (long long)gvd_peek_int(job->attempts),
                gvd_log_quote(error ? error : "", err, sizeof err));
    else
        gvd_log(GVD_LOG_INFO, "job.status", "job=%lld name=%s from=%s to=%s pid=%lld", (long long)job->id,
                gvd_log_quote(job->spec.name, name, sizeof name), gvd_job_from_name(job),
                gvd_status_name(status), (long long)gvd_peek_int(job->pid));
    gv_untracked_end(t);
    gvd_obs_job_transition(job->logged_status, status); /* one per line above */
    job->logged_status = status;
}

/* ---- group commit (group.c) ------------------------------------------ */

bool gvd_job_committed(gvd_job *job, bool ok, const char *err)
{
    gvd_status status = gvd_job_status_peek(job);
    if (ok) {
        job->revertible = false;
        job->persist_failed = false;
        job->persisted_status = status;
        job->persisted_params_rev = gv_value_to_int(gv_signal_peek(job->params_rev));
        return true;
    }
    snprintf(job->persist_error, sizeof job->persist_error, "%s", err);
    job->persist_failed = true;
    if (gvd_job_should_revert(job, status)) {
        /* Not durable, so not real; its effects see only the old state. */
        gvd_job_revert(job);
        job->notify_due = false;
        return false;
    }
    job->revertible = false;
    gvd_jobs_mark_dirty(job->jobs, job); /* the world's: kept, written by the retry */
    return true;
}

void gvd_job_follow_committed(gvd_job *job, bool stored)
{
    gvd_status status = gvd_job_status_peek(job);
    gvd_job_follow(job, status);
    if (job->exit_exec) {
        gvd_exec *x = job->exit_exec;
        job->exit_exec = NULL;
        gvd_job_release_exit(job, x, stored);
    }
    if (job->notify_due) {
        job->notify_due = false;
        gvd_jobs_notify(job->jobs, job, false);
    }
    gvd_log_status(job, status);
}

/* ---- lifetime --------------------------------------------------------- */

gvd_job *gvd_job_new(gvd_jobs *jobs, int64_t id, gvd_spec *spec, json_t *spec_json, json_t *params,
                     double created_at)
{
    gvd_job *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->jobs = jobs;
    job->id = id;
    job->spec = *spec; /* takes ownership */
    memset(spec, 0, sizeof *spec);
    job->spec_json = spec_json;
    /* The command and environment are in job->spec, packed; as JSON they
     * cost ~90 bytes more per element, for the job's whole life.  The store
     * has the full spec (written once, at creation: gvd_job_to_row leaves
     * it alone), the API rebuilds "command" from argv, and env is never
     * shown.  (A demo job has neither: nothing to delete.) */
    (void)json_object_del(spec_json, "command");
    (void)json_object_del(spec_json, "env");
    job->params = params;
    job->schema = json_object_get(spec_json, "params_schema");
    if (json_is_null(job->schema))
        job->schema = NULL;
    job->metrics = json_object();
    job->created_at = created_at;
    job->persisted_params_rev = -1;
    job->logged_status = GVD_NSTATUS;
    if (job->spec.kind == GVD_EXEC_PROCESS) {
        size_t n = strlen(jobs->log_dir) + 32;
        job->log_path = malloc(n);
        if (job->log_path)
            snprintf(job->log_path, n, "%s/%lld.log", jobs->log_dir, (long long)id);
    }
    job->status = gv_signal_new(gv_int(GVD_QUEUED));
    job->current = gv_signal_new(gv_double(0));
    job->total = gv_signal_new(gv_double(100));
    job->progress_at = gv_signal_new(gv_double(0));
    job->message = gv_signal_new(gv_str(""));
    job->metrics_rev = gv_signal_new(gv_int(0));
    job->params_rev = gv_signal_new(gv_int(0));
    job->pid = gv_signal_new(gv_int(0));
    job->exit_status = gv_signal_new(gv_none());
    job->term_signal = gv_signal_new(gv_int(0));
    job->attempts = gv_signal_new(gv_int(0));
    job->started_at = gv_signal_new(gv_double(0));
    job->finished_at = gv_signal_new(gv_double(0));
    job->error = gv_signal_new(gv_str(""));
    job->params_applied = gv_signal_new(gv_int(0));
    job->percent = gv_computed_new(gvd_percent_fn, job);
    job->rate = gv_computed_new(gvd_rate_fn, job);
    job->eta = gv_computed_new(gvd_eta_fn, job);
    job->scope = gv_scope_new();
    uv_timer_init(jobs->loop, &job->timeout_timer);
    uv_timer_init(jobs->loop, &job->retry_timer);
    job->timeout_timer.data = job->retry_timer.data = job;
    job->open_handles = 2;
    if (!job->metrics || !job->status || !job->current || !job->total || !job->progress_at || !job->message ||
        !job->metrics_rev || !job->params_rev || !job->pid || !job->exit_status || !job->term_signal ||
        !job->attempts || !job->started_at || !job->finished_at || !job->error || !job->params_applied ||
        !job->percent || !job->rate ||
        !job->eta || !job->scope || (job->spec.kind == GVD_EXEC_PROCESS && !job->log_path)) {
        gvd_job_free(job);
        return NULL;
    }
    if (gvd_job_rules_attach(job) != 0) {
        gvd_job_free(job);
        return NULL;
    }
    char buf[64];
    snprintf(buf, sizeof buf, "job%lld.status", (long long)id);
    gv_signal_set_name(job->status, buf);
    return job;
}

/* Effects start once the job's state is restored or initialised: creating
 * them runs them once, which must see the real state. */
void gvd_job_start_effects(gvd_job *job)
{
    gv_scope_enter(job->scope);
    /* Creation order is run order within a flush: persist must run before
     * reconcile, which reverts a refused transition (fault.c) before it
     * would signal the process, and before notify and log see it. */
    job->persist_fx = gv_effect_new(gvd_persist_fx, job);
    job->reconcile_fx = gv_effect_new(gvd_reconcile_fx, job);
    job->notify_fx = gv_effect_new(gvd_notify_fx, job);
    job->log_fx = gv_effect_new(gvd_log_fx, job);
    gvd_job_rules_start(job); /* last: a rule acts on what the job's own effects settled */
    gv_scope_leave(job->scope);
}

void gvd_job_restore(gvd_job *job, const gvd_job_row *row)
{
    gv_batch_begin();
    gvd_status st = GVD_FAILED;
    gvd_status_parse(row->status, &st);
    gv_signal_set_int(job->status, st);
    gv_signal_set_double(job->current, row->progress);
    gv_signal_set_double(job->total, row->progress_total > 0 ? row->progress_total : 100);
    gv_signal_set_string(job->message, row->message ? row->message : "");
    gv_signal_set_string(job->error, row->error ? row->error : "");
    gv_signal_set_int(job->pid, row->pid);
    if (row->has_exit)
        gv_signal_set_int(job->exit_status, row->exit_status);
    gv_signal_set_int(job->term_signal, row->term_signal);
    gv_signal_set_int(job->attempts, row->attempts);
    gv_signal_set_double(job->started_at, row->started_at);
    gv_signal_set_double(job->finished_at, row->finished_at);
    gv_signal_set_double(job->progress_at, row->updated_at);
    /* The rate's points: the attempt's start at 0 % when it is the first
     * attempt (whose start is stored), and the stored progress at the time
     * it was stored.  Both are true; the time of this restart is not one. */
    double total = row->progress_total > 0 ? row->progress_total : 100;
    job->rate_n = 0;
    if (row->attempts <= 1 && row->started_at > 0 && row->started_at < row->updated_at)
        gvd_job_rate_sample(job, row->started_at, 0, true);
    gvd_job_rate_sample(job, row->updated_at, gvd_percent_of(row->progress, total), false);
    gv_batch_end();
    job->pid_start_ticks = row->pid_start_ticks;
    job->logged_status = st;
    json_t *m = row->metrics_json ? json_loads(row->metrics_json, 0, NULL) : NULL;
    if (json_is_object(m)) {
        json_decref(job->metrics);
        job->metrics = m;
    } else {
        json_decref(m);
    }
}

static void gvd_job_handle_closed(uv_handle_t *h)
{
    gvd_job *job = h->data;
    if (--job->open_handles > 0)
        return;
    gvd_spec_clear(&job->spec);
    json_decref(job->spec_json);
    json_decref(job->params);
    json_decref(job->metrics);
    gvd_params_free(job);
    gvd_metrics_free(job);
    free(job->log_path);
    free(job);
}

void gvd_job_free(gvd_job *job)
{
    gv_scope_free(job->scope); /* effects first: they read the nodes below */
    free(job->node);
    gvd_job_rules_free(job);
    gvd_job_body_forget(job);
    gv_computed_free(job->eta);
    gv_computed_free(job->rate);
    gv_computed_free(job->percent);
    gv_signal *sigs[] = {job->status, job->current, job->total, job->progress_at, job->message, job->metrics_rev,
                         job->params_rev, job->pid, job->exit_status, job->term_signal, job->attempts,
                         job->started_at, job->finished_at, job->error, job->params_applied};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        gv_signal_free(sigs[i]);
    if (job->exit_exec) /* never stored: keep its record */
        gvd_exec_detach(job->exit_exec);
    job->exit_exec = NULL;
    if (job->exec) {
        /* A live job at shutdown: left to its supervisor (galvanid), or
         * killed (embedders, tests). */
        if (job->jobs->cfg.leave_running)
            gvd_exec_free(job->exec);
        else
            gvd_exec_kill(job->exec);
        job->exec = NULL;
    }
    uv_close((uv_handle_t *)&job->timeout_timer, gvd_job_handle_closed);
    uv_close((uv_handle_t *)&job->retry_timer, gvd_job_handle_closed);
}
