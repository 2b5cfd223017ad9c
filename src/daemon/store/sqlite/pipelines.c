/*
 * pipelines.c — the pipeline rows (see store.h, "pipelines"; migration 4 in
 * store.c).  Same rules as history.c: one statement per operation, prepared
 * at open, reset and unbound after each use, strings bound SQLITE_STATIC,
 * every write's outcome reported to faults.c.
 */
#include <stdio.h>

#include "sqlite_int.h"

static const char gvd_sql_pl_insert[] =
    "INSERT INTO pipelines (name, def_json, state_json, created_at) VALUES (?1, ?2, ?3, ?4)";
static const char gvd_sql_pl_update[] = "UPDATE pipelines SET state_json = ?2 WHERE id = ?1";
static const char gvd_sql_pl_delete[] = "DELETE FROM pipelines WHERE id = ?1";
static const char gvd_sql_pl_load[] = "SELECT id, name, def_json, state_json, created_at FROM pipelines ORDER BY id";

int gvd_sqlite_prepare_pipelines(gvd_sqlite *st, char *err, size_t errlen)
{
    if (gvd_sqlite_prepare(st, &st->pl_insert, gvd_sql_pl_insert, "pipeline insert", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->pl_update, gvd_sql_pl_update, "pipeline update", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->pl_delete, gvd_sql_pl_delete, "pipeline delete", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->pl_load, gvd_sql_pl_load, "pipeline load", err, errlen) != 0)
        return -1;
    return 0;
}

int gvd_sqlite_pipeline_insert(gvd_sqlite *st, const gvd_pipeline_row *row, int64_t *id, char *err, size_t errlen)
{
    if (!gvd_sqlite_opened(st, err, errlen, "pipeline insert"))
        return -1;
    sqlite3_stmt *s = st->pl_insert;
    int rc = sqlite3_bind_text(s, 1, row->name ? row->name : "", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 2, row->def_json ? row->def_json : "{}", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 3, row->state_json ? row->state_json : "{}", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_double(s, 4, row->created_at);
    if (gvd_sqlite_write(st, s, rc, "pipeline insert", err, errlen) != 0)
        return -1;
    *id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

int gvd_sqlite_pipeline_update(gvd_sqlite *st, int64_t id, const char *state_json, char *err, size_t errlen)
{
    if (!gvd_sqlite_opened(st, err, errlen, "pipeline update"))
        return -1;
    sqlite3_stmt *s = st->pl_update;
    int rc = sqlite3_bind_int64(s, 1, id);
    rc |= sqlite3_bind_text(s, 2, state_json ? state_json : "{}", -1, SQLITE_STATIC);
    if (gvd_sqlite_write(st, s, rc, "pipeline update", err, errlen) != 0)
        return -1;
    if (sqlite3_changes(st->db) != 1) {
        gvd_sqlite_errf(err, errlen, "store pipeline update: no pipeline %lld", (long long)id);
        return -1;
    }
    return 0;
}

int gvd_sqlite_pipeline_delete(gvd_sqlite *st, int64_t id, char *err, size_t errlen)
{
    if (!gvd_sqlite_opened(st, err, errlen, "pipeline delete"))
        return -1;
    sqlite3_stmt *s = st->pl_delete;
    int rc = sqlite3_bind_int64(s, 1, id);
    return gvd_sqlite_write(st, s, rc, "pipeline delete", err, errlen);
}

typedef struct gvd_pipeline_walk {
    gvd_store_pipeline_fn fn;
    void *ud;
} gvd_pipeline_walk;

static int gvd_pipeline_cb(sqlite3_stmt *s, void *ctx)
{
    gvd_pipeline_walk *w = ctx;
    gvd_pipeline_row row = {
        .id = sqlite3_column_int64(s, 0),
        .name = gvd_sqlite_text(s, 1),
        .def_json = gvd_sqlite_text(s, 2),
        .state_json = gvd_sqlite_text(s, 3),
        .created_at = sqlite3_column_double(s, 4),
    };
    return w->fn(w->ud, &row);
}

int gvd_sqlite_pipelines_load(gvd_sqlite *st, gvd_store_pipeline_fn fn, void *ud, char *err, size_t errlen)
{
    gvd_pipeline_walk w = {fn, ud};
    return gvd_sqlite_walk(st, st ? st->pl_load : NULL, gvd_pipeline_cb, &w, "pipeline load", err, errlen);
}
