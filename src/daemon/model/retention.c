/*
 * retention.c — bounded history: --max-jobs N and --keep-finished DURATION.
 *
 * Every job lives in memory (the registry) and in the store, so without a
 * limit a daemon that runs jobs forever grows forever.  Finished jobs are
 * deleted, oldest (lowest id) first, while the registry holds more than
 * max_jobs jobs, and once they finished more than keep_finished_s ago.
 * Queued, running and paused jobs are never deleted, nor a finished job whose
 * process is still being reaped.  A pipeline's jobs go only with their
 * pipeline: once no finished job of its own is left to delete, the oldest
 * finished pipelines go whole (pipeline/control.c), under the same limits
 * (their jobs count toward max_jobs; their age is the pipeline's).
 *
 * Pruning is asked for from places where freeing a job is not allowed (the
 * effects of the job that just finished), so _schedule only starts a 0 ms
 * timer and the work happens on the next loop turn.  Deletions go to the
 * store in transactions of at most GVD_PRUNE_CHUNK rows; only after a commit
 * are the jobs dropped from memory and their log files removed, so a failed
 * commit (disk full, locked) changes nothing and is retried after the store
 * recovers (fault.c schedules us again).  Between chunks the loop runs, so a
 * large backlog (a restart with a lower limit) does not stall requests.
 */
#include "model.h"

#include <stdlib.h>

#include "../pipeline/pipeline.h"
#include "../util/log.h"

#define GVD_PRUNE_CHUNK 256

struct gvd_retention {
    gvd_jobs *jobs;
    uv_timer_t timer;
};

static double gvd_finished_time(gvd_job *job)
{
    double t = gv_value_to_double(gv_signal_peek(job->finished_at));
    return t > 0 ? t : job->created_at;
}

static bool gvd_prunable(gvd_job *job)
{
    /* a pipeline's jobs go with their pipeline (DELETE /pipelines/{id}) */
    return gvd_status_finished(gvd_job_status_peek(job)) && !job->exec && !gvd_job_in_pipeline(job);
}

/* Deletes one chunk.  Returns how many jobs it removed, or -1 if the store
 * refused (nothing removed). */
static long gvd_prune_chunk(gvd_jobs *jobs, bool *more)
{
    size_t excess = jobs->count > jobs->cfg.max_jobs ? jobs->count - jobs->cfg.max_jobs : 0;
    double cutoff = jobs->cfg.keep_finished_s > 0 ? gvd_now() - jobs->cfg.keep_finished_s : 0;
    gvd_job *pick[GVD_PRUNE_CHUNK];
    size_t n = 0;
    *more = false;
    /* A finished job whose end is still staged (group.c) is stored first:
     * a deleted row must not be written back by the tick's commit. */
    if (gvd_jobs_group_pending(jobs))
        gvd_jobs_group_commit(jobs);
    for (gvd_job *j = jobs->first; j; j = j->next) {
        if (excess == 0 && cutoff <= 0)
            break;
        if (!gvd_prunable(j))
            continue;
        bool old = cutoff > 0 && gvd_finished_time(j) < cutoff;
        if (excess == 0 && !old)
            continue;
        if (n == GVD_PRUNE_CHUNK) {
            *more = true;
            break;
        }
        pick[n++] = j;
        if (excess)
            excess--;
    }
    if (n == 0)
        return 0;
    char err[256];
    if (gvd_store_begin(jobs->store, err, sizeof err) != 0)
        goto refused;
    size_t done = 0;
    /* "no job N" (a row someone removed by hand) is fine: it is gone. */
    while (done < n && (gvd_store_delete(jobs->store, pick[done]->id, err, sizeof err) == 0 ||
                        gvd_store_available(jobs->store)))
        done++;
    if (gvd_store_commit(jobs->store, err, sizeof err) != 0)
        goto refused;
    /* Only what the committed transaction deleted leaves memory. */
    for (size_t i = 0; i < done; i++)
        gvd_jobs_forget(jobs, pick[i]);
    *more = *more || done < n;
    if (!gvd_store_available(jobs->store))
        gvd_faults_arm(jobs);
    return (long)done;
refused:
    gvd_log(gvd_store_available(jobs->store) ? GVD_LOG_ERROR : GVD_LOG_DEBUG, "jobs.prune_failed", "jobs=%zu error=%s",
            n, gvd_log_quote(err, (char[300]){0}, 300));
    if (!gvd_store_available(jobs->store))
        gvd_faults_arm(jobs); /* it schedules us again once the store recovers */
    return -1;
}

/* When the oldest finished job passes keep_finished_s, or -1 if none. */
static double gvd_next_expiry(gvd_jobs *jobs)
{
    double first = gvd_pipelines_next_expiry(jobs, jobs->cfg.keep_finished_s);
    for (gvd_job *j = jobs->first; j; j = j->next) {
        if (!gvd_status_finished(gvd_job_status_peek(j)) || gvd_job_in_pipeline(j))
            continue;
        double t = gvd_finished_time(j) + jobs->cfg.keep_finished_s;
        if (first < 0 || t < first)
            first = t;
    }
    return first;
}

static void gvd_prune_cb(uv_timer_t *t)
{
    struct gvd_retention *r = t->data;
    gvd_jobs *jobs = r->jobs;
    if (!gvd_store_available(jobs->store))
        return; /* fault.c schedules us when it recovers */
    bool more = false;
    long removed = gvd_prune_chunk(jobs, &more);
    if (removed >= 0 && !more) {
        /* the jobs of their own are done with: whole pipelines next */
        double cutoff = jobs->cfg.keep_finished_s > 0 ? gvd_now() - jobs->cfg.keep_finished_s : 0;
        long p = gvd_pipelines_prune(jobs, cutoff);
        removed = p < 0 ? -1 : removed + p;
    }
    if (removed > 0)
        gvd_log(GVD_LOG_DEBUG, "jobs.pruned", "jobs=%ld kept=%zu max_jobs=%u keep_finished_s=%g", removed, jobs->count,
                jobs->cfg.max_jobs, jobs->cfg.keep_finished_s);
    if (removed > 0 && more) {
        uv_timer_start(&r->timer, gvd_prune_cb, 0, 0); /* the next chunk after the loop had a turn */
        return;
    }
    if (removed < 0 || jobs->cfg.keep_finished_s <= 0)
        return;
    double at = gvd_next_expiry(jobs);
    if (at < 0)
        return; /* nothing finished: a finish schedules us */
    double wait_ms = (at - gvd_now()) * 1000.0 + 10; /* just past it */
    uv_timer_start(&r->timer, gvd_prune_cb, wait_ms < 10 ? 10 : (uint64_t)wait_ms, 0);
}

void gvd_retention_schedule(gvd_jobs *jobs)
{
    struct gvd_retention *r = jobs->retention;
    if (!r || jobs->closing)
        return;
    /* Nothing to do and no age limit: the common case costs one compare. */
    if (jobs->count <= jobs->cfg.max_jobs && jobs->cfg.keep_finished_s <= 0)
        return;
    if (uv_is_active((uv_handle_t *)&r->timer) && uv_timer_get_due_in(&r->timer) == 0)
        return;
    uv_timer_start(&r->timer, gvd_prune_cb, 0, 0);
}

int gvd_retention_new(gvd_jobs *jobs)
{
    if (!jobs->cfg.max_jobs)
        jobs->cfg.max_jobs = GVD_MAX_JOBS_DEFAULT;
    struct gvd_retention *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->jobs = jobs;
    uv_timer_init(jobs->loop, &r->timer);
    r->timer.data = r;
    jobs->retention = r;
    return 0;
}

static void gvd_retention_closed(uv_handle_t *h)
{
    free(h->data);
}

void gvd_retention_free(gvd_jobs *jobs)
{
    struct gvd_retention *r = jobs->retention;
    if (!r)
        return;
    jobs->retention = NULL;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, gvd_retention_closed);
}
