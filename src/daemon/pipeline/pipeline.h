/*
 * pipeline.h — pipelines: jobs that run in dependency order
 * (docs/api.md, "Pipelines").
 *
 *   POST /pipelines {"name": "ci", "on_failure": "skip",
 *                    "steps": [{"name": "build", "command": [...]},
 *                              {"name": "test", "needs": ["build"], ...}]}
 *
 * A pipeline is a small signals graph over its steps' jobs.  Each step has
 * a computed status: its job's status once it has a job, otherwise
 * "waiting" until every step it needs has succeeded (then its job is
 * created), "skipped" when one of them failed, was cancelled or skipped
 * (on_failure "skip", the default), or "cancelled" (on_failure "cancel",
 * or the pipeline was cancelled).  The pipeline's status and progress are
 * computeds over its steps (progress weighted by each step's "weight").
 * Two effects act: one creates the jobs of steps that became ready (and
 * cancels the pipeline when a step failed under "cancel"), one tells the
 * streams that the pipeline changed.  Pausing holds steps not yet started
 * and pauses running ones; resume and cancel act on the whole.
 *
 * Durable like jobs: the definition and a small state (paused, cancelled,
 * each step's generation, rule latches and events) are one row; a step's
 * job is an ordinary job whose stored spec names the pipeline, the step and
 * the generation (so creating it is a single insert, and after a crash the
 * step finds its job instead of running twice).  Retrying a step bumps the
 * generation of the step and of everything after it.
 *
 * Ownership: the registry (one per gvd_jobs, jobs->pipelines) owns every
 * pipeline; a pipeline owns its graph, its rules and events.  Step jobs
 * belong to the job registry; while their pipeline exists they cannot be
 * deleted on their own or pruned by retention, and DELETE
 * /pipelines/{id} deletes them with it.  Everything runs on the loop.
 */
#ifndef GALVANI_DAEMON_PIPELINE_H
#define GALVANI_DAEMON_PIPELINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../model/jobs.h"
#include "../store/store.h"

#define GVD_PIPELINE_MAX_STEPS 64
#define GVD_PIPELINE_EVENTS_MAX 200 /* rule firings kept per pipeline */

typedef struct gvd_pipeline gvd_pipeline;

/* The registry: created and loaded by gvd_jobs_new (after the jobs, whose
 * step jobs it links), freed by gvd_jobs_free (before the jobs). */
int gvd_pipelines_new(gvd_jobs *jobs);
int gvd_pipelines_load(gvd_jobs *jobs, char *err, size_t errlen);
void gvd_pipelines_free(gvd_jobs *jobs);

/* POST /pipelines: validate (400 invalid_pipeline naming the step, the
 * field, the unknown need, the duplicate or the cycle), store, start the
 * steps that need nothing.  The pipeline, or NULL with err. */
gvd_pipeline *gvd_pipelines_create(gvd_jobs *jobs, json_t *body, gvd_error *err);
gvd_pipeline *gvd_pipelines_get(gvd_jobs *jobs, int64_t id);
/* GET /pipelines: {"pipelines": [...], "total": n}, newest first. */
json_t *gvd_pipelines_list_json(gvd_jobs *jobs, size_t offset, size_t limit);

int64_t gvd_pipeline_id(const gvd_pipeline *pl);
/* {"id", "name", "status", "progress", "on_failure", "paused", "created_at",
 * "finished_at", "steps": [{"name", "status", "job", "jobs", "needs",
 * "weight", "progress"}], "rules": [...], "events": firings so far (the
 * newest GVD_PIPELINE_EVENTS_MAX are kept)}.  New reference. */
json_t *gvd_pipeline_json(gvd_pipeline *pl);
/* GET /pipelines/{id}/events: {"events": [...]} oldest first. */
json_t *gvd_pipeline_events_json(gvd_pipeline *pl);

/* Transitions: 0, or -1 with err (409 when the state refuses, 503 when the
 * store did: then nothing changed). */
int gvd_pipeline_pause(gvd_pipeline *pl, gvd_error *err);
int gvd_pipeline_resume(gvd_pipeline *pl, gvd_error *err);
int gvd_pipeline_cancel(gvd_pipeline *pl, gvd_error *err);
/* Re-run step `name` and every step after it (404 no such step; 409 while
 * it or one of them is queued, running or paused, or when it never ran). */
int gvd_pipeline_retry(gvd_pipeline *pl, const char *name, gvd_error *err);
/* DELETE /pipelines/{id}: finished pipelines only; their jobs go too. */
int gvd_pipeline_delete(gvd_pipeline *pl, gvd_error *err);

/* The step job's pipeline, if it still has one (DELETE /jobs/{id} and
 * retention leave such jobs alone). */
bool gvd_job_in_pipeline(const gvd_job *job);

/* Retention (model/retention.c: --max-jobs counts a pipeline's jobs too,
 * --keep-finished applies to pipelines by when they finished): delete
 * finished pipelines with their jobs, oldest first, while more than
 * max_jobs jobs are kept or while they finished before `cutoff` (> 0).
 * Returns how many went, or -1 if the store refused one (it stops). */
long gvd_pipelines_prune(gvd_jobs *jobs, double cutoff);
/* When the oldest finished pipeline passes keep_s, or -1 if none. */
double gvd_pipelines_next_expiry(gvd_jobs *jobs, double keep_s);

/* Several nodes (cluster/mirror.c): another node's pipeline as its row now
 * says — a new mirror, or the mirror follows its state; a row this node
 * drives is ignored.  0, or -1 (a damaged row, out of memory: logged). */
int gvd_pipelines_apply_row(gvd_jobs *jobs, const gvd_pipeline_row *row);
/* Pipeline `id`'s row is gone: its mirror goes (not one this node drives). */
void gvd_pipelines_apply_delete(gvd_jobs *jobs, int64_t id);
/* A job that appeared through its row (another node created it): a step of
 * a pipeline held here is linked to it. */
void gvd_pipelines_adopt_job(gvd_jobs *jobs, gvd_job *job);
/* Job `id` is about to go through its row (another node deleted it): its
 * step, if it has one here, lets go of it. */
void gvd_pipelines_drop_job(gvd_jobs *jobs, int64_t id);
/* The node that drives `pl` when it is another node (its transitions are
 * relayed there, api/relay.c), else NULL. */
const char *gvd_pipeline_driver(const gvd_pipeline *pl);

/* The push hub's hook: called (from an effect, after the batch) whenever
 * anything in gvd_pipeline_json changed, and with removed = true just
 * before a pipeline is deleted.  One listener. */
typedef void (*gvd_pipeline_change_fn)(void *ud, gvd_pipeline *pl, bool removed);
void gvd_pipelines_on_change(gvd_jobs *jobs, gvd_pipeline_change_fn fn, void *ud);
/* Every pipeline, oldest first (the streams' snapshot). */
gvd_pipeline *gvd_pipelines_first(gvd_jobs *jobs);
gvd_pipeline *gvd_pipeline_next(gvd_pipeline *pl);

#endif
