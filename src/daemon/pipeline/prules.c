/*
 * prules.c — a pipeline's rules (docs/api.md, "Pipelines"):
 *
 *   "rules": [{"when": "steps.test.metrics.failed_tests >= 1", "then": "pause"},
 *             {"when": "pipeline.failed_steps >= 1", "then": "notify"}]
 *
 * The conditions and their edges are the rules engine's (rules/rules.c):
 * each rule is a gvd_rule whose owner is the pipeline, so it reads the
 * pipeline's computeds and its steps' jobs, fires once per false-to-true
 * transition, never on a finished pipeline (but notify does: the failure
 * that finishes a pipeline is worth telling), and honours "for 30s".  This
 * file does what is pipeline-specific: the action (pause, cancel or resume
 * the pipeline; notify: a log line and the webhook) and the record — the
 * event and the latch live in the pipeline's state row, written in one
 * statement, so after a crash either both are there (no second firing) or
 * neither (it fires again).
 */
#include "pipeline_int.h"

#include <stdlib.h>
#include <string.h>

#include "../rules/rules_int.h"
#include "../util/log.h"

int gvd_pipeline_rules_attach(gvd_pipeline *pl)
{
    json_t *defs = json_object_get(pl->def, "rules");
    size_t n = json_array_size(defs);
    if (n == 0)
        return 0;
    pl->rules = calloc(n, sizeof *pl->rules);
    if (!pl->rules)
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *d = json_array_get(defs, i);
        gvd_rule *r = gvd_rule_new_for_pipeline(pl->jobs, pl, json_string_value(json_object_get(d, "name")),
                                                json_string_value(json_object_get(d, "when")),
                                                json_string_value(json_object_get(d, "then")));
        if (!r)
            continue; /* logged: it does not compile any more */
        r->latched = json_is_true(json_object_get(pl->latches, r->name));
        pl->rules[pl->nrules++] = r;
    }
    return 0;
}

void gvd_pipeline_rules_start(gvd_pipeline *pl)
{
    for (size_t i = 0; i < pl->nrules; i++)
        gvd_rule_start(pl->rules[i]); /* in the pipeline's scope (the caller entered it) */
}

void gvd_pipeline_rules_free(gvd_pipeline *pl)
{
    for (size_t i = 0; i < pl->nrules; i++) {
        pl->rules[i]->fx = NULL; /* disposed with the pipeline's scope already */
        gvd_rule_dispose(pl->rules[i]);
    }
    free(pl->rules);
    pl->rules = NULL;
    pl->nrules = 0;
}

/* {"event": "rule.fired", "pipeline": {"id", "name", "status"}, ...the event} */
static void gvd_pl_webhook(gvd_pipeline *pl, json_t *ev)
{
    json_t *about = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)pl->id, "name", pl->name, "status",
                              gvd_pl_status_name(gvd_pipeline_status_peek(pl)));
    char owner[40];
    snprintf(owner, sizeof owner, "pipeline=%lld", (long long)pl->id);
    gvd_rule_post_event(pl->jobs, ev, "pipeline", about, owner);
}

static int gvd_pl_act(void *target, gvd_rule_action action, gvd_error *err)
{
    gvd_pipeline *pl = target;
    return action == GVD_ACT_PAUSE    ? gvd_pipeline_pause(pl, err)
           : action == GVD_ACT_CANCEL ? gvd_pipeline_cancel(pl, err)
                                      : gvd_pipeline_resume(pl, err);
}

static void gvd_pl_fire(gvd_pipeline *pl, struct gvd_pending *p)
{
    char outcome[600], refused[80], owner[40];
    char *vtext = json_dumps(p->values, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    gvd_pl_status s = gvd_pipeline_status_peek(pl);
    bool webhook = pl->jobs->rules && pl->jobs->rules->webhook;
    snprintf(refused, sizeof refused, "the pipeline is %s", gvd_pl_status_name(s));
    snprintf(owner, sizeof owner, "pipeline=%lld", (long long)pl->id);
    gvd_rule_act(pl->jobs, p, owner, gvd_pl_finished(s) && p->action != GVD_ACT_NOTIFY ? refused : NULL, gvd_pl_act,
                 pl, vtext ? vtext : "{}", outcome, sizeof outcome);
    free(vtext);
    json_t *ev = json_pack("{s:I, s:s, s:s, s:s, s:O, s:s, s:o}", "id", (json_int_t)pl->next_event, "rule", p->rule,
                           "when", p->when, "then", gvd_action_names[p->action], "values", p->values, "outcome",
                           outcome, "at", gvd_time_json(p->at));
    if (!ev || json_array_append_new(pl->events, ev) != 0 ||
        json_object_set_new(pl->latches, p->rule, json_true()) != 0) {
        gvd_log(GVD_LOG_ERROR, "rule.dropped", "pipeline=%lld rule=%s reason=\"out of memory\"", (long long)pl->id,
                p->rule);
        return;
    }
    pl->next_event++;
    while (json_array_size(pl->events) > GVD_PIPELINE_EVENTS_MAX)
        json_array_remove(pl->events, 0);
    if (webhook && p->action == GVD_ACT_NOTIFY)
        gvd_pl_webhook(pl, ev);
}

void gvd_pipeline_rule_acted(gvd_jobs *jobs, struct gvd_pending *p)
{
    gvd_pipeline *pl = gvd_pipelines_get(jobs, p->pipeline_id);
    if (!pl)
        return; /* deleted meanwhile */
    if (p->fire)
        gvd_pl_fire(pl, p);
    else
        json_object_del(pl->latches, p->rule);
    char serr[256];
    if (gvd_pipeline_save(pl, serr, sizeof serr) != 0)
        gvd_log(GVD_LOG_WARN, "rule.store_deferred", "pipeline=%lld rule=%s error=%s", (long long)pl->id, p->rule,
                gvd_log_quote(serr, (char[300]){0}, 300));
    gvd_pipelines_notify(pl, false); /* its "events" count moved */
}
