/*
 * metrics.c — each job's metric history: every "::metric NAME VALUE" a job
 * reports becomes a point (now, value) of the series NAME, bounded and
 * downsampled by series.c, kept in the store and served by
 * GET /jobs/{id}/metrics.
 *
 * The job's "metrics" field (the latest value of each) stays what it was;
 * this is the time dimension behind it, so that a dashboard opened late, or
 * reloaded, draws the whole run.
 *
 * Persistence is write-behind, with the progress flush (jobs.c): a point is
 * one row (job, name, idx), appended; when a series compacts, every index
 * moves, so the next flush rewrites the series and trims the rows past its
 * new end.  Rows are INSERT OR REPLACE, so a flush that failed and is
 * retried writes the same rows again without duplicates.  What a crash can
 * lose is what the store's write-behind can lose: the points reported since
 * the last flush (docs/guarantees.md).
 */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../util/grow.h"
#include "../util/log.h"

static size_t gvd_bound(const gvd_job *job)
{
    unsigned b = job->jobs->cfg.metric_points;
    return b ? b : GVD_SERIES_DEFAULT_BOUND;
}

static gvd_series *gvd_find(gvd_job *job, const char *name)
{
    for (size_t i = 0; i < job->nseries; i++)
        if (strcmp(job->series[i].name, name) == 0)
            return &job->series[i];
    return NULL;
}

/* The series `name`, created if the job has fewer than GVD_MAX_METRICS;
 * NULL if it may not have another, or out of memory. */
static gvd_series *gvd_find_or_add(gvd_job *job, const char *name)
{
    gvd_series *s = gvd_find(job, name);
    if (s || job->nseries >= GVD_MAX_METRICS)
        return s;
    if (gvd_grow((void **)&job->series, &job->series_cap, job->nseries, sizeof *job->series, 4) != 0)
        return NULL;
    s = &job->series[job->nseries];
    if (gvd_series_init(s, name, gvd_bound(job)) != 0)
        return NULL;
    job->nseries++;
    return s;
}

int gvd_metrics_record(gvd_job *job, const char *name, double value, double now_s)
{
    gvd_series *s = gvd_find_or_add(job, name);
    if (!s || gvd_series_push(s, now_s * 1000.0, value, 1) != 0)
        return -1;
    gvd_jobs_mark_history(job->jobs, job);
    return 0;
}

void gvd_metrics_free(gvd_job *job)
{
    for (size_t i = 0; i < job->nseries; i++)
        gvd_series_clear(&job->series[i]);
    free(job->series);
    job->series = NULL;
    job->nseries = job->series_cap = 0;
}

/* ---- persistence ------------------------------------------------------------ */

int gvd_metrics_write(gvd_job *job, char *err, size_t errlen)
{
    gvd_store *st = job->jobs->store;
    for (size_t i = 0; i < job->nseries; i++) {
        gvd_series *s = &job->series[i];
        for (size_t k = s->stored; k < s->len; k++) {
            gvd_point_row row = {.job_id = job->id, .name = s->name, .idx = (int64_t)k, .t_ms = s->pts[k].t_ms,
                                 .value = s->pts[k].v, .weight = s->pts[k].w};
            if (gvd_store_point_put(st, &row, err, errlen) != 0)
                return -1;
        }
        if (s->stored_len > s->len &&
            gvd_store_points_trim(st, job->id, s->name, (int64_t)s->len, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* The flush that called gvd_metrics_write committed; nothing was added in
 * between (the loop thread ran neither a job nor a request meanwhile). */
void gvd_metrics_committed(gvd_job *job)
{
    for (size_t i = 0; i < job->nseries; i++) {
        gvd_series *s = &job->series[i];
        s->stored = s->stored_len = s->len;
    }
}

static int gvd_point_row_cb(void *ud, const gvd_point_row *row)
{
    gvd_jobs *jobs = ud;
    gvd_job *job = gvd_jobs_get(jobs, row->job_id);
    if (!job)
        return 0;
    gvd_series *s = gvd_find_or_add(job, row->name);
    if (!s)
        return job->nseries >= GVD_MAX_METRICS ? 0 : -1;
    if (row->idx != (int64_t)s->stored_len) {
        gvd_log(GVD_LOG_ERROR, "store.bad_row", "job=%lld metric=%s idx=%lld expected=%zu", (long long)job->id,
                s->name, (long long)row->idx, s->stored_len);
        return 0;
    }
    s->stored_len++;
    if (gvd_series_push(s, row->t_ms, row->value, row->weight > 0 ? row->weight : 1) != 0)
        return 0; /* a NaN the store kept as NULL, read back as 0 by SQLite: skipped */
    /* A smaller --metric-points than the run that stored these compacts
     * while loading: then the next flush rewrites the series. */
    if (s->len == s->stored_len && s->stored + 1 == s->len)
        s->stored = s->len;
    else
        gvd_jobs_mark_history(jobs, job);
    return 0;
}

int gvd_metrics_load(gvd_jobs *jobs, char *err, size_t errlen)
{
    return gvd_store_points_load(jobs->store, gvd_point_row_cb, jobs, err, errlen);
}

/* ---- JSON ------------------------------------------------------------------- */

static json_t *gvd_series_json(const gvd_series *s, double since_ms)
{
    json_t *arr = json_array();
    for (size_t k = 0; arr && k < s->len; k++) {
        /* Compared as served (whole ms), so that ?since=T of a T a client
         * read back always includes that point. */
        json_int_t t = (json_int_t)llround(s->pts[k].t_ms);
        if (since_ms >= 0 && (double)t < since_ms)
            continue;
        json_t *pt = json_pack("[I, f]", t, s->pts[k].v);
        if (!pt || json_array_append_new(arr, pt) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

json_t *gvd_job_metrics_json(gvd_job *job, double since_ms, const char *name)
{
    json_t *m = json_object();
    for (size_t i = 0; m && i < job->nseries; i++) {
        const gvd_series *s = &job->series[i];
        if (name && strcmp(name, s->name) != 0)
            continue;
        json_t *arr = gvd_series_json(s, since_ms);
        if (!arr || json_object_set_new(m, s->name, arr) != 0) {
            json_decref(m);
            return NULL;
        }
    }
    return m ? json_pack("{s:o}", "metrics", m) : NULL;
}
