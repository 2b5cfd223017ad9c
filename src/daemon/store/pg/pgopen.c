/*
 * pgopen.c — opening and closing the PostgreSQL store, the id reservation,
 * and the answers read at open (see pgstore.h; the batch is pgstore.c's).
 *
 * Open runs the loop (start-up: nothing else is on it yet) through
 *
 *   connect                     gvd_pg_new; SET client_encoding, extra_float_digits
 *   migrate                     gvd_pg_migrate (pgschema.c), under its advisory lock
 *   reserve ids                 one block per identity table
 *   read every table            in the SQLite back end's order, kept until close
 *
 * all queued at once where order allows (the pipeline keeps it), until the
 * last answer or the deadline.  The first error wins and names its step:
 * "cannot connect to PostgreSQL: <libpq's words>", "schema: ...", "store
 * open: reading jobs: ...".
 *
 * Ids.  Inserts must return their id at once, so each identity table keeps
 * a queue of ids reserved from its sequence (nextval over generate_series:
 * one query for a block), filled at open and refilled when it runs under
 * half a block.  The refill is the one query a write may send itself; it
 * never lands inside a batch's transaction (a batch is sent whole, BEGIN to
 * COMMIT, in one go), and nextval is not transactional anyway.  A burst
 * that empties the queue within one turn of the loop (no answer can land
 * meanwhile) is refused with a clear error; the blocks grow (x4 then, x2
 * when a refill lands on a queue under a quarter block; up to 4096) so that
 * the demand seen once is met next time.  Ids taken by writes that a rollback dropped, or that a
 * failed batch held, are never used (as a sequence's ids never are).
 */
#include "pgstore_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../util/log.h"
#include "pgschema.h"

#define GVD_PG_IDS_BLOCK 64      /* ids per refill at first */
#define GVD_PG_IDS_BLOCK_MAX 4096

static const char *const gvd_pg_id_tables[GVD_PGIDS_N] = {"jobs", "rule_events", "rules", "pipelines"};
static const char *const gvd_pg_result_names[GVD_PGR_N] = {"jobs",        "params_history", "metric_points",
                                                           "rule_events", "rule_latches",   "rules",
                                                           "pipelines"};

/* ---- ids ---------------------------------------------------------------------- */

static void gvd_pgs_on_refill(void *ud, const PGresult *res, const char *err);

static void gvd_pgs_refill(gvd_pgids *p)
{
    gvd_pgstore *st = p->st;
    if (p->refilling || st->unavailable || st->closing || !st->pg)
        return;
    char blk[16];
    snprintf(blk, sizeof blk, "%u", p->block);
    const char *params[] = {p->table, blk};
    p->refilling = true;
    st->nq++;
    if (gvd_pg_query(st->pg, "SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1, $2::int)",
                     2, params, gvd_pgs_on_refill, p) != 0) {
        p->refilling = false;
        st->nq--;
    }
}

static void gvd_pgs_on_refill(void *ud, const PGresult *res, const char *err)
{
    gvd_pgids *p = ud;
    gvd_pgstore *st = p->st;
    st->nq--;
    p->refilling = false;
    gvd_pgs_enter(st);
    if (st->closing)
        goto out;
    size_t k = err ? 0 : (size_t)PQntuples(res);
    if (!err) {
        if (p->head + p->n + k > p->cap) {
            if (p->n && p->head)
                memmove(p->v, p->v + p->head, p->n * sizeof *p->v);
            p->head = 0;
            size_t cap = p->cap;
            if (gvd_pgs_grow((void **)&p->v, &cap, p->n + k, sizeof *p->v, 128) != 0)
                err = "out of memory";
            else
                p->cap = cap;
        }
    }
    if (err) {
        char why[400];
        snprintf(why, sizeof why, "%s", err);
        gvd_pgs_oneline(why);
        if (st->opening) {
            if (!st->open_failed) {
                st->open_failed = true;
                snprintf(st->open_err, sizeof st->open_err, "store open: reserving %s ids: %s", p->table, why);
            }
        } else {
            bool up = st->pg && gvd_pg_up(st->pg);
            gvd_pgs_fail(st, up ? "id reservation failed" : "database connection lost",
                         "store: cannot reserve %s ids: %s", p->table, why);
        }
        goto out;
    }
    /* demand ate most of the queue while the block was on its way: bigger
     * blocks from now on */
    bool low = !st->opening && p->n < p->block / 4;
    for (size_t i = 0; i < k; i++)
        p->v[p->head + p->n++] = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
    if (st->opening)
        st->open_pending--;
    if (low && p->block < GVD_PG_IDS_BLOCK_MAX) {
        p->block *= 2;
        if (p->n < p->block / 2)
            gvd_pgs_refill(p);
    }
out:
    gvd_pgs_leave(st);
}

int gvd_pgs_take_id(gvd_pgstore *st, int which, int64_t *id, const char *op, char *err, size_t errlen)
{
    gvd_pgids *p = &st->ids[which];
    if (p->n == 0) {
        /* a burst outran the reservation: ask for bigger blocks from now on */
        if (p->block < GVD_PG_IDS_BLOCK_MAX)
            p->block *= 4;
        gvd_pgs_refill(p);
        gvd_pgs_errf(err, errlen,
                     "store %s: no reserved %s id left (a burst outran the reservation; more are on their way)", op,
                     p->table);
        return -1;
    }
    *id = p->v[p->head++];
    p->n--;
    if (p->n < p->block / 2)
        gvd_pgs_refill(p);
    return 0;
}

void gvd_pgs_untake_id(gvd_pgstore *st, int which, int64_t id)
{
    gvd_pgids *p = &st->ids[which];
    if (p->head > 0) {
        p->v[--p->head] = id;
        p->n++;
    }
}

/* ---- open and close ----------------------------------------------------------- */

static void gvd_pgs_open_fail(gvd_pgstore *st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void gvd_pgs_open_fail(gvd_pgstore *st, const char *fmt, ...)
{
    if (st->open_failed)
        return;
    st->open_failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->open_err, sizeof st->open_err, fmt, ap);
    va_end(ap);
    gvd_pgs_oneline(st->open_err);
}

static void gvd_pgs_on_state(void *ud, bool up, const char *err)
{
    gvd_pgstore *st = ud;
    gvd_pgs_enter(st);
    if (!up)
        st->down_seen = true;
    if (st->closing) {
        if (!up && st->await_down) { /* the last thing the connection tells us: see close */
            st->await_down = false;
            st->nq--;
        }
    } else if (up)
        st->ever_up = true;
    else if (st->opening)
        gvd_pgs_open_fail(st, st->ever_up ? "store open: connection lost: %s" : "cannot connect to PostgreSQL: %s",
                          err ? err : "connection failed");
    else
        gvd_pgs_fail(st, "database connection lost", "database connection lost: %s", err ? err : "");
    gvd_pgs_leave(st);
}

/* The session settings and every SELECT of open. */
static void gvd_pgs_on_open_step(void *ud, const PGresult *res, const char *err)
{
    (void)res;
    gvd_pgstore *st = ud;
    st->nq--;
    gvd_pgs_enter(st);
    if (!st->closing) {
        st->open_pending--;
        if (err)
            gvd_pgs_open_fail(st, st->ever_up ? "store open: %s" : "cannot connect to PostgreSQL: %s", err);
    }
    gvd_pgs_leave(st);
}

static void gvd_pgs_on_loaded(void *ud, const PGresult *res, const char *err)
{
    gvd_pgstore *st = ud;
    st->nq--;
    gvd_pgs_enter(st);
    if (!st->closing) {
        size_t i = st->loads_answered++;
        st->open_pending--;
        if (err)
            gvd_pgs_open_fail(st, "store open: reading %s: %s", gvd_pg_result_names[i], err);
        else if (!(st->res[i] = PQcopyResult((PGresult *)res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES)))
            gvd_pgs_open_fail(st, "store open: reading %s: out of memory", gvd_pg_result_names[i]);
    }
    gvd_pgs_leave(st);
}

static bool gvd_pgs_open_query(gvd_pgstore *st, const char *sql, gvd_pg_result_fn fn)
{
    st->nq++;
    st->open_pending++;
    if (gvd_pg_query(st->pg, sql, 0, NULL, fn, st) == 0)
        return true;
    st->nq--;
    st->open_pending--;
    gvd_pgs_open_fail(st, "store open: cannot queue a query (out of memory, or the connection is gone)");
    return false;
}

static void gvd_pgs_on_migrated(void *ud, int version, const char *err)
{
    gvd_pgstore *st = ud;
    st->nq--;
    gvd_pgs_enter(st);
    if (st->closing || st->open_failed)
        goto out;
    if (err) {
        gvd_pgs_open_fail(st, st->ever_up ? "schema: %s" : "cannot connect to PostgreSQL: %s", err);
        goto out;
    }
    gvd_log(GVD_LOG_DEBUG, "store.migrated", "store=postgres version=%d", version);
    st->migrated = true;
    for (int i = 0; i < GVD_PGIDS_N; i++) {
        st->open_pending++; /* counted down by the refill's answer */
        gvd_pgs_refill(&st->ids[i]);
        if (!st->ids[i].refilling) {
            st->open_pending--;
            gvd_pgs_open_fail(st, "store open: cannot queue the id reservation");
            goto out;
        }
    }
    const char *const loads[GVD_PGR_N] = {gvd_pg_sql_load_jobs,    gvd_pg_sql_load_params, gvd_pg_sql_load_points,
                                          gvd_pg_sql_load_events,  gvd_pg_sql_load_latches, gvd_pg_sql_load_rules,
                                          gvd_pg_sql_load_pipelines};
    for (int i = 0; i < GVD_PGR_N; i++)
        if (!gvd_pgs_open_query(st, loads[i], gvd_pgs_on_loaded))
            break;
out:
    gvd_pgs_leave(st);
}

static void gvd_pgs_on_deadline(uv_timer_t *t)
{
    gvd_pgstore *st = t->data;
    if (!st->ever_up)
        gvd_pgs_open_fail(st, "cannot connect to PostgreSQL: no answer within %u ms", st->open_timeout_ms);
    else
        gvd_pgs_open_fail(st, "store open: timed out after %u ms (%s)", st->open_timeout_ms,
                          st->migrated ? "reading the tables" : "migrating the schema");
}

static void gvd_pgs_timer_closed(uv_handle_t *h)
{
    free(h);
}

gvd_pgstore *gvd_pgstore_open(uv_loop_t *loop, const char *conninfo, unsigned timeout_ms, char *err,
                              size_t errlen)
{
    if (!loop || !conninfo) {
        gvd_pgs_errf(err, errlen, "store open: no loop or no connection string");
        return NULL;
    }
    gvd_pgstore *st = calloc(1, sizeof *st);
    uv_timer_t *timer = malloc(sizeof *timer);
    if (!st || !timer) {
        free(st);
        free(timer);
        gvd_pgs_errf(err, errlen, "store open: out of memory");
        return NULL;
    }
    st->loop = loop;
    st->cur = &st->batch[0];
    st->fly = &st->batch[1];
    for (int i = 0; i < GVD_PGIDS_N; i++) {
        st->ids[i].table = gvd_pg_id_tables[i];
        st->ids[i].block = GVD_PG_IDS_BLOCK;
        st->ids[i].st = st;
    }
    st->opening = true;
    gvd_pg_events ev = {.state = gvd_pgs_on_state, .notify = NULL};
    st->pg = gvd_pg_new(loop, conninfo, &ev, st, err, errlen);
    if (!st->pg) {
        free(timer);
        gvd_pgs_free(st);
        return NULL;
    }
    uv_timer_init(loop, timer);
    timer->data = st;
    st->open_timeout_ms = timeout_ms;
    uv_timer_start(timer, gvd_pgs_on_deadline, timeout_ms, 0);

    /* UTF-8 whatever the server's default; doubles exact on any version */
    if (gvd_pgs_open_query(st, "SET client_encoding TO 'UTF8'", gvd_pgs_on_open_step) &&
        gvd_pgs_open_query(st, "SET extra_float_digits TO 3", gvd_pgs_on_open_step)) {
        st->nq++;
        if (gvd_pg_migrate(st->pg, gvd_pgs_on_migrated, st) != 0) {
            st->nq--;
            gvd_pgs_open_fail(st, "store open: cannot queue the migration");
        }
    }
    while (!st->open_failed && !(st->migrated && st->open_pending == 0))
        uv_run(loop, UV_RUN_ONCE);
    uv_timer_stop(timer);
    uv_close((uv_handle_t *)timer, gvd_pgs_timer_closed);
    st->opening = false;
    if (!st->open_failed) {
        gvd_log(GVD_LOG_INFO, "store.opened", "store=postgres jobs=%d", PQntuples(st->res[GVD_PGR_JOBS]));
        return st;
    }
    gvd_pgs_errf(err, errlen, "%s", st->open_err);
    gvd_pgstore_close(st);
    /* let the loop finish closing our handles (the timer, the socket's poll) */
    uv_run(loop, UV_RUN_NOWAIT);
    return NULL;
}

static void gvd_pgs_on_last(void *ud, const PGresult *res, const char *err)
{
    (void)res;
    (void)err;
    gvd_pgstore *st = ud;
    st->nq--;
    gvd_pgs_enter(st);
    gvd_pgs_leave(st); /* frees the closing store when nothing else is owed */
}

void gvd_pgstore_close(gvd_pgstore *st)
{
    if (!st || st->closing)
        return;
    st->closing = true;
    gvd_pgs_enter(st);
    gvd_pgwaiter *fly = gvd_pgs_take_waiters(st->fly);
    gvd_pgwaiter *cur = gvd_pgs_take_waiters(st->cur);
    gvd_pgs_call_waiters(fly, false, "store closed");
    gvd_pgs_call_waiters(cur, false, "store closed");
    /* the unsent batch is dropped; the one in flight (if any) is rolled
     * back by the server when the connection closes */
    gvd_pg *pg = st->pg;
    st->pg = NULL;
    if (pg) {
        /* Freed inside one of its own callbacks, the connection finishes
         * its dispatch first and may still report its state to us: a last
         * query, answered "connection closed" when it is really released,
         * keeps the store alive until then (nothing comes after it). */
        st->nq++;
        if (gvd_pg_query(pg, "SELECT 1", 0, NULL, gvd_pgs_on_last, st) != 0) {
            /* down: if it has not told us yet, we are inside its going
             * down (answering its queries), and its state call comes next */
            if (!st->down_seen)
                st->await_down = true;
            else
                st->nq--;
        }
        gvd_pg_free(pg);
    }
    gvd_pgs_leave(st);
}

/* ---- reading the kept answers ------------------------------------------------------ */

const PGresult *gvd_pgs_result(gvd_pgstore *st, int which, const char *op, char *err, size_t errlen)
{
    if (!st || st->closing) {
        gvd_pgs_errf(err, errlen, "store %s: store is not open", op);
        return NULL;
    }
    if (!st->res[which]) {
        gvd_pgs_errf(err, errlen, "store %s: nothing was read at open", op);
        return NULL;
    }
    return st->res[which];
}

const char *gvd_pgv_text(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

const char *gvd_pgv_str(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col);
}

int64_t gvd_pgv_int(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

double gvd_pgv_double(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtod(PQgetvalue(r, row, col), NULL);
}

bool gvd_pgv_bool(const PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

int gvd_pgs_stopped(char *err, size_t errlen, const char *op, int stop)
{
    gvd_pgs_errf(err, errlen, "store %s: stopped by the caller (returned %d)", op, stop);
    return stop;
}
