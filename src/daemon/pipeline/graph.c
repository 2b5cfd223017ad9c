/*
 * graph.c — a pipeline as a signals graph (see pipeline.h).
 *
 *   signals    paused, cancelled (the pipeline's), job_rev (per step: which
 *              job is the step's now), and through the step's job its
 *              status and percent (the job's own signals and computeds)
 *   computeds  per step: status (its job's, or waiting / skipped /
 *              cancelled from the statuses of the steps it needs) and
 *              progress; per pipeline: status and weighted progress
 *   effects    advance: when a step becomes due (every need succeeded, not
 *              paused, not cancelled) or a step failed under
 *              on_failure "cancel", ask control.c to act on the loop (a job
 *              must not be created inside a flush); notify: tell the
 *              streams the pipeline changed
 *
 * Steps are in definition order and a step's needs are checked to form no
 * cycle, so reading a need's status computed from a step's computed cannot
 * recurse forever.
 */
#include "pipeline_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../util/grow.h"

#include "../rules/rules_int.h"

static const char *const gvd_pl_status_names[] = {"running", "paused", "succeeded", "failed", "cancelled"};

const char *gvd_pl_status_name(gvd_pl_status s)
{
    return (unsigned)s <= GVD_PL_CANCELLED ? gvd_pl_status_names[s] : "unknown";
}

const char *gvd_step_status_name(int status)
{
    if (status == GVD_STEP_WAITING || status == GVD_STEP_READY)
        return "waiting";
    if (status == GVD_STEP_SKIPPED)
        return "skipped";
    return gvd_status_name((gvd_status)status);
}

static bool gvd_step_active(int s) { return s == GVD_QUEUED || s == GVD_RUNNING || s == GVD_PAUSED; }
static bool gvd_step_broken(int s) { return s == GVD_FAILED || s == GVD_CANCELLED || s == GVD_STEP_SKIPPED; }

/* ---- computeds ------------------------------------------------------- */

static void gvd_step_status_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    gvd_step *st = ud;
    gvd_pipeline *pl = st->pl;
    (void)gv_signal_get(st->job_rev);
    if (st->job) {
        *out = gv_int(gv_signal_get_int(st->job->status));
        return;
    }
    if (gv_signal_get_bool(pl->cancelled)) {
        *out = gv_int(GVD_CANCELLED);
        return;
    }
    bool due = true;
    for (size_t k = 0; k < st->nneeds; k++) {
        int s = (int)gv_computed_get_int(pl->steps[st->needs[k]].status);
        if (gvd_step_broken(s)) {
            *out = gv_int(pl->cancel_on_failure ? GVD_CANCELLED : GVD_STEP_SKIPPED);
            return;
        }
        if (s != GVD_SUCCEEDED)
            due = false;
    }
    *out = gv_int(due ? GVD_STEP_READY : GVD_STEP_WAITING);
}

static void gvd_step_progress_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    gvd_step *st = ud;
    (void)gv_signal_get(st->job_rev);
    *out = gv_double(st->job ? gv_computed_get_double(st->job->percent) : 0.0);
}

/* How many steps are in each state (tracked reads of every step). */
typedef struct gvd_step_counts {
    size_t active, due, waiting, succeeded, failed, cancelled, skipped;
} gvd_step_counts;

static gvd_step_counts gvd_count_steps(gvd_pipeline *pl)
{
    gvd_step_counts c = {0};
    for (size_t i = 0; i < pl->nsteps; i++) {
        int s = (int)gv_computed_get_int(pl->steps[i].status);
        if (gvd_step_active(s))
            c.active++;
        else if (s == GVD_STEP_READY)
            c.due++;
        else if (s == GVD_STEP_WAITING)
            c.waiting++;
        else if (s == GVD_SUCCEEDED)
            c.succeeded++;
        else if (s == GVD_FAILED)
            c.failed++;
        else if (s == GVD_CANCELLED)
            c.cancelled++;
        else
            c.skipped++;
    }
    return c;
}

/* cancelled by request or policy: cancelled (failed if a step failed, which
 * is what "cancel" on failure answers); else running / paused while
 * anything is left to run; then succeeded, failed, or cancelled (a step's
 * job was cancelled by hand and its dependents skipped). */
static void gvd_pl_status_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    gvd_pipeline *pl = ud;
    bool paused = gv_signal_get_bool(pl->paused), cancelled = gv_signal_get_bool(pl->cancelled);
    gvd_step_counts c = gvd_count_steps(pl);
    gvd_pl_status s;
    if (cancelled)
        s = c.failed ? GVD_PL_FAILED : GVD_PL_CANCELLED;
    else if (c.active || c.due || c.waiting)
        s = paused ? GVD_PL_PAUSED : GVD_PL_RUNNING;
    else if (c.succeeded == pl->nsteps)
        s = GVD_PL_SUCCEEDED;
    else if (c.failed)
        s = GVD_PL_FAILED;
    else
        s = GVD_PL_CANCELLED;
    *out = gv_int(s);
}

static void gvd_pl_progress_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    gvd_pipeline *pl = ud;
    double sum = 0, total = 0;
    for (size_t i = 0; i < pl->nsteps; i++) {
        sum += pl->steps[i].weight * gv_computed_get_double(pl->steps[i].progress);
        total += pl->steps[i].weight;
    }
    *out = gv_double(total > 0 ? sum / total : 0.0);
}

/* ---- effects --------------------------------------------------------- */

static void gvd_advance_fx(void *ud)
{
    gvd_pipeline *pl = ud;
    bool paused = gv_signal_get_bool(pl->paused), cancelled = gv_signal_get_bool(pl->cancelled);
    bool due = false, failed = false;
    for (size_t i = 0; i < pl->nsteps; i++) {
        int s = (int)gv_computed_get_int(pl->steps[i].status);
        due |= s == GVD_STEP_READY;
        failed |= s == GVD_FAILED;
    }
    if ((due && !paused && !cancelled) || (failed && pl->cancel_on_failure && !cancelled))
        gvd_pipeline_schedule(pl);
}

static void gvd_notify_fx(void *ud)
{
    gvd_pipeline *pl = ud;
    /* everything gvd_pipeline_json shows */
    (void)gv_computed_get(pl->status);
    (void)gv_computed_get(pl->progress);
    (void)gv_signal_get(pl->paused);
    for (size_t i = 0; i < pl->nsteps; i++) {
        (void)gv_computed_get(pl->steps[i].status);
        (void)gv_computed_get(pl->steps[i].progress);
    }
    gvd_pipelines_notify(pl, false);
}

/* ---- life ------------------------------------------------------------ */

int gvd_pipeline_build(gvd_pipeline *pl)
{
    json_t *steps = json_object_get(pl->def, "steps");
    pl->name = json_string_value(json_object_get(pl->def, "name"));
    pl->cancel_on_failure = !strcmp(json_string_value(json_object_get(pl->def, "on_failure")), "cancel");
    pl->nsteps = json_array_size(steps);
    pl->steps = calloc(pl->nsteps ? pl->nsteps : 1, sizeof *pl->steps);
    if (!pl->steps || !pl->name)
        return -1;
    for (size_t i = 0; i < pl->nsteps; i++) {
        gvd_step *st = &pl->steps[i];
        json_t *d = json_array_get(steps, i), *needs = json_object_get(d, "needs");
        st->pl = pl;
        st->name = json_string_value(json_object_get(d, "name"));
        st->spec = json_object_get(d, "job");
        st->weight = json_number_value(json_object_get(d, "weight"));
        st->nneeds = json_array_size(needs);
        st->needs = calloc(st->nneeds ? st->nneeds : 1, sizeof *st->needs);
        if (!st->needs)
            return -1;
        for (size_t k = 0; k < st->nneeds; k++) {
            int j = gvd_pipeline_step_index(pl, json_string_value(json_array_get(needs, k)));
            if (j < 0)
                return -1; /* checked when created; a damaged row */
            st->needs[k] = (size_t)j;
        }
    }
    return 0;
}

int gvd_pipeline_start(gvd_pipeline *pl)
{
    if (!(pl->paused = gv_signal_new(gv_bool(false))) || !(pl->cancelled = gv_signal_new(gv_bool(false))) ||
        !(pl->scope = gv_scope_new()))
        return -1;
    for (size_t i = 0; i < pl->nsteps; i++) {
        gvd_step *st = &pl->steps[i];
        if (!(st->job_rev = gv_signal_new(gv_int(0))) || !(st->status = gv_computed_new(gvd_step_status_fn, st)) ||
            !(st->progress = gv_computed_new(gvd_step_progress_fn, st)))
            return -1;
    }
    if (!(pl->status = gv_computed_new(gvd_pl_status_fn, pl)) ||
        !(pl->progress = gv_computed_new(gvd_pl_progress_fn, pl)))
        return -1;
    return 0;
}

int gvd_pipeline_start_effects(gvd_pipeline *pl)
{
    gv_scope_enter(pl->scope);
    pl->notify_fx = gv_effect_new(gvd_notify_fx, pl);
    if (!pl->driver) {
        /* another node's pipeline only tells its watchers (mirror.c) */
        pl->advance_fx = gv_effect_new(gvd_advance_fx, pl);
        gvd_pipeline_rules_start(pl);
    }
    gv_scope_leave(pl->scope);
    return (pl->advance_fx || pl->driver) && pl->notify_fx ? 0 : -1;
}

void gvd_pipeline_destroy(gvd_pipeline *pl)
{
    if (pl->scope)
        gv_scope_free(pl->scope); /* the effects first: nothing reacts to what follows */
    gvd_pipeline_rules_free(pl);
    gv_computed_free(pl->status);
    gv_computed_free(pl->progress);
    for (size_t i = 0; pl->steps && i < pl->nsteps; i++) {
        gvd_step *st = &pl->steps[i];
        if (st->job && st->job->pipeline == pl)
            st->job->pipeline = NULL;
        gv_computed_free(st->status);
        gv_computed_free(st->progress);
        gv_signal_free(st->job_rev);
        free(st->needs);
        free(st->jobs);
    }
    free(pl->steps);
    gv_signal_free(pl->paused);
    gv_signal_free(pl->cancelled);
    json_decref(pl->latches);
    json_decref(pl->events);
    json_decref(pl->def);
    free(pl->driver);
    free(pl);
}

void gvd_step_set_job(gvd_step *st, gvd_job *job)
{
    st->job = job;
    gv_signal_set_int(st->job_rev, gv_value_to_int(gv_signal_peek(st->job_rev)) + 1);
}

int gvd_step_add_job(gvd_step *st, int64_t id)
{
    if (gvd_grow((void **)&st->jobs, &st->jobs_cap, st->njobs, sizeof *st->jobs, 4) != 0)
        return -1;
    size_t at = st->njobs++;
    while (at > 0 && st->jobs[at - 1] > id) { /* loaded in id order; kept sorted anyway */
        st->jobs[at] = st->jobs[at - 1];
        at--;
    }
    st->jobs[at] = id;
    return 0;
}

/* ---- reading it ------------------------------------------------------ */

double gvd_pipeline_finished_at(gvd_pipeline *pl)
{
    /* When its last step's job finished: durable without a column.  A
     * pipeline cancelled before any step ran has no such time: its start. */
    double at = 0;
    if (!gvd_pl_finished(gvd_pipeline_status_peek(pl)))
        return 0;
    for (size_t i = 0; i < pl->nsteps; i++)
        if (pl->steps[i].job && gv_value_to_double(gv_signal_peek(pl->steps[i].job->finished_at)) > at)
            at = gv_value_to_double(gv_signal_peek(pl->steps[i].job->finished_at));
    return at > 0 ? at : pl->created_at;
}

bool gvd_pipeline_finished(gvd_pipeline *pl)
{
    return gvd_pl_finished((gvd_pl_status)gv_computed_get_int(pl->status));
}

gvd_pl_status gvd_pipeline_status_peek(gvd_pipeline *pl)
{
    return (gvd_pl_status)gv_value_to_int(gv_computed_peek(pl->status));
}

void gvd_pipeline_value(gvd_pipeline *pl, const gvd_expr_var *var, gvd_expr_value *out)
{
    if (var->source == GVD_EXPR_PIPELINE) {
        const char *f = var->name;
        if (!strcmp(f, "status")) {
            out->type = GVD_EXPR_STRING;
            out->str = gvd_pl_status_name((gvd_pl_status)gv_computed_get_int(pl->status));
        } else if (!strcmp(f, "progress")) {
            out->type = GVD_EXPR_NUMBER;
            out->num = gv_computed_get_double(pl->progress);
        } else {
            gvd_step_counts c = gvd_count_steps(pl);
            size_t n = !strcmp(f, "steps")             ? pl->nsteps
                       : !strcmp(f, "failed_steps")    ? c.failed
                       : !strcmp(f, "succeeded_steps") ? c.succeeded
                       : !strcmp(f, "running_steps")   ? c.active
                       : !strcmp(f, "waiting_steps")   ? c.waiting + c.due
                                                       : c.skipped;
            out->type = GVD_EXPR_NUMBER;
            out->num = (double)n;
        }
        return;
    }
    int i = var->step ? gvd_pipeline_step_index(pl, var->step) : -1;
    if (i < 0)
        return; /* unknown */
    gvd_step *st = &pl->steps[i];
    if (var->source == GVD_EXPR_FIELD && !strcmp(var->name, "status")) {
        out->type = GVD_EXPR_STRING;
        out->str = gvd_step_status_name((int)gv_computed_get_int(st->status));
        return;
    }
    (void)gv_signal_get(st->job_rev);
    if (st->job)
        gvd_rule_job_value(st->job, var, out);
}

static json_t *gvd_step_json(gvd_step *st)
{
    json_t *jobs = json_array(), *needs = json_array();
    for (size_t k = 0; jobs && k < st->njobs; k++)
        if (json_array_append_new(jobs, json_integer(st->jobs[k])) != 0) {
            json_decref(jobs);
            jobs = NULL;
        }
    for (size_t k = 0; needs && k < st->nneeds; k++)
        if (json_array_append_new(needs, json_string(st->pl->steps[st->needs[k]].name)) != 0) {
            json_decref(needs);
            needs = NULL;
        }
    double progress = gv_computed_get_double(st->progress);
    return json_pack("{s:s, s:s, s:o, s:o, s:o, s:f, s:f}", "name", st->name, "status",
                     gvd_step_status_name((int)gv_computed_get_int(st->status)), "job",
                     st->job ? json_integer(st->job->id) : json_null(), "jobs", jobs, "needs", needs, "weight",
                     st->weight, "progress", round(progress * 100.0) / 100.0);
}

json_t *gvd_pipeline_json(gvd_pipeline *pl)
{
    json_t *steps = json_array();
    for (size_t i = 0; steps && i < pl->nsteps; i++)
        if (json_array_append_new(steps, gvd_step_json(&pl->steps[i])) != 0) {
            json_decref(steps);
            steps = NULL;
        }
    gvd_pl_status s = (gvd_pl_status)gv_computed_get_int(pl->status);
    double progress = gv_computed_get_double(pl->progress), finished_at = gvd_pipeline_finished_at(pl);
    const gvd_config *cfg = &pl->jobs->cfg;
    return json_pack("{s:I, s:s, s:s, s:f, s:s, s:b, s:o, s:o, s:o, s:O, s:I, s:s?}", "id", (json_int_t)pl->id,
                     "name", pl->name, "status", gvd_pl_status_name(s), "progress", round(progress * 100.0) / 100.0,
                     "on_failure", pl->cancel_on_failure ? "cancel" : "skip", "paused",
                     gv_signal_get_bool(pl->paused), "created_at", gvd_time_json(pl->created_at), "finished_at",
                     gvd_time_json(finished_at), "steps", steps, "rules",
                     json_object_get(pl->def, "rules"), "events", (json_int_t)(pl->next_event - 1), "node",
                     pl->driver ? pl->driver : cfg->cluster ? cfg->node_id : NULL);
}

json_t *gvd_pipeline_events_json(gvd_pipeline *pl)
{
    return json_pack("{s:O}", "events", pl->events);
}
