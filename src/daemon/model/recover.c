/*
 * recover.c — a start of galvanid: every stored job back into the model,
 * and what a previous life left running taken up again.
 *
 * gvd_jobs_new (jobs.c) has the store call gvd_jobs_load_row for each row;
 * once the histories are loaded too, gvd_jobs_start_loaded resolves the
 * jobs found running or paused (re-adopted under their supervisors, put
 * back in the queue if they never started, failed if their supervisor is
 * gone) and starts every job's effects; gvd_jobs_sweep_run_dirs then
 * removes run dirs nobody uses.  In a cluster (model/owner.c) only this
 * node's jobs are re-adopted; a run dir of a job the cluster gave to
 * another node meanwhile has its process killed.  gvd_jobs_adopt_row is
 * the same path for a job first seen in another node's row.
 */
#include "model.h"

#include <dirent.h>
#include <errno.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>

#include "../runner/proc.h"
#include "../util/log.h"

/* A job found running or paused was left by a previous daemon.  A process
 * job's supervisor outlives the daemon (docs/guarantees.md): re-adopt it —
 * live, ended meanwhile (its exit record gives the true outcome, applied as
 * if seen live), or lost (failed, its group killed).  A job whose run dir
 * shows it never started goes back to the queue: it has not run, so running
 * it cannot duplicate anything.  The in-process demo died with the daemon:
 * the reconcile effect restarts it from its stored progress. */
static void gvd_recover(gvd_job *job)
{
    gvd_status st = gvd_job_status_peek(job);
    if (st != GVD_RUNNING && st != GVD_PAUSED)
        return;
    if (!gvd_job_acts(job))
        return; /* another node's (owner.c) */
    if (job->spec.kind == GVD_EXEC_DEMO) {
        gvd_log(GVD_LOG_INFO, "job.recovered", "job=%lld was=%s demo=resumed progress=%g", (long long)job->id,
                gvd_status_name(st), gv_value_to_double(gv_signal_peek(job->current)));
        return;
    }
    bool never = false;
    char err[300] = "";
    if (gvd_job_adopt(job, &never, err, sizeof err) == 0) {
        gvd_log(GVD_LOG_INFO, "job.adopted", "job=%lld was=%s pid=%lld", (long long)job->id, gvd_status_name(st),
                (long long)gv_value_to_int(gv_signal_peek(job->pid)));
        /* The supervisor's word on the pid may be newer than the row (a
         * crash before the pid was written): write it behind, so the row —
         * what other nodes see — says it too. */
        gvd_jobs_mark_dirty(job->jobs, job);
        return;
    }
    int64_t attempts = gv_value_to_int(gv_signal_peek(job->attempts));
    gv_batch_begin();
    if (never) {
        gv_signal_set_int(job->attempts, attempts > 0 ? attempts - 1 : 0); /* that attempt never ran */
        gv_signal_set_int(job->pid, 0);
        gv_signal_set_int(job->status, GVD_QUEUED);
    } else {
        char msg[400];
        snprintf(msg, sizeof msg, "supervisor lost: %s", err);
        gv_signal_set_string(job->error, msg);
        gv_signal_set_double(job->finished_at, gvd_now());
        gv_signal_set_int(job->status, GVD_FAILED);
    }
    gv_batch_end();
    gvd_log(GVD_LOG_WARN, "job.recovered", "job=%lld was=%s now=%s error=%s", (long long)job->id,
            gvd_status_name(st), never ? "queued" : "failed", gvd_log_quote(err, (char[400]){0}, 400));
    /* Effects are not running yet: write it here, and if the store refuses
     * (disk full at start), keep it dirty so the fault retry writes it. */
    if (gvd_job_persist_now(job) != 0)
        gvd_jobs_mark_dirty(job->jobs, job);
}

/* A run dir of a job the cluster gave to another node while this node was
 * down (model/owner.c): what its supervisor still runs is killed — the job
 * runs elsewhere now, or failed.  The supervisor then records the exit and
 * goes; its dir is swept like any stale one. */
/* How long a start waits for a fenced job's supervisor to go (ms). */
#define GVD_FENCE_WAIT_MS 5000

static void gvd_fence_leftover(gvd_job *job, const char *run_dir)
{
    char path[4300], text[64] = "";
    snprintf(path, sizeof path, "%s/pid", run_dir);
    FILE *f = fopen(path, "r");
    long long pid = 0;
    unsigned long long ticks = 0;
    if (f) {
        if (fgets(text, sizeof text, f) && sscanf(text, "%lld %llu", &pid, &ticks) == 2 && pid > 1) {
            int rc = gvd_exec_kill_stale((pid_t)pid, ticks);
            gvd_log(GVD_LOG_WARN, "job.fenced", "job=%lld now_on=%s pid=%lld killed=%d", (long long)job->id,
                    gvd_job_node(job) ? gvd_job_node(job) : "-", pid, rc == 1);
        }
        fclose(f);
    }
    /* Its supervisor then records the exit and goes; wait for that (start-up
     * only, bounded): this node may claim the job again at once, and a
     * spawn into a run dir a supervisor still holds would fail the job. */
    for (int waited = 0; waited < GVD_FENCE_WAIT_MS; waited += 10) {
        if (gvd_exec_remove_run_dir(run_dir) != -EBUSY)
            return;
        (void)nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    gvd_log(GVD_LOG_WARN, "job.fence_slow", "job=%lld waited_ms=%d", (long long)job->id, GVD_FENCE_WAIT_MS);
}

/* Run dirs no running / paused job owns (a crash between storing a job's
 * end and removing its dir) go, unless a supervisor still holds one. */
void gvd_jobs_sweep_run_dirs(gvd_jobs *jobs)
{
    DIR *d = opendir(jobs->run_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long long id = strtoll(e->d_name, &end, 10);
        if (*end != '\0' || end == e->d_name)
            continue;
        gvd_job *job = gvd_jobs_get(jobs, id);
        if (job && job->exec)
            continue;
        char path[4200];
        gvd_jobs_run_dir(jobs, id, path, sizeof path);
        if (job && !gvd_job_acts(job))
            gvd_fence_leftover(job, path);
        int rc = gvd_exec_remove_run_dir(path);
        gvd_log(GVD_LOG_DEBUG, "job.run_dir_swept", "job=%lld removed=%d", id, rc == 0);
    }
    closedir(d);
}

int gvd_jobs_load_row(void *ud, const gvd_job_row *row)
{
    gvd_jobs *jobs = ud;
    gvd_error err = {0};
    json_error_t jerr;
    json_t *spec_json = json_loads(row->spec_json ? row->spec_json : "{}", 0, &jerr);
    json_t *params = json_loads(row->params_json ? row->params_json : "{}", 0, &jerr);
    gvd_spec spec;
    if (!spec_json || !json_is_object(params) || gvd_spec_from_json(spec_json, &jobs->cfg, &spec, &err) != 0) {
        gvd_log(GVD_LOG_ERROR, "store.bad_row", "job=%lld error=%s", (long long)row->id,
                gvd_log_quote(err.message[0] ? err.message : "unreadable JSON", (char[600]){0}, 600));
        json_decref(spec_json);
        json_decref(params);
        return 0; /* skip it, keep the rest */
    }
    gvd_job *job = gvd_job_new(jobs, row->id, &spec, spec_json, params, row->created_at);
    if (!job) {
        gvd_spec_clear(&spec);
        json_decref(spec_json);
        json_decref(params);
        return -1;
    }
    gvd_job_restore(job, row);
    gvd_job_set_owner(job, row->node);
    if (gvd_jobs_map_put(jobs, job) != 0) {
        gvd_job_free(job);
        return -1;
    }
    gvd_jobs_list_append(jobs, job);
    return 0;
}

int gvd_jobs_adopt_row(gvd_jobs *jobs, const gvd_job_row *row)
{
    if (gvd_jobs_load_row(jobs, row) != 0)
        return -1;
    gvd_job *job = gvd_jobs_get(jobs, row->id);
    if (!job)
        return 0; /* unreadable: logged, skipped as at start */
    job->persisted_status = gvd_job_status_peek(job);
    gv_batch_begin();
    gvd_job_start_effects(job);
    if (!gvd_status_finished(gvd_job_status_peek(job)))
        gvd_jobs_live_add(jobs, job);
    gv_batch_end();
    return 0;
}

/* Once every job and its history is loaded: resolve what a previous daemon
 * left running, then start the effects (which must see the real state: the
 * params history sets params_applied, which the persist effect would
 * otherwise take for a change to write back). */
void gvd_jobs_start_loaded(gvd_jobs *jobs)
{
    for (gvd_job *job = jobs->first; job; job = job->next) {
        gvd_recover(job);
        job->persisted_status = gvd_job_status_peek(job);
        gvd_job_start_effects(job);
        if (!gvd_status_finished(gvd_job_status_peek(job)))
            gvd_jobs_live_add(jobs, job);
    }
}
