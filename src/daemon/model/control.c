/*
 * control.c — the transitions users ask for, and a job as JSON.
 *
 * The state machine:
 *
 *     queued ──▶ running ⇄ paused
 *       │          │  │       │
 *       │          │  └─▶ succeeded / failed (the process exits;
 *       │          │        a failure with retries left goes back to queued)
 *       └──────────┴──────────┴─▶ cancelled
 *
 * A transition writes `status` in a batch; the job's effects do the rest
 * (job.c).  If the store refused to record it, the reconcile effect has put
 * the old status back by the time the batch returns, and the caller gets 503.
 */
#include "model.h"

#include <math.h>
#include <string.h>
#include <time.h>

static int gvd_refuse(gvd_job *job, const char *verb, const char *allowed, gvd_error *err)
{
    char msg[300];
    snprintf(msg, sizeof msg, "job %lld is %s: it cannot be %s (only %s)", (long long)job->id,
             gvd_status_name(gvd_job_status_peek(job)), verb, allowed);
    gvd_error_set(err, 409, "invalid_transition", msg);
    return -1;
}

static int gvd_store_refused(gvd_job *job, const char *verb, gvd_error *err)
{
    char what[120];
    snprintf(what, sizeof what, "job %lld was not %s", (long long)job->id, verb);
    gvd_jobs_store_error(job->jobs, err, what, job->persist_error);
    return -1;
}

/* Write status = to (with optional extra writes in the same batch); 0 if it
 * stuck, -1 (503) if the store refused it and it was rolled back: fault.c
 * snapshots the job first and the reconcile effect puts everything back
 * (finished_at and cancel_requested too) before the process is touched. */
static int gvd_transition(gvd_job *job, gvd_status to, const char *verb, gvd_error *err)
{
    /* Several nodes: another node's job (or a queued one nobody owns) is
     * changed by that node (or claimed first): asked here, done there, seen
     * here when its row comes (model/owner.c).  The HTTP routes forward
     * themselves, to answer with the outcome; this is for the model's own
     * callers (a pipeline acting on its steps). */
    if (!gvd_job_acts(job) && gvd_jobs_forward(job->jobs, job->id, to == GVD_PAUSED    ? "pause"
                                                                   : to == GVD_RUNNING ? "resume"
                                                                                       : "cancel"))
        return 0;
    gvd_job_transition_begin(job);
    gv_batch_begin();
    if (to == GVD_CANCELLED) {
        job->cancel_requested = true;
        gv_signal_set_double(job->finished_at, gvd_now());
    }
    gv_signal_set_int(job->status, to);
    gv_batch_end();
    if (!gvd_job_transition_end(job, to))
        return gvd_store_refused(job, verb, err);
    return 0;
}

int gvd_job_pause(gvd_job *job, gvd_error *err)
{
    if (gvd_job_status_peek(job) != GVD_RUNNING)
        return gvd_refuse(job, "paused", "a running job can be paused", err);
    return gvd_transition(job, GVD_PAUSED, "paused", err);
}

int gvd_job_resume(gvd_job *job, gvd_error *err)
{
    if (gvd_job_status_peek(job) != GVD_PAUSED)
        return gvd_refuse(job, "resumed", "a paused job can be resumed", err);
    return gvd_transition(job, GVD_RUNNING, "resumed", err);
}

int gvd_job_cancel(gvd_job *job, gvd_error *err)
{
    if (gvd_status_finished(gvd_job_status_peek(job)))
        return gvd_refuse(job, "cancelled", "a queued, running or paused job can be cancelled", err);
    return gvd_transition(job, GVD_CANCELLED, "cancelled", err);
}

/* ---- JSON ------------------------------------------------------------- */

json_t *gvd_time_json(double t)
{
    if (t <= 0)
        return json_null();
    time_t secs = (time_t)t;
    struct tm tm;
    gmtime_r(&secs, &tm);
    char buf[80];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)((t - (double)secs) * 1000.0) % 1000);
    return json_string(buf);
}

/* Whole numbers as JSON integers: the seed printed "progress": 54. */
static json_t *gvd_number_json(double d)
{
    if (isfinite(d) && d == floor(d) && fabs(d) < 9e15)
        return json_integer((json_int_t)d);
    return json_real(d);
}

json_t *gvd_job_json(gvd_job *job)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    gv_untracked_t t = gv_untracked_begin();
    const gv_value *exit_status = gv_signal_peek(job->exit_status);
    const gv_value *eta = gv_computed_peek(job->eta);
    const char *error = gv_signal_get_string(job->error);
    double pct = gv_computed_get_double(job->percent);
    int64_t sig = gv_value_to_int(gv_signal_peek(job->term_signal));
    int64_t pid = gv_value_to_int(gv_signal_peek(job->pid));
    int rc = 0;
    rc |= json_object_set_new(o, "id", json_integer(job->id));
    rc |= json_object_set_new(o, "name", json_string(job->spec.name));
    rc |= json_object_set_new(o, "kind", json_string(job->spec.kind == GVD_EXEC_DEMO ? "demo" : "process"));
    rc |= json_object_set_new(o, "status", json_string(gvd_status_name(gvd_job_status_peek(job))));
    rc |= json_object_set_new(o, "progress", gvd_number_json(round(pct * 100.0) / 100.0));
    rc |= json_object_set_new(o, "current", gvd_number_json(gv_signal_get_double(job->current)));
    rc |= json_object_set_new(o, "total", gvd_number_json(gv_signal_get_double(job->total)));
    rc |= json_object_set_new(o, "message", json_string(gv_signal_get_string(job->message)));
    rc |= json_object_set_new(o, "metrics", json_deep_copy(job->metrics));
    rc |= json_object_set_new(o, "params", json_deep_copy(job->params));
    rc |= json_object_set_new(o, "params_revision", json_integer(gvd_params_revision(job)));
    rc |= json_object_set_new(o, "params_applied",
                              json_integer(gv_value_to_int(gv_signal_peek(job->params_applied))));
    if (job->schema)
        rc |= json_object_set_new(o, "params_schema", json_deep_copy(job->schema));
    json_t *labels = json_object_get(job->spec_json, "labels");
    if (labels)
        rc |= json_object_set_new(o, "labels", json_deep_copy(labels));
    json_t *link = json_object_get(job->spec_json, "pipeline"); /* a pipeline step's job */
    if (link)
        rc |= json_object_set_new(o, "pipeline", json_deep_copy(link));
    json_t *rules = json_object_get(job->spec_json, "rules");
    if (rules)
        rc |= json_object_set_new(o, "rules", json_deep_copy(rules));
    int64_t events = gvd_job_events_count(job);
    if (events >= 0)
        rc |= json_object_set_new(o, "events", json_integer(events));
    if (job->spec.kind == GVD_EXEC_PROCESS) {
        rc |= json_object_set_new(o, "command", gvd_spec_command_json(&job->spec));
        rc |= json_object_set_new(o, "shell", json_boolean(job->spec.shell));
    }
    rc |= json_object_set_new(o, "pid", pid > 0 ? json_integer(pid) : json_null());
    rc |= json_object_set_new(o, "exit_code", exit_status->type != GV_NONE && sig == 0
                                                  ? json_integer(gv_value_to_int(exit_status))
                                                  : json_null());
    rc |= json_object_set_new(o, "signal", sig ? json_integer(sig) : json_null());
    rc |= json_object_set_new(o, "attempts", json_integer(gv_value_to_int(gv_signal_peek(job->attempts))));
    rc |= json_object_set_new(o, "max_retries", json_integer(job->spec.max_retries));
    rc |= json_object_set_new(o, "at_most_once", json_boolean(job->spec.at_most_once));
    const char *node = gvd_job_node(job);
    rc |= json_object_set_new(o, "node", node ? json_string(node) : json_null());
    rc |= json_object_set_new(o, "priority", json_integer(job->spec.priority));
    rc |= json_object_set_new(o, "pause_mode",
                              json_string(job->spec.pause_mode == GVD_PAUSE_COOPERATIVE ? "cooperative" : "stop"));
    rc |= json_object_set_new(o, "timeout", job->spec.timeout_s > 0 ? json_real(job->spec.timeout_s) : json_null());
    rc |= json_object_set_new(o, "created_at", gvd_time_json(job->created_at));
    rc |= json_object_set_new(o, "started_at", gvd_time_json(gv_signal_get_double(job->started_at)));
    rc |= json_object_set_new(o, "finished_at", gvd_time_json(gv_signal_get_double(job->finished_at)));
    rc |= json_object_set_new(o, "rate", json_real(round(gv_computed_get_double(job->rate) * 1000.0) / 1000.0));
    rc |= json_object_set_new(o, "eta", eta->type == GV_DOUBLE ? json_real(round(eta->as.d * 10.0) / 10.0) : json_null());
    rc |= json_object_set_new(o, "error", error && *error ? json_string(error) : json_null());
    gv_untracked_end(t);
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

void gvd_jobs_stats_get(gvd_jobs *jobs, gvd_jobs_stats *out)
{
    memset(out, 0, sizeof *out);
    for (gvd_job *j = jobs->first; j; j = j->next)
        out->by_status[gvd_job_status_peek(j)]++;
    out->max_running = jobs->cfg.max_running;
    out->store_available = gvd_store_available(jobs->store);
    for (gvd_job *j = jobs->dirty_first; j; j = j->dirty_next)
        out->pending_writes += j->dirty;
}

json_t *gvd_job_spec_json(gvd_job *job, bool hide_env)
{
    json_t *spec = json_deep_copy(job->spec_json);
    if (!spec || job->spec.kind != GVD_EXEC_PROCESS)
        return spec;
    /* command and env live packed in job->spec (job.c): rebuilt here.  On
     * failure nothing is handed out: never a half-hidden environment. */
    json_t *command = gvd_spec_command_json(&job->spec), *env = gvd_spec_env_json(&job->spec, hide_env);
    if (!command || !env) {
        json_decref(command);
        json_decref(env);
        json_decref(spec);
        return NULL;
    }
    int rc = json_object_set_new(spec, "command", command); /* each takes its value, even on failure */
    rc |= json_object_set_new(spec, "env", env);
    if (rc != 0) {
        json_decref(spec);
        return NULL;
    }
    return spec;
}

const char *gvd_job_body(gvd_job *job, bool hide_env, size_t *len)
{
    int k = hide_env ? 1 : 0;
    if (!job->body[k]) {
        json_t *o = gvd_job_json(job), *spec = o ? gvd_job_spec_json(job, hide_env) : NULL;
        char *text = NULL;
        /* set_new takes spec even when it fails */
        if (spec && json_object_set_new(o, "spec", spec) == 0)
            text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
        json_decref(o);
        size_t n = text ? strlen(text) : 0;
        char *body = text ? realloc(text, n + 2) : NULL;
        if (!body) {
            free(text);
            return NULL;
        }
        body[n] = '\n';
        body[n + 1] = '\0';
        job->body[k] = body;
        job->body_len[k] = n + 1;
    }
    *len = job->body_len[k];
    return job->body[k];
}

void gvd_job_body_forget(gvd_job *job)
{
    for (int k = 0; k < 2; k++) {
        free(job->body[k]);
        job->body[k] = NULL;
    }
}

json_t *gvd_jobs_counts_json(gvd_jobs *jobs)
{
    gvd_jobs_stats st;
    gvd_jobs_stats_get(jobs, &st);
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (int s = 0; s < GVD_NSTATUS; s++)
        json_object_set_new(o, gvd_status_name((gvd_status)s), json_integer((json_int_t)st.by_status[s]));
    json_object_set_new(o, "total", json_integer((json_int_t)jobs->count));
    json_object_set_new(o, "max_running", json_integer(jobs->cfg.max_running));
    /* The state and cause only: counts frames are re-sent when their text
     * changes, and a growing failure count would re-send them for nothing. */
    gvd_store_health h;
    gvd_store_health_get(jobs->store, &h);
    json_object_set_new(o, "store", h.cause ? json_pack("{s:s, s:s, s:o}", "state", "unavailable", "cause", h.cause,
                                                        "since", gvd_time_json(h.since))
                                            : json_pack("{s:s}", "state", "ok"));
    return o;
}

json_t *gvd_jobs_store_json(gvd_jobs *jobs)
{
    gvd_store_health h;
    gvd_store_health_get(jobs->store, &h);
    gvd_jobs_stats st;
    gvd_jobs_stats_get(jobs, &st);
    size_t pending = st.pending_writes;
    if (!h.cause)
        return json_pack("{s:s, s:I}", "state", "ok", "pending_writes", (json_int_t)pending);
    return json_pack("{s:s, s:s, s:o, s:I, s:I, s:s}", "state", "unavailable", "cause", h.cause, "since",
                     gvd_time_json(h.since), "failed_writes", (json_int_t)h.failed_writes, "pending_writes",
                     (json_int_t)pending, "error", h.error);
}
