/*
 * pghistory.c — everything the model stores beside the job rows, on
 * PostgreSQL: the params history and metric points, rule firings and
 * latches, global rules, pipelines (store.h's contract, with pgstore.h's
 * differences).
 *
 * Each write mirrors its SQLite twin (sqlite/history.c, sqlite/pipelines.c)
 * with the same defaults for missing strings ("{}" for JSON, "" for words)
 * and the same NULLs (an applied_at of 0 is NULL).  SQLite's INSERT OR
 * REPLACE is ON CONFLICT ... DO UPDATE here; rule_delete queues its two
 * statements together (the rule, then the latches of its name), all or
 * nothing, in the batch that is one transaction anyway.  A value SQLite
 * would refuse at once (NULL in a NOT NULL column, a NaN that SQLite turns
 * into NULL there, a revision below 1) is refused at once here too:
 * queued, it would fail the whole batch and end the store.
 *
 * The loads walk the answers read at open, in SQLite's orders, with its
 * NULLs: "" for the history tables' text, 0 for their numbers.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pgstore_int.h"

static const char gvd_sql_hist_insert[] =
    "INSERT INTO params_history (job_id, revision, patch_json, who, at, applied_at) VALUES ($1, $2, $3, $4, $5, $6)";
static const char gvd_sql_hist_applied[] =
    "UPDATE params_history SET applied_at = $3 WHERE job_id = $1 AND revision = $2";
static const char gvd_sql_hist_prune[] = "DELETE FROM params_history WHERE job_id = $1 AND revision <= $2";
static const char gvd_sql_point_put[] =
    "INSERT INTO metric_points (job_id, name, idx, t_ms, value, weight) VALUES ($1, $2, $3, $4, $5, $6) "
    "ON CONFLICT (job_id, name, idx) DO UPDATE SET t_ms = EXCLUDED.t_ms, value = EXCLUDED.value, "
    "weight = EXCLUDED.weight";
static const char gvd_sql_point_trim[] = "DELETE FROM metric_points WHERE job_id = $1 AND name = $2 AND idx >= $3";
static const char gvd_sql_event_insert[] = "INSERT INTO rule_events (id, job_id, rule, when_text, action, "
                                           "values_json, outcome, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
static const char gvd_sql_event_prune[] = "DELETE FROM rule_events WHERE job_id = $1 AND id <= $2";
static const char gvd_sql_latch_put[] = "INSERT INTO rule_latches (job_id, rule, latched) VALUES ($1, $2, $3) "
                                        "ON CONFLICT (job_id, rule) DO UPDATE SET latched = EXCLUDED.latched";
static const char gvd_sql_latch_forget[] = "DELETE FROM rule_latches WHERE rule = $1";
static const char gvd_sql_rule_insert[] = "INSERT INTO rules (id, def_json, created_at) VALUES ($1, $2, $3)";
static const char gvd_sql_rule_delete[] = "DELETE FROM rules WHERE id = $1";
static const char gvd_sql_pl_insert[] =
    "INSERT INTO pipelines (id, name, def_json, state_json, created_at) VALUES ($1, $2, $3, $4, $5)";
static const char gvd_sql_pl_update[] = "UPDATE pipelines SET state_json = $2 WHERE id = $1";
static const char gvd_sql_pl_delete[] = "DELETE FROM pipelines WHERE id = $1";

const char gvd_pg_sql_load_params[] =
    "SELECT job_id, revision, patch_json, who, at, applied_at FROM params_history ORDER BY job_id, revision";
const char gvd_pg_sql_load_points[] =
    "SELECT job_id, name, idx, t_ms, value, weight FROM metric_points ORDER BY job_id, name COLLATE \"C\", idx";
const char gvd_pg_sql_load_events[] =
    "SELECT id, job_id, rule, when_text, action, values_json, outcome, at FROM rule_events ORDER BY job_id, id";
const char gvd_pg_sql_load_latches[] =
    "SELECT job_id, rule, latched FROM rule_latches ORDER BY job_id, rule COLLATE \"C\"";
const char gvd_pg_sql_load_rules[] = "SELECT id, def_json, created_at FROM rules ORDER BY id";
const char gvd_pg_sql_load_pipelines[] =
    "SELECT id, name, def_json, state_json, created_at FROM pipelines ORDER BY id";

/* NOT NULL columns: refused at once, as SQLite's step would refuse them. */
static int gvd_need(bool ok, const char *op, const char *what, char *err, size_t errlen)
{
    if (!ok)
        gvd_pgs_errf(err, errlen, "store %s: %s", op, what);
    return ok ? 0 : -1;
}

/* ---- params history and metric points ----------------------------------------- */

int gvd_pgstore_params_insert(gvd_pgstore *st, const gvd_params_row *row, char *err, size_t errlen)
{
    const char *op = "params insert";
    if (gvd_need(row != NULL, op, "no row given", err, errlen) != 0 ||
        gvd_need(row->revision > 0, op, "the revision must be positive", err, errlen) != 0 ||
        gvd_need(!isnan(row->at), op, "no time given", err, errlen) != 0)
        return -1;
    gvd_pgw w;
    if (gvd_pgw_begin(st, &w, op, gvd_sql_hist_insert, err, errlen) != 0)
        return -1;
    gvd_pgw_int(&w, row->job_id);
    gvd_pgw_int(&w, row->revision);
    gvd_pgw_text(&w, row->patch_json ? row->patch_json : "{}");
    gvd_pgw_text(&w, row->who ? row->who : "");
    gvd_pgw_double(&w, row->at);
    if (row->applied_at > 0)
        gvd_pgw_double(&w, row->applied_at);
    else
        gvd_pgw_text(&w, NULL);
    return gvd_pgw_end(&w, err, errlen);
}

int gvd_pgstore_params_applied(gvd_pgstore *st, int64_t job_id, int64_t revision, double applied_at, char *err,
                               size_t errlen)
{
    gvd_pgw w;
    if (gvd_pgw_begin(st, &w, "params applied", gvd_sql_hist_applied, err, errlen) != 0)
        return -1;
    gvd_pgw_int(&w, job_id);
    gvd_pgw_int(&w, revision);
    gvd_pgw_double(&w, applied_at);
    return gvd_pgw_end(&w, err, errlen);
}

int gvd_pgstore_params_prune(gvd_pgstore *st, int64_t job_id, int64_t upto, char *err, size_t errlen)
{
    gvd_pgw w;
    if (gvd_pgw_begin(st, &w, "params prune", gvd_sql_hist_prune, err, errlen) != 0)
        return -1;
    gvd_pgw_int(&w, job_id);
    gvd_pgw_int(&w, upto);
    return gvd_pgw_end(&w, err, errlen);
}

int gvd_pgstore_params_load(gvd_pgstore *st, gvd_store_params_fn fn, void *ud, char *err, size_t errlen)
{
    const PGresult *r = gvd_pgs_result(st, GVD_PGR_PARAMS, "params load", err, errlen);
    if (!r)
        return -1;
    for (int i = 0, n = PQntuples(r); i < n; i++) {
        gvd_params_row row = {
            .job_id = gvd_pgv_int(r, i, 0),
            .revision = gvd_pgv_int(r, i, 1),
            .patch_json = gvd_pgv_text(r, i, 2),
            .who = gvd_pgv_text(r, i, 3),
            .at = gvd_pgv_double(r, i, 4),
            .applied_at = gvd_pgv_double(r, i, 5),
        };
        int stop = fn(ud, &row);
        if (stop != 0)
            return gvd_pgs_stopped(err, errlen, "params load", stop);
    }
    return 0;
}

int gvd_pgstore_point_put(gvd_pgstore *st, const gvd_point_row *row, char *err, size_t errlen)
{
    const char *op = "point put";
    if (gvd_need(row != NULL, op, "no row given", err, errlen) != 0 ||
        gvd_need(row->name != NULL, op, "no series name given", err, errlen) != 0 ||
        gvd_need(!isnan(row->t_ms) && !isnan(row->value), op, "a point's time and value must be numbers", err,
                 errlen) != 0)
        return -1;
    gvd_pgw w;
    if (gvd_pgw_begin(st, &w, op, gvd_sql_point_put, err, errlen) != 0)
        return -1;
    gvd_pgw_int(&w, row->job_id);
    gvd_pgw_text(&w, row->name);
    gvd_pgw_int(&w, row->idx);
    gvd_pgw_double(&w, row->t_ms);
    gvd_pgw_double(&w, row->value);
    gvd_pgw_int(&w, row->weight);
    return gvd_pgw_end(&w, err, errlen);
}

int gvd_pgstore_points_trim(gvd_pgstore *st, int64_t job_id, const char *name, int64_t from, char *err,
                            size_t errlen)
{
    gvd_pgw w;
    if (gvd_pgw_begin(st, &w, "point trim", gvd_sql_point_trim, err, errlen) != 0)
        return -1;
    gvd_pgw_int(&w, job_id);
    gvd_pgw_text(&w, name);
    gvd_pgw_int(&w, from);
    return gvd_pgw_end(&w, err, errlen);
}

int gvd_pgstore_points_load(gvd_pgstore *st, gvd_store_point_fn fn, void *ud, char *err, size_t errlen)
{
    const PGresult *r = gvd_pgs_result(st, GVD_PGR_POINTS, "point load", err, errlen);
    if (!r)
        return -1;
    for (int i = 0, n = PQntuples(r); i < n; i++) {
        gvd_point_row row = {
            .job_id = gvd_pgv_int(r, i, 0),
            .name = gvd_pgv_str(r, i, 1),
            .idx = gvd_pgv_int(r, i, 2),
            .t_ms = gvd_pgv_double(r, i, 3),
            .value = gvd_pgv_double(r, i, 4),
            .weight = gvd_pgv_int(r, i, 5),
        };
        int stop = fn(ud, &row);
        if (stop != 0)
            return gvd_pgs_stopped(err, errlen, "point load", stop);
    }
    return 0;
}

/* ---- rule firings and latches, global rules ------------------------------------ */

int gvd_pgstore_event_insert(gvd_pgstore *st, const gvd_event_row *row, int64_t *id, char *err, size_t errlen)
{
    const char *op = "event insert";
    if (gvd_need(row != NULL && id != NULL, op, "no row or no id given", err, errlen) != 0 ||
        gvd_need(!isnan(row->at), op, "no time given", err, errlen) != 0)
        return -1;
    gvd_pgw w;
    int64_t nid;
    if (gvd_pgw_begin(st, &w, op, gvd_sql_event_insert, err, errlen) != 0 ||
        gvd_pgs_take_id(st, GVD_PGIDS_EVENTS, &nid, op, err, errlen) != 0)
        return -1;
    gvd_pgw_int(&w, nid);
    gvd_pgw_int(&w, row->job_id);
    gvd_pgw_text(&w, row->rule ? row->rule : "");
    gvd_pgw_text(&w, row->when ? row->when : "");
    gvd_pgw_text(&w, row->action ? row->action : "");
    gvd_pgw_text(&w, row->values_json ? row->values_json : "{}");
    gvd_pgw_text(&w, row->outcome ? row->outcome : "");
    gvd_pgw_double(&w, row->at);
    if (gvd_pgw_end(&w, err, errlen) != 0) {
        gvd_pgs_untake_id(st, GVD_PGIDS_EVENTS, nid);
        return -1;
    }
    *id = nid;
    return 0;
}

int gvd_pgstore_event_prune(gvd_pgstore *st, int64_t job_id, int64_t upto, char *err, size_t errlen)
{
    gvd_pgw w;
    if (gvd_pgw_begin(st, &w, "event prune", gvd_sql_event_prune, err, errlen) != 0)
        return -1;
    gvd_pgw_int(&w, job_id);
    gvd_pgw_int(&w, upto);
    return gvd_pgw_end(&w, err, errlen);
}

int gvd_pgstore_events_load(gvd_pgstore *st, gvd_store_event_fn fn, void *ud, char *err, size_t errlen)
{
    const PGresult *r = gvd_pgs_result(st, GVD_PGR_EVENTS, "event load", err, errlen);
    if (!r)
        return -1;
    for (int i = 0, n = PQntuples(r); i < n; i++) {
        gvd_event_row row = {
            .id = gvd_pgv_int(r, i, 0),
            .job_id = gvd_pgv_int(r, i, 1),
            .rule = gvd_pgv_str(r, i, 2),
            .when = gvd_pgv_str(r, i, 3),
            .action = gvd_pgv_str(r, i, 4),
            .values_json = gvd_pgv_str(r, i, 5),
            .outcome = gvd_pgv_str(r, i, 6),
            .at = gvd_pgv_double(r, i, 7),
        };
        int stop = fn(ud, &row);
        if (stop != 0)
            return gvd_pgs_stopped(err, errlen, "event load", stop);
    }
    return 0;
}

int gvd_pgstore_latch_put(gvd_pgstore *st, int64_t job_id, const char *rule, bool latched, char *err,
                          size_t errlen)
{
    if (gvd_need(rule != NULL, "latch put", "no rule given", err, errlen) != 0)
        return -1;
    gvd_pgw w;
    if (gvd_pgw_begin(st, &w, "latch put", gvd_sql_latch_put, err, errlen) != 0)
        return -1;
    gvd_pgw_int(&w, job_id);
    gvd_pgw_text(&w, rule);
    gvd_pgw_bool(&w, latched);
    return gvd_pgw_end(&w, err, errlen);
}

int gvd_pgstore_latches_load(gvd_pgstore *st, gvd_store_latch_fn fn, void *ud, char *err, size_t errlen)
{
    const PGresult *r = gvd_pgs_result(st, GVD_PGR_LATCHES, "latch load", err, errlen);
    if (!r)
        return -1;
    for (int i = 0, n = PQntuples(r); i < n; i++) {
        int stop = fn(ud, gvd_pgv_int(r, i, 0), gvd_pgv_str(r, i, 1), gvd_pgv_bool(r, i, 2));
        if (stop != 0)
            return gvd_pgs_stopped(err, errlen, "latch load", stop);
    }
    return 0;
}

int gvd_pgstore_rule_insert(gvd_pgstore *st, const char *def_json, double created_at, int64_t *id, char *err,
                            size_t errlen)
{
    const char *op = "rule insert";
    if (gvd_need(def_json != NULL && id != NULL, op, "no definition or no id given", err, errlen) != 0 ||
        gvd_need(!isnan(created_at), op, "no time given", err, errlen) != 0)
        return -1;
    gvd_pgw w;
    int64_t nid;
    if (gvd_pgw_begin(st, &w, op, gvd_sql_rule_insert, err, errlen) != 0 ||
        gvd_pgs_take_id(st, GVD_PGIDS_RULES, &nid, op, err, errlen) != 0)
        return -1;
    gvd_pgw_int(&w, nid);
    gvd_pgw_text(&w, def_json);
    gvd_pgw_double(&w, created_at);
    gvd_pgw_rules(&w);
    if (gvd_pgw_end(&w, err, errlen) != 0) {
        gvd_pgs_untake_id(st, GVD_PGIDS_RULES, nid);
        return -1;
    }
    *id = nid;
    return 0;
}

/* The rule and its latches go together: both statements or neither. */
int gvd_pgstore_rule_delete(gvd_pgstore *st, int64_t id, const char *name, char *err, size_t errlen)
{
    gvd_pgw w;
    if (gvd_pgw_begin(st, &w, "rule delete", gvd_sql_rule_delete, err, errlen) != 0)
        return -1;
    gvd_pgpos before = gvd_pgs_pos(st);
    gvd_pgw_int(&w, id);
    gvd_pgw_rules(&w);
    if (gvd_pgw_end(&w, err, errlen) != 0)
        return -1;
    if (gvd_pgw_begin(st, &w, "latch forget", gvd_sql_latch_forget, err, errlen) != 0)
        goto undo;
    gvd_pgw_text(&w, name);
    if (gvd_pgw_end(&w, err, errlen) != 0)
        goto undo;
    return 0;
undo:
    gvd_pgs_cut(st, before);
    return -1;
}

int gvd_pgstore_rules_load(gvd_pgstore *st, gvd_store_rule_fn fn, void *ud, char *err, size_t errlen)
{
    const PGresult *r = gvd_pgs_result(st, GVD_PGR_RULES, "rule load", err, errlen);
    if (!r)
        return -1;
    for (int i = 0, n = PQntuples(r); i < n; i++) {
        int stop = fn(ud, gvd_pgv_int(r, i, 0), gvd_pgv_str(r, i, 1), gvd_pgv_double(r, i, 2));
        if (stop != 0)
            return gvd_pgs_stopped(err, errlen, "rule load", stop);
    }
    return 0;
}

/* ---- pipelines ----------------------------------------------------------------- */

int gvd_pgstore_pipeline_insert(gvd_pgstore *st, const gvd_pipeline_row *row, int64_t *id, char *err,
                                size_t errlen)
{
    const char *op = "pipeline insert";
    if (gvd_need(row != NULL && id != NULL, op, "no row or no id given", err, errlen) != 0 ||
        gvd_need(!isnan(row->created_at), op, "no time given", err, errlen) != 0)
        return -1;
    gvd_pgw w;
    int64_t nid;
    if (gvd_pgw_begin(st, &w, op, gvd_sql_pl_insert, err, errlen) != 0 ||
        gvd_pgs_take_id(st, GVD_PGIDS_PIPELINES, &nid, op, err, errlen) != 0)
        return -1;
    gvd_pgw_int(&w, nid);
    gvd_pgw_text(&w, row->name ? row->name : "");
    gvd_pgw_text(&w, row->def_json ? row->def_json : "{}");
    gvd_pgw_text(&w, row->state_json ? row->state_json : "{}");
    gvd_pgw_double(&w, row->created_at);
    gvd_pgw_pipeline(&w, nid);
    if (gvd_pgw_end(&w, err, errlen) != 0) {
        gvd_pgs_untake_id(st, GVD_PGIDS_PIPELINES, nid);
        return -1;
    }
    *id = nid;
    return 0;
}

int gvd_pgstore_pipeline_update(gvd_pgstore *st, int64_t id, const char *state_json, char *err, size_t errlen)
{
    gvd_pgw w;
    if (gvd_pgw_begin(st, &w, "pipeline update", gvd_sql_pl_update, err, errlen) != 0)
        return -1;
    gvd_pgw_int(&w, id);
    gvd_pgw_text(&w, state_json ? state_json : "{}");
    gvd_pgw_expect_row(&w);
    gvd_pgw_pipeline(&w, id);
    return gvd_pgw_end(&w, err, errlen);
}

int gvd_pgstore_pipeline_delete(gvd_pgstore *st, int64_t id, char *err, size_t errlen)
{
    gvd_pgw w;
    if (gvd_pgw_begin(st, &w, "pipeline delete", gvd_sql_pl_delete, err, errlen) != 0)
        return -1;
    gvd_pgw_int(&w, id);
    gvd_pgw_pipeline(&w, id);
    return gvd_pgw_end(&w, err, errlen);
}

int gvd_pgstore_pipelines_load(gvd_pgstore *st, gvd_store_pipeline_fn fn, void *ud, char *err, size_t errlen)
{
    const PGresult *r = gvd_pgs_result(st, GVD_PGR_PIPELINES, "pipeline load", err, errlen);
    if (!r)
        return -1;
    for (int i = 0, n = PQntuples(r); i < n; i++) {
        gvd_pipeline_row row = {
            .id = gvd_pgv_int(r, i, 0),
            .name = gvd_pgv_str(r, i, 1),
            .def_json = gvd_pgv_str(r, i, 2),
            .state_json = gvd_pgv_str(r, i, 3),
            .created_at = gvd_pgv_double(r, i, 4),
        };
        int stop = fn(ud, &row);
        if (stop != 0)
            return gvd_pgs_stopped(err, errlen, "pipeline load", stop);
    }
    return 0;
}
