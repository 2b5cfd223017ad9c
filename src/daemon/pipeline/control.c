/*
 * control.c — the registry of pipelines, the jobs of their steps, the
 * transitions users ask for, and the stored state (see pipeline.h).
 *
 * Every transition stores the pipeline's new state first and changes
 * nothing if the store refuses (503), exactly like a job's: a 2xx means
 * committed.  Then it acts: pause holds the queued step jobs and pauses the
 * running ones, resume undoes both, cancel cancels every unfinished step
 * job, retry bumps the generation of a step and of every step after it so
 * that they are due again.
 *
 * Step jobs are created on the loop, never inside a flush: the graph's
 * advance effect only asks (gvd_pipeline_schedule) and a zero-delay timer
 * runs gvd_pipeline_advance.  A job's creation is one insert whose stored
 * spec carries {"pipeline": {"id", "step", "generation"}}; loading links
 * each job back to its step, so a step never runs twice across a crash.
 */
#include "pipeline_int.h"

#include <stdlib.h>
#include <string.h>

#include "../util/log.h"

/* ---- the registry ---------------------------------------------------- */

static void gvd_pl_timer_cb(uv_timer_t *t);

int gvd_pipelines_new(gvd_jobs *jobs)
{
    gvd_pipelines *reg = calloc(1, sizeof *reg);
    if (!reg)
        return -1;
    reg->jobs = jobs;
    uv_timer_init(jobs->loop, &reg->timer);
    reg->timer.data = reg;
    reg->timer_open = true;
    jobs->pipelines = reg;
    return 0;
}

static void gvd_pl_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void gvd_pipelines_free(gvd_jobs *jobs)
{
    gvd_pipelines *reg = jobs->pipelines;
    if (!reg)
        return;
    jobs->pipelines = NULL;
    for (gvd_pipeline *pl = reg->first, *next; pl; pl = next) {
        next = pl->next;
        gvd_pipeline_destroy(pl);
    }
    uv_close((uv_handle_t *)&reg->timer, gvd_pl_timer_closed);
}

gvd_pipeline *gvd_pipelines_get(gvd_jobs *jobs, int64_t id)
{
    for (gvd_pipeline *pl = jobs->pipelines ? jobs->pipelines->first : NULL; pl; pl = pl->next)
        if (pl->id == id)
            return pl;
    return NULL;
}

gvd_pipeline *gvd_pipelines_first(gvd_jobs *jobs) { return jobs->pipelines ? jobs->pipelines->first : NULL; }
gvd_pipeline *gvd_pipeline_next(gvd_pipeline *pl) { return pl->next; }
int64_t gvd_pipeline_id(const gvd_pipeline *pl) { return pl->id; }
bool gvd_job_in_pipeline(const gvd_job *job) { return job->pipeline != NULL; }

void gvd_pipelines_on_change(gvd_jobs *jobs, gvd_pipeline_change_fn fn, void *ud)
{
    jobs->pipelines->on_change = fn;
    jobs->pipelines->on_change_ud = ud;
}

void gvd_pipelines_notify(gvd_pipeline *pl, bool removed)
{
    gvd_pipelines *reg = pl->jobs->pipelines;
    if (reg && reg->on_change)
        reg->on_change(reg->on_change_ud, pl, removed);
}

void gvd_pl_append(gvd_pipelines *reg, gvd_pipeline *pl)
{
    pl->prev = reg->last;
    if (reg->last)
        reg->last->next = pl;
    else
        reg->first = pl;
    reg->last = pl;
    reg->count++;
}

void gvd_pl_unlink(gvd_pipelines *reg, gvd_pipeline *pl)
{
    if (pl->prev)
        pl->prev->next = pl->next;
    else
        reg->first = pl->next;
    if (pl->next)
        pl->next->prev = pl->prev;
    else
        reg->last = pl->prev;
    reg->count--;
}

json_t *gvd_pipelines_list_json(gvd_jobs *jobs, size_t offset, size_t limit)
{
    json_t *arr = json_array();
    size_t i = 0;
    for (gvd_pipeline *pl = jobs->pipelines->last; arr && pl; pl = pl->prev, i++) {
        if (i < offset || i >= offset + limit)
            continue;
        if (json_array_append_new(arr, gvd_pipeline_json(pl)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr ? json_pack("{s:o, s:I}", "pipelines", arr, "total", (json_int_t)jobs->pipelines->count) : NULL;
}

/* ---- the stored state ------------------------------------------------ */

char *gvd_pipeline_state_text(gvd_pipeline *pl, bool paused, bool cancelled, const int64_t *generations)
{
    json_t *gens = json_object();
    for (size_t i = 0; gens && i < pl->nsteps; i++) {
        int64_t g = generations ? generations[i] : pl->steps[i].generation;
        if (g > 0 && json_object_set_new(gens, pl->steps[i].name, json_integer(g)) != 0) {
            json_decref(gens);
            gens = NULL;
        }
    }
    json_t *state = gens ? json_pack("{s:b, s:b, s:o, s:O, s:O, s:I, s:s?}", "paused", paused, "cancelled",
                                     cancelled, "generations", gens, "latches", pl->latches, "events", pl->events,
                                     "next_event", (json_int_t)pl->next_event, "node",
                                     pl->jobs->cfg.cluster ? pl->jobs->cfg.node_id : NULL)
                         : NULL;
    char *text = state ? json_dumps(state, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(state);
    return text;
}

static bool gvd_pl_paused(gvd_pipeline *pl) { return gv_value_to_bool(gv_signal_peek(pl->paused)); }
static bool gvd_pl_cancelled(gvd_pipeline *pl) { return gv_value_to_bool(gv_signal_peek(pl->cancelled)); }

/* Store a state: 0, or -1 with serr. */
static int gvd_pl_store(gvd_pipeline *pl, bool paused, bool cancelled, const int64_t *generations, char *serr,
                        size_t len)
{
    char *text = gvd_pipeline_state_text(pl, paused, cancelled, generations);
    if (!text) {
        snprintf(serr, len, "out of memory");
        return -1;
    }
    int rc = gvd_store_pipeline_update(pl->jobs->store, pl->id, text, serr, len);
    free(text);
    if (rc == 0)
        pl->unsaved = false;
    return rc;
}

int gvd_pipeline_save(gvd_pipeline *pl, char *err, size_t errlen)
{
    if (gvd_pl_store(pl, gvd_pl_paused(pl), gvd_pl_cancelled(pl), NULL, err, errlen) == 0)
        return 0;
    /* Kept in memory and written again by the timer once the store takes
     * writes: a full disk loses no firing. */
    pl->unsaved = true;
    gvd_pipelines *reg = pl->jobs->pipelines;
    if (reg && !uv_is_active((uv_handle_t *)&reg->timer))
        uv_timer_start(&reg->timer, gvd_pl_timer_cb, 1000, 0);
    return -1;
}

/* ---- step jobs ------------------------------------------------------- */

/* Create the job of every due step.  0, or -1 if the store refused one
 * (tried again by the timer). */
static int gvd_pipeline_advance(gvd_pipeline *pl);

static void gvd_pl_cancel_jobs(gvd_pipeline *pl)
{
    for (size_t i = 0; i < pl->nsteps; i++) {
        gvd_job *job = pl->steps[i].job;
        if (!job || gvd_status_finished(gvd_job_status_peek(job)))
            continue;
        gvd_job_set_held(job, false);
        gvd_error err = {0};
        if (gvd_job_cancel(job, &err) != 0)
            gvd_log(GVD_LOG_WARN, "pipeline.step_not_cancelled", "pipeline=%lld step=%s job=%lld error=%s",
                    (long long)pl->id, pl->steps[i].name, (long long)job->id,
                    gvd_log_quote(err.message, (char[600]){0}, 600));
    }
}

static int gvd_pipeline_advance(gvd_pipeline *pl)
{
    gvd_jobs *jobs = pl->jobs;
    if (pl->cancel_on_failure && !gvd_pl_cancelled(pl)) {
        for (size_t i = 0; i < pl->nsteps; i++) {
            if (gv_value_to_int(gv_computed_get(pl->steps[i].status)) != GVD_FAILED)
                continue;
            char serr[256];
            if (gvd_pl_store(pl, false, true, NULL, serr, sizeof serr) != 0) {
                gvd_log(GVD_LOG_WARN, "pipeline.store_deferred", "pipeline=%lld error=%s", (long long)pl->id,
                        gvd_log_quote(serr, (char[300]){0}, 300));
                return -1;
            }
            gvd_log(GVD_LOG_INFO, "pipeline.cancelled", "pipeline=%lld reason=\"step %s failed (on_failure: cancel)\"",
                    (long long)pl->id, pl->steps[i].name);
            gv_batch_begin();
            gv_signal_set_bool(pl->paused, false);
            gv_signal_set_bool(pl->cancelled, true);
            gv_batch_end();
            gvd_pl_cancel_jobs(pl);
            return 0;
        }
    }
    if (gvd_pl_paused(pl) || gvd_pl_cancelled(pl))
        return 0;
    for (size_t i = 0; i < pl->nsteps; i++) {
        gvd_step *st = &pl->steps[i];
        if (st->job || gv_value_to_int(gv_computed_get(st->status)) != GVD_STEP_READY)
            continue;
        json_t *body = json_deep_copy(st->spec);
        char jname[256];
        snprintf(jname, sizeof jname, "%s/%s", pl->name, st->name);
        json_t *link = json_pack("{s:I, s:s, s:I}", "id", (json_int_t)pl->id, "step", st->name, "generation",
                                 (json_int_t)st->generation);
        gvd_error err = {0};
        gvd_job *job = NULL;
        /* The step knows where it runs (docs/protocol.md): in its env. */
        json_t *env = body ? json_object_get(body, "env") : NULL;
        if (body && !json_is_object(env) && json_object_set_new(body, "env", env = json_object()) != 0)
            env = NULL;
        char plid[24];
        snprintf(plid, sizeof plid, "%lld", (long long)pl->id);
        if (body && link && env && json_object_set_new(body, "name", json_string(jname)) == 0 &&
            json_object_set_new(env, "GALVANI_PIPELINE_ID", json_string(plid)) == 0 &&
            json_object_set_new(env, "GALVANI_PIPELINE_STEP", json_string(st->name)) == 0) {
            /* One batch: the step points at its job before anything reacts. */
            gv_batch_begin();
            job = gvd_jobs_create_step(jobs, body, link, pl, false, &err);
            if (job && gvd_step_add_job(st, job->id) == 0)
                gvd_step_set_job(st, job);
            gv_batch_end();
        } else {
            gvd_error_set(&err, 503, "out_of_memory", "out of memory");
        }
        json_decref(body);
        json_decref(link);
        if (!job) {
            gvd_log(GVD_LOG_WARN, "pipeline.step_not_started", "pipeline=%lld step=%s error=%s", (long long)pl->id,
                    st->name, gvd_log_quote(err.message, (char[600]){0}, 600));
            return err.http >= 500 ? -1 : 0; /* a 4xx cannot get better by retrying */
        }
        gvd_log(GVD_LOG_INFO, "pipeline.step_started", "pipeline=%lld step=%s job=%lld generation=%lld",
                (long long)pl->id, st->name, (long long)job->id, (long long)st->generation);
    }
    return 0;
}

void gvd_pipeline_schedule(gvd_pipeline *pl)
{
    gvd_pipelines *reg = pl->jobs->pipelines;
    if (pl->driver)
        return; /* its node creates its steps */
    pl->advance_due = true;
    if (reg && !uv_is_active((uv_handle_t *)&reg->timer))
        uv_timer_start(&reg->timer, gvd_pl_timer_cb, 0, 0);
}

static void gvd_pl_timer_cb(uv_timer_t *t)
{
    gvd_pipelines *reg = t->data;
    bool again = false;
    for (gvd_pipeline *pl = reg->first; pl; pl = pl->next) {
        char serr[256];
        if (pl->unsaved && gvd_pl_store(pl, gvd_pl_paused(pl), gvd_pl_cancelled(pl), NULL, serr, sizeof serr) != 0)
            again = true;
        if (pl->advance_due) {
            pl->advance_due = false;
            if (gvd_pipeline_advance(pl) != 0) {
                pl->advance_due = true;
                again = true;
            }
        }
    }
    if (again && !uv_is_active((uv_handle_t *)&reg->timer))
        uv_timer_start(&reg->timer, gvd_pl_timer_cb, 1000, 0); /* the store, back soon */
}

/* ---- creating, loading ----------------------------------------------- */

gvd_pipeline *gvd_pl_alloc(gvd_jobs *jobs, int64_t id, json_t *def, double created_at)
{
    gvd_pipeline *pl = calloc(1, sizeof *pl);
    if (!pl) {
        json_decref(def);
        return NULL;
    }
    pl->jobs = jobs;
    pl->id = id;
    pl->def = def;
    pl->created_at = created_at;
    pl->next_event = 1;
    if (!(pl->latches = json_object()) || !(pl->events = json_array()) || gvd_pipeline_build(pl) != 0 ||
        gvd_pipeline_start(pl) != 0) {
        gvd_pipeline_destroy(pl);
        return NULL;
    }
    return pl;
}

gvd_pipeline *gvd_pipelines_create(gvd_jobs *jobs, json_t *body, gvd_error *err)
{
    json_t *def = NULL;
    if (gvd_pipeline_spec_check(body, &jobs->cfg, &def, err) != 0)
        return NULL;
    double now = gvd_now();
    char *def_text = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    /* Several nodes: the node that creates a pipeline drives it (and runs
     * its steps); the state says which (see gvd_load_pipeline). */
    json_t *first = json_pack("{s:s?}", "node", jobs->cfg.cluster ? jobs->cfg.node_id : NULL);
    char *state_text = first ? json_dumps(first, JSON_COMPACT) : NULL;
    json_decref(first);
    gvd_pipeline_row row = {.name = json_string_value(json_object_get(def, "name")),
                            .def_json = def_text,
                            .state_json = state_text ? state_text : "{}",
                            .created_at = now};
    int64_t id = 0;
    char serr[256] = "out of memory";
    int rc = def_text && state_text ? gvd_store_pipeline_insert(jobs->store, &row, &id, serr, sizeof serr) : -1;
    free(def_text);
    free(state_text);
    if (rc != 0) {
        json_decref(def);
        gvd_jobs_store_error(jobs, err, "the pipeline was not created", serr);
        return NULL;
    }
    gvd_pipeline *pl = gvd_pl_alloc(jobs, id, def, now);
    if (!pl || gvd_pipeline_rules_attach(pl) != 0) {
        if (pl)
            gvd_pipeline_destroy(pl);
        (void)gvd_store_pipeline_delete(jobs->store, id, serr, sizeof serr);
        gvd_error_set(err, 503, "out_of_memory", "out of memory");
        return NULL;
    }
    gvd_pl_append(jobs->pipelines, pl);
    gv_batch_begin();
    if (gvd_pipeline_start_effects(pl) != 0)
        gvd_log(GVD_LOG_ERROR, "pipeline.not_reactive", "pipeline=%lld reason=\"out of memory\"", (long long)id);
    gv_batch_end();
    gvd_log(GVD_LOG_INFO, "pipeline.created", "pipeline=%lld name=%s steps=%zu", (long long)id,
            gvd_log_quote(pl->name, (char[300]){0}, 300), pl->nsteps);
    /* The steps that need nothing start now: the 201 shows their jobs. */
    pl->advance_due = false;
    if (gvd_pipeline_advance(pl) != 0)
        gvd_pipeline_schedule(pl);
    return pl;
}

void gvd_pl_apply_state(gvd_pipeline *pl, json_t *state)
{
    gv_batch_begin();
    gv_signal_set_bool(pl->paused, json_is_true(json_object_get(state, "paused")));
    gv_signal_set_bool(pl->cancelled, json_is_true(json_object_get(state, "cancelled")));
    json_t *gens = json_object_get(state, "generations");
    for (size_t i = 0; i < pl->nsteps; i++) {
        gvd_step *st = &pl->steps[i];
        int64_t g = json_integer_value(json_object_get(gens, st->name));
        if (g == st->generation)
            continue;
        /* a retry (mirror.c: another node's): the step's job is the new
         * generation's, when it has one yet */
        st->generation = g;
        gvd_job *current = NULL;
        for (size_t k = 0; k < st->njobs && !current; k++) {
            gvd_job *job = gvd_jobs_get(pl->jobs, st->jobs[k]);
            json_t *link = job ? json_object_get(job->spec_json, "pipeline") : NULL;
            if (link && json_integer_value(json_object_get(link, "generation")) == g)
                current = job;
        }
        if (current != st->job)
            gvd_step_set_job(st, current);
    }
    json_object_clear(pl->latches);
    if (json_is_object(json_object_get(state, "latches")))
        json_object_update(pl->latches, json_object_get(state, "latches"));
    json_array_clear(pl->events);
    if (json_is_array(json_object_get(state, "events")))
        json_array_extend(pl->events, json_object_get(state, "events"));
    pl->next_event = json_integer_value(json_object_get(state, "next_event"));
    if (pl->next_event < 1)
        pl->next_event = 1;
    gv_batch_end();
}

static int gvd_load_pipeline(void *ud, const gvd_pipeline_row *row)
{
    gvd_jobs *jobs = ud;
    json_t *def = json_loads(row->def_json, 0, NULL), *state = json_loads(row->state_json, 0, NULL);
    /* Several nodes: only the node that created a pipeline drives it —
     * two nodes would each create its due steps.  The others hold it as a
     * mirror (mirror.c), which follows the row that node writes. */
    const char *owner = json_string_value(json_object_get(state, "node"));
    bool elsewhere = jobs->cfg.cluster && owner && strcmp(owner, jobs->cfg.node_id) != 0;
    gvd_pipeline *pl = def && state ? gvd_pl_alloc(jobs, row->id, def, row->created_at) : NULL;
    if (pl && elsewhere && !(pl->driver = strdup(owner))) {
        gvd_pipeline_destroy(pl);
        pl = NULL;
    }
    if (!pl) {
        if (def && !state)
            json_decref(def); /* else gvd_pl_alloc took it */
        json_decref(state);
        gvd_log(GVD_LOG_ERROR, "pipeline.not_loaded", "pipeline=%lld reason=\"damaged row or out of memory\"",
                (long long)row->id);
        return 0; /* the others still load */
    }
    gvd_pl_apply_state(pl, state);
    json_decref(state);
    gvd_pl_append(jobs->pipelines, pl);
    return 0;
}

/* A job whose stored spec names a pipeline that exists is one of its
 * steps' (the current one if its generation is the step's). */
void gvd_pl_link_job(gvd_jobs *jobs, gvd_job *job)
{
    json_t *link = json_object_get(job->spec_json, "pipeline");
    if (!link || job->pipeline)
        return;
    gvd_pipeline *pl = gvd_pipelines_get(jobs, json_integer_value(json_object_get(link, "id")));
    const char *step = json_string_value(json_object_get(link, "step"));
    int i = pl && step ? gvd_pipeline_step_index(pl, step) : -1;
    if (i < 0)
        return; /* its pipeline was deleted (a crash in the middle): a job of its own now */
    gvd_step *st = &pl->steps[i];
    if (gvd_step_add_job(st, job->id) != 0)
        return;
    job->pipeline = pl;
    if (json_integer_value(json_object_get(link, "generation")) == st->generation) {
        gvd_step_set_job(st, job);
        if (!pl->driver)
            job->held = gvd_pl_paused(pl); /* the hold is the driver's word */
    }
}

int gvd_pipelines_load(gvd_jobs *jobs, char *err, size_t errlen)
{
    if (gvd_store_pipelines_load(jobs->store, gvd_load_pipeline, jobs, err, errlen) != 0)
        return -1;
    if (!jobs->pipelines->first)
        return 0;
    for (gvd_job *job = jobs->first; job; job = job->next)
        gvd_pl_link_job(jobs, job);
    for (gvd_pipeline *pl = jobs->pipelines->first; pl; pl = pl->next) {
        if (!pl->driver && gvd_pipeline_rules_attach(pl) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        gv_batch_begin();
        int rc = gvd_pipeline_start_effects(pl);
        gv_batch_end();
        if (rc != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* ---- transitions ------------------------------------------------------ */

/* A mirror's transitions are its driver's (api/relay.c sends them there):
 * -1 with 409 on_another_node. */
static int gvd_pl_elsewhere(gvd_pipeline *pl, gvd_error *err)
{
    char msg[300];
    snprintf(msg, sizeof msg, "pipeline %lld is driven by node %s: send the request there", (long long)pl->id,
             pl->driver);
    gvd_error_set(err, 409, "on_another_node", msg);
    return -1;
}

static int gvd_pl_refuse(gvd_pipeline *pl, const char *what, const char *why, gvd_error *err)
{
    char msg[300];
    snprintf(msg, sizeof msg, "pipeline %lld is %s: it cannot be %s (%s)", (long long)pl->id,
             gvd_pl_status_name(gvd_pipeline_status_peek(pl)), what, why);
    gvd_error_set(err, 409, "invalid_transition", msg);
    return -1;
}

static int gvd_pl_store_or_503(gvd_pipeline *pl, bool paused, bool cancelled, const int64_t *gens, const char *what,
                               gvd_error *err)
{
    char serr[256];
    if (gvd_pl_store(pl, paused, cancelled, gens, serr, sizeof serr) == 0)
        return 0;
    gvd_jobs_store_error(pl->jobs, err, what, serr);
    return -1;
}

int gvd_pipeline_pause(gvd_pipeline *pl, gvd_error *err)
{
    if (pl->driver)
        return gvd_pl_elsewhere(pl, err);
    if (gvd_pl_finished(gvd_pipeline_status_peek(pl)) || gvd_pl_cancelled(pl))
        return gvd_pl_refuse(pl, "paused", "it is finished", err);
    if (gvd_pl_paused(pl))
        return gvd_pl_refuse(pl, "paused", "it is paused already", err);
    if (gvd_pl_store_or_503(pl, true, false, NULL, "the pipeline was not paused", err) != 0)
        return -1;
    gv_signal_set_bool(pl->paused, true);
    /* Queued steps are held; running ones pause (each its own transition:
     * a job that finished meanwhile is simply left alone). */
    for (size_t i = 0; i < pl->nsteps; i++) {
        gvd_job *job = pl->steps[i].job;
        if (!job)
            continue;
        gvd_job_set_held(job, true);
        gvd_error jerr = {0};
        if (gvd_job_status_peek(job) == GVD_RUNNING && gvd_job_pause(job, &jerr) != 0)
            gvd_log(GVD_LOG_WARN, "pipeline.step_not_paused", "pipeline=%lld step=%s job=%lld error=%s",
                    (long long)pl->id, pl->steps[i].name, (long long)job->id,
                    gvd_log_quote(jerr.message, (char[600]){0}, 600));
    }
    gvd_log(GVD_LOG_INFO, "pipeline.paused", "pipeline=%lld", (long long)pl->id);
    return 0;
}

int gvd_pipeline_resume(gvd_pipeline *pl, gvd_error *err)
{
    if (pl->driver)
        return gvd_pl_elsewhere(pl, err);
    if (!gvd_pl_paused(pl) || gvd_pl_cancelled(pl) || gvd_pl_finished(gvd_pipeline_status_peek(pl)))
        return gvd_pl_refuse(pl, "resumed", "only a paused pipeline can be resumed", err);
    if (gvd_pl_store_or_503(pl, false, false, NULL, "the pipeline was not resumed", err) != 0)
        return -1;
    gv_signal_set_bool(pl->paused, false);
    for (size_t i = 0; i < pl->nsteps; i++) {
        gvd_job *job = pl->steps[i].job;
        if (!job)
            continue;
        gvd_job_set_held(job, false);
        gvd_error jerr = {0};
        if (gvd_job_status_peek(job) == GVD_PAUSED && gvd_job_resume(job, &jerr) != 0)
            gvd_log(GVD_LOG_WARN, "pipeline.step_not_resumed", "pipeline=%lld step=%s job=%lld error=%s",
                    (long long)pl->id, pl->steps[i].name, (long long)job->id,
                    gvd_log_quote(jerr.message, (char[600]){0}, 600));
    }
    gvd_log(GVD_LOG_INFO, "pipeline.resumed", "pipeline=%lld", (long long)pl->id);
    return 0;
}

int gvd_pipeline_cancel(gvd_pipeline *pl, gvd_error *err)
{
    if (pl->driver)
        return gvd_pl_elsewhere(pl, err);
    if (gvd_pl_finished(gvd_pipeline_status_peek(pl)) || gvd_pl_cancelled(pl))
        return gvd_pl_refuse(pl, "cancelled", "it is finished", err);
    /* Cancelled is final until a retry: a pause no longer means anything. */
    if (gvd_pl_store_or_503(pl, false, true, NULL, "the pipeline was not cancelled", err) != 0)
        return -1;
    gv_batch_begin();
    gv_signal_set_bool(pl->paused, false);
    gv_signal_set_bool(pl->cancelled, true);
    gv_batch_end();
    gvd_pl_cancel_jobs(pl);
    gvd_log(GVD_LOG_INFO, "pipeline.cancelled", "pipeline=%lld reason=request", (long long)pl->id);
    return 0;
}

int gvd_pipeline_retry(gvd_pipeline *pl, const char *name, gvd_error *err)
{
    if (pl->driver)
        return gvd_pl_elsewhere(pl, err);
    int at = gvd_pipeline_step_index(pl, name);
    char msg[400];
    if (at < 0) {
        snprintf(msg, sizeof msg, "pipeline %lld has no step \"%.64s\"", (long long)pl->id, name);
        gvd_error_set(err, 404, "not_found", msg);
        return -1;
    }
    /* The step and everything after it (the steps that need it, and so on). */
    bool again[GVD_PIPELINE_MAX_STEPS] = {0};
    again[at] = true;
    for (size_t i = 0; i < pl->nsteps; i++) /* needs may name later steps: repeat until nothing changes */
        for (size_t j = 0; j < pl->nsteps; j++)
            for (size_t k = 0; !again[j] && k < pl->steps[j].nneeds; k++)
                again[j] = again[pl->steps[j].needs[k]];
    int s = (int)gv_value_to_int(gv_computed_get(pl->steps[at].status));
    if (s == GVD_STEP_WAITING || s == GVD_STEP_READY || s == GVD_STEP_SKIPPED) {
        snprintf(msg, sizeof msg, "step \"%s\" of pipeline %lld is %s: only a step that ran (or was cancelled) can be "
                 "retried%s", name, (long long)pl->id, gvd_step_status_name(s),
                 s == GVD_STEP_SKIPPED ? "; retry the failed step before it" : "");
        gvd_error_set(err, 409, "invalid_transition", msg);
        return -1;
    }
    for (size_t j = 0; j < pl->nsteps; j++) {
        int sj = (int)gv_value_to_int(gv_computed_get(pl->steps[j].status));
        if (again[j] && (sj == GVD_QUEUED || sj == GVD_RUNNING || sj == GVD_PAUSED)) {
            snprintf(msg, sizeof msg, "step \"%s\" of pipeline %lld is %s: cancel it before retrying \"%s\"",
                     pl->steps[j].name, (long long)pl->id, gvd_step_status_name(sj), name);
            gvd_error_set(err, 409, "invalid_transition", msg);
            return -1;
        }
    }
    int64_t gens[GVD_PIPELINE_MAX_STEPS];
    for (size_t j = 0; j < pl->nsteps; j++)
        gens[j] = pl->steps[j].generation + (again[j] ? 1 : 0);
    if (gvd_pl_store_or_503(pl, gvd_pl_paused(pl), false, gens, "the step was not retried", err) != 0)
        return -1;
    gv_batch_begin();
    gv_signal_set_bool(pl->cancelled, false);
    for (size_t j = 0; j < pl->nsteps; j++)
        if (again[j]) {
            pl->steps[j].generation = gens[j];
            gvd_step_set_job(&pl->steps[j], NULL);
        }
    gv_batch_end();
    gvd_log(GVD_LOG_INFO, "pipeline.retried", "pipeline=%lld step=%s", (long long)pl->id, name);
    return 0;
}

int gvd_pipeline_delete(gvd_pipeline *pl, gvd_error *err)
{
    if (pl->driver)
        return gvd_pl_elsewhere(pl, err);
    gvd_jobs *jobs = pl->jobs;
    gvd_pl_status s = gvd_pipeline_status_peek(pl);
    char msg[300];
    bool dying = false;
    for (size_t i = 0; i < pl->nsteps; i++)
        dying |= pl->steps[i].job && (pl->steps[i].job->exec || !gvd_status_finished(gvd_job_status_peek(pl->steps[i].job)));
    if (!gvd_pl_finished(s) || dying) {
        snprintf(msg, sizeof msg, "pipeline %lld is %s: only finished pipelines can be deleted (cancel it first)",
                 (long long)pl->id, dying && gvd_pl_finished(s) ? "still stopping" : gvd_pl_status_name(s));
        gvd_error_set(err, 409, "invalid_transition", msg);
        return -1;
    }
    /* The row first: if we stop between, the jobs are left as jobs of
     * their own (deletable), never a pipeline that would run them again. */
    char serr[256];
    if (gvd_store_pipeline_delete(jobs->store, pl->id, serr, sizeof serr) != 0) {
        gvd_jobs_store_error(jobs, err, "the pipeline was not deleted", serr);
        return -1;
    }
    gvd_pipelines_notify(pl, true);
    gvd_pl_unlink(jobs->pipelines, pl);
    size_t n = 0;
    int64_t *ids = NULL;
    for (size_t i = 0; i < pl->nsteps; i++)
        n += pl->steps[i].njobs;
    if (n && (ids = malloc(n * sizeof *ids)) != NULL) {
        n = 0;
        for (size_t i = 0; i < pl->nsteps; i++)
            for (size_t k = 0; k < pl->steps[i].njobs; k++)
                ids[n++] = pl->steps[i].jobs[k];
    }
    for (size_t k = 0; ids && k < n; k++) {
        gvd_job *job = gvd_jobs_get(jobs, ids[k]);
        if (job)
            job->pipeline = NULL;
    }
    int64_t id = pl->id;
    gvd_pipeline_destroy(pl);
    for (size_t k = 0; ids && k < n; k++) {
        gvd_job *job = gvd_jobs_get(jobs, ids[k]);
        gvd_error jerr = {0};
        if (job && gvd_jobs_delete(jobs, job, &jerr) != 0)
            gvd_log(GVD_LOG_WARN, "pipeline.job_kept", "pipeline=%lld job=%lld error=%s", (long long)id,
                    (long long)ids[k], gvd_log_quote(jerr.message, (char[600]){0}, 600));
    }
    free(ids);
    gvd_log(GVD_LOG_INFO, "pipeline.deleted", "pipeline=%lld jobs=%zu", (long long)id, n);
    return 0;
}

/* ---- retention -------------------------------------------------------- */

long gvd_pipelines_prune(gvd_jobs *jobs, double cutoff)
{
    long n = 0;
    gvd_pipeline *pl = jobs->pipelines ? jobs->pipelines->first : NULL;
    while (pl) {
        gvd_pipeline *next = pl->next;
        if (pl->driver) {
            pl = next; /* its node prunes it */
            continue;
        }
        double at = gvd_pipeline_finished_at(pl);
        bool over = jobs->count > jobs->cfg.max_jobs, old = cutoff > 0 && at > 0 && at < cutoff;
        if (!over && cutoff <= 0)
            break;
        if (at > 0 && (over || old)) {
            gvd_error err = {0};
            int64_t id = pl->id;
            if (gvd_pipeline_delete(pl, &err) == 0) {
                n++;
                gvd_log(GVD_LOG_DEBUG, "pipeline.pruned", "pipeline=%lld", (long long)id);
            } else if (err.http >= 500) {
                return -1; /* the store: fault.c schedules retention again */
            } /* else still stopping: next time */
        }
        pl = next;
    }
    return n;
}

double gvd_pipelines_next_expiry(gvd_jobs *jobs, double keep_s)
{
    double first = -1;
    for (gvd_pipeline *pl = jobs->pipelines ? jobs->pipelines->first : NULL; pl; pl = pl->next) {
        double at = pl->driver ? 0 : gvd_pipeline_finished_at(pl); /* a mirror is pruned by its node */
        if (at > 0 && (first < 0 || at + keep_s < first))
            first = at + keep_s;
    }
    return first;
}
