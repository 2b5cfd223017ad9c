/*
 * engine.c — the rules engine (see rules.h): the queue of firings and
 * re-arms that rules.c's effects produce, drained on the loop right after
 * the flush that produced them: the action runs as a request would
 * (gvd_job_pause, ...), then the event and the latch are stored in one
 * transaction (what the store refuses is kept and written by the progress
 * write-behind once it takes writes again: gvd_rules_write, called from
 * jobs.c's flush).  Also a job's events (JSON, loading) and the engine's
 * life (the tick, the webhook).
 *
 * Why a queue: an effect must not start a transition of its own job in the
 * middle of a flush (the transition's revert-on-store-failure logic runs in
 * the job's reconcile effect and expects a batch of its own), and store
 * writes belong outside the graph's callbacks.
 */
#include "rules.h"

#include <stdlib.h>
#include <string.h>

#include "../obs/obs.h"
#include "../pipeline/pipeline_int.h"
#include "../util/log.h"
#include "rules_int.h"
#include "webhook.h"

static void gvd_act_cb(uv_timer_t *t);

void gvd_rules_kick(gvd_rules *eng)
{
    if (!uv_is_active((uv_handle_t *)&eng->act_timer))
        uv_timer_start(&eng->act_timer, gvd_act_cb, 0, 0);
}

/* ---- a job's events -------------------------------------------------- */

int gvd_rules_write(gvd_job *job, char *err, size_t errlen)
{
    gvd_job_rules *jr = job->rules;
    if (!jr)
        return 0;
    size_t n = json_array_size(jr->unstored);
    jr->nwritten = 0;
    if (n) {
        int64_t *ids = realloc(jr->written_ids, n * sizeof *ids);
        if (!ids) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        jr->written_ids = ids;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *u = json_array_get(jr->unstored, i), *ev = json_object_get(u, "ev");
        char *values =
            json_dumps(json_object_get(ev, "values"), JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
        gvd_event_row row = {.job_id = job->id,
                             .rule = json_string_value(json_object_get(ev, "rule")),
                             .when = json_string_value(json_object_get(ev, "when")),
                             .action = json_string_value(json_object_get(ev, "then")),
                             .values_json = values,
                             .outcome = json_string_value(json_object_get(ev, "outcome")),
                             .at = json_real_value(json_object_get(u, "at"))};
        int rc = values ? gvd_store_event_insert(job->jobs->store, &row, &jr->written_ids[i], err, errlen) : -1;
        free(values);
        if (rc != 0)
            return -1;
        jr->nwritten = i + 1;
    }
    const char *rule;
    json_t *v;
    json_object_foreach(jr->latches_unstored, rule, v) {
        if (gvd_store_latch_put(job->jobs->store, job->id, rule, json_is_true(v), err, errlen) != 0)
            return -1;
    }
    return 0;
}

void gvd_rules_committed(gvd_job *job)
{
    gvd_job_rules *jr = job->rules;
    if (!jr)
        return;
    for (size_t i = 0; i < jr->nwritten; i++) {
        json_t *ev = json_object_get(json_array_get(jr->unstored, i), "ev");
        json_object_set_new(ev, "id", json_integer(jr->written_ids[i]));
    }
    json_array_clear(jr->unstored);
    json_object_clear(jr->latches_unstored);
    jr->nwritten = 0;
}

int64_t gvd_job_events_count(const gvd_job *job)
{
    const gvd_job_rules *jr = job->rules;
    if (!jr || (jr->n == 0 && json_array_size(jr->events) == 0))
        return -1;
    return (int64_t)json_array_size(jr->events);
}

json_t *gvd_job_events_json(gvd_job *job)
{
    json_t *events = job->rules ? json_incref(job->rules->events) : json_array();
    return json_pack("{s:o}", "events", events);
}

/* ---- the engine ------------------------------------------------------ */

static json_t *gvd_event_json(int64_t id, const char *rule, const char *when, const char *action, json_t *values,
                              const char *outcome, double at)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:O, s:s, s:o}", "id", (json_int_t)id, "rule", rule, "when", when, "then",
                     action, "values", values, "outcome", outcome, "at", gvd_time_json(at));
}

/* Keep the newest GVD_EVENTS_MAX in memory (the store is pruned alike). */
static void gvd_events_append(gvd_job *job, json_t *ev)
{
    json_t *events = job->rules->events;
    if (json_array_append_new(events, ev) != 0)
        return;
    if (json_array_size(events) > GVD_EVENTS_MAX) {
        for (int i = 0; i < GVD_EVENTS_PRUNE; i++)
            json_array_remove(events, 0);
    }
}

/* The webhook's body: the event plus the job it is about.
 *   {"event": "rule.fired", "job": {"id", "name", "status", "labels"},
 *    "id", "rule", "when", "then", "values", "outcome", "at"} */
static void gvd_notify_webhook(gvd_jobs *jobs, gvd_job *job, json_t *ev)
{
    json_t *labels = json_object_get(job->spec_json, "labels");
    json_t *about = json_pack("{s:I, s:s, s:s, s:O}", "id", (json_int_t)job->id, "name", job->spec.name, "status",
                              gvd_status_name(gvd_job_status_peek(job)), "labels", labels ? labels : json_null());
    char owner[40];
    snprintf(owner, sizeof owner, "job=%lld", (long long)job->id);
    gvd_rule_post_event(jobs, ev, "job", about, owner);
}

void gvd_rule_post_event(gvd_jobs *jobs, json_t *ev, const char *kind, json_t *about, const char *owner)
{
    json_t *body = json_deep_copy(ev);
    char *text = NULL;
    if (body && about && json_object_set_new(body, "event", json_string("rule.fired")) == 0 &&
        json_object_set(body, kind, about) == 0)
        text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    char what[160];
    snprintf(what, sizeof what, "%s rule=%.100s", owner, json_string_value(json_object_get(ev, "rule")));
    if (text)
        gvd_webhook_post(jobs->rules->webhook, text, what);
    else
        gvd_log(GVD_LOG_ERROR, "rule.webhook_failed", "%s error=\"out of memory\"", what);
    free(text);
    json_decref(about);
    json_decref(body);
}

void gvd_rule_act(gvd_jobs *jobs, const gvd_pending *p, const char *owner, const char *refused,
                  gvd_rule_act_fn act, void *target, const char *vtext, char *outcome, size_t len)
{
    gvd_error err = {0};
    int rc = 0;
    if (refused) {
        snprintf(outcome, len, "not applied: %s", refused);
    } else {
        if (p->action == GVD_ACT_NOTIFY)
            gvd_log(GVD_LOG_INFO, "rule.notify", "%s rule=%s when=%s values=%s", owner,
                    gvd_log_quote(p->rule, (char[100]){0}, 100), gvd_log_quote(p->when, (char[1100]){0}, 1100),
                    gvd_log_quote(vtext, (char[1200]){0}, 1200));
        else
            rc = act(target, p->action, &err);
        static const char *const done[] = {"paused", "cancelled", "resumed", "logged"};
        if (rc == 0 && p->action == GVD_ACT_NOTIFY && jobs->rules->webhook)
            snprintf(outcome, len, "logged and posted to the webhook");
        else if (rc == 0)
            snprintf(outcome, len, "%s", done[p->action]);
        else
            snprintf(outcome, len, "not applied: %s", err.message);
    }
    gvd_obs_rule_fired(gvd_action_names[p->action]);
    gvd_log(GVD_LOG_INFO, "rule.fired", "%s rule=%s then=%s outcome=%s values=%s", owner,
            gvd_log_quote(p->rule, (char[100]){0}, 100), gvd_action_names[p->action],
            gvd_log_quote(outcome, (char[700]){0}, 700), gvd_log_quote(vtext, (char[1200]){0}, 1200));
}

static int gvd_job_act(void *target, gvd_rule_action action, gvd_error *err)
{
    gvd_job *job = target;
    return action == GVD_ACT_PAUSE    ? gvd_job_pause(job, err)
           : action == GVD_ACT_CANCEL ? gvd_job_cancel(job, err)
                                      : gvd_job_resume(job, err);
}

/* Act, record, store. */
static void gvd_fire(gvd_jobs *jobs, gvd_job *job, gvd_pending *p)
{
    char outcome[600], refused[80], owner[40], nq[100];
    char *vtext = json_dumps(p->values, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    gvd_status st = gvd_job_status_peek(job);
    snprintf(refused, sizeof refused, "the job is %s", gvd_status_name(st));
    snprintf(owner, sizeof owner, "job=%lld", (long long)job->id);
    gvd_rule_act(jobs, p, owner, gvd_status_finished(st) ? refused : NULL, gvd_job_act, job, vtext ? vtext : "{}",
                 outcome, sizeof outcome);

    /* The event and the latch in one transaction: after a crash either both
     * are there (no second firing) or neither (it fires again). */
    char serr[256];
    int64_t id = 0;
    gvd_event_row row = {.job_id = job->id, .rule = p->rule, .when = p->when, .action = gvd_action_names[p->action],
                         .values_json = vtext ? vtext : "{}", .outcome = outcome, .at = p->at};
    json_t *events = job->rules->events;
    int64_t prune_upto = json_array_size(events) >= GVD_EVENTS_MAX
                             ? json_integer_value(json_object_get(json_array_get(events, GVD_EVENTS_PRUNE - 1), "id"))
                             : 0;
    bool stored = gvd_store_begin(jobs->store, serr, sizeof serr) == 0;
    if (stored && (gvd_store_event_insert(jobs->store, &row, &id, serr, sizeof serr) != 0 ||
                   gvd_store_latch_put(jobs->store, job->id, p->rule, true, serr, sizeof serr) != 0 ||
                   (prune_upto > 0 && gvd_store_event_prune(jobs->store, job->id, prune_upto, serr, sizeof serr) != 0) ||
                   gvd_store_commit(jobs->store, serr, sizeof serr) != 0)) {
        gvd_store_rollback(jobs->store);
        stored = false;
    }
    if (!stored)
        id = 0; /* an id the rolled-back insert took is not the event's */
    json_t *ev = gvd_event_json(id, p->rule, p->when, gvd_action_names[p->action], p->values, outcome, p->at);
    if (ev && p->action == GVD_ACT_NOTIFY && jobs->rules->webhook)
        gvd_notify_webhook(jobs, job, ev);
    if (stored) {
        json_object_del(job->rules->latches_unstored, p->rule); /* older than this */
    } else {
        /* Kept (id 0 until stored) and written by the write-behind once the
         * store takes writes again: a full disk loses no firing. */
        gvd_log(gvd_store_available(jobs->store) ? GVD_LOG_ERROR : GVD_LOG_WARN, "rule.store_deferred",
                "job=%lld rule=%s error=%s", (long long)job->id, gvd_log_quote(p->rule, nq, sizeof nq),
                gvd_log_quote(serr, (char[300]){0}, 300));
        json_t *u = ev ? json_pack("{s:O, s:f}", "ev", ev, "at", p->at) : NULL;
        if (!u || json_array_append_new(job->rules->unstored, u) != 0 ||
            json_object_set_new(job->rules->latches_unstored, p->rule, json_true()) != 0)
            gvd_log(GVD_LOG_ERROR, "rule.dropped", "job=%lld rule=%s reason=\"out of memory\"", (long long)job->id,
                    gvd_log_quote(p->rule, nq, sizeof nq));
        gvd_jobs_mark_history(jobs, job);
    }
    if (ev)
        gvd_events_append(job, ev);
    gvd_jobs_notify(jobs, job, false); /* its "events" count moved: the streams re-send it */
    free(vtext);
}

static void gvd_pending_free(gvd_pending *p)
{
    free(p->rule);
    free(p->when);
    json_decref(p->values);
    free(p);
}

static void gvd_act_cb(uv_timer_t *t)
{
    gvd_rules *eng = t->data;
    gvd_pending *p = eng->first;
    eng->first = eng->last = NULL;
    while (p) {
        gvd_pending *next = p->next;
        gvd_job *job = p->job_id ? gvd_jobs_get(eng->jobs, p->job_id) : NULL;
        char serr[256];
        if (p->pipeline_id) {
            gvd_pipeline_rule_acted(eng->jobs, p); /* pipeline/prules.c */
        } else if (!job) {
            /* deleted meanwhile: its rows went with it */
        } else if (p->fire) {
            gvd_fire(eng->jobs, job, p);
        } else if (gvd_store_latch_put(eng->jobs->store, job->id, p->rule, false, serr, sizeof serr) == 0) {
            json_object_del(job->rules->latches_unstored, p->rule);
        } else {
            gvd_log(GVD_LOG_WARN, "rule.store_deferred", "job=%lld rule=%s error=%s", (long long)job->id, p->rule,
                    gvd_log_quote(serr, (char[300]){0}, 300));
            if (json_object_set_new(job->rules->latches_unstored, p->rule, json_false()) == 0)
                gvd_jobs_mark_history(eng->jobs, job);
        }
        gvd_pending_free(p);
        p = next;
    }
}

static void gvd_tick_cb(uv_timer_t *t)
{
    gvd_rules *eng = t->data;
    gv_signal_set_int(eng->tick, gv_value_to_int(gv_signal_peek(eng->tick)) + 1);
}

int gvd_rules_new(gvd_jobs *jobs)
{
    gvd_rules *eng = calloc(1, sizeof *eng);
    if (!eng)
        return -1;
    if (!(eng->tick = gv_signal_new(gv_int(0)))) {
        free(eng);
        return -1;
    }
    eng->jobs = jobs;
    uv_timer_init(jobs->loop, &eng->tick_timer);
    uv_timer_init(jobs->loop, &eng->act_timer);
    eng->tick_timer.data = eng->act_timer.data = eng;
    eng->open_handles = 2;
    uv_timer_start(&eng->tick_timer, gvd_tick_cb, 1000, 1000);
    uv_unref((uv_handle_t *)&eng->tick_timer); /* the tick alone does not keep the loop alive */
    jobs->rules = eng;
    return 0;
}

int gvd_rules_webhook(gvd_jobs *jobs, char *err, size_t errlen)
{
    const gvd_config *cfg = &jobs->cfg;
    if (!cfg->webhook_url)
        return 0;
    char why[300];
    jobs->rules->webhook = gvd_webhook_new(jobs->loop, cfg->webhook_url, cfg->webhook_timeout_s,
                                           cfg->webhook_attempts ? cfg->webhook_attempts : 4, why, sizeof why);
    if (!jobs->rules->webhook) {
        snprintf(err, errlen, "cannot use the webhook: %s", why);
        return -1;
    }
    return 0;
}

static void gvd_rules_closed(uv_handle_t *h)
{
    gvd_rules *eng = h->data;
    if (--eng->open_handles == 0)
        free(eng);
}

void gvd_rules_free(gvd_jobs *jobs)
{
    gvd_rules *eng = jobs->rules;
    if (!eng)
        return;
    jobs->rules = NULL;
    for (gvd_pending *p = eng->first, *next; p; p = next) {
        next = p->next;
        gvd_pending_free(p); /* not acted on: the latch stays as stored, so a restart decides again */
    }
    eng->first = eng->last = NULL;
    gvd_globals_free(eng);
    gvd_webhook_free(eng->webhook);
    gv_signal_free(eng->tick);
    uv_close((uv_handle_t *)&eng->tick_timer, gvd_rules_closed);
    uv_close((uv_handle_t *)&eng->act_timer, gvd_rules_closed);
}

static int gvd_load_event(void *ud, const gvd_event_row *row)
{
    gvd_job *job = gvd_jobs_get(ud, row->job_id);
    if (!job || !job->rules)
        return 0;
    json_t *values = json_loads(row->values_json, 0, NULL);
    json_t *ev = gvd_event_json(row->id, row->rule, row->when, row->action, values ? values : json_null(),
                                row->outcome, row->at);
    json_decref(values);
    if (!ev)
        return -1;
    gvd_events_append(job, ev);
    return 0;
}

static int gvd_load_latch(void *ud, int64_t job_id, const char *rule, bool latched)
{
    gvd_job *job = gvd_jobs_get(ud, job_id);
    for (size_t i = 0; job && job->rules && i < job->rules->n; i++)
        if (!strcmp(job->rules->rules[i]->name, rule))
            job->rules->rules[i]->latched = latched;
    return 0;
}

int gvd_rules_load(gvd_jobs *jobs, char *err, size_t errlen)
{
    if (gvd_store_events_load(jobs->store, gvd_load_event, jobs, err, errlen) != 0 ||
        gvd_store_latches_load(jobs->store, gvd_load_latch, jobs, err, errlen) != 0)
        return -1;
    return 0;
}
