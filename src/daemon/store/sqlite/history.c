/*
 * history.c — the params history and the metric points (see store.h,
 * "params and metric history"; the tables are migration 2 in store.c), and
 * the rule firings and latches (store.h, "rule firings and latches";
 * migration 3).
 *
 * Same rules as rows.c: one statement per operation, prepared at open,
 * reset and unbound after every use (no read transaction left open, no
 * binding pointing at a caller's string), strings bound SQLITE_STATIC.
 * Writes report their outcome to faults.c, so a full disk during a flush of
 * metric points is a store fault like any other.
 */
#include <stdio.h>
#include <string.h>

#include "sqlite_int.h"

#include "../../obs/obs.h"

static const char gvd_sql_hist_insert[] =
    "INSERT INTO params_history (job_id, revision, patch_json, who, at, applied_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char gvd_sql_hist_applied[] =
    "UPDATE params_history SET applied_at = ?3 WHERE job_id = ?1 AND revision = ?2";
static const char gvd_sql_hist_prune[] = "DELETE FROM params_history WHERE job_id = ?1 AND revision <= ?2";
static const char gvd_sql_hist_load[] =
    "SELECT job_id, revision, patch_json, who, at, applied_at FROM params_history ORDER BY job_id, revision";
static const char gvd_sql_point_put[] =
    "INSERT OR REPLACE INTO metric_points (job_id, name, idx, t_ms, value, weight) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char gvd_sql_point_trim[] = "DELETE FROM metric_points WHERE job_id = ?1 AND name = ?2 AND idx >= ?3";
static const char gvd_sql_point_load[] =
    "SELECT job_id, name, idx, t_ms, value, weight FROM metric_points ORDER BY job_id, name, idx";

int gvd_sqlite_prepare_history(gvd_sqlite *st, char *err, size_t errlen)
{
    if (gvd_sqlite_prepare(st, &st->hist_insert, gvd_sql_hist_insert, "params insert", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->hist_applied, gvd_sql_hist_applied, "params applied", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->hist_prune, gvd_sql_hist_prune, "params prune", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->hist_load, gvd_sql_hist_load, "params load", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->point_put, gvd_sql_point_put, "point put", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->point_trim, gvd_sql_point_trim, "point trim", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->point_load, gvd_sql_point_load, "point load", err, errlen) != 0)
        return -1;
    return 0;
}

static void gvd_done(sqlite3_stmt *stmt)
{
    (void)sqlite3_reset(stmt); /* repeats the last step's error, already reported */
    (void)sqlite3_clear_bindings(stmt);
}

int gvd_sqlite_write(gvd_sqlite *st, sqlite3_stmt *stmt, int bound, const char *op, char *err, size_t errlen)
{
    if (bound != SQLITE_OK) {
        gvd_sqlite_sqlerr(st, err, errlen, op);
        gvd_done(stmt);
        return -1;
    }
    uint64_t started = gvd_obs_clock_ns();
    if (sqlite3_step(stmt) != SQLITE_DONE) {
        gvd_sqlite_sqlerr(st, err, errlen, op);
        gvd_sqlite_write_failed(st, err);
        gvd_done(stmt);
        return -1;
    }
    gvd_done(stmt);
    gvd_sqlite_write_ok(st, started);
    return 0;
}

bool gvd_sqlite_opened(gvd_sqlite *st, char *err, size_t errlen, const char *op)
{
    if (st)
        return true;
    gvd_sqlite_errf(err, errlen, "store %s: store is not open", op);
    return false;
}

int gvd_sqlite_params_insert(gvd_sqlite *st, const gvd_params_row *row, char *err, size_t errlen)
{
    if (!gvd_sqlite_opened(st, err, errlen, "params insert"))
        return -1;
    sqlite3_stmt *s = st->hist_insert;
    int rc = sqlite3_bind_int64(s, 1, row->job_id);
    rc |= sqlite3_bind_int64(s, 2, row->revision);
    rc |= sqlite3_bind_text(s, 3, row->patch_json ? row->patch_json : "{}", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 4, row->who ? row->who : "", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_double(s, 5, row->at);
    rc |= row->applied_at > 0 ? sqlite3_bind_double(s, 6, row->applied_at) : sqlite3_bind_null(s, 6);
    return gvd_sqlite_write(st, s, rc, "params insert", err, errlen);
}

int gvd_sqlite_params_applied(gvd_sqlite *st, int64_t job_id, int64_t revision, double applied_at, char *err,
                             size_t errlen)
{
    if (!gvd_sqlite_opened(st, err, errlen, "params applied"))
        return -1;
    sqlite3_stmt *s = st->hist_applied;
    int rc = sqlite3_bind_int64(s, 1, job_id);
    rc |= sqlite3_bind_int64(s, 2, revision);
    rc |= sqlite3_bind_double(s, 3, applied_at);
    return gvd_sqlite_write(st, s, rc, "params applied", err, errlen);
}

int gvd_sqlite_params_prune(gvd_sqlite *st, int64_t job_id, int64_t upto, char *err, size_t errlen)
{
    if (!gvd_sqlite_opened(st, err, errlen, "params prune"))
        return -1;
    sqlite3_stmt *s = st->hist_prune;
    int rc = sqlite3_bind_int64(s, 1, job_id);
    rc |= sqlite3_bind_int64(s, 2, upto);
    return gvd_sqlite_write(st, s, rc, "params prune", err, errlen);
}

int gvd_sqlite_point_put(gvd_sqlite *st, const gvd_point_row *row, char *err, size_t errlen)
{
    if (!gvd_sqlite_opened(st, err, errlen, "point put"))
        return -1;
    sqlite3_stmt *s = st->point_put;
    int rc = sqlite3_bind_int64(s, 1, row->job_id);
    rc |= sqlite3_bind_text(s, 2, row->name, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 3, row->idx);
    rc |= sqlite3_bind_double(s, 4, row->t_ms);
    rc |= sqlite3_bind_double(s, 5, row->value);
    rc |= sqlite3_bind_int64(s, 6, row->weight);
    return gvd_sqlite_write(st, s, rc, "point put", err, errlen);
}

int gvd_sqlite_points_trim(gvd_sqlite *st, int64_t job_id, const char *name, int64_t from, char *err,
                          size_t errlen)
{
    if (!gvd_sqlite_opened(st, err, errlen, "point trim"))
        return -1;
    sqlite3_stmt *s = st->point_trim;
    int rc = sqlite3_bind_int64(s, 1, job_id);
    rc |= sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(s, 3, from);
    return gvd_sqlite_write(st, s, rc, "point trim", err, errlen);
}

int gvd_sqlite_walk(gvd_sqlite *st, sqlite3_stmt *stmt, gvd_row_cb cb, void *ctx, const char *op, char *err,
                   size_t errlen)
{
    if (!gvd_sqlite_opened(st, err, errlen, op))
        return -1;
    int result = 0;
    for (;;) {
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            gvd_sqlite_sqlerr(st, err, errlen, op);
            result = -1;
            break;
        }
        int stop = cb(stmt, ctx);
        if (stop != 0) {
            gvd_sqlite_errf(err, errlen, "store %s: stopped by the caller (returned %d)", op, stop);
            result = stop;
            break;
        }
    }
    (void)sqlite3_reset(stmt);
    return result;
}

typedef struct gvd_params_walk {
    gvd_store_params_fn fn;
    void *ud;
} gvd_params_walk;

static int gvd_params_cb(sqlite3_stmt *s, void *ctx)
{
    gvd_params_walk *w = ctx;
    gvd_params_row row = {
        .job_id = sqlite3_column_int64(s, 0),
        .revision = sqlite3_column_int64(s, 1),
        .patch_json = (const char *)sqlite3_column_text(s, 2),
        .who = (const char *)sqlite3_column_text(s, 3),
        .at = sqlite3_column_double(s, 4),
        .applied_at = sqlite3_column_type(s, 5) == SQLITE_NULL ? 0 : sqlite3_column_double(s, 5),
    };
    return w->fn(w->ud, &row);
}

int gvd_sqlite_params_load(gvd_sqlite *st, gvd_store_params_fn fn, void *ud, char *err, size_t errlen)
{
    gvd_params_walk w = {fn, ud};
    return gvd_sqlite_walk(st, st ? st->hist_load : NULL, gvd_params_cb, &w, "params load", err, errlen);
}

typedef struct gvd_point_walk {
    gvd_store_point_fn fn;
    void *ud;
} gvd_point_walk;

static int gvd_point_cb(sqlite3_stmt *s, void *ctx)
{
    gvd_point_walk *w = ctx;
    gvd_point_row row = {
        .job_id = sqlite3_column_int64(s, 0),
        .name = (const char *)sqlite3_column_text(s, 1),
        .idx = sqlite3_column_int64(s, 2),
        .t_ms = sqlite3_column_double(s, 3),
        .value = sqlite3_column_double(s, 4),
        .weight = sqlite3_column_int64(s, 5),
    };
    if (!row.name)
        return 0; /* NOT NULL column: only an allocation failure gets here; skip the point */
    return w->fn(w->ud, &row);
}

int gvd_sqlite_points_load(gvd_sqlite *st, gvd_store_point_fn fn, void *ud, char *err, size_t errlen)
{
    gvd_point_walk w = {fn, ud};
    return gvd_sqlite_walk(st, st ? st->point_load : NULL, gvd_point_cb, &w, "point load", err, errlen);
}

/* ---- rule firings and latches ----------------------------------------- */

static const char gvd_sql_event_insert[] = "INSERT INTO rule_events (job_id, rule, when_text, action, values_json, "
                                           "outcome, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char gvd_sql_event_prune[] = "DELETE FROM rule_events WHERE job_id = ?1 AND id <= ?2";
static const char gvd_sql_event_load[] =
    "SELECT id, job_id, rule, when_text, action, values_json, outcome, at FROM rule_events ORDER BY job_id, id";
static const char gvd_sql_latch_put[] = "INSERT OR REPLACE INTO rule_latches (job_id, rule, latched) VALUES (?1, ?2, ?3)";
static const char gvd_sql_latch_load[] = "SELECT job_id, rule, latched FROM rule_latches";
static const char gvd_sql_latch_forget[] = "DELETE FROM rule_latches WHERE rule = ?1";
static const char gvd_sql_rule_insert[] = "INSERT INTO rules (def_json, created_at) VALUES (?1, ?2)";
static const char gvd_sql_rule_delete[] = "DELETE FROM rules WHERE id = ?1";
static const char gvd_sql_rule_load[] = "SELECT id, def_json, created_at FROM rules ORDER BY id";

int gvd_sqlite_prepare_rules(gvd_sqlite *st, char *err, size_t errlen)
{
    if (gvd_sqlite_prepare(st, &st->event_insert, gvd_sql_event_insert, "event insert", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->event_prune, gvd_sql_event_prune, "event prune", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->event_load, gvd_sql_event_load, "event load", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->latch_put, gvd_sql_latch_put, "latch put", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->latch_load, gvd_sql_latch_load, "latch load", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->latch_forget, gvd_sql_latch_forget, "latch forget", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->rule_insert, gvd_sql_rule_insert, "rule insert", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->rule_delete, gvd_sql_rule_delete, "rule delete", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->rule_load, gvd_sql_rule_load, "rule load", err, errlen) != 0)
        return -1;
    return 0;
}

int gvd_sqlite_event_insert(gvd_sqlite *st, const gvd_event_row *row, int64_t *id, char *err, size_t errlen)
{
    if (!gvd_sqlite_opened(st, err, errlen, "event insert"))
        return -1;
    sqlite3_stmt *s = st->event_insert;
    int rc = sqlite3_bind_int64(s, 1, row->job_id);
    rc |= sqlite3_bind_text(s, 2, row->rule ? row->rule : "", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 3, row->when ? row->when : "", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 4, row->action ? row->action : "", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 5, row->values_json ? row->values_json : "{}", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 6, row->outcome ? row->outcome : "", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_double(s, 7, row->at);
    if (gvd_sqlite_write(st, s, rc, "event insert", err, errlen) != 0)
        return -1;
    *id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

int gvd_sqlite_event_prune(gvd_sqlite *st, int64_t job_id, int64_t upto, char *err, size_t errlen)
{
    if (!gvd_sqlite_opened(st, err, errlen, "event prune"))
        return -1;
    sqlite3_stmt *s = st->event_prune;
    int rc = sqlite3_bind_int64(s, 1, job_id);
    rc |= sqlite3_bind_int64(s, 2, upto);
    return gvd_sqlite_write(st, s, rc, "event prune", err, errlen);
}

int gvd_sqlite_latch_put(gvd_sqlite *st, int64_t job_id, const char *rule, bool latched, char *err, size_t errlen)
{
    if (!gvd_sqlite_opened(st, err, errlen, "latch put"))
        return -1;
    sqlite3_stmt *s = st->latch_put;
    int rc = sqlite3_bind_int64(s, 1, job_id);
    rc |= sqlite3_bind_text(s, 2, rule, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int(s, 3, latched ? 1 : 0);
    return gvd_sqlite_write(st, s, rc, "latch put", err, errlen);
}

typedef struct gvd_event_walk {
    gvd_store_event_fn fn;
    void *ud;
} gvd_event_walk;

const char *gvd_sqlite_text(sqlite3_stmt *s, int col)
{
    const char *t = (const char *)sqlite3_column_text(s, col);
    return t ? t : "";
}

static int gvd_event_cb(sqlite3_stmt *s, void *ctx)
{
    gvd_event_walk *w = ctx;
    gvd_event_row row = {
        .id = sqlite3_column_int64(s, 0),
        .job_id = sqlite3_column_int64(s, 1),
        .rule = gvd_sqlite_text(s, 2),
        .when = gvd_sqlite_text(s, 3),
        .action = gvd_sqlite_text(s, 4),
        .values_json = gvd_sqlite_text(s, 5),
        .outcome = gvd_sqlite_text(s, 6),
        .at = sqlite3_column_double(s, 7),
    };
    return w->fn(w->ud, &row);
}

int gvd_sqlite_events_load(gvd_sqlite *st, gvd_store_event_fn fn, void *ud, char *err, size_t errlen)
{
    gvd_event_walk w = {fn, ud};
    return gvd_sqlite_walk(st, st ? st->event_load : NULL, gvd_event_cb, &w, "event load", err, errlen);
}

typedef struct gvd_latch_walk {
    gvd_store_latch_fn fn;
    void *ud;
} gvd_latch_walk;

static int gvd_latch_cb(sqlite3_stmt *s, void *ctx)
{
    gvd_latch_walk *w = ctx;
    return w->fn(w->ud, sqlite3_column_int64(s, 0), gvd_sqlite_text(s, 1), sqlite3_column_int(s, 2) != 0);
}

int gvd_sqlite_latches_load(gvd_sqlite *st, gvd_store_latch_fn fn, void *ud, char *err, size_t errlen)
{
    gvd_latch_walk w = {fn, ud};
    return gvd_sqlite_walk(st, st ? st->latch_load : NULL, gvd_latch_cb, &w, "latch load", err, errlen);
}

int gvd_sqlite_rule_insert(gvd_sqlite *st, const char *def_json, double created_at, int64_t *id, char *err,
                          size_t errlen)
{
    if (!gvd_sqlite_opened(st, err, errlen, "rule insert"))
        return -1;
    sqlite3_stmt *s = st->rule_insert;
    int rc = sqlite3_bind_text(s, 1, def_json, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_double(s, 2, created_at);
    if (gvd_sqlite_write(st, s, rc, "rule insert", err, errlen) != 0)
        return -1;
    *id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

/* One transaction: the rule and its latches go together. */
int gvd_sqlite_rule_delete(gvd_sqlite *st, int64_t id, const char *name, char *err, size_t errlen)
{
    if (!gvd_sqlite_opened(st, err, errlen, "rule delete") || gvd_sqlite_begin(st, err, errlen) != 0)
        return -1;
    sqlite3_stmt *s = st->rule_delete;
    int rc = sqlite3_bind_int64(s, 1, id);
    if (gvd_sqlite_write(st, s, rc, "rule delete", err, errlen) != 0)
        goto fail;
    s = st->latch_forget;
    rc = sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    if (gvd_sqlite_write(st, s, rc, "latch forget", err, errlen) != 0 || gvd_sqlite_commit(st, err, errlen) != 0)
        goto fail;
    return 0;
fail:
    gvd_sqlite_rollback(st);
    return -1;
}

typedef struct gvd_rule_walk {
    gvd_store_rule_fn fn;
    void *ud;
} gvd_rule_walk;

static int gvd_rule_cb(sqlite3_stmt *s, void *ctx)
{
    gvd_rule_walk *w = ctx;
    return w->fn(w->ud, sqlite3_column_int64(s, 0), gvd_sqlite_text(s, 1), sqlite3_column_double(s, 2));
}

int gvd_sqlite_rules_load(gvd_sqlite *st, gvd_store_rule_fn fn, void *ud, char *err, size_t errlen)
{
    gvd_rule_walk w = {fn, ud};
    return gvd_sqlite_walk(st, st ? st->rule_load : NULL, gvd_rule_cb, &w, "rule load", err, errlen);
}
