/*
 * rules.c — see rules.h.  Two parts (the engine that acts is engine.c):
 *   the spec       checking and normalizing a job spec's "rules";
 *   a rule         one computed (the condition) and one effect (the edges)
 *                  per rule on a job or a pipeline, the hold timers, the
 *                  values that made it true; an edge is queued for the
 *                  engine (gvd_enqueue), never acted on inside the flush.
 */
#include "rules.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../pipeline/pipeline_int.h"
#include "../util/grow.h"
#include "../util/log.h"
#include "rules_int.h"

/* ---- the spec -------------------------------------------------------- */

static int gvd_rule_bad(gvd_error *err, size_t i, const char *what)
{
    char msg[sizeof err->message];
    snprintf(msg, sizeof msg, "field \"rules\": rule %zu %s", i + 1, what);
    gvd_error_set(err, 400, "invalid_spec", msg);
    return -1;
}

static bool gvd_rule_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-' || *s == '.'))
            return false;
    return true;
}

const char *const gvd_action_names[] = {"pause", "cancel", "resume", "notify", NULL};

int gvd_action_parse(const char *s, gvd_rule_action *out)
{
    for (int i = 0; gvd_action_names[i]; i++)
        if (!strcmp(s, gvd_action_names[i])) {
            *out = (gvd_rule_action)i;
            return 0;
        }
    return -1;
}

int gvd_rule_check_when(const char *src, gvd_expr_context ctx, const char *code, const char *prefix,
                        const char *field, gvd_error *err)
{
    gvd_expr_error ee;
    gvd_expr *e = gvd_expr_parse_for(src, ctx, &ee);
    if (e) {
        gvd_expr_free(e);
        return 0;
    }
    if (ee.column == 0) {
        gvd_error_set(err, 503, "out_of_memory", "out of memory");
        return -1;
    }
    char msg[sizeof err->message];
    snprintf(msg, sizeof msg, "%s, column %d: %s", prefix, ee.column, ee.message);
    gvd_error_set(err, 400, code, msg);
    snprintf(err->field, sizeof err->field, "%s", field);
    err->column = ee.column;
    return -1;
}

/* Check one rule object; its normalized form is appended to `out`. */
static int gvd_rule_check(json_t *r, size_t i, gvd_expr_context ctx, json_t *out, gvd_error *err)
{
    if (!json_is_object(r))
        return gvd_rule_bad(err, i, "must be an object {\"when\": CONDITION, \"then\": ACTION}");
    const char *key;
    json_t *v;
    json_object_foreach(r, key, v) {
        if (strcmp(key, "when") && strcmp(key, "then") && strcmp(key, "name")) {
            char what[200];
            snprintf(what, sizeof what, "has an unknown field \"%.60s\" (known: when, then, name)", key);
            return gvd_rule_bad(err, i, what);
        }
    }
    json_t *when = json_object_get(r, "when"), *then = json_object_get(r, "then"), *name = json_object_get(r, "name");
    if (!json_is_string(when) || strlen(json_string_value(when)) != json_string_length(when))
        return gvd_rule_bad(err, i, "needs \"when\": a condition (a string)");
    gvd_rule_action act;
    if (!json_is_string(then) || gvd_action_parse(json_string_value(then), &act) != 0)
        return gvd_rule_bad(err, i, "needs \"then\": \"pause\", \"cancel\", \"resume\" or \"notify\"");
    if (name && !(json_is_string(name) && strlen(json_string_value(name)) == json_string_length(name) &&
                  gvd_rule_name_ok(json_string_value(name))))
        return gvd_rule_bad(err, i, "\"name\" must be 1 to 64 of A-Z a-z 0-9 _ - .");
    if (name && !strncmp(json_string_value(name), "global-", 7))
        return gvd_rule_bad(err, i, "\"name\" must not start with \"global-\" (the names of global rules)");
    char prefix[64], field[40];
    snprintf(prefix, sizeof prefix, "field \"rules\": rule %zu \"when\"", i + 1);
    snprintf(field, sizeof field, "rules[%zu].when", i);
    if (gvd_rule_check_when(json_string_value(when), ctx, "invalid_spec", prefix, field, err) != 0)
        return -1;
    char defname[32];
    snprintf(defname, sizeof defname, "rule-%zu", i + 1);
    const char *nm = name ? json_string_value(name) : defname;
    for (size_t j = 0; j < json_array_size(out); j++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(out, j), "name")), nm))
            return gvd_rule_bad(err, i, "has the same \"name\" as an earlier rule (names must be unique)");
    json_t *n = json_pack("{s:s, s:s, s:s}", "name", nm, "when", json_string_value(when), "then",
                          gvd_action_names[act]);
    if (!n || json_array_append_new(out, n) != 0) {
        gvd_error_set(err, 503, "out_of_memory", "out of memory");
        return -1;
    }
    return 0;
}

int gvd_rules_check_spec(json_t *rules, json_t **normalized, gvd_error *err)
{
    return gvd_rules_check_spec_for(rules, GVD_EXPR_FOR_JOB, normalized, err);
}

int gvd_rules_check_spec_for(json_t *rules, gvd_expr_context ctx, json_t **normalized, gvd_error *err)
{
    *normalized = NULL;
    if (!json_is_array(rules)) {
        gvd_error_set(err, 400, "invalid_spec", "field \"rules\" must be an array of {\"when\", \"then\"} objects");
        return -1;
    }
    if (json_array_size(rules) > GVD_RULES_MAX) {
        char msg[120];
        snprintf(msg, sizeof msg, "field \"rules\" has %zu rules (at most %d)", json_array_size(rules), GVD_RULES_MAX);
        gvd_error_set(err, 400, "invalid_spec", msg);
        return -1;
    }
    json_t *out = json_array();
    if (!out) {
        gvd_error_set(err, 503, "out_of_memory", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < json_array_size(rules); i++)
        if (gvd_rule_check(json_array_get(rules, i), i, ctx, out, err) != 0) {
            json_decref(out);
            return -1;
        }
    *normalized = out;
    return 0;
}

/* ---- a job's rules: the condition ------------------------------------ */

static void gvd_field_value(gvd_job *job, const char *name, gvd_expr_value *out)
{
    const gv_value *v;
    if (!strcmp(name, "progress"))
        out->type = GVD_EXPR_NUMBER, out->num = gv_computed_get_double(job->percent);
    else if (!strcmp(name, "current"))
        out->type = GVD_EXPR_NUMBER, out->num = gv_signal_get_double(job->current);
    else if (!strcmp(name, "total"))
        out->type = GVD_EXPR_NUMBER, out->num = gv_signal_get_double(job->total);
    else if (!strcmp(name, "status"))
        out->type = GVD_EXPR_STRING, out->str = gvd_status_name((gvd_status)gv_signal_get_int(job->status));
    else if (!strcmp(name, "rate"))
        out->type = GVD_EXPR_NUMBER, out->num = gv_computed_get_double(job->rate);
    else if (!strcmp(name, "eta")) {
        if ((v = gv_computed_get(job->eta)) && v->type == GV_DOUBLE)
            out->type = GVD_EXPR_NUMBER, out->num = v->as.d;
    } else if (!strcmp(name, "attempts"))
        out->type = GVD_EXPR_NUMBER, out->num = (double)gv_signal_get_int(job->attempts);
    else if (!strcmp(name, "elapsed")) {
        /* Seconds since the job first started (to its end once finished);
         * unknown before.  Time moves without any signal changing, so the
         * engine's tick is read too: the condition is re-checked each second. */
        double started = gv_signal_get_double(job->started_at), finished = gv_signal_get_double(job->finished_at);
        (void)gv_signal_get(job->jobs->rules->tick);
        if (started > 0)
            out->type = GVD_EXPR_NUMBER, out->num = (finished > 0 ? finished : gvd_now()) - started;
    } else if (!strcmp(name, "message"))
        out->type = GVD_EXPR_STRING, out->str = gv_signal_get_string(job->message);
    else if (!strcmp(name, "name"))
        out->type = GVD_EXPR_STRING, out->str = job->spec.name;
    else if (!strcmp(name, "pid"))
        out->type = GVD_EXPR_NUMBER, out->num = (double)gv_signal_get_int(job->pid);
    else if (!strcmp(name, "exit_code")) {
        if ((v = gv_signal_get(job->exit_status)) && v->type == GV_INT && gv_signal_get_int(job->term_signal) == 0)
            out->type = GVD_EXPR_NUMBER, out->num = (double)v->as.i;
    }
}

static void gvd_json_value(json_t *v, gvd_expr_value *out)
{
    if (json_is_number(v))
        out->type = GVD_EXPR_NUMBER, out->num = json_number_value(v);
    else if (json_is_string(v))
        out->type = GVD_EXPR_STRING, out->str = json_string_value(v);
    else if (json_is_boolean(v))
        out->type = GVD_EXPR_BOOL, out->b = json_is_true(v);
}

/* The condition's reads are tracked: the computed depends on exactly the
 * signals the condition names (metrics_rev for any metric, params_rev for
 * any param). */
void gvd_rule_job_value(gvd_job *job, const gvd_expr_var *var, gvd_expr_value *out)
{
    switch (var->source) {
    case GVD_EXPR_METRIC:
        (void)gv_signal_get(job->metrics_rev);
        if (json_is_number(json_object_get(job->metrics, var->name)))
            gvd_json_value(json_object_get(job->metrics, var->name), out);
        break;
    case GVD_EXPR_PARAM:
        (void)gv_signal_get(job->params_rev);
        gvd_json_value(json_object_get(job->params, var->name), out);
        break;
    case GVD_EXPR_FIELD:
        gvd_field_value(job, var->name, out);
        break;
    case GVD_EXPR_PIPELINE:
        break; /* not a job's: unknown */
    }
}

static void gvd_rule_lookup(void *ud, const gvd_expr_var *var, gvd_expr_value *out)
{
    gvd_rule *r = ud;
    if (r->pipeline)
        gvd_pipeline_value(r->pipeline, var, out);
    else
        gvd_rule_job_value(r->job, var, out);
}

void gvd_expr_var_text(const gvd_expr_var *var, char *buf, size_t len)
{
    const char *kind = var->source == GVD_EXPR_METRIC     ? "metrics."
                       : var->source == GVD_EXPR_PARAM    ? "params."
                       : var->source == GVD_EXPR_PIPELINE ? "pipeline."
                                                          : "";
    if (var->step)
        snprintf(buf, len, "steps.%s.%s%s", var->step, kind, var->name);
    else
        snprintf(buf, len, "%s%s", kind, var->name);
}

static void gvd_cond_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    gvd_rule *r = ud;
    *out = gv_bool(gvd_expr_holds(r->expr, gvd_rule_lookup, r));
}

/* {"metrics.fraud_score": 0.95, "status": "running", "params.x": null} */
static json_t *gvd_rule_values(gvd_rule *r)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    gv_untracked_t t = gv_untracked_begin();
    for (size_t i = 0; i < gvd_expr_nvars(r->expr); i++) {
        const gvd_expr_var *var = gvd_expr_var_at(r->expr, i);
        gvd_expr_value v = {0};
        gvd_rule_lookup(r, var, &v);
        char key[400];
        gvd_expr_var_text(var, key, sizeof key);
        json_t *j = v.type == GVD_EXPR_NUMBER ? json_real(v.num) : v.type == GVD_EXPR_STRING ? json_string(v.str)
                  : v.type == GVD_EXPR_BOOL ? json_boolean(v.b) : json_null();
        if (json_object_set_new(o, key, j) != 0) {
            json_decref(o);
            o = NULL;
            break;
        }
    }
    gv_untracked_end(t);
    return o;
}

/* ---- a job's rules: the edges ---------------------------------------- */

/* "job=3" or "pipeline=2", for log lines. */
static const char *gvd_rule_owner(const gvd_rule *r, char *buf, size_t len)
{
    if (r->pipeline)
        snprintf(buf, len, "pipeline=%lld", (long long)gvd_pipeline_id(r->pipeline));
    else
        snprintf(buf, len, "job=%lld", (long long)r->job->id);
    return buf;
}

static void gvd_enqueue(gvd_rule *r, bool fire)
{
    gvd_rules *eng = r->jobs->rules;
    if (r->job && !gvd_job_acts(r->job))
        return; /* another node's job: its node fires its rules */
    gvd_pending *p = calloc(1, sizeof *p);
    if (p) {
        p->job_id = r->job ? r->job->id : 0;
        p->pipeline_id = r->pipeline ? gvd_pipeline_id(r->pipeline) : 0;
        p->rule = strdup(r->name);
        p->when = strdup(r->when);
        p->action = r->action;
        p->fire = fire;
        p->at = gvd_now();
        p->values = fire ? gvd_rule_values(r) : NULL;
    }
    if (!p || !p->rule || !p->when || (fire && !p->values)) {
        gvd_log(GVD_LOG_ERROR, "rule.dropped", "%s rule=%s reason=\"out of memory\"",
                gvd_rule_owner(r, (char[40]){0}, 40), r->name);
        if (p) {
            free(p->rule);
            free(p->when);
            json_decref(p->values);
            free(p);
        }
        return;
    }
    if (eng->last)
        eng->last->next = p;
    else
        eng->first = p;
    eng->last = p;
    gvd_rules_kick(eng);
}

static void gvd_hold_cb(uv_timer_t *t)
{
    gvd_rule *r = t->data;
    gv_signal_set_bool(r->held, true);
}

/* Reads the condition, the hold and the status; acts on the edges. */
static void gvd_rule_fx(void *ud)
{
    gvd_rule *r = ud;
    bool now_true = gv_computed_get_bool(r->cond);
    if (!now_true) {
        uv_timer_stop(&r->hold_timer);
        if (gv_value_to_bool(gv_signal_peek(r->held)))
            gv_signal_set_bool(r->held, false);
        if (r->latched) {
            r->latched = false;
            gvd_enqueue(r, false);
        }
        return;
    }
    bool finished = r->pipeline ? gvd_pipeline_finished(r->pipeline)
                                : gvd_status_finished((gvd_status)gv_signal_get_int(r->job->status));
    /* Never acts on a finished job or pipeline.  A pipeline's notify is the
     * exception: the step failure that makes `pipeline.failed_steps >= 1`
     * true is often the one that finishes it, and that is news. */
    if (finished && !(r->pipeline && r->action == GVD_ACT_NOTIFY)) {
        uv_timer_stop(&r->hold_timer);
        return;
    }
    if (r->latched)
        return; /* fired already: not again until the condition was false */
    double hold = gvd_expr_hold(r->expr);
    if (hold > 0 && !gv_signal_get_bool(r->held)) {
        if (!uv_is_active((uv_handle_t *)&r->hold_timer))
            uv_timer_start(&r->hold_timer, gvd_hold_cb, (uint64_t)ceil(hold * 1000.0), 0);
        return;
    }
    r->latched = true;
    gvd_enqueue(r, true);
}

static void gvd_rule_closed(uv_handle_t *h)
{
    gvd_rule *r = h->data;
    free(r->name);
    free(r->when);
    gvd_expr_free(r->expr);
    free(r);
}

static gvd_rule *gvd_rule_init(gvd_jobs *jobs, gvd_job *job, gvd_pipeline *pl, const char *name, const char *when,
                               const char *then, int64_t global_id)
{
    gvd_rule *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->jobs = jobs;
    r->job = job;
    r->pipeline = pl;
    r->global_id = global_id;
    uv_timer_init(jobs->loop, &r->hold_timer);
    r->hold_timer.data = r;
    r->name = strdup(name ? name : "");
    r->when = strdup(when ? when : "");
    gvd_expr_error ee;
    if (!r->name || !r->when || !then || gvd_action_parse(then, &r->action) != 0 ||
        !(r->expr = gvd_expr_parse_for(r->when, pl ? GVD_EXPR_FOR_PIPELINE : GVD_EXPR_FOR_JOB, &ee))) {
        /* out of memory, or a stored rule this build no longer accepts */
        gvd_log(GVD_LOG_ERROR, "rule.invalid", "%s rule=%s reason=\"rule does not compile\"",
                gvd_rule_owner(r, (char[40]){0}, 40), r->name ? r->name : "?");
        gvd_rule_discard(r);
        return NULL;
    }
    return r;
}

gvd_rule *gvd_rule_new(gvd_job *job, const char *name, const char *when, const char *then, int64_t global_id)
{
    return gvd_rule_init(job->jobs, job, NULL, name, when, then, global_id);
}

gvd_rule *gvd_rule_new_for_pipeline(gvd_jobs *jobs, gvd_pipeline *pl, const char *name, const char *when,
                                    const char *then)
{
    return gvd_rule_init(jobs, NULL, pl, name, when, then, 0);
}

void gvd_rule_discard(gvd_rule *r)
{
    uv_close((uv_handle_t *)&r->hold_timer, gvd_rule_closed);
}

int gvd_job_rules_add(gvd_job *job, gvd_rule *r)
{
    gvd_job_rules *jr = job->rules;
    if (gvd_grow((void **)&jr->rules, &jr->cap, jr->n, sizeof *jr->rules, 4) != 0) {
        gvd_rule_discard(r);
        return -1;
    }
    jr->rules[jr->n++] = r;
    return 0;
}

int gvd_job_rules_attach(gvd_job *job)
{
    gvd_job_rules *jr = calloc(1, sizeof *jr);
    if (!jr || !(jr->events = json_array()) || !(jr->unstored = json_array()) ||
        !(jr->latches_unstored = json_object())) {
        if (jr) {
            json_decref(jr->events);
            json_decref(jr->unstored);
        }
        free(jr);
        return -1;
    }
    job->rules = jr;
    json_t *defs = json_object_get(job->spec_json, "rules");
    for (size_t i = 0; i < json_array_size(defs); i++) {
        json_t *d = json_array_get(defs, i);
        gvd_rule *r = gvd_rule_new(job, json_string_value(json_object_get(d, "name")),
                                   json_string_value(json_object_get(d, "when")),
                                   json_string_value(json_object_get(d, "then")), 0);
        if (r && gvd_job_rules_add(job, r) != 0)
            return -1;
    }
    for (gvd_global_rule *g = job->jobs->rules ? job->jobs->rules->globals : NULL; g; g = g->next) {
        if (!gvd_global_matches(g, job))
            continue;
        gvd_rule *r = gvd_rule_new(job, g->name, json_string_value(json_object_get(g->def, "when")),
                                   json_string_value(json_object_get(g->def, "then")), g->id);
        if (r && gvd_job_rules_add(job, r) != 0)
            return -1;
    }
    return 0;
}

void gvd_rule_start(gvd_rule *r)
{
    r->cond = gv_computed_new(gvd_cond_fn, r);
    r->held = gv_signal_new(gv_bool(false));
    if (!r->cond || !r->held) {
        gvd_log(GVD_LOG_ERROR, "rule.dropped", "%s rule=%s reason=\"out of memory\"",
                gvd_rule_owner(r, (char[40]){0}, 40), r->name);
        return;
    }
    r->fx = gv_effect_new(gvd_rule_fx, r); /* owned by the scope the caller entered (the job's) */
}

void gvd_job_rules_start(gvd_job *job)
{
    for (size_t i = 0; job->rules && i < job->rules->n; i++)
        gvd_rule_start(job->rules->rules[i]);
}

void gvd_rule_dispose(gvd_rule *r)
{
    if (r->fx)
        gv_effect_free(r->fx);
    r->fx = NULL;
    gv_computed_free(r->cond);
    gv_signal_free(r->held);
    gvd_rule_discard(r);
}

void gvd_job_rules_free(gvd_job *job)
{
    gvd_job_rules *jr = job->rules;
    if (!jr)
        return;
    for (size_t i = 0; i < jr->n; i++) {
        jr->rules[i]->fx = NULL; /* disposed with the job's scope already */
        gvd_rule_dispose(jr->rules[i]);
    }
    free(jr->rules);
    json_decref(jr->events);
    json_decref(jr->unstored);
    json_decref(jr->latches_unstored);
    free(jr->written_ids);
    free(jr);
    job->rules = NULL;
}

