/*
 * global.c — global rules: POST /rules, GET /rules, DELETE /rules/{id}
 * (docs/api.md, "Global rules").
 *
 *   {"when": "metrics.fraud_score > 0.9", "then": "pause",
 *    "match": {"name": "settle-*", "labels": {"team": "payments"}}}
 *
 * A global rule applies to every job whose name matches the glob (fnmatch)
 * and whose labels include every label given; no "match" means every job.
 * It is compiled onto each matching job as if the job's spec had it, named
 * "global-<id>" there (its events and latch use that name), and applies to
 * the jobs that exist when it is created and to every job created after.
 * Deleting it removes it from every job (their events stay).  Stored in the
 * `rules` table (migration 3), loaded before the jobs.
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "../util/log.h"
#include "rules_int.h"

bool gvd_global_matches(const gvd_global_rule *g, gvd_job *job)
{
    json_t *match = json_object_get(g->def, "match");
    const char *glob = json_string_value(json_object_get(match, "name"));
    if (glob && fnmatch(glob, job->spec.name ? job->spec.name : "", 0) != 0)
        return false;
    json_t *want = json_object_get(match, "labels"), *have = json_object_get(job->spec_json, "labels");
    const char *key;
    json_t *v;
    json_object_foreach(want, key, v) {
        json_t *h = json_object_get(have, key);
        if (!json_is_string(h) || strcmp(json_string_value(h), json_string_value(v)) != 0)
            return false;
    }
    return true;
}

static void gvd_global_free(gvd_global_rule *g)
{
    json_decref(g->def);
    free(g);
}

void gvd_globals_free(gvd_rules *eng)
{
    for (gvd_global_rule *g = eng->globals, *next; g; g = next) {
        next = g->next;
        gvd_global_free(g);
    }
    eng->globals = NULL;
}

/* def: the rule without "id", "name" and "created_at" (taken over). */
static gvd_global_rule *gvd_global_add(gvd_rules *eng, int64_t id, json_t *def, double created_at)
{
    gvd_global_rule *g = calloc(1, sizeof *g);
    if (!g) {
        json_decref(def);
        return NULL;
    }
    g->id = id;
    snprintf(g->name, sizeof g->name, "global-%lld", (long long)id);
    g->def = def;
    if (json_object_set_new(def, "id", json_integer(id)) != 0 ||
        json_object_set_new(def, "name", json_string(g->name)) != 0 ||
        json_object_set_new(def, "created_at", gvd_time_json(created_at)) != 0) {
        gvd_global_free(g);
        return NULL;
    }
    gvd_global_rule **tail = &eng->globals;
    while (*tail)
        tail = &(*tail)->next;
    *tail = g;
    return g;
}

static int gvd_load_global(void *ud, int64_t id, const char *def_json, double created_at)
{
    json_t *def = json_loads(def_json, 0, NULL);
    if (!json_is_object(def)) {
        gvd_log(GVD_LOG_ERROR, "store.bad_row", "rule=%lld error=\"unreadable JSON\"", (long long)id);
        json_decref(def);
        return 0;
    }
    return gvd_global_add(ud, id, def, created_at) ? 0 : -1;
}

int gvd_rules_load_globals(gvd_jobs *jobs, char *err, size_t errlen)
{
    return gvd_store_rules_load(jobs->store, gvd_load_global, jobs->rules, err, errlen);
}

/* ---- the API --------------------------------------------------------- */

static int gvd_bad_rule(gvd_error *err, const char *msg)
{
    gvd_error_set(err, 400, "invalid_rule", msg);
    return -1;
}

/* Check a POST /rules body; its normalized form (when, then, match) in *out. */
static int gvd_global_check(json_t *body, json_t **out, gvd_error *err)
{
    *out = NULL;
    if (!json_is_object(body))
        return gvd_bad_rule(err, "a rule must be a JSON object {\"when\", \"then\", \"match\"?}");
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        if (strcmp(key, "when") && strcmp(key, "then") && strcmp(key, "match")) {
            char msg[200];
            snprintf(msg, sizeof msg, "unknown field \"%.60s\" (known: when, then, match)", key);
            return gvd_bad_rule(err, msg);
        }
    }
    json_t *when = json_object_get(body, "when"), *then = json_object_get(body, "then");
    json_t *match = json_object_get(body, "match");
    if (!json_is_string(when) || strlen(json_string_value(when)) != json_string_length(when))
        return gvd_bad_rule(err, "field \"when\" is required: a condition (a string)");
    gvd_rule_action act;
    if (!json_is_string(then) || gvd_action_parse(json_string_value(then), &act) != 0)
        return gvd_bad_rule(err, "field \"then\" is required: \"pause\", \"cancel\", \"resume\" or \"notify\"");
    if (match && !json_is_null(match)) {
        if (!json_is_object(match))
            return gvd_bad_rule(err, "field \"match\" must be an object {\"name\": GLOB, \"labels\": {...}}");
        json_object_foreach(match, key, v) {
            if (strcmp(key, "name") && strcmp(key, "labels"))
                return gvd_bad_rule(err, "field \"match\": unknown field (known: name, labels)");
        }
        json_t *glob = json_object_get(match, "name"), *labels = json_object_get(match, "labels");
        if (glob && !(json_is_string(glob) && json_string_length(glob) > 0 && json_string_length(glob) <= 200 &&
                      strlen(json_string_value(glob)) == json_string_length(glob)))
            return gvd_bad_rule(err, "field \"match\": \"name\" must be a glob of 1 to 200 bytes (* ? [...])");
        if (labels && !json_is_object(labels))
            return gvd_bad_rule(err, "field \"match\": \"labels\" must be an object of strings");
        json_object_foreach(labels, key, v) {
            if (!json_is_string(v))
                return gvd_bad_rule(err, "field \"match\": every label value must be a string");
        }
    }
    if (gvd_rule_check_when(json_string_value(when), GVD_EXPR_FOR_JOB, "invalid_rule", "field \"when\"", "when", err) != 0)
        return -1;
    *out = json_pack("{s:s, s:s, s:o}", "when", json_string_value(when), "then", gvd_action_names[act], "match",
                     match && !json_is_null(match) ? json_incref(match) : json_object());
    if (!*out) {
        gvd_error_set(err, 503, "out_of_memory", "out of memory");
        return -1;
    }
    return 0;
}

/* Compile the rule onto every matching job that exists. */
static void gvd_global_apply(gvd_jobs *jobs, gvd_global_rule *g)
{
    for (gvd_job *job = jobs->first; job; job = job->next) {
        if (!job->rules || !gvd_global_matches(g, job))
            continue;
        gvd_rule *r = gvd_rule_new(job, g->name, json_string_value(json_object_get(g->def, "when")),
                                   json_string_value(json_object_get(g->def, "then")), g->id);
        if (!r || gvd_job_rules_add(job, r) != 0)
            continue; /* logged */
        gv_scope_enter(job->scope);
        gvd_rule_start(r); /* runs once now: a condition already true fires */
        gv_scope_leave(job->scope);
    }
}

json_t *gvd_rules_create(gvd_jobs *jobs, json_t *body, gvd_error *err)
{
    json_t *def;
    if (gvd_global_check(body, &def, err) != 0)
        return NULL;
    char *text = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS), serr[256] = "out of memory";
    double now = gvd_now();
    int64_t id = 0;
    int rc = text ? gvd_store_rule_insert(jobs->store, text, now, &id, serr, sizeof serr) : -1;
    free(text);
    if (rc != 0) {
        json_decref(def);
        gvd_jobs_store_error(jobs, err, "the rule was not created", serr);
        return NULL;
    }
    gvd_global_rule *g = gvd_global_add(jobs->rules, id, def, now);
    if (!g) {
        char name[32];
        snprintf(name, sizeof name, "global-%lld", (long long)id);
        (void)gvd_store_rule_delete(jobs->store, id, name, serr, sizeof serr);
        gvd_error_set(err, 503, "out_of_memory", "out of memory");
        return NULL;
    }
    gvd_log(GVD_LOG_INFO, "rule.created", "rule=%s", g->name);
    gvd_global_apply(jobs, g);
    return json_incref(g->def);
}

json_t *gvd_rules_list_json(gvd_jobs *jobs)
{
    json_t *arr = json_array();
    for (gvd_global_rule *g = jobs->rules->globals; arr && g; g = g->next)
        if (json_array_append(arr, g->def) != 0) {
            json_decref(arr);
            return NULL;
        }
    return arr ? json_pack("{s:o}", "rules", arr) : NULL;
}

json_t *gvd_rules_get_json(gvd_jobs *jobs, int64_t id)
{
    for (gvd_global_rule *g = jobs->rules->globals; g; g = g->next)
        if (g->id == id)
            return json_incref(g->def);
    return NULL;
}

/* Take the rule *p off every job and out of the list. */
static void gvd_global_forget(gvd_jobs *jobs, gvd_global_rule **p)
{
    gvd_global_rule *g = *p;
    for (gvd_job *job = jobs->first; job; job = job->next) {
        gvd_job_rules *jr = job->rules;
        for (size_t i = 0; jr && i < jr->n; i++) {
            if (jr->rules[i]->global_id != g->id)
                continue;
            gvd_rule_dispose(jr->rules[i]);
            memmove(&jr->rules[i], &jr->rules[i + 1], (jr->n - i - 1) * sizeof *jr->rules);
            jr->n--;
            break;
        }
    }
    *p = g->next;
    gvd_log(GVD_LOG_INFO, "rule.deleted", "rule=%s", g->name);
    gvd_global_free(g);
}

int gvd_rules_delete(gvd_jobs *jobs, int64_t id, gvd_error *err)
{
    gvd_global_rule **p = &jobs->rules->globals;
    while (*p && (*p)->id != id)
        p = &(*p)->next;
    if (!*p) {
        char msg[80];
        snprintf(msg, sizeof msg, "no rule %lld", (long long)id);
        gvd_error_set(err, 404, "not_found", msg);
        return -1;
    }
    gvd_global_rule *g = *p;
    char serr[256];
    if (gvd_store_rule_delete(jobs->store, id, g->name, serr, sizeof serr) != 0) {
        gvd_jobs_store_error(jobs, err, "the rule was not deleted", serr);
        return -1;
    }
    gvd_global_forget(jobs, p);
    return 0;
}

/* ---- several nodes ----------------------------------------------------- */

void gvd_rules_sync_globals(gvd_jobs *jobs, const gvd_global_row *rows, size_t n)
{
    /* gone from the table: deleted on another node */
    for (gvd_global_rule **p = &jobs->rules->globals; *p;) {
        bool kept = false;
        for (size_t i = 0; i < n && !kept; i++)
            kept = rows[i].id == (*p)->id;
        if (kept)
            p = &(*p)->next;
        else
            gvd_global_forget(jobs, p);
    }
    /* new in the table: created on another node */
    for (size_t i = 0; i < n; i++) {
        bool known = false;
        for (gvd_global_rule *g = jobs->rules->globals; g && !known; g = g->next)
            known = g->id == rows[i].id;
        json_t *def = known ? NULL : json_loads(rows[i].def_json, 0, NULL);
        if (!json_is_object(def)) {
            json_decref(def);
            continue;
        }
        gvd_global_rule *g = gvd_global_add(jobs->rules, rows[i].id, def, rows[i].created_at);
        if (g) {
            gvd_log(GVD_LOG_INFO, "rule.created", "rule=%s by=\"another node\"", g->name);
            gvd_global_apply(jobs, g);
        }
    }
}
