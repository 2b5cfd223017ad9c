/*
 * spec.c — checking a pipeline definition (the POST /pipelines body).
 *
 *   {"name": "ci", "on_failure": "skip" | "cancel",
 *    "steps": [{"name": "build", "command": [...], ...a job spec...},
 *              {"name": "test", "needs": ["build"], "weight": 3, ...}],
 *    "rules": [{"when": "pipeline.failed_steps >= 1", "then": "pause"}]}
 *
 * Everything is checked before anything is stored, so a refused pipeline
 * leaves nothing behind: each step's job spec as POST /jobs would check it
 * (the error names the step), step names (unique, 1 to 64 of A-Z a-z 0-9 _
 * -, so that steps.NAME.progress reads unambiguously in a rule), needs
 * (known steps, no duplicates), the graph (no cycle: the error spells the
 * cycle out, "a -> b -> a"), and the rules (parsed in the pipeline context,
 * every step they name must exist).
 *
 * The normalized definition keeps each step's job spec as sent: it is
 * parsed again when the step's job is created, so defaults apply then.
 */
#include "pipeline_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../rules/rules_int.h"

static int gvd_pl_bad(gvd_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int gvd_pl_bad(gvd_error *err, const char *fmt, ...)
{
    char msg[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gvd_error_set(err, 400, "invalid_pipeline", msg);
    return -1;
}

static int gvd_pl_oom(gvd_error *err)
{
    gvd_error_set(err, 503, "out_of_memory", "out of memory");
    return -1;
}

static bool gvd_step_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > 64 || strlen(s) != len)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-'))
            return false;
    return true;
}

static int gvd_find(json_t *steps, const char *name)
{
    for (size_t i = 0; i < json_array_size(steps); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(steps, i), "name")), name))
            return (int)i;
    return -1;
}

/* One step: its normalized form {"name", "needs", "weight", "job"}
 * appended to `out` (needs are checked once every name is known). */
static int gvd_step_check(json_t *step, size_t i, const gvd_config *cfg, json_t *out, gvd_error *err)
{
    if (!json_is_object(step))
        return gvd_pl_bad(err, "steps[%zu] must be an object: {\"name\": ..., \"command\": [...], ...}", i);
    json_t *name = json_object_get(step, "name");
    if (!json_is_string(name) || !gvd_step_name_ok(json_string_value(name), json_string_length(name)))
        return gvd_pl_bad(err, "steps[%zu] needs a \"name\" of 1 to 64 of A-Z a-z 0-9 _ -", i);
    const char *nm = json_string_value(name);
    int dup = gvd_find(out, nm);
    if (dup >= 0)
        return gvd_pl_bad(err, "duplicate step name \"%s\" (steps[%d] and steps[%zu])", nm, dup, i);
    json_t *needs = json_object_get(step, "needs"), *weight = json_object_get(step, "weight");
    if (needs && !json_is_null(needs)) {
        if (!json_is_array(needs))
            return gvd_pl_bad(err, "step \"%s\": \"needs\" must be an array of step names", nm);
        for (size_t k = 0; k < json_array_size(needs); k++) {
            json_t *n = json_array_get(needs, k);
            if (!json_is_string(n))
                return gvd_pl_bad(err, "step \"%s\": \"needs\" must be an array of step names", nm);
            for (size_t j = 0; j < k; j++)
                if (json_equal(n, json_array_get(needs, j)))
                    return gvd_pl_bad(err, "step \"%s\" needs \"%.64s\" twice", nm, json_string_value(n));
        }
        if (json_array_size(needs) > GVD_PIPELINE_MAX_STEPS)
            return gvd_pl_bad(err, "step \"%s\" needs %zu steps (a pipeline has at most %d)", nm,
                              json_array_size(needs), GVD_PIPELINE_MAX_STEPS);
    }
    double w = 1;
    if (weight && !json_is_null(weight)) {
        w = json_is_number(weight) ? json_number_value(weight) : -1;
        if (!(w > 0 && w <= 1e6))
            return gvd_pl_bad(err, "step \"%s\": \"weight\" must be a number more than 0 and at most 1000000", nm);
    }
    /* The rest is the step's job spec: check it exactly as POST /jobs would. */
    json_t *job = json_deep_copy(step);
    if (!job)
        return gvd_pl_oom(err);
    json_object_del(job, "name");
    json_object_del(job, "needs");
    json_object_del(job, "weight");
    if (json_object_get(job, "kind") && json_is_string(json_object_get(job, "kind")) &&
        !strcmp(json_string_value(json_object_get(job, "kind")), "demo")) {
        json_decref(job);
        return gvd_pl_bad(err, "step \"%s\": a step runs a command (\"kind\": \"demo\" is the seed's own job)", nm);
    }
    gvd_spec spec;
    json_t *normalized = NULL, *params = NULL;
    gvd_error jerr = {0};
    if (gvd_spec_parse(job, cfg, &spec, &normalized, &params, &jerr) != 0) {
        json_decref(job);
        char msg[sizeof err->message];
        snprintf(msg, sizeof msg, "step \"%s\": %.440s", nm, jerr.message);
        gvd_error_set(err, jerr.http, jerr.http == 400 ? "invalid_pipeline" : jerr.code, msg);
        memcpy(err->field, jerr.field, sizeof err->field);
        err->rule = jerr.rule;
        err->column = jerr.column;
        return -1;
    }
    gvd_spec_clear(&spec);
    json_decref(normalized);
    json_decref(params);
    json_t *need_list = needs && !json_is_null(needs) ? json_incref(needs) : json_array();
    json_t *n = need_list ? json_pack("{s:s, s:o, s:f, s:o}", "name", nm, "needs", need_list, "weight", w, "job", job)
                          : NULL;
    if (!need_list)
        json_decref(job);
    if (!n || json_array_append_new(out, n) != 0)
        return gvd_pl_oom(err);
    return 0;
}

/* Depth-first search for a cycle; on finding one, spell it out. */
enum { GVD_WHITE = 0, GVD_GREY, GVD_BLACK };

static int gvd_visit(json_t *steps, size_t i, unsigned char *colour, size_t *path, size_t depth, gvd_error *err)
{
    colour[i] = GVD_GREY;
    path[depth] = i;
    json_t *needs = json_object_get(json_array_get(steps, i), "needs");
    for (size_t k = 0; k < json_array_size(needs); k++) {
        size_t j = (size_t)gvd_find(steps, json_string_value(json_array_get(needs, k)));
        if (colour[j] == GVD_GREY) {
            /* path[..depth] ends at i, which needs j, which is on the path */
            char msg[sizeof err->message];
            size_t at = 0, from = 0;
            while (path[from] != j)
                from++;
            at += (size_t)snprintf(msg, sizeof msg, "steps form a cycle: ");
            /* path[d] needs path[d + 1], and path[depth] (i) needs j */
            for (size_t d = from; d <= depth && at < sizeof msg; d++)
                at += (size_t)snprintf(msg + at, sizeof msg - at, "%s needs ",
                                       json_string_value(json_object_get(json_array_get(steps, path[d]), "name")));
            if (at < sizeof msg)
                snprintf(msg + at, sizeof msg - at, "%s",
                         json_string_value(json_object_get(json_array_get(steps, j), "name")));
            gvd_error_set(err, 400, "invalid_pipeline", msg);
            return -1;
        }
        if (colour[j] == GVD_WHITE && gvd_visit(steps, j, colour, path, depth + 1, err) != 0)
            return -1;
    }
    colour[i] = GVD_BLACK;
    return 0;
}

static int gvd_needs_check(json_t *steps, gvd_error *err)
{
    size_t n = json_array_size(steps);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(steps, i), *needs = json_object_get(s, "needs");
        const char *nm = json_string_value(json_object_get(s, "name"));
        for (size_t k = 0; k < json_array_size(needs); k++) {
            const char *need = json_string_value(json_array_get(needs, k));
            if (gvd_find(steps, need) < 0)
                return gvd_pl_bad(err, "step \"%s\" needs \"%.64s\", which is not a step of this pipeline", nm, need);
            if (!strcmp(need, nm))
                return gvd_pl_bad(err, "steps form a cycle: %s needs %s", nm, nm);
        }
    }
    unsigned char colour[GVD_PIPELINE_MAX_STEPS] = {0};
    size_t path[GVD_PIPELINE_MAX_STEPS];
    for (size_t i = 0; i < n; i++)
        if (colour[i] == GVD_WHITE && gvd_visit(steps, i, colour, path, 0, err) != 0)
            return -1;
    return 0;
}

/* The rules: parsed in the pipeline context, naming only known steps. */
static int gvd_pl_rules_check(json_t *rules, json_t *steps, json_t **out, gvd_error *err)
{
    if (gvd_rules_check_spec_for(rules, GVD_EXPR_FOR_PIPELINE, out, err) != 0) {
        if (err->http == 400)
            err->code = "invalid_pipeline";
        return -1;
    }
    for (size_t i = 0; i < json_array_size(*out); i++) {
        gvd_expr_error ee;
        gvd_expr *e = gvd_expr_parse_for(json_string_value(json_object_get(json_array_get(*out, i), "when")),
                                         GVD_EXPR_FOR_PIPELINE, &ee);
        if (!e)
            return gvd_pl_oom(err); /* it parsed a moment ago */
        for (size_t v = 0; v < gvd_expr_nvars(e); v++) {
            const char *step = gvd_expr_var_at(e, v)->step;
            if (step && gvd_find(steps, step) < 0) {
                snprintf(err->field, sizeof err->field, "rules[%zu].when", i);
                gvd_pl_bad(err, "field \"rules\": rule %zu names step \"%s\", which is not a step of this pipeline",
                           i + 1, step);
                gvd_expr_free(e);
                return -1;
            }
        }
        gvd_expr_free(e);
    }
    return 0;
}

int gvd_pipeline_spec_check(json_t *body, const gvd_config *cfg, json_t **out, gvd_error *err)
{
    *out = NULL;
    if (!json_is_object(body))
        return gvd_pl_bad(err, "a pipeline must be a JSON object: {\"name\": ..., \"steps\": [...]}");
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        if (strcmp(key, "name") && strcmp(key, "steps") && strcmp(key, "on_failure") && strcmp(key, "rules"))
            return gvd_pl_bad(err, "unknown field \"%.60s\" (known: name, steps, on_failure, rules)", key);
    }
    json_t *name = json_object_get(body, "name"), *steps = json_object_get(body, "steps");
    json_t *on_failure = json_object_get(body, "on_failure"), *rules = json_object_get(body, "rules");
    if (name && !(json_is_string(name) && json_string_length(name) >= 1 && json_string_length(name) <= 128 &&
                  strlen(json_string_value(name)) == json_string_length(name)))
        return gvd_pl_bad(err, "field \"name\" must be a string of 1 to 128 bytes");
    if (on_failure && !(json_is_string(on_failure) && (!strcmp(json_string_value(on_failure), "skip") ||
                                                       !strcmp(json_string_value(on_failure), "cancel"))))
        return gvd_pl_bad(err, "field \"on_failure\" must be \"skip\" (the default: the failed step's dependents "
                               "are skipped) or \"cancel\" (the whole pipeline is cancelled)");
    if (!json_is_array(steps) || json_array_size(steps) == 0)
        return gvd_pl_bad(err, "field \"steps\" must be a non-empty array of steps");
    if (json_array_size(steps) > GVD_PIPELINE_MAX_STEPS)
        return gvd_pl_bad(err, "field \"steps\" has %zu steps (at most %d)", json_array_size(steps),
                          GVD_PIPELINE_MAX_STEPS);
    json_t *norm_steps = json_array(), *norm_rules = NULL;
    if (!norm_steps)
        return gvd_pl_oom(err);
    for (size_t i = 0; i < json_array_size(steps); i++)
        if (gvd_step_check(json_array_get(steps, i), i, cfg, norm_steps, err) != 0)
            goto fail;
    if (gvd_needs_check(norm_steps, err) != 0)
        goto fail;
    if (rules && !json_is_null(rules) && gvd_pl_rules_check(rules, norm_steps, &norm_rules, err) != 0)
        goto fail;
    *out = json_pack("{s:s, s:s, s:o, s:o}", "name", name ? json_string_value(name) : "pipeline", "on_failure",
                     on_failure ? json_string_value(on_failure) : "skip", "steps", norm_steps, "rules",
                     norm_rules ? norm_rules : json_array());
    if (!*out)
        return gvd_pl_oom(err);
    return 0;
fail:
    json_decref(norm_steps);
    json_decref(norm_rules);
    return -1;
}

int gvd_pipeline_step_index(const gvd_pipeline *pl, const char *name)
{
    for (size_t i = 0; i < pl->nsteps; i++)
        if (!strcmp(pl->steps[i].name, name))
            return (int)i;
    return -1;
}
