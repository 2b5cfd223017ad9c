/*
 * rows.c — the job rows: insert, update, delete, load (see store.h).
 *
 * Each operation uses one statement prepared at open (gvd_sqlite_prepare_rows)
 * and leaves it reset with its bindings cleared, so that no statement keeps a
 * read transaction open between calls and no binding points at a caller's
 * string after the call returns (strings are bound SQLITE_STATIC: no copy).
 */
#include <stdio.h>
#include <string.h>

#include "sqlite_int.h"

#include "../../obs/obs.h"

/* Every column of gvd_job_row except id, in the order the statements bind
 * (?1..?21) and load reads them (after id).  One list, so insert, update and
 * load cannot drift apart. */
#define GVD_ROW_COLUMNS                                                                                          \
    "name, kind, status, priority, spec_json, params_json, metrics_json, progress, progress_total, message, "    \
    "error, pid, pid_start_ticks, exit_status, term_signal, has_exit, attempts, created_at, started_at, "        \
    "finished_at, updated_at"
#define GVD_ROW_NCOLUMNS 21

static const char gvd_sql_insert[] =
    "INSERT INTO jobs (" GVD_ROW_COLUMNS ") VALUES "
    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)";

static const char gvd_sql_update[] =
    "UPDATE jobs SET name = ?1, kind = ?2, status = ?3, priority = ?4, spec_json = COALESCE(?5, spec_json), "
    "params_json = ?6, "
    "metrics_json = ?7, progress = ?8, progress_total = ?9, message = ?10, error = ?11, pid = ?12, "
    "pid_start_ticks = ?13, exit_status = ?14, term_signal = ?15, has_exit = ?16, attempts = ?17, "
    "created_at = ?18, started_at = ?19, finished_at = ?20, updated_at = ?21 WHERE id = ?22";

static const char gvd_sql_delete[] = "DELETE FROM jobs WHERE id = ?1";

static const char gvd_sql_load[] = "SELECT id, " GVD_ROW_COLUMNS " FROM jobs ORDER BY id";

int gvd_sqlite_prepare_rows(gvd_sqlite *st, char *err, size_t errlen)
{
    if (gvd_sqlite_prepare(st, &st->insert, gvd_sql_insert, "insert", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->update, gvd_sql_update, "update", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->del, gvd_sql_delete, "delete", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->load, gvd_sql_load, "load", err, errlen) != 0)
        return -1;
    /* The column list and the bind numbers are kept in step by hand: check
     * once here rather than bind the wrong column in silence. */
    if (sqlite3_bind_parameter_count(st->insert) != GVD_ROW_NCOLUMNS ||
        sqlite3_bind_parameter_count(st->update) != GVD_ROW_NCOLUMNS + 1 ||
        sqlite3_column_count(st->load) != GVD_ROW_NCOLUMNS + 1) {
        gvd_sqlite_errf(err, errlen, "store open: internal error: row statements disagree on the columns");
        return -1;
    }
    return 0;
}

static int gvd_bind_text(sqlite3_stmt *stmt, int i, const char *s)
{
    return s ? sqlite3_bind_text(stmt, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(stmt, i);
}

/* Binds ?1..?21 from row.  pid_start_ticks is a uint64 and SQLite integers
 * are int64: it is stored bit for bit (values above INT64_MAX read back
 * negative in the sqlite3 shell, and come back exact through load).  A NaN
 * double is stored by SQLite as NULL, which load returns as 0. */
static int gvd_bind_row(sqlite3_stmt *stmt, const gvd_job_row *row)
{
    int rc = SQLITE_OK;
    int i = 1;
#define GVD_BIND(call)                                                                                           \
    do {                                                                                                         \
        if (rc == SQLITE_OK)                                                                                     \
            rc = (call);                                                                                         \
        i++;                                                                                                     \
    } while (0)
    GVD_BIND(gvd_bind_text(stmt, i, row->name));
    GVD_BIND(gvd_bind_text(stmt, i, row->kind));
    GVD_BIND(gvd_bind_text(stmt, i, row->status));
    GVD_BIND(sqlite3_bind_int64(stmt, i, row->priority));
    GVD_BIND(gvd_bind_text(stmt, i, row->spec_json));
    GVD_BIND(gvd_bind_text(stmt, i, row->params_json));
    GVD_BIND(gvd_bind_text(stmt, i, row->metrics_json));
    GVD_BIND(sqlite3_bind_double(stmt, i, row->progress));
    GVD_BIND(sqlite3_bind_double(stmt, i, row->progress_total));
    GVD_BIND(gvd_bind_text(stmt, i, row->message));
    GVD_BIND(gvd_bind_text(stmt, i, row->error));
    GVD_BIND(sqlite3_bind_int64(stmt, i, row->pid));
    GVD_BIND(sqlite3_bind_int64(stmt, i, (sqlite3_int64)row->pid_start_ticks));
    GVD_BIND(sqlite3_bind_int64(stmt, i, row->exit_status));
    GVD_BIND(sqlite3_bind_int64(stmt, i, row->term_signal));
    GVD_BIND(sqlite3_bind_int(stmt, i, row->has_exit ? 1 : 0));
    GVD_BIND(sqlite3_bind_int64(stmt, i, row->attempts));
    GVD_BIND(sqlite3_bind_double(stmt, i, row->created_at));
    GVD_BIND(sqlite3_bind_double(stmt, i, row->started_at));
    GVD_BIND(sqlite3_bind_double(stmt, i, row->finished_at));
    GVD_BIND(sqlite3_bind_double(stmt, i, row->updated_at));
#undef GVD_BIND
    return rc;
}

/* After every use: no read transaction left open by a half-stepped
 * statement, no binding left pointing at the caller's strings. */
static void gvd_done(sqlite3_stmt *stmt)
{
    /* reset returns the last step's error again (already reported);
     * clear_bindings cannot fail. */
    (void)sqlite3_reset(stmt);
    (void)sqlite3_clear_bindings(stmt);
}

static int gvd_check_args(gvd_sqlite *st, const void *row, char *err, size_t errlen, const char *op)
{
    if (!st) {
        gvd_sqlite_errf(err, errlen, "store %s: store is not open", op);
        return -1;
    }
    if (!row) {
        gvd_sqlite_errf(err, errlen, "store %s: no row given", op);
        return -1;
    }
    return 0;
}

int gvd_sqlite_insert(gvd_sqlite *st, const gvd_job_row *row, int64_t *id, char *err, size_t errlen)
{
    if (gvd_check_args(st, row, err, errlen, "insert") != 0 || gvd_check_args(st, id, err, errlen, "insert") != 0)
        return -1;
    if (gvd_bind_row(st->insert, row) != SQLITE_OK) {
        gvd_sqlite_sqlerr(st, err, errlen, "insert");
        gvd_done(st->insert);
        return -1;
    }
    uint64_t started = gvd_obs_clock_ns();
    if (sqlite3_step(st->insert) != SQLITE_DONE) {
        gvd_sqlite_sqlerr(st, err, errlen, "insert");
        gvd_sqlite_write_failed(st, err);
        gvd_done(st->insert);
        return -1;
    }
    /* Read before anything else can insert on this connection. */
    *id = sqlite3_last_insert_rowid(st->db);
    gvd_done(st->insert);
    gvd_sqlite_write_ok(st, started);
    return 0;
}

int gvd_sqlite_update(gvd_sqlite *st, const gvd_job_row *row, char *err, size_t errlen)
{
    if (gvd_check_args(st, row, err, errlen, "update") != 0)
        return -1;
    if (gvd_bind_row(st->update, row) != SQLITE_OK ||
        sqlite3_bind_int64(st->update, GVD_ROW_NCOLUMNS + 1, row->id) != SQLITE_OK) {
        gvd_sqlite_sqlerr(st, err, errlen, "update");
        gvd_done(st->update);
        return -1;
    }
    uint64_t started = gvd_obs_clock_ns();
    if (sqlite3_step(st->update) != SQLITE_DONE) {
        gvd_sqlite_sqlerr(st, err, errlen, "update");
        gvd_sqlite_write_failed(st, err);
        gvd_done(st->update);
        return -1;
    }
    /* sqlite3_changes counts the rows the WHERE matched, also when the new
     * values equal the old ones: 0 means there is no such job. */
    int changed = sqlite3_changes(st->db);
    gvd_done(st->update);
    if (changed == 0) {
        gvd_sqlite_errf(err, errlen, "store update: no job %lld", (long long)row->id);
        return -1;
    }
    gvd_sqlite_write_ok(st, started);
    return 0;
}

int gvd_sqlite_delete(gvd_sqlite *st, int64_t id, char *err, size_t errlen)
{
    if (gvd_check_args(st, "", err, errlen, "delete") != 0)
        return -1;
    uint64_t started = gvd_obs_clock_ns();
    if (sqlite3_bind_int64(st->del, 1, id) != SQLITE_OK || sqlite3_step(st->del) != SQLITE_DONE) {
        gvd_sqlite_sqlerr(st, err, errlen, "delete");
        gvd_sqlite_write_failed(st, err);
        gvd_done(st->del);
        return -1;
    }
    int changed = sqlite3_changes(st->db);
    gvd_done(st->del);
    if (changed == 0) {
        gvd_sqlite_errf(err, errlen, "store delete: no job %lld", (long long)id);
        return -1;
    }
    gvd_sqlite_write_ok(st, started);
    return 0;
}

static const char *gvd_col_text(sqlite3_stmt *stmt, int i)
{
    /* NULL for SQL NULL; "" (not NULL) for an empty string. */
    return (const char *)sqlite3_column_text(stmt, i);
}

/* Fills row from the load statement's current row.  Column 0 is id, then
 * GVD_ROW_COLUMNS in order.  NULL REAL columns (never written by galvanid
 * except for a NaN) read as 0. */
static void gvd_read_row(sqlite3_stmt *stmt, gvd_job_row *row)
{
    int i = 0;
    row->id = sqlite3_column_int64(stmt, i++);
    row->name = gvd_col_text(stmt, i++);
    row->kind = gvd_col_text(stmt, i++);
    row->status = gvd_col_text(stmt, i++);
    row->priority = sqlite3_column_int64(stmt, i++);
    row->spec_json = gvd_col_text(stmt, i++);
    row->params_json = gvd_col_text(stmt, i++);
    row->metrics_json = gvd_col_text(stmt, i++);
    row->progress = sqlite3_column_double(stmt, i++);
    row->progress_total = sqlite3_column_double(stmt, i++);
    row->message = gvd_col_text(stmt, i++);
    row->error = gvd_col_text(stmt, i++);
    row->pid = sqlite3_column_int64(stmt, i++);
    row->pid_start_ticks = (uint64_t)sqlite3_column_int64(stmt, i++);
    row->exit_status = sqlite3_column_int64(stmt, i++);
    row->term_signal = sqlite3_column_int64(stmt, i++);
    row->has_exit = sqlite3_column_int(stmt, i++) != 0;
    row->attempts = sqlite3_column_int64(stmt, i++);
    row->created_at = sqlite3_column_double(stmt, i++);
    row->started_at = sqlite3_column_double(stmt, i++);
    row->finished_at = sqlite3_column_double(stmt, i++);
    row->updated_at = sqlite3_column_double(stmt, i++);
}

/* fn may write to the store (the model's restart recovery updates the row it
 * is given); rows it inserts during the walk may or may not be visited.  fn
 * must not call gvd_sqlite_load (its statement is in use) nor close the store.
 * A text column whose value SQLite cannot allocate reads as NULL: that is
 * told apart from SQL NULL with sqlite3_errcode and reported. */
int gvd_sqlite_load(gvd_sqlite *st, gvd_store_row_fn fn, void *ud, char *err, size_t errlen)
{
    if (gvd_check_args(st, "", err, errlen, "load") != 0)
        return -1;
    if (!fn) {
        gvd_sqlite_errf(err, errlen, "store load: no callback given");
        return -1;
    }
    if (st->loading) {
        gvd_sqlite_errf(err, errlen, "store load: already loading (gvd_sqlite_load is not re-entrant)");
        return -1;
    }
    st->loading = true;
    int result = 0;
    for (;;) {
        int rc = sqlite3_step(st->load);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            gvd_sqlite_sqlerr(st, err, errlen, "load");
            result = -1;
            break;
        }
        gvd_job_row row;
        memset(&row, 0, sizeof row);
        gvd_read_row(st->load, &row);
        if (sqlite3_errcode(st->db) == SQLITE_NOMEM) {
            gvd_sqlite_sqlerr(st, err, errlen, "load");
            result = -1;
            break;
        }
        int stop = fn(ud, &row);
        if (stop != 0) {
            /* The contract returns fn's value; a message helps a caller that
             * prints err whatever the cause. */
            gvd_sqlite_errf(err, errlen, "store load: stopped by the caller at job %lld (returned %d)",
                           (long long)row.id, stop);
            result = stop;
            break;
        }
    }
    (void)sqlite3_reset(st->load); /* repeats a step error already reported */
    st->loading = false;
    return result;
}
