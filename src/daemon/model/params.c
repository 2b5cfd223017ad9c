/*
 * params.c — live parameters with a record: revisions, the history of
 * changes, delivery to cooperative jobs and their acknowledgements.
 *
 * Every accepted PATCH /jobs/{id}/params is a new revision (1, 2, ...; 0 is
 * the spec's own params).  The change (revision, patch, who, when) goes into
 * params_history in the SAME transaction as the job row with its new params:
 * a 200 means both are stored, a 503 that neither is.  A cooperative job that
 * is running is sent "params N {json}" (the whole params, not the patch) and
 * answers "ack params N"; params_applied is the last revision it
 * acknowledged, and every revision up to it gets its applied_at (an ack of N
 * covers the revisions before N: the job has the params of N, which include
 * them).  "ack params" without N, from jobs written before revisions
 * existed, means the latest revision.
 *
 * What "applied" means for other jobs: nothing is delivered to a job in stop
 * mode (it has no channel it is known to read), so galvanid cannot know
 * whether or when it used a change: applied_at stays null and
 * params_applied 0, unless the job acknowledges on its control fd anyway.
 * Claiming "applied at delivery" would be a guess presented as a fact.
 *
 * Applied marks are written behind, with the progress flush (they are
 * bookkeeping of what the job said, like its progress); the change itself
 * is written synchronously.
 *
 * Bounded: a job keeps its newest GVD_PARAMS_HISTORY_MAX changes (1000);
 * the change that finds the history full also deletes the oldest
 * GVD_PARAMS_HISTORY_PRUNE (100), in its transaction.  Revisions keep
 * counting, so a pruned history starts above 1.
 */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/grow.h"
#include "../util/log.h"

int64_t gvd_params_revision(const gvd_job *job)
{
    return job->params_revision;
}

/* The kept change of revision `rev`, or NULL (pruned, or never made). */
static gvd_params_change *gvd_change(gvd_job *job, int64_t rev)
{
    int64_t oldest = job->params_revision - (int64_t)job->nchanges + 1;
    return rev >= oldest && rev <= job->params_revision ? &job->changes[rev - oldest] : NULL;
}

static int64_t gvd_applied(const gvd_job *job)
{
    return gv_value_to_int(gv_signal_peek(job->params_applied));
}

/* Room for one more change.  0, or -1 when out of memory. */
static int gvd_changes_reserve(gvd_job *job)
{
    return gvd_grow((void **)&job->changes, &job->changes_cap, job->nchanges, sizeof *job->changes, 8);
}

/* Append revision `revision` (the next one; takes `patch`); -1 when out of
 * memory (patch released). */
static int gvd_changes_push(gvd_job *job, int64_t revision, json_t *patch, const char *who, double at,
                            double applied_at)
{
    if (gvd_changes_reserve(job) != 0) {
        json_decref(patch);
        return -1;
    }
    gvd_params_change *c = &job->changes[job->nchanges];
    memset(c, 0, sizeof *c);
    c->revision = revision;
    job->params_revision = revision;
    c->patch = patch;
    snprintf(c->who, sizeof c->who, "%s", who);
    c->at = at;
    c->applied_at = applied_at;
    job->nchanges++;
    return 0;
}

void gvd_params_free(gvd_job *job)
{
    for (size_t i = 0; i < job->nchanges; i++)
        json_decref(job->changes[i].patch);
    free(job->changes);
    job->changes = NULL;
    job->nchanges = job->changes_cap = 0;
}

/* "params N {json}" to a running cooperative job. */
static void gvd_send_params(gvd_job *job)
{
    if (!job->exec || job->spec.pause_mode != GVD_PAUSE_COOPERATIVE)
        return;
    char *text = json_dumps(job->params, JSON_COMPACT);
    if (!text)
        return;
    size_t n = strlen(text) + 40;
    char *line = malloc(n);
    if (line) {
        snprintf(line, n, "params %lld %s", (long long)gvd_params_revision(job), text);
        (void)gvd_exec_send(job->exec, line); /* a job that closed its channel just misses it */
        free(line);
    }
    free(text);
}

void gvd_params_deliver(gvd_job *job)
{
    if (gvd_params_revision(job) > 0)
        gvd_send_params(job);
}

static int gvd_refused(gvd_job *job, gvd_error *err, const char *detail)
{
    char what[120];
    snprintf(what, sizeof what, "job %lld was not re-parameterised", (long long)job->id);
    gvd_jobs_store_error(job->jobs, err, what, detail);
    return -1;
}

/* The store refused the change: forget it and put the old params back.
 * The params_rev bump re-sends the job to the streams (which may have seen
 * the new params go by) and makes the persist effect write the old params
 * again, which the store already holds. */
static void gvd_put_back(gvd_job *job, json_t *old, json_t *next)
{
    job->nchanges--;
    job->params_revision--;
    json_decref(job->changes[job->nchanges].patch);
    job->params = old;
    json_decref(next);
    gv_signal_set_int(job->params_rev, gv_value_to_int(gv_signal_peek(job->params_rev)) + 1);
}

int gvd_job_set_params_by(gvd_job *job, json_t *patch, const char *who, gvd_error *err)
{
    if (!json_is_object(patch)) {
        gvd_error_set(err, 400, "invalid_params", "params must be a JSON object (a null value removes a key)");
        return -1;
    }
    if (gvd_status_finished(gvd_job_status_peek(job))) {
        char msg[200];
        snprintf(msg, sizeof msg, "job %lld is %s: it cannot be re-parameterised (only a queued, running or "
                 "paused job takes new params)", (long long)job->id, gvd_status_name(gvd_job_status_peek(job)));
        gvd_error_set(err, 409, "invalid_transition", msg);
        return -1;
    }
    /* The patch is kept in the history (up to GVD_PARAMS_HISTORY_MAX of
     * them) and the params in the job: both bounded like a spec's params. */
    if (gvd_json_size_check(patch, "params", "params_too_large", err) != 0)
        return -1;
    json_t *next = json_deep_copy(job->params);
    json_t *kept = json_deep_copy(patch);
    char *patch_text = json_dumps(patch, JSON_COMPACT);
    /* Everything that can run out of memory happens before the store is
     * touched, so that a stored change is always recorded here too. */
    if (!next || !kept || !patch_text || gvd_changes_reserve(job) != 0) {
        json_decref(next);
        json_decref(kept);
        free(patch_text);
        gvd_error_set(err, 503, "out_of_memory", "out of memory");
        return -1;
    }
    const char *key;
    json_t *value;
    json_object_foreach(patch, key, value) {
        if (json_is_null(value))
            json_object_del(next, key);
        else
            json_object_set(next, key, value);
    }
    if (gvd_json_size_check(next, "params", "params_too_large", err) != 0 ||
        gvd_schema_validate(job->schema, next, err) != 0) {
        json_decref(next);
        json_decref(kept);
        free(patch_text);
        return -1;
    }
    /* A staged transition (a start on PostgreSQL) is written first: the job
     * row below must be written now, not staged behind it. */
    if (job->group_pending)
        gvd_jobs_group_commit(job->jobs);
    /* One transaction: the history row, then the job row (written by the
     * persist effect when params_rev moves). */
    int64_t revision = gvd_params_revision(job) + 1;
    double now = gvd_now();
    char serr[256];
    gvd_store *st = job->jobs->store;
    gvd_params_row row = {.job_id = job->id, .revision = revision, .patch_json = patch_text, .who = who, .at = now};
    /* A full history loses its oldest changes, in the same transaction. */
    size_t prune = job->nchanges >= GVD_PARAMS_HISTORY_MAX ? GVD_PARAMS_HISTORY_PRUNE : 0;
    int64_t prune_upto = job->nchanges ? job->changes[0].revision + (int64_t)prune - 1 : 0;
    if (gvd_store_begin(st, serr, sizeof serr) != 0 || gvd_store_params_insert(st, &row, serr, sizeof serr) != 0 ||
        (prune && gvd_store_params_prune(st, job->id, prune_upto, serr, sizeof serr) != 0)) {
        gvd_store_rollback(st);
        free(patch_text);
        json_decref(next);
        json_decref(kept);
        return gvd_refused(job, err, serr);
    }
    free(patch_text);
    /* In memory before params_rev moves, so that the job the streams are
     * sent already carries the new revision; taken back if the store
     * refuses. */
    json_t *old = job->params;
    job->params = next;
    (void)gvd_changes_push(job, revision, kept, who, now, 0); /* room was made above: cannot fail */
    int64_t rev = gv_value_to_int(gv_signal_peek(job->params_rev)) + 1;
    gv_signal_set_int(job->params_rev, rev);
    if (job->persisted_params_rev != rev) { /* the job row was refused */
        gvd_store_rollback(st);
        gvd_put_back(job, old, next);
        return gvd_refused(job, err, job->persist_error);
    }
    if (gvd_store_commit(st, serr, sizeof serr) != 0) {
        gvd_put_back(job, old, next);
        return gvd_refused(job, err, serr);
    }
    json_decref(old);
    if (prune) {
        for (size_t i = 0; i < prune; i++)
            json_decref(job->changes[i].patch);
        job->nchanges -= prune;
        memmove(job->changes, job->changes + prune, job->nchanges * sizeof *job->changes);
    }
    gvd_send_params(job);
    return 0;
}

int gvd_job_set_params(gvd_job *job, json_t *patch, gvd_error *err)
{
    return gvd_job_set_params_by(job, patch, "local", err);
}

void gvd_params_ack(gvd_job *job, bool has_rev, long long rev)
{
    int64_t latest = gvd_params_revision(job);
    int64_t target = has_rev ? (int64_t)rev : latest;
    if (target > latest) {
        gvd_log(GVD_LOG_WARN, "job.protocol", "job=%lld reason=\"ack of a params revision never sent\" "
                "revision=%lld latest=%lld", (long long)job->id, (long long)target, (long long)latest);
        return;
    }
    if (target <= gvd_applied(job))
        return; /* old news (an ack of revision 0, or a repeat) */
    double now = gvd_now();
    for (int64_t r = gvd_applied(job) + 1; r <= target; r++) {
        gvd_params_change *c = gvd_change(job, r);
        if (c) /* else pruned: nothing to mark */
            c->applied_at = now;
    }
    gv_signal_set_int(job->params_applied, target);
    gvd_jobs_mark_history(job->jobs, job);
}

/* ---- persistence -------------------------------------------------------- */

int gvd_params_write(gvd_job *job, char *err, size_t errlen)
{
    int64_t applied = gvd_applied(job);
    for (int64_t r = job->applied_stored + 1; r <= applied; r++) {
        gvd_params_change *c = gvd_change(job, r);
        if (c && gvd_store_params_applied(job->jobs->store, job->id, r, c->applied_at, err, errlen) != 0)
            return -1;
    }
    job->applied_writing = applied;
    return 0;
}

void gvd_params_committed(gvd_job *job)
{
    if (job->applied_writing > job->applied_stored)
        job->applied_stored = job->applied_writing;
}

static int gvd_params_row_cb(void *ud, const gvd_params_row *row)
{
    gvd_jobs *jobs = ud;
    gvd_job *job = gvd_jobs_get(jobs, row->job_id);
    if (!job)
        return 0;
    if (row->revision < 1 || (job->nchanges && row->revision != job->params_revision + 1)) {
        /* Revisions are written 1, 2, ... in transactions and pruned from
         * the oldest: a gap means the file was edited.  Keep what is
         * consistent. */
        gvd_log(GVD_LOG_ERROR, "store.bad_row", "job=%lld params_revision=%lld expected=%lld", (long long)job->id,
                (long long)row->revision, (long long)job->params_revision + 1);
        return 0;
    }
    json_t *patch = json_loads(row->patch_json ? row->patch_json : "{}", 0, NULL);
    if (!patch)
        patch = json_object(); /* unreadable: keep the revision, show an empty patch */
    if (!patch || gvd_changes_push(job, row->revision, patch, row->who ? row->who : "", row->at, row->applied_at) != 0)
        return -1;
    if (row->applied_at > 0) { /* acknowledged revisions are a prefix: the last one wins */
        gv_signal_set_int(job->params_applied, row->revision);
        job->applied_stored = row->revision;
    }
    return 0;
}

int gvd_params_load(gvd_jobs *jobs, char *err, size_t errlen)
{
    return gvd_store_params_load(jobs->store, gvd_params_row_cb, jobs, err, errlen);
}

/* ---- JSON ----------------------------------------------------------------- */

json_t *gvd_job_params_history_json(gvd_job *job)
{
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    for (size_t i = 0; i < job->nchanges; i++) {
        gvd_params_change *c = &job->changes[i];
        json_t *e = json_pack("{s:I, s:O, s:s, s:o, s:o}", "revision", (json_int_t)c->revision, "patch", c->patch,
                              "who", c->who, "at", gvd_time_json(c->at), "applied_at",
                              c->applied_at > 0 ? gvd_time_json(c->applied_at) : json_null());
        if (!e || json_array_append_new(arr, e) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return json_pack("{s:I, s:I, s:o}", "params_revision", (json_int_t)gvd_params_revision(job), "params_applied",
                     (json_int_t)gvd_applied(job), "history", arr);
}
