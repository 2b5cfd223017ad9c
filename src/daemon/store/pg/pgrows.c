/*
 * pgrows.c — the job rows on PostgreSQL: insert, update, delete, load
 * (store.h's contract, with pgstore.h's differences).
 *
 * Each write mirrors sqlite/rows.c statement for statement, rendered into
 * the tick's batch instead of stepped: the insert sends the id it took from
 * the reserved block explicitly; the update keeps the stored spec when
 * spec_json is NULL (COALESCE, as on SQLite); a NaN double is NULL, as
 * SQLite stores it, and reads back as 0.  What SQLite would refuse at once
 * because of a constraint (a missing kind or status, one outside the CHECK
 * lists) is refused here at once too: in a batch it would fail every write
 * of the tick and end the store.
 *
 * Under load the buffered batch gathers several ticks (one batch is in
 * flight at a time), so a busy job is often updated more than once in it:
 * only its last update is sent (gvd_pgs_coalesce, pgstore.c).
 *
 * The load walks the answer read at open: SQL NULL text is NULL, NULL
 * numbers are 0 — exactly what rows.c hands its callback.
 *
 * Several nodes (cluster/): a row also says which node owns the job and
 * under which epoch it took it.  An update is written only while the row
 * still names the node writing it: a node that another declared lost (and
 * whose jobs were handed back) cannot overwrite what the cluster decided
 * since — its update finds no row (store.no_row) and its heartbeat soon
 * tells it it is fenced.  Each job write is announced (gvd_pgw_job).
 */
#include <stdio.h>
#include <string.h>

#include "pgstore_int.h"

/* Every column of gvd_job_row except id, in the order the statements take
 * them ($2..$22, after id) and load reads them (after id). */
#define GVD_PG_ROW_COLUMNS                                                                                       \
    "name, kind, status, priority, spec_json, params_json, metrics_json, progress, progress_total, message, "    \
    "error, pid, pid_start_ticks, exit_status, term_signal, has_exit, attempts, created_at, started_at, "        \
    "finished_at, updated_at"

static const char gvd_sql_insert[] =
    "INSERT INTO jobs (id, " GVD_PG_ROW_COLUMNS ", node, epoch) VALUES "
    "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, "
    "$24)";

static const char gvd_sql_update[] =
    "UPDATE jobs SET name = $2, kind = $3, status = $4, priority = $5, spec_json = COALESCE($6, spec_json), "
    "params_json = $7, metrics_json = $8, progress = $9, progress_total = $10, message = $11, error = $12, "
    "pid = $13, pid_start_ticks = $14, exit_status = $15, term_signal = $16, has_exit = $17, attempts = $18, "
    "created_at = $19, started_at = $20, finished_at = $21, updated_at = $22, epoch = $24 "
    "WHERE id = $1 AND node IS NOT DISTINCT FROM $23";

static const char gvd_sql_delete[] = "DELETE FROM jobs WHERE id = $1";

const char gvd_pg_job_columns[] = "id, " GVD_PG_ROW_COLUMNS ", node, epoch";
const char gvd_pg_sql_load_jobs[] = "SELECT id, " GVD_PG_ROW_COLUMNS ", node, epoch FROM jobs ORDER BY id";

static bool gvd_in(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return true;
    return false;
}

/* The CHECK and NOT NULL constraints of jobs, before anything is queued. */
static int gvd_check_row(const gvd_job_row *row, const char *op, char *err, size_t errlen)
{
    static const char *const kinds[] = {"process", "demo", NULL};
    static const char *const statuses[] = {"queued", "running", "paused", "succeeded", "failed", "cancelled", NULL};
    if (!row) {
        gvd_pgs_errf(err, errlen, "store %s: no row given", op);
        return -1;
    }
    if (!row->kind || !gvd_in(row->kind, kinds)) {
        gvd_pgs_errf(err, errlen, "store %s: bad kind '%s'", op, row->kind ? row->kind : "(null)");
        return -1;
    }
    if (!row->status || !gvd_in(row->status, statuses)) {
        gvd_pgs_errf(err, errlen, "store %s: bad status '%s'", op, row->status ? row->status : "(null)");
        return -1;
    }
    return 0;
}

/* $2..$22 from row.  pid_start_ticks is stored bit for bit in a bigint, as
 * on SQLite. */
static void gvd_render_row(gvd_pgw *w, const gvd_job_row *row)
{
    gvd_pgw_text(w, row->name);
    gvd_pgw_text(w, row->kind);
    gvd_pgw_text(w, row->status);
    gvd_pgw_int(w, row->priority);
    gvd_pgw_text(w, row->spec_json);
    gvd_pgw_text(w, row->params_json);
    gvd_pgw_text(w, row->metrics_json);
    gvd_pgw_double(w, row->progress);
    gvd_pgw_double(w, row->progress_total);
    gvd_pgw_text(w, row->message);
    gvd_pgw_text(w, row->error);
    gvd_pgw_int(w, row->pid);
    gvd_pgw_int(w, (int64_t)row->pid_start_ticks);
    gvd_pgw_int(w, row->exit_status);
    gvd_pgw_int(w, row->term_signal);
    gvd_pgw_bool(w, row->has_exit);
    gvd_pgw_int(w, row->attempts);
    gvd_pgw_double(w, row->created_at);
    gvd_pgw_double(w, row->started_at);
    gvd_pgw_double(w, row->finished_at);
    gvd_pgw_double(w, row->updated_at);
}

/* $23, $24: the owner, and its epoch when it is this node. */
static void gvd_render_owner(gvd_pgstore *st, gvd_pgw *w, const gvd_job_row *row)
{
    gvd_pgw_text(w, row->node);
    gvd_pgw_int(w, row->node && st->node && strcmp(row->node, st->node) == 0 ? st->epoch : row->epoch);
}

int gvd_pgstore_insert(gvd_pgstore *st, const gvd_job_row *row, int64_t *id, char *err, size_t errlen)
{
    if (gvd_check_row(row, "insert", err, errlen) != 0)
        return -1;
    if (!id) {
        gvd_pgs_errf(err, errlen, "store insert: no id given");
        return -1;
    }
    gvd_pgw w;
    int64_t nid;
    if (gvd_pgw_begin(st, &w, "insert", gvd_sql_insert, err, errlen) != 0 ||
        gvd_pgs_take_id(st, GVD_PGIDS_JOBS, &nid, "insert", err, errlen) != 0)
        return -1;
    gvd_pgw_int(&w, nid);
    gvd_render_row(&w, row);
    gvd_render_owner(st, &w, row);
    gvd_pgw_job(&w, nid);
    if (gvd_pgw_end(&w, err, errlen) != 0) {
        gvd_pgs_untake_id(st, GVD_PGIDS_JOBS, nid);
        return -1;
    }
    *id = nid;
    return 0;
}

int gvd_pgstore_update(gvd_pgstore *st, const gvd_job_row *row, char *err, size_t errlen)
{
    if (gvd_check_row(row, "update", err, errlen) != 0)
        return -1;
    gvd_pgw w;
    if (gvd_pgw_begin(st, &w, "update", gvd_sql_update, err, errlen) != 0)
        return -1;
    gvd_pgw_int(&w, row->id);
    gvd_render_row(&w, row);
    gvd_render_owner(st, &w, row);
    gvd_pgw_expect_row(&w);
    gvd_pgw_job(&w, row->id);
    if (gvd_pgw_end(&w, err, errlen) != 0)
        return -1;
    gvd_pgs_coalesce(st, row->id, row->spec_json != NULL);
    return 0;
}

/* The job's history goes with it: every history table references jobs ON
 * DELETE CASCADE (pgschema.c). */
int gvd_pgstore_delete(gvd_pgstore *st, int64_t id, char *err, size_t errlen)
{
    gvd_pgw w;
    if (gvd_pgw_begin(st, &w, "delete", gvd_sql_delete, err, errlen) != 0)
        return -1;
    gvd_pgw_int(&w, id);
    gvd_pgw_expect_row(&w);
    gvd_pgw_job(&w, id);
    return gvd_pgw_end(&w, err, errlen);
}

void gvd_pg_job_row_read(const PGresult *r, int i, gvd_job_row *row)
{
    int c = 0;
    memset(row, 0, sizeof *row);
    row->id = gvd_pgv_int(r, i, c++);
    row->name = gvd_pgv_text(r, i, c++);
    row->kind = gvd_pgv_text(r, i, c++);
    row->status = gvd_pgv_text(r, i, c++);
    row->priority = gvd_pgv_int(r, i, c++);
    row->spec_json = gvd_pgv_text(r, i, c++);
    row->params_json = gvd_pgv_text(r, i, c++);
    row->metrics_json = gvd_pgv_text(r, i, c++);
    row->progress = gvd_pgv_double(r, i, c++);
    row->progress_total = gvd_pgv_double(r, i, c++);
    row->message = gvd_pgv_text(r, i, c++);
    row->error = gvd_pgv_text(r, i, c++);
    row->pid = gvd_pgv_int(r, i, c++);
    row->pid_start_ticks = (uint64_t)gvd_pgv_int(r, i, c++);
    row->exit_status = gvd_pgv_int(r, i, c++);
    row->term_signal = gvd_pgv_int(r, i, c++);
    row->has_exit = gvd_pgv_bool(r, i, c++);
    row->attempts = gvd_pgv_int(r, i, c++);
    row->created_at = gvd_pgv_double(r, i, c++);
    row->started_at = gvd_pgv_double(r, i, c++);
    row->finished_at = gvd_pgv_double(r, i, c++);
    row->updated_at = gvd_pgv_double(r, i, c++);
    row->node = gvd_pgv_text(r, i, c++);
    row->epoch = gvd_pgv_int(r, i, c++);
}

/* fn may write to the store (the model's restart recovery updates the rows
 * it is given): writes go to the batch, the walk reads the answer of open. */
int gvd_pgstore_load(gvd_pgstore *st, gvd_store_row_fn fn, void *ud, char *err, size_t errlen)
{
    const PGresult *r = gvd_pgs_result(st, GVD_PGR_JOBS, "load", err, errlen);
    if (!r)
        return -1;
    if (!fn) {
        gvd_pgs_errf(err, errlen, "store load: no callback given");
        return -1;
    }
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        gvd_job_row row;
        gvd_pg_job_row_read(r, i, &row);
        int stop = fn(ud, &row);
        if (stop != 0) {
            gvd_pgs_errf(err, errlen, "store load: stopped by the caller at job %lld (returned %d)",
                         (long long)row.id, stop);
            return stop;
        }
    }
    return 0;
}
