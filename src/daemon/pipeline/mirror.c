/*
 * mirror.c — another node's pipelines, followed (several nodes on one
 * PostgreSQL, ../cluster/).
 *
 * A pipeline is driven by the node that created it: only that node creates
 * its step jobs, fires its rules and writes its row.  Every other node
 * holds a mirror of it, so that its GET /pipelines, /pipelines/{id}, its
 * streams' "pipeline" messages and its dashboard show every pipeline of
 * the cluster.  A mirror is the same graph as a driven pipeline — its
 * steps' statuses and progress are computeds over their jobs, which every
 * node mirrors anyway — with only the effect that tells watchers
 * (gvd_pipeline_start_effects leaves out the advance effect and the rules).
 * What the graph cannot derive — paused, cancelled, each step's generation,
 * the rules' latches and firings — comes from the row the driver writes:
 * the store announces each pipeline write (NOTIFY galvani_pipelines) and
 * the cluster module reads the row and calls gvd_pipelines_apply_row.
 *
 * Its transitions are the driver's: the API relays them there
 * (api/relay.c), and the model refuses them here (409 on_another_node).
 * Step jobs created by the driver reach this node as rows; each is linked
 * to its step (gvd_pipelines_adopt_job), in whichever order the pipeline's
 * row and the jobs' rows arrive.
 */
#include "pipeline_int.h"

#include <stdlib.h>
#include <string.h>

#include "../util/log.h"

const char *gvd_pipeline_driver(const gvd_pipeline *pl)
{
    return pl->driver;
}

/* A new mirror: built, its state restored, its step jobs linked, telling
 * watchers.  0 or -1. */
static int gvd_mirror_new(gvd_jobs *jobs, const gvd_pipeline_row *row, const char *driver, json_t *state)
{
    json_t *def = json_loads(row->def_json, 0, NULL);
    gvd_pipeline *pl = def ? gvd_pl_alloc(jobs, row->id, def, row->created_at) : NULL;
    if (!pl || !(pl->driver = strdup(driver))) {
        if (pl)
            gvd_pipeline_destroy(pl);
        else
            json_decref(def);
        return -1;
    }
    gvd_pl_apply_state(pl, state);
    gvd_pl_append(jobs->pipelines, pl);
    for (gvd_job *job = jobs->first; job; job = job->next)
        gvd_pl_link_job(jobs, job);
    gv_batch_begin();
    int rc = gvd_pipeline_start_effects(pl); /* tells watchers at once */
    gv_batch_end();
    gvd_log(GVD_LOG_DEBUG, "pipeline.mirrored", "pipeline=%lld node=%s", (long long)pl->id, driver);
    return rc;
}

int gvd_pipelines_apply_row(gvd_jobs *jobs, const gvd_pipeline_row *row)
{
    if (!jobs->pipelines || !jobs->cfg.cluster)
        return 0;
    json_t *state = json_loads(row->state_json ? row->state_json : "", 0, NULL);
    const char *driver = json_string_value(json_object_get(state, "node"));
    gvd_pipeline *pl = gvd_pipelines_get(jobs, row->id);
    int rc = 0;
    if (!state || !driver) {
        rc = -1;
    } else if (strcmp(driver, jobs->cfg.node_id) == 0 || (pl && !pl->driver)) {
        /* this node drives it: its model is where the row came from */
    } else if (!pl) {
        rc = gvd_mirror_new(jobs, row, driver, state);
    } else {
        gvd_pl_apply_state(pl, state);
        gvd_pipelines_notify(pl, false); /* its firings may have moved, which no computed reads */
    }
    if (rc != 0)
        gvd_log(GVD_LOG_ERROR, "pipeline.not_mirrored", "pipeline=%lld reason=\"damaged row or out of memory\"",
                (long long)row->id);
    json_decref(state);
    return rc;
}

void gvd_pipelines_apply_delete(gvd_jobs *jobs, int64_t id)
{
    gvd_pipeline *pl = jobs->pipelines ? gvd_pipelines_get(jobs, id) : NULL;
    if (!pl || !pl->driver)
        return;
    gvd_pipelines_notify(pl, true);
    gvd_pl_unlink(jobs->pipelines, pl);
    /* Its jobs are deleted by their own rows; until then they are jobs of
     * their own here. */
    for (size_t i = 0; i < pl->nsteps; i++)
        for (size_t k = 0; k < pl->steps[i].njobs; k++) {
            gvd_job *job = gvd_jobs_get(jobs, pl->steps[i].jobs[k]);
            if (job && job->pipeline == pl)
                job->pipeline = NULL;
        }
    gvd_log(GVD_LOG_DEBUG, "pipeline.mirror_deleted", "pipeline=%lld", (long long)id);
    gvd_pipeline_destroy(pl);
}

void gvd_pipelines_adopt_job(gvd_jobs *jobs, gvd_job *job)
{
    if (jobs->pipelines && jobs->pipelines->first)
        gvd_pl_link_job(jobs, job);
}

void gvd_pipelines_drop_job(gvd_jobs *jobs, int64_t id)
{
    gvd_job *job = gvd_jobs_get(jobs, id);
    gvd_pipeline *pl = job ? job->pipeline : NULL;
    if (!pl || !gvd_jobs_apply_delete_forgets(job))
        return;
    for (size_t i = 0; i < pl->nsteps; i++)
        if (pl->steps[i].job == job)
            gvd_step_set_job(&pl->steps[i], NULL);
    job->pipeline = NULL;
}
