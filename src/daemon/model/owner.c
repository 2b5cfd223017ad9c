/*
 * owner.c — which node acts on a job (issue 18: several galvanid nodes on
 * one PostgreSQL).
 *
 * On one node (SQLite, or PostgreSQL without other nodes) every job is this
 * node's: nothing here changes anything.  In a cluster every node holds
 * every job of the database in its model, so that any node's streams,
 * listings and dashboard show them all, but only the job's *owner* acts on
 * it — runs its process, times it out, retries it, fires its rules, writes
 * its row.  A job is
 *   GVD_OWNER_SELF   this node's: created here with a free slot, claimed
 *                    from the queue (cluster/claim.c), or left running by a
 *                    previous life of this node;
 *   GVD_OWNER_NONE   queued and claimed by nobody: any node with a free slot
 *                    may claim it (FOR UPDATE SKIP LOCKED decides who);
 *   GVD_OWNER_OTHER  another node's: a mirror, whose signals follow the row
 *                    that node writes (gvd_jobs_apply_row, called by the
 *                    cluster module when the row's NOTIFY arrives).
 * The effects themselves stay the same: the persist effect does not write a
 * job that is not this node's, the reconcile effect does not touch a
 * process, the rules do not fire (job.c, rules.c test gvd_job_acts).
 *
 * A row that names another node for a job this node believes its own means
 * the cluster gave it away — this node's lease ran out and another node
 * marked it lost — so the process this node still runs for it is killed
 * (fencing): the job now runs elsewhere, or has failed, as the row says.
 */
#include "model.h"

#include <stdlib.h>
#include <string.h>

#include "../runner/proc.h"
#include "../util/log.h"

bool gvd_job_acts(const gvd_job *job)
{
    return job->owner == GVD_OWNER_SELF;
}

const char *gvd_job_node(const gvd_job *job)
{
    if (job->owner == GVD_OWNER_SELF)
        return job->jobs->cfg.node_id;
    return job->owner == GVD_OWNER_OTHER ? job->node : NULL;
}

/* Record who owns the job as its row says: `node` NULL is nobody. */
void gvd_job_set_owner(gvd_job *job, const char *node)
{
    const char *self = job->jobs->cfg.node_id;
    if (!job->jobs->cfg.cluster) {
        job->owner = GVD_OWNER_SELF;
        return;
    }
    gvd_owner owner = !node ? GVD_OWNER_NONE : strcmp(node, self) == 0 ? GVD_OWNER_SELF : GVD_OWNER_OTHER;
    if (owner == GVD_OWNER_OTHER && (!job->node || strcmp(job->node, node) != 0)) {
        char *copy = strdup(node);
        if (copy) {
            free(job->node);
            job->node = copy;
        }
    }
    job->owner = owner;
}

unsigned gvd_jobs_busy_slots(gvd_jobs *jobs)
{
    unsigned used = 0;
    for (gvd_job *j = jobs->live_first; j; j = j->live_next) {
        if (!gvd_job_acts(j))
            continue;
        gvd_status s = gvd_job_status_peek(j);
        if (s != GVD_QUEUED || j->exec_state != GVD_EXEC_NONE)
            used++;
    }
    return used;
}

/* Queued jobs nobody owns (and no pipeline holds): what a claim may get. */
static bool gvd_jobs_any_claimable(gvd_jobs *jobs)
{
    for (gvd_job *j = jobs->live_first; j; j = j->live_next)
        if (j->owner == GVD_OWNER_NONE && !j->held && gvd_job_status_peek(j) == GVD_QUEUED)
            return true;
    return false;
}

void gvd_jobs_set_cluster(gvd_jobs *jobs, const gvd_cluster_hooks *hooks, void *ud)
{
    jobs->cluster = hooks;
    jobs->cluster_ud = ud;
    gvd_jobs_wake(jobs);
}

void gvd_jobs_wake(gvd_jobs *jobs)
{
    gv_signal_set_int(jobs->wake, gv_value_to_int(gv_signal_peek(jobs->wake)) + 1);
}

bool gvd_jobs_forward(gvd_jobs *jobs, int64_t id, const char *verb)
{
    if (!jobs->cluster || !jobs->cluster->forward)
        return false;
    jobs->cluster->forward(jobs->cluster_ud, id, verb);
    return true;
}

void gvd_jobs_maybe_claim(gvd_jobs *jobs, unsigned free_slots)
{
    if (free_slots > 0 && jobs->cluster && jobs->cluster->claim && gvd_jobs_any_claimable(jobs))
        jobs->cluster->claim(jobs->cluster_ud, free_slots);
}

void gvd_jobs_claimed(gvd_jobs *jobs, int64_t id)
{
    gvd_job *job = gvd_jobs_get(jobs, id);
    if (!job)
        return; /* deleted meanwhile: its row will say so */
    job->owner = GVD_OWNER_SELF; /* the scheduler starts it at its next run (gvd_jobs_wake) */
}

/* Kill what this node still runs for a job the cluster gave to another
 * node.  Its exit is not this node's to record (gvd_on_exit sees the job is
 * not its own and only releases the handle). */
static void gvd_job_fence(gvd_job *job, const char *node)
{
    gvd_log(GVD_LOG_WARN, "job.fenced", "job=%lld now_on=%s pid=%lld", (long long)job->id, node ? node : "-",
            (long long)gv_value_to_int(gv_signal_peek(job->pid)));
    uv_timer_stop(&job->timeout_timer);
    uv_timer_stop(&job->retry_timer);
    if (job->exec && job->exec_state != GVD_EXEC_NONE) {
        job->exec_state = GVD_EXEC_STOPPING;
        gvd_exec_cancel(job->exec, 0);
    }
}

int gvd_jobs_apply_row(gvd_jobs *jobs, const gvd_job_row *row)
{
    gvd_job *job = gvd_jobs_get(jobs, row->id);
    if (!job)
        return gvd_jobs_adopt_row(jobs, row);
    const char *self = jobs->cfg.node_id;
    bool row_mine = row->node && strcmp(row->node, self) == 0;
    if (job->owner == GVD_OWNER_SELF && row_mine)
        return 0; /* this node's own write, come back */
    if (job->owner == GVD_OWNER_SELF && !row_mine)
        gvd_job_fence(job, row->node);
    gvd_job_set_owner(job, row->node);
    if (row_mine)
        return 0; /* claimed by this node (its claim said so first) */
    gv_batch_begin();
    gvd_job_restore(job, row);
    json_t *params = row->params_json ? json_loads(row->params_json, 0, NULL) : NULL;
    if (json_is_object(params) && !json_equal(params, job->params)) {
        json_decref(job->params);
        job->params = params;
        params = NULL;
        gv_signal_set_int(job->params_rev, gv_value_to_int(gv_signal_peek(job->params_rev)) + 1);
    }
    json_decref(params);
    gv_signal_set_int(job->metrics_rev, gv_value_to_int(gv_signal_peek(job->metrics_rev)) + 1);
    bool finished = gvd_status_finished(gvd_job_status_peek(job));
    if (finished && job->in_live && !job->exec)
        gvd_jobs_live_remove(jobs, job);
    else if (!finished && !job->in_live)
        gvd_jobs_live_add(jobs, job);
    gv_batch_end();
    return 0;
}

/* A row deleted by another node: a mirror goes; so does a job of this
 * node's that has finished and has no process left (another node's
 * retention pruned it).  One still running here keeps its row's view. */
bool gvd_jobs_apply_delete_forgets(const gvd_job *job)
{
    return !gvd_job_acts(job) || (gvd_status_finished(gvd_job_status_peek(job)) && !job->exec);
}

void gvd_jobs_apply_delete(gvd_jobs *jobs, int64_t id)
{
    gvd_job *job = gvd_jobs_get(jobs, id);
    if (job && gvd_jobs_apply_delete_forgets(job))
        gvd_jobs_forget(jobs, job);
}

void gvd_jobs_kill_own(gvd_jobs *jobs)
{
    for (gvd_job *j = jobs->live_first; j; j = j->live_next) {
        int64_t pid = gv_value_to_int(gv_signal_peek(j->pid));
        if (!gvd_job_acts(j) || !j->exec || pid <= 1)
            continue;
        int rc = gvd_exec_kill_stale((pid_t)pid, j->pid_start_ticks);
        gvd_log(GVD_LOG_WARN, "job.fenced", "job=%lld pid=%lld killed=%d why=\"this node was cut off\"",
                (long long)j->id, (long long)pid, rc == 1);
    }
}

size_t gvd_jobs_running_on(gvd_jobs *jobs, const char *node)
{
    size_t n = 0;
    for (gvd_job *j = jobs->live_first; j; j = j->live_next) {
        gvd_status st = gvd_job_status_peek(j);
        const char *on = gvd_job_node(j);
        if ((st == GVD_RUNNING || st == GVD_PAUSED) && on && node && strcmp(on, node) == 0)
            n++;
    }
    return n;
}
