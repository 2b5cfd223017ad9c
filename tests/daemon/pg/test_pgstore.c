/*
 * test_pgstore.c — store/pg/pgstore.c (the PostgreSQL back end) against a
 * real PostgreSQL (run through tests/pg/with_pg.py, like test_pgconn).
 *
 * Each test creates its own database, so they are independent.  What they
 * show: open migrates an empty database; every write round-trips through
 * close + reopen + load, in SQLite's orders and with its NULLs; the batch's
 * waiters are called after COMMIT's answer and not before, at once when
 * nothing is unsynced, and a write made while a batch is in flight waits for
 * the next one; rollback drops only what came after begin, and begins do
 * not nest; repeated updates of a job in one batch are written once; ids
 * stay unique across refills (a burst shows the refill); rule_delete
 * forgets the rule's latches and a deleted job takes its history along; a
 * failed batch, and a connection killed by the server, make the store
 * unavailable: waiters learn it, `lost` is called once, later writes are
 * refused; closing from inside a waiter or `lost` is safe; an unreachable
 * server fails open in time; store.h's front reaches all this through a
 * postgres:// URL.
 * Every wait is the loop's, bounded by a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/pg/pgconn.h"
#include "store/pg/pgschema.h"
#include "store/pg/pgstore.h"
#include "store/store.h"

#define T_DEADLINE_MS 30000
#define T_OPEN_MS 20000

/* ---- the harness ------------------------------------------------------------- */

typedef struct ctx {
    uv_loop_t loop;
    uv_timer_t deadline;
    bool timed_out;
    gvd_pg *admin;      /* to the test's database: checks from outside the store */
    char dsn[512];      /* the test's database */
    PGresult *res;      /* the last admin answer (owned) */
    char qerr[512];
    int answered;
    /* hooks and waiters */
    int dirty, lost;
    char lost_err[512];
} ctx;

static void on_deadline(uv_timer_t *t)
{
    ((ctx *)t->data)->timed_out = true;
}

static void run_until(ctx *c, bool (*pred)(void *), void *arg)
{
    uv_timer_start(&c->deadline, on_deadline, T_DEADLINE_MS, 0);
    while (!pred(arg) && !c->timed_out)
        uv_run(&c->loop, UV_RUN_ONCE);
    uv_timer_stop(&c->deadline);
    assert_false(c->timed_out);
}

static const char *base_dsn(void)
{
    const char *d = getenv("GALVANI_TEST_PG");
    if (!d || !*d)
        fail_msg("GALVANI_TEST_PG is not set: run through tests/pg/with_pg.py (CTest does)");
    return d;
}

static void on_answer(void *ud, const PGresult *res, const char *err)
{
    ctx *c = ud;
    if (c->res)
        PQclear(c->res);
    c->res = NULL;
    snprintf(c->qerr, sizeof c->qerr, "%s", err ? err : "");
    if (!err)
        c->res = PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
    c->answered++;
}

static bool got_answer(void *arg)
{
    return ((ctx *)arg)->answered > 0;
}

/* Run sql on pg and wait for its answer (c->res, or c->qerr). */
static void query_on(ctx *c, gvd_pg *pg, const char *sql)
{
    c->answered = 0;
    assert_int_equal(gvd_pg_query(pg, sql, 0, NULL, on_answer, c), 0);
    run_until(c, got_answer, c);
}

/* The one value of a query on the test's database, as text. */
static const char *value(ctx *c, const char *sql)
{
    query_on(c, c->admin, sql);
    if (c->qerr[0])
        fail_msg("%s: %s", sql, c->qerr);
    assert_int_equal(PQntuples(c->res), 1);
    return PQgetvalue(c->res, 0, 0);
}

/* A fresh database `name` and an admin connection to it. */
static void setup(ctx *c, const char *name)
{
    memset(c, 0, sizeof *c);
    assert_int_equal(uv_loop_init(&c->loop), 0);
    uv_timer_init(&c->loop, &c->deadline);
    c->deadline.data = c;
    char err[300], sql[200];
    gvd_pg *root = gvd_pg_new(&c->loop, base_dsn(), NULL, NULL, err, sizeof err);
    assert_non_null(root);
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", name);
    query_on(c, root, sql);
    assert_string_equal(c->qerr, "");
    snprintf(sql, sizeof sql, "CREATE DATABASE %s ENCODING 'UTF8' TEMPLATE template0", name);
    query_on(c, root, sql);
    assert_string_equal(c->qerr, "");
    gvd_pg_free(root);
    /* the same server, the new database: the DSN's path is the database */
    const char *b = base_dsn();
    const char *slash = strrchr(b, '/');
    assert_non_null(slash);
    snprintf(c->dsn, sizeof c->dsn, "%.*s/%s", (int)(slash - b), b, name);
    c->admin = gvd_pg_new(&c->loop, c->dsn, NULL, NULL, err, sizeof err);
    assert_non_null(c->admin);
}

static void teardown(ctx *c)
{
    gvd_pg_free(c->admin);
    if (c->res)
        PQclear(c->res);
    uv_close((uv_handle_t *)&c->deadline, NULL);
    while (uv_run(&c->loop, UV_RUN_NOWAIT))
        ;
    assert_int_equal(uv_loop_close(&c->loop), 0);
}

static void on_dirty(void *ud)
{
    ((ctx *)ud)->dirty++;
}

static void on_lost(void *ud, const char *err)
{
    ctx *c = ud;
    c->lost++;
    snprintf(c->lost_err, sizeof c->lost_err, "%s", err);
}

static gvd_pgstore *open_store(ctx *c)
{
    char err[512];
    gvd_pgstore *st = gvd_pgstore_open(&c->loop, c->dsn, T_OPEN_MS, err, sizeof err);
    if (!st)
        fail_msg("open: %s", err);
    gvd_pgstore_set_hooks(st, on_dirty, on_lost, c);
    return st;
}

static void close_store(ctx *c, gvd_pgstore *st)
{
    gvd_pgstore_close(st);
    uv_run(&c->loop, UV_RUN_NOWAIT); /* the connection's handle closes */
}

/* A waiter: called how many times, with what. */
typedef struct waiter {
    int called;
    bool ok;
    char err[512];
    int order;          /* the global call order, from 1 */
} waiter;

static int g_order;

static void on_synced(void *ud, bool ok, const char *err)
{
    waiter *w = ud;
    w->called++;
    w->ok = ok;
    w->order = ++g_order;
    snprintf(w->err, sizeof w->err, "%s", err ? err : "(null)");
}

static bool waiter_called(void *arg)
{
    return ((waiter *)arg)->called > 0;
}

/* Flush and wait until every write so far is answered; returns ok. */
static bool flush_and_wait(ctx *c, gvd_pgstore *st)
{
    waiter w = {0};
    assert_int_equal(gvd_pgstore_sync(st, on_synced, &w), 0);
    gvd_pgstore_flush(st);
    run_until(c, waiter_called, &w);
    assert_int_equal(w.called, 1);
    return w.ok;
}

static gvd_job_row job(const char *name, const char *status)
{
    gvd_job_row r;
    memset(&r, 0, sizeof r);
    r.name = name;
    r.kind = "process";
    r.status = status;
    r.spec_json = "{\"command\":[\"true\"]}";
    r.created_at = 1700000000.25;
    r.updated_at = 1700000000.25;
    return r;
}

static int64_t insert(gvd_pgstore *st, const char *name)
{
    gvd_job_row r = job(name, "queued");
    int64_t id = 0;
    char err[512];
    if (gvd_pgstore_insert(st, &r, &id, err, sizeof err) != 0)
        fail_msg("insert: %s", err);
    return id;
}

/* ---- loading into arrays -------------------------------------------------------- */

#define T_MAX_ROWS 2000

typedef struct jobs_seen {
    int n;
    int64_t id[T_MAX_ROWS];
    char name[T_MAX_ROWS][64];
    bool name_null[T_MAX_ROWS];
    gvd_job_row first, second; /* copies of rows 0 and 1 with strings strdup'ed */
    char *strs[2][6];
} jobs_seen;

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int on_job(void *ud, const gvd_job_row *row)
{
    jobs_seen *s = ud;
    assert_true(s->n < T_MAX_ROWS);
    s->id[s->n] = row->id;
    s->name_null[s->n] = row->name == NULL;
    snprintf(s->name[s->n], sizeof s->name[s->n], "%s", row->name ? row->name : "");
    if (s->n < 2) {
        gvd_job_row *k = s->n == 0 ? &s->first : &s->second;
        *k = *row;
        char **strs = s->strs[s->n];
        k->name = strs[0] = dup_or_null(row->name);
        k->spec_json = strs[1] = dup_or_null(row->spec_json);
        k->params_json = strs[2] = dup_or_null(row->params_json);
        k->metrics_json = strs[3] = dup_or_null(row->metrics_json);
        k->message = strs[4] = dup_or_null(row->message);
        k->error = strs[5] = dup_or_null(row->error);
        k->kind = strcmp(row->kind, "demo") == 0 ? "demo" : "process";
        k->status = strcmp(row->status, "succeeded") == 0 ? "succeeded"
                    : strcmp(row->status, "queued") == 0  ? "queued"
                                                          : "other";
    }
    s->n++;
    return 0;
}

static void jobs_seen_free(jobs_seen *s)
{
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 6; j++)
            free(s->strs[i][j]);
}

/* ---- the tests ------------------------------------------------------------------ */

static int count_rows(void *ud, const gvd_job_row *row)
{
    (void)row;
    (*(int *)ud)++;
    return 0;
}

static void test_open_migrates(void **state)
{
    (void)state;
    ctx c;
    setup(&c, "t_open");
    gvd_pgstore *st = open_store(&c);
    char v[16];
    snprintf(v, sizeof v, "%d", gvd_pg_schema_version());
    assert_string_equal(value(&c, "SELECT max(version) FROM galvani_schema"), v);
    assert_string_equal(value(&c, "SELECT count(*) FROM jobs"), "0");
    int n = 0;
    char err[300];
    assert_int_equal(gvd_pgstore_load(st, count_rows, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    assert_string_equal(gvd_pgstore_integrity(st), "ok");
    gvd_store_health h;
    gvd_pgstore_health_get(st, &h);
    assert_int_equal(h.fault, GVD_STORE_OK);
    assert_false(gvd_pgstore_unsynced(st));
    /* nothing unsynced: the waiter is called at once, ok */
    waiter w = {0};
    assert_int_equal(gvd_pgstore_sync(st, on_synced, &w), 0);
    assert_int_equal(w.called, 1);
    assert_true(w.ok);
    /* an empty flush is a no-op */
    gvd_pgstore_flush(st);
    assert_false(gvd_pgstore_unsynced(st));
    close_store(&c, st);
    /* a second open finds the schema done */
    st = open_store(&c);
    close_store(&c, st);
    teardown(&c);
}

/* The same through store.h: the front dispatches postgres:// URLs here. */
static void test_front(void **state)
{
    (void)state;
    ctx c;
    setup(&c, "t_front");
    char err[512];
    gvd_store *s = gvd_store_open_url(&c.loop, c.dsn, err, sizeof err);
    if (!s)
        fail_msg("open_url: %s", err);
    assert_string_equal(gvd_store_kind(s), "postgres");
    gvd_store_set_hooks(s, on_dirty, on_lost, &c);
    gvd_job_row r = job("front", "queued");
    int64_t id;
    assert_int_equal(gvd_store_insert(s, &r, &id, err, sizeof err), 0);
    assert_int_equal(c.dirty, 1);
    assert_true(gvd_store_unsynced(s));
    waiter w = {0};
    assert_int_equal(gvd_store_sync(s, on_synced, &w), 0);
    gvd_store_flush(s);
    run_until(&c, waiter_called, &w);
    assert_true(w.ok);
    assert_true(gvd_store_available(s));
    assert_string_equal(gvd_store_integrity(s), "ok");
    gvd_store_close(s);
    uv_run(&c.loop, UV_RUN_NOWAIT);
    s = gvd_store_open_url(&c.loop, c.dsn, err, sizeof err);
    assert_non_null(s);
    int n = 0;
    assert_int_equal(gvd_store_load(s, count_rows, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    gvd_store_close(s);
    uv_run(&c.loop, UV_RUN_NOWAIT);
    teardown(&c);
}

static void test_rows_round_trip(void **state)
{
    (void)state;
    ctx c;
    setup(&c, "t_rows");
    gvd_pgstore *st = open_store(&c);
    char err[512];

    /* a: every column set, UTF-8, a big spec */
    size_t big = 300 * 1024;
    char *spec = malloc(big + 32);
    assert_non_null(spec);
    strcpy(spec, "{\"blob\":\"");
    size_t at = strlen(spec);
    for (size_t i = 0; i < big; i++)
        spec[at + i] = (char)('a' + i % 26);
    strcpy(spec + at + big, "\"}");
    gvd_job_row a = job("entraînement ✓ 模型 'quoted' \"double\" \\ back", "running");
    a.kind = "demo";
    a.priority = -7;
    a.spec_json = spec;
    a.params_json = "{\"lr\":0.001}";
    a.metrics_json = "{\"loss\":0.31}";
    a.progress = 54.5;
    a.progress_total = 200;
    a.message = "compiling ünïcode";
    a.error = "";
    a.pid = 4242;
    a.pid_start_ticks = UINT64_MAX - 5; /* above INT64_MAX: stored bit for bit */
    a.exit_status = 3;
    a.term_signal = 9;
    a.has_exit = true;
    a.attempts = 2;
    a.created_at = 1700000000.123456789;
    a.started_at = 1700000001.5;
    a.finished_at = 1700000002.75;
    a.updated_at = 1700000003.1;
    int64_t ida = 0, idb = 0, idc = 0;
    c.dirty = 0;
    assert_int_equal(gvd_pgstore_insert(st, &a, &ida, err, sizeof err), 0);
    assert_int_equal(c.dirty, 1); /* the first write into an empty batch */
    assert_true(ida > 0);

    /* b: NULL strings, zero times, a NaN (NULL, as SQLite stores it) */
    gvd_job_row b;
    memset(&b, 0, sizeof b);
    b.kind = "process";
    b.status = "queued";
    b.progress = 0.0 / 0.0;
    assert_int_equal(gvd_pgstore_insert(st, &b, &idb, err, sizeof err), 0);
    assert_int_equal(c.dirty, 1); /* not empty any more: no second call */
    assert_true(idb > ida);
    idc = insert(st, "gone");
    assert_true(gvd_pgstore_unsynced(st));
    assert_true(flush_and_wait(&c, st));
    assert_false(gvd_pgstore_unsynced(st));

    /* bad arguments are refused at once, nothing queued */
    gvd_job_row bad = job("x", "sleeping");
    int64_t idx;
    assert_int_equal(gvd_pgstore_insert(st, &bad, &idx, err, sizeof err), -1);
    assert_non_null(strstr(err, "bad status"));
    assert_false(gvd_pgstore_unsynced(st));

    /* the update with no spec keeps the stored one; c is deleted */
    a.spec_json = NULL;
    a.id = ida;
    a.status = "succeeded";
    assert_int_equal(gvd_pgstore_update(st, &a, err, sizeof err), 0);
    assert_int_equal(gvd_pgstore_delete(st, idc, err, sizeof err), 0);
    assert_true(flush_and_wait(&c, st));
    close_store(&c, st);

    st = open_store(&c);
    for (int round = 0; round < 2; round++) { /* a second load gives the same rows */
        jobs_seen *s = calloc(1, sizeof *s);
        assert_non_null(s);
        assert_int_equal(gvd_pgstore_load(st, on_job, s, err, sizeof err), 0);
        assert_int_equal(s->n, 2);
        gvd_job_row *ra = &s->first, *rb = &s->second;
        assert_int_equal(ra->id, ida);
        assert_string_equal(ra->name, "entraînement ✓ 模型 'quoted' \"double\" \\ back");
        assert_string_equal(ra->kind, "demo");
        assert_string_equal(ra->status, "succeeded");
        assert_int_equal(ra->priority, -7);
        assert_non_null(ra->spec_json);
        assert_int_equal(strlen(ra->spec_json), strlen(spec));
        assert_string_equal(ra->spec_json, spec);
        assert_string_equal(ra->params_json, "{\"lr\":0.001}");
        assert_string_equal(ra->metrics_json, "{\"loss\":0.31}");
        assert_true(ra->progress == 54.5);
        assert_true(ra->progress_total == 200);
        assert_string_equal(ra->message, "compiling ünïcode");
        assert_string_equal(ra->error, "");
        assert_int_equal(ra->pid, 4242);
        assert_true(ra->pid_start_ticks == UINT64_MAX - 5);
        assert_int_equal(ra->exit_status, 3);
        assert_int_equal(ra->term_signal, 9);
        assert_true(ra->has_exit);
        assert_int_equal(ra->attempts, 2);
        assert_true(ra->created_at == 1700000000.123456789);
        assert_true(ra->started_at == 1700000001.5);
        assert_true(ra->finished_at == 1700000002.75);
        assert_true(ra->updated_at == 1700000003.1);

        assert_int_equal(rb->id, idb);
        assert_null(rb->name);
        assert_null(rb->spec_json);
        assert_null(rb->params_json);
        assert_null(rb->metrics_json);
        assert_null(rb->message);
        assert_null(rb->error);
        assert_true(rb->progress == 0); /* NaN went in as NULL, comes back 0 */
        assert_true(rb->created_at == 0);
        assert_false(rb->has_exit);
        jobs_seen_free(s);
        free(s);
    }
    free(spec);
    close_store(&c, st);
    teardown(&c);
}

static void test_sync_semantics(void **state)
{
    (void)state;
    ctx c;
    setup(&c, "t_sync");
    gvd_pgstore *st = open_store(&c);
    g_order = 0;

    int64_t id1 = insert(st, "one");
    waiter w1 = {0}, w2 = {0}, w3 = {0};
    assert_int_equal(gvd_pgstore_sync(st, on_synced, &w1), 0);
    assert_int_equal(w1.called, 0);
    /* not sent until flush: the loop runs, nothing happens */
    uv_run(&c.loop, UV_RUN_NOWAIT);
    assert_int_equal(w1.called, 0);
    gvd_pgstore_flush(st);
    assert_int_equal(w1.called, 0); /* sent, not answered */
    assert_true(gvd_pgstore_unsynced(st));

    /* a write while the batch is in flight goes to the next batch */
    c.dirty = 0;
    int64_t id2 = insert(st, "two");
    assert_int_equal(c.dirty, 1);
    assert_int_equal(gvd_pgstore_sync(st, on_synced, &w2), 0);
    gvd_pgstore_flush(st); /* remembered: sent when the first is answered */

    run_until(&c, waiter_called, &w1);
    assert_true(w1.ok);
    assert_string_equal(w1.err, "");
    assert_int_equal(w2.called, 0); /* its batch was only now sent */
    /* the first batch is committed: visible from another connection */
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT name FROM jobs WHERE id = %lld", (long long)id1);
    assert_string_equal(value(&c, sql), "one");

    /* a waiter with nothing buffered belongs to the batch in flight */
    if (w2.called == 0) {
        assert_int_equal(gvd_pgstore_sync(st, on_synced, &w3), 0);
        run_until(&c, waiter_called, &w2);
        run_until(&c, waiter_called, &w3);
        assert_true(w3.ok);
        assert_true(w3.order > w2.order);
    }
    assert_true(w2.ok);
    assert_true(w2.order > w1.order);
    snprintf(sql, sizeof sql, "SELECT name FROM jobs WHERE id = %lld", (long long)id2);
    assert_string_equal(value(&c, sql), "two");
    assert_false(gvd_pgstore_unsynced(st));

    /* close answers the waiters of the unsent batch: "store closed" */
    insert(st, "three");
    waiter w4 = {0};
    assert_int_equal(gvd_pgstore_sync(st, on_synced, &w4), 0);
    close_store(&c, st);
    assert_int_equal(w4.called, 1);
    assert_false(w4.ok);
    assert_string_equal(w4.err, "store closed");
    assert_int_equal(c.lost, 0); /* closing is not losing */
    assert_string_equal(value(&c, "SELECT count(*) FROM jobs"), "2");
    teardown(&c);
}

static void test_rollback_and_nesting(void **state)
{
    (void)state;
    ctx c;
    setup(&c, "t_rollback");
    gvd_pgstore *st = open_store(&c);
    char err[512];

    int64_t keep = insert(st, "kept");
    assert_int_equal(gvd_pgstore_begin(st, err, sizeof err), 0);
    assert_int_equal(gvd_pgstore_begin(st, err, sizeof err), -1);
    assert_non_null(strstr(err, "batches do not nest"));
    int64_t inside = insert(st, "inside");
    assert_int_equal(gvd_pgstore_commit(st, err, sizeof err), 0);
    assert_int_equal(gvd_pgstore_commit(st, err, sizeof err), -1); /* none open */

    assert_int_equal(gvd_pgstore_begin(st, err, sizeof err), 0);
    int64_t dropped = insert(st, "dropped");
    gvd_job_row u = job("renamed", "running");
    u.id = keep;
    assert_int_equal(gvd_pgstore_update(st, &u, err, sizeof err), 0);
    /* a flush inside the caller's transaction waits for its end */
    gvd_pgstore_flush(st);
    gvd_pgstore_rollback(st);
    gvd_pgstore_rollback(st); /* no-op without one */

    /* a rollback that empties the batch: its waiters have nothing to wait for */
    assert_true(flush_and_wait(&c, st));
    assert_int_equal(gvd_pgstore_begin(st, err, sizeof err), 0);
    insert(st, "also dropped");
    waiter w = {0};
    assert_int_equal(gvd_pgstore_sync(st, on_synced, &w), 0);
    gvd_pgstore_rollback(st);
    assert_int_equal(w.called, 1);
    assert_true(w.ok);
    assert_false(gvd_pgstore_unsynced(st));

    char sql[200];
    snprintf(sql, sizeof sql, "SELECT name || '/' || status FROM jobs WHERE id = %lld", (long long)keep);
    assert_string_equal(value(&c, sql), "kept/queued");
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE id = %lld", (long long)inside);
    assert_string_equal(value(&c, sql), "1");
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE id = %lld", (long long)dropped);
    assert_string_equal(value(&c, sql), "0");
    assert_string_equal(value(&c, "SELECT count(*) FROM jobs"), "2");
    close_store(&c, st);
    teardown(&c);
}

/* Several updates of one job in a batch: only the last is sent (the row
 * shows one new version), unless a rollback could separate them or the
 * earlier one carries a spec. */
static void test_coalesced_updates(void **state)
{
    (void)state;
    ctx c;
    setup(&c, "t_coalesce");
    gvd_pgstore *st = open_store(&c);
    char err[512], sql[200];
    int64_t x = insert(st, "x"), y = insert(st, "y");
    assert_true(flush_and_wait(&c, st));

    gvd_job_row r = job("x", "running");
    r.id = x;
    r.spec_json = NULL;
    for (int i = 1; i <= 5; i++) {
        r.progress = i;
        assert_int_equal(gvd_pgstore_update(st, &r, err, sizeof err), 0);
        gvd_job_row o = job("y", "running"); /* interleaved with another job's */
        o.id = y;
        o.spec_json = NULL;
        o.progress = 10 * i;
        assert_int_equal(gvd_pgstore_update(st, &o, err, sizeof err), 0);
    }
    assert_true(flush_and_wait(&c, st));
    snprintf(sql, sizeof sql, "SELECT progress || ' ' || ctid::text FROM jobs WHERE id = %lld", (long long)x);
    assert_string_equal(value(&c, sql), "5 (0,3)"); /* x at (0,1), y at (0,2): one new version each */
    snprintf(sql, sizeof sql, "SELECT progress FROM jobs WHERE id = %lld", (long long)y);
    assert_string_equal(value(&c, sql), "50");

    /* before and after a mark: the rollback drops only the later one */
    r.progress = 6;
    assert_int_equal(gvd_pgstore_update(st, &r, err, sizeof err), 0);
    assert_int_equal(gvd_pgstore_begin(st, err, sizeof err), 0);
    r.progress = 7;
    assert_int_equal(gvd_pgstore_update(st, &r, err, sizeof err), 0);
    gvd_pgstore_rollback(st);
    assert_true(flush_and_wait(&c, st));
    snprintf(sql, sizeof sql, "SELECT progress FROM jobs WHERE id = %lld", (long long)x);
    assert_string_equal(value(&c, sql), "6");

    /* an earlier update with a spec is kept: the later one keeps that spec */
    r.spec_json = "{\"new\":true}";
    r.progress = 8;
    assert_int_equal(gvd_pgstore_update(st, &r, err, sizeof err), 0);
    r.spec_json = NULL;
    r.progress = 9;
    assert_int_equal(gvd_pgstore_update(st, &r, err, sizeof err), 0);
    /* and a delete after updates: gone */
    gvd_job_row o = job("y", "failed");
    o.id = y;
    o.spec_json = NULL;
    assert_int_equal(gvd_pgstore_update(st, &o, err, sizeof err), 0);
    assert_int_equal(gvd_pgstore_delete(st, y, err, sizeof err), 0);
    assert_true(flush_and_wait(&c, st));
    snprintf(sql, sizeof sql, "SELECT progress || ' ' || spec_json FROM jobs WHERE id = %lld", (long long)x);
    assert_string_equal(value(&c, sql), "9 {\"new\":true}");
    assert_string_equal(value(&c, "SELECT count(*) FROM jobs"), "1");
    close_store(&c, st);
    teardown(&c);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* One insert, as a predicate of run_until: refused until a refill lands. */
typedef struct try_ins {
    gvd_pgstore *st;
    int64_t id;
    int refused;
} try_ins;

static bool try_insert(void *arg)
{
    try_ins *t = arg;
    gvd_job_row r = job("many", "queued");
    char err[512];
    if (gvd_pgstore_insert(t->st, &r, &t->id, err, sizeof err) == 0)
        return true;
    if (!strstr(err, "no reserved jobs id left"))
        fail_msg("insert: %s", err);
    t->refused++;
    return false;
}

static void test_many_ids(void **state)
{
    (void)state;
    ctx c;
    setup(&c, "t_ids");
    gvd_pgstore *st = open_store(&c);
    char err[512];
    static int64_t ids[T_MAX_ROWS];
    int n = 0;

    /* a burst with no loop turn: the block reserved at open (64), then a
     * clear refusal; the refill asked for half-way has not been answered */
    gvd_job_row r = job("burst", "queued");
    for (;;) {
        int64_t id;
        if (gvd_pgstore_insert(st, &r, &id, err, sizeof err) != 0)
            break;
        ids[n++] = id;
        assert_true(n < 200);
    }
    assert_int_equal(n, 64);
    assert_non_null(strstr(err, "no reserved jobs id left"));
    /* the refill was sent before the batch: answered before its COMMIT */
    assert_true(flush_and_wait(&c, st));
    int64_t id;
    assert_int_equal(gvd_pgstore_insert(st, &r, &id, err, sizeof err), 0);
    ids[n++] = id;

    /* 1000 more in one batch, letting refills land between inserts */
    try_ins t = {.st = st};
    for (int i = 0; i < 1000; i++) {
        uv_run(&c.loop, UV_RUN_NOWAIT);
        run_until(&c, try_insert, &t);
        ids[n++] = t.id;
    }
    assert_true(gvd_pgstore_unsynced(st)); /* all 1000 in the one batch, not sent yet */
    assert_true(flush_and_wait(&c, st));
    assert_int_equal(n, 1065);
    qsort(ids, (size_t)n, sizeof ids[0], cmp_i64);
    for (int i = 1; i < n; i++)
        assert_true(ids[i] != ids[i - 1]);
    assert_string_equal(value(&c, "SELECT count(*) FROM jobs"), "1065");
    assert_string_equal(value(&c, "SELECT count(DISTINCT id) FROM jobs"), "1065");
    /* ids after the store's reach the sequence too: a plain INSERT never collides */
    query_on(&c, c.admin, "INSERT INTO jobs (kind, status) VALUES ('process', 'queued')");
    assert_string_equal(c.qerr, "");
    close_store(&c, st);
    teardown(&c);
}

/* ---- history, rules, pipelines ---------------------------------------------------- */

typedef struct seen {
    char text[8192];
} seen;

static void add(seen *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = strlen(s->text);
    vsnprintf(s->text + n, sizeof s->text - n, fmt, ap);
    va_end(ap);
}

static int on_params(void *ud, const gvd_params_row *r)
{
    add(ud, "p%lld.%lld:%s:%s:%g:%g ", (long long)r->job_id, (long long)r->revision, r->patch_json, r->who, r->at,
        r->applied_at);
    return 0;
}

static int on_point(void *ud, const gvd_point_row *r)
{
    add(ud, "m%lld.%s.%lld:%g:%g:%lld ", (long long)r->job_id, r->name, (long long)r->idx, r->t_ms, r->value,
        (long long)r->weight);
    return 0;
}

static int on_event(void *ud, const gvd_event_row *r)
{
    add(ud, "e%lld:%s:%s:%s:%s:%s:%g ", (long long)r->job_id, r->rule, r->when, r->action, r->values_json,
        r->outcome, r->at);
    return 0;
}

static int on_latch(void *ud, int64_t job_id, const char *rule, bool latched)
{
    add(ud, "l%lld:%s:%d ", (long long)job_id, rule, latched);
    return 0;
}

static int on_rule(void *ud, int64_t id, const char *def, double at)
{
    (void)id;
    add(ud, "r:%s:%g ", def, at);
    return 0;
}

static int on_pipeline(void *ud, const gvd_pipeline_row *r)
{
    (void)r->id;
    add(ud, "pl:%s:%s:%s:%g ", r->name, r->def_json, r->state_json, r->created_at);
    return 0;
}

static int stop_at_first(void *ud, const gvd_params_row *r)
{
    (void)ud;
    (void)r;
    return 7;
}

static void test_history_round_trip(void **state)
{
    (void)state;
    ctx c;
    setup(&c, "t_history");
    gvd_pgstore *st = open_store(&c);
    char err[512];
    /* job ids 1 and 2 in a fresh database: the messages below name them */
    int64_t j1 = insert(st, "one"), j2 = insert(st, "two");
    assert_int_equal(j1, 1);
    assert_int_equal(j2, 2);

    /* params: three revisions, one applied later, the oldest pruned */
    for (int rev = 1; rev <= 3; rev++) {
        char patch[40];
        snprintf(patch, sizeof patch, "{\"lr\":%d}", rev);
        gvd_params_row p = {.job_id = j1, .revision = rev, .patch_json = patch, .who = "token", .at = 10 + rev,
                            .applied_at = rev == 2 ? 20 : 0};
        assert_int_equal(gvd_pgstore_params_insert(st, &p, err, sizeof err), 0);
    }
    gvd_params_row p2 = {.job_id = j2, .revision = 1, .patch_json = NULL, .who = NULL, .at = 5};
    assert_int_equal(gvd_pgstore_params_insert(st, &p2, err, sizeof err), 0);
    assert_int_equal(gvd_pgstore_params_applied(st, j1, 3, 30, err, sizeof err), 0);
    assert_int_equal(gvd_pgstore_params_prune(st, j1, 1, err, sizeof err), 0);
    gvd_params_row bad = {.job_id = j1, .revision = 0, .at = 1};
    assert_int_equal(gvd_pgstore_params_insert(st, &bad, err, sizeof err), -1);

    /* points: two series (given out of order), a replaced point, a trim */
    for (int i = 0; i < 4; i++) {
        gvd_point_row pt = {.job_id = j1, .name = "loss", .idx = i, .t_ms = 1000 * i, .value = 1.0 / (i + 1),
                            .weight = 1};
        assert_int_equal(gvd_pgstore_point_put(st, &pt, err, sizeof err), 0);
    }
    gvd_point_row acc = {.job_id = j1, .name = "acc", .idx = 0, .t_ms = 5, .value = 0.5, .weight = 1};
    assert_int_equal(gvd_pgstore_point_put(st, &acc, err, sizeof err), 0);
    gvd_point_row again = {.job_id = j1, .name = "loss", .idx = 1, .t_ms = 1500, .value = 0.4, .weight = 3};
    assert_int_equal(gvd_pgstore_point_put(st, &again, err, sizeof err), 0);
    assert_int_equal(gvd_pgstore_points_trim(st, j1, "loss", 3, err, sizeof err), 0);
    gvd_point_row p2pt = {.job_id = j2, .name = "x", .idx = 0, .t_ms = 1, .value = 2, .weight = 1};
    assert_int_equal(gvd_pgstore_point_put(st, &p2pt, err, sizeof err), 0);

    /* events: three on j1, the oldest pruned; one on j2 */
    int64_t ev[3];
    for (int i = 0; i < 3; i++) {
        char outcome[20];
        snprintf(outcome, sizeof outcome, "paused %d", i);
        gvd_event_row e = {.job_id = j1, .rule = "r1", .when = "metrics.loss < 0.5", .action = "pause",
                           .values_json = "{\"metrics.loss\":0.4}", .outcome = outcome, .at = 100 + i};
        assert_int_equal(gvd_pgstore_event_insert(st, &e, &ev[i], err, sizeof err), 0);
        assert_true(i == 0 || ev[i] > ev[i - 1]);
    }
    assert_int_equal(gvd_pgstore_event_prune(st, j1, ev[0], err, sizeof err), 0);
    gvd_event_row e2 = {.job_id = j2, .at = 7}; /* NULL strings: defaults */
    int64_t ev2;
    assert_int_equal(gvd_pgstore_event_insert(st, &e2, &ev2, err, sizeof err), 0);

    /* latches: put, put again (replaced); rule "global-1"'s go with it */
    assert_int_equal(gvd_pgstore_latch_put(st, j1, "r1", true, err, sizeof err), 0);
    assert_int_equal(gvd_pgstore_latch_put(st, j1, "r1", false, err, sizeof err), 0);
    assert_int_equal(gvd_pgstore_latch_put(st, j1, "global-1", true, err, sizeof err), 0);
    assert_int_equal(gvd_pgstore_latch_put(st, j1, "global-2", true, err, sizeof err), 0);
    assert_int_equal(gvd_pgstore_latch_put(st, j2, "r9", true, err, sizeof err), 0);

    /* global rules */
    int64_t g1, g2;
    assert_int_equal(gvd_pgstore_rule_insert(st, "{\"name\":\"global-1\"}", 50, &g1, err, sizeof err), 0);
    assert_int_equal(gvd_pgstore_rule_insert(st, "{\"name\":\"global-2\"}", 51, &g2, err, sizeof err), 0);
    assert_true(g2 > g1);
    assert_int_equal(gvd_pgstore_rule_delete(st, g1, "global-1", err, sizeof err), 0);

    /* pipelines: two, one updated, a third deleted */
    int64_t pa, pb, pc;
    gvd_pipeline_row pl = {.name = "build", .def_json = "{\"steps\":[]}", .state_json = "{\"s\":0}", .created_at = 60};
    assert_int_equal(gvd_pgstore_pipeline_insert(st, &pl, &pa, err, sizeof err), 0);
    gvd_pipeline_row pl2 = {.created_at = 61}; /* NULL strings: defaults */
    assert_int_equal(gvd_pgstore_pipeline_insert(st, &pl2, &pb, err, sizeof err), 0);
    assert_int_equal(gvd_pgstore_pipeline_insert(st, &pl, &pc, err, sizeof err), 0);
    assert_int_equal(gvd_pgstore_pipeline_update(st, pa, "{\"s\":2}", err, sizeof err), 0);
    assert_int_equal(gvd_pgstore_pipeline_delete(st, pc, err, sizeof err), 0);
    assert_true(flush_and_wait(&c, st));
    close_store(&c, st);

    st = open_store(&c);
    seen s = {{0}};
    assert_int_equal(gvd_pgstore_params_load(st, on_params, &s, err, sizeof err), 0);
    assert_string_equal(s.text, "p1.2:{\"lr\":2}:token:12:20 p1.3:{\"lr\":3}:token:13:30 p2.1:{}::5:0 ");
    assert_int_equal(gvd_pgstore_params_load(st, stop_at_first, NULL, err, sizeof err), 7);
    assert_non_null(strstr(err, "stopped by the caller"));
    memset(&s, 0, sizeof s);
    assert_int_equal(gvd_pgstore_points_load(st, on_point, &s, err, sizeof err), 0);
    assert_string_equal(s.text, "m1.acc.0:5:0.5:1 m1.loss.0:0:1:1 m1.loss.1:1500:0.4:3 m1.loss.2:2000:0.333333:1 "
                                "m2.x.0:1:2:1 ");
    memset(&s, 0, sizeof s);
    assert_int_equal(gvd_pgstore_events_load(st, on_event, &s, err, sizeof err), 0);
    assert_string_equal(s.text, "e1:r1:metrics.loss < 0.5:pause:{\"metrics.loss\":0.4}:paused 1:101 "
                                "e1:r1:metrics.loss < 0.5:pause:{\"metrics.loss\":0.4}:paused 2:102 "
                                "e2::::{}::7 ");
    memset(&s, 0, sizeof s);
    assert_int_equal(gvd_pgstore_latches_load(st, on_latch, &s, err, sizeof err), 0);
    assert_string_equal(s.text, "l1:global-2:1 l1:r1:0 l2:r9:1 ");
    memset(&s, 0, sizeof s);
    assert_int_equal(gvd_pgstore_rules_load(st, on_rule, &s, err, sizeof err), 0);
    assert_string_equal(s.text, "r:{\"name\":\"global-2\"}:51 ");
    memset(&s, 0, sizeof s);
    assert_int_equal(gvd_pgstore_pipelines_load(st, on_pipeline, &s, err, sizeof err), 0);
    assert_string_equal(s.text, "pl:build:{\"steps\":[]}:{\"s\":2}:60 pl::{}:{}:61 ");
    (void)pb;

    /* deleting a job takes its history along (ON DELETE CASCADE) */
    assert_int_equal(gvd_pgstore_delete(st, j1, err, sizeof err), 0);
    assert_true(flush_and_wait(&c, st));
    assert_string_equal(value(&c, "SELECT (SELECT count(*) FROM params_history WHERE job_id = 1) + "
                                  "(SELECT count(*) FROM metric_points WHERE job_id = 1) + "
                                  "(SELECT count(*) FROM rule_events WHERE job_id = 1) + "
                                  "(SELECT count(*) FROM rule_latches WHERE job_id = 1)"),
                        "0");
    assert_string_equal(value(&c, "SELECT (SELECT count(*) FROM params_history) + "
                                  "(SELECT count(*) FROM metric_points) + (SELECT count(*) FROM rule_events) + "
                                  "(SELECT count(*) FROM rule_latches)"),
                        "4");
    close_store(&c, st);
    teardown(&c);
}

/* ---- failures ---------------------------------------------------------------------- */

static bool lost_called(void *arg)
{
    return ((ctx *)arg)->lost > 0;
}

static void test_failed_batch(void **state)
{
    (void)state;
    ctx c;
    setup(&c, "t_failed");
    gvd_pgstore *st = open_store(&c);
    char err[512];
    int64_t id = insert(st, "before");
    assert_true(flush_and_wait(&c, st));

    /* one batch: a good update, a params row of a job that does not exist
     * (foreign key), another good write */
    gvd_job_row u = job("changed", "running");
    u.id = id;
    assert_int_equal(gvd_pgstore_update(st, &u, err, sizeof err), 0);
    gvd_params_row p = {.job_id = 999999, .revision = 1, .patch_json = "{}", .who = "token", .at = 1};
    assert_int_equal(gvd_pgstore_params_insert(st, &p, err, sizeof err), 0);
    insert(st, "after");
    waiter w = {0};
    assert_int_equal(gvd_pgstore_sync(st, on_synced, &w), 0);
    gvd_pgstore_flush(st);
    /* and a write for the next batch, waiting behind it */
    insert(st, "next");
    waiter w2 = {0};
    assert_int_equal(gvd_pgstore_sync(st, on_synced, &w2), 0);
    gvd_pgstore_flush(st);
    run_until(&c, waiter_called, &w);
    assert_false(w.ok);
    assert_non_null(strstr(w.err, "params insert"));
    assert_non_null(strstr(w.err, "foreign key"));
    assert_int_equal(w2.called, 1);
    assert_false(w2.ok);
    assert_int_equal(c.lost, 1);
    assert_string_equal(c.lost_err, w.err);

    gvd_store_health h;
    gvd_pgstore_health_get(st, &h);
    assert_int_equal(h.fault, GVD_STORE_IO_ERROR);
    assert_string_equal(h.cause, "transaction failed");
    assert_string_equal(h.error, w.err);
    assert_true(h.since > 0);
    assert_string_not_equal(gvd_pgstore_integrity(st), "ok");

    /* later writes are refused with the reason; sync says so at once */
    int64_t nid;
    gvd_job_row r = job("refused", "queued");
    assert_int_equal(gvd_pgstore_insert(st, &r, &nid, err, sizeof err), -1);
    assert_non_null(strstr(err, "unavailable"));
    assert_non_null(strstr(err, "foreign key"));
    assert_int_equal(gvd_pgstore_begin(st, err, sizeof err), -1);
    assert_false(gvd_pgstore_unsynced(st));
    waiter w3 = {0};
    assert_int_equal(gvd_pgstore_sync(st, on_synced, &w3), 0);
    assert_int_equal(w3.called, 1);
    assert_false(w3.ok);

    /* nothing of the batch is stored, and the store's connection is not
     * left in a transaction */
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT name FROM jobs WHERE id = %lld", (long long)id);
    assert_string_equal(value(&c, sql), "before");
    assert_string_equal(value(&c, "SELECT count(*) FROM jobs"), "1");
    assert_string_equal(value(&c, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                  "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"),
                        "0");
    assert_int_equal(c.lost, 1); /* once */
    close_store(&c, st);
    assert_int_equal(c.lost, 1);
    teardown(&c);
}

static void test_connection_killed(void **state)
{
    (void)state;
    ctx c;
    setup(&c, "t_killed");
    gvd_pgstore *st = open_store(&c);
    insert(st, "kept");
    assert_true(flush_and_wait(&c, st));
    /* a write buffered when the connection dies: its waiter learns it */
    insert(st, "buffered");
    waiter w = {0};
    assert_int_equal(gvd_pgstore_sync(st, on_synced, &w), 0);
    assert_string_equal(value(&c, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                                  "datname = current_database() AND pid <> pg_backend_pid()"),
                        "1");
    run_until(&c, lost_called, &c);
    assert_int_equal(c.lost, 1);
    assert_int_equal(w.called, 1);
    assert_false(w.ok);
    gvd_store_health h;
    gvd_pgstore_health_get(st, &h);
    assert_int_equal(h.fault, GVD_STORE_IO_ERROR);
    assert_string_equal(h.cause, "database connection lost");
    assert_non_null(strstr(h.error, "database connection lost"));
    char err[512];
    assert_int_equal(gvd_pgstore_delete(st, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "unavailable"));
    gvd_pgstore_flush(st); /* nothing to send, nothing happens */
    assert_int_equal(c.lost, 1);
    close_store(&c, st);
    teardown(&c);
}

/* Closing the store from inside its own callbacks (a waiter, the lost
 * hook) is safe: it is freed once the stack unwinds and the connection
 * has answered everything (ASan checks). */
typedef struct closer {
    gvd_pgstore *st;
    int called;
    bool ok;
} closer;

static void close_in_waiter(void *ud, bool ok, const char *err)
{
    (void)err;
    closer *k = ud;
    k->called++;
    k->ok = ok;
    gvd_pgstore_close(k->st);
}

static void close_in_lost(void *ud, const char *err)
{
    (void)err;
    closer *k = ud;
    k->called++;
    gvd_pgstore_close(k->st);
}

static bool closer_called(void *arg)
{
    return ((closer *)arg)->called > 0;
}

static void test_close_inside_callbacks(void **state)
{
    (void)state;
    ctx c;
    setup(&c, "t_close_cb");
    gvd_pgstore *st = open_store(&c);
    insert(st, "x");
    closer k = {.st = st};
    assert_int_equal(gvd_pgstore_sync(st, close_in_waiter, &k), 0);
    gvd_pgstore_flush(st);
    run_until(&c, closer_called, &k);
    assert_true(k.ok);
    assert_string_equal(value(&c, "SELECT count(*) FROM jobs"), "1"); /* the loop turns on */

    st = open_store(&c);
    closer l = {.st = st};
    gvd_pgstore_set_hooks(st, NULL, close_in_lost, &l);
    insert(st, "y");
    gvd_pgstore_flush(st); /* in flight when the connection is killed, or answered before */
    assert_string_equal(value(&c, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                                  "datname = current_database() AND pid <> pg_backend_pid()"),
                        "1");
    run_until(&c, closer_called, &l);
    assert_int_equal(l.called, 1);
    value(&c, "SELECT 1");
    teardown(&c);
}

static void test_unreachable(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char err[512];
    /* refused at once */
    gvd_pgstore *st = gvd_pgstore_open(&loop, "postgresql://galvani@127.0.0.1:1/nowhere?connect_timeout=5", 10000,
                                       err, sizeof err);
    assert_null(st);
    assert_non_null(strstr(err, "cannot connect to PostgreSQL"));

    /* a server that accepts and never answers: the timeout ends it */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char dsn[200];
    snprintf(dsn, sizeof dsn, "postgresql://galvani@127.0.0.1:%d/silent", ntohs(a.sin_port));
    st = gvd_pgstore_open(&loop, dsn, 300, err, sizeof err);
    assert_null(st);
    assert_non_null(strstr(err, "no answer within 300 ms"));
    close(fd);
    while (uv_run(&loop, UV_RUN_NOWAIT))
        ;
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_migrates),      cmocka_unit_test(test_rows_round_trip),
        cmocka_unit_test(test_sync_semantics),     cmocka_unit_test(test_rollback_and_nesting),
        cmocka_unit_test(test_coalesced_updates),
        cmocka_unit_test(test_many_ids),           cmocka_unit_test(test_history_round_trip),
        cmocka_unit_test(test_failed_batch),       cmocka_unit_test(test_connection_killed),
        cmocka_unit_test(test_unreachable),         cmocka_unit_test(test_front),
        cmocka_unit_test(test_close_inside_callbacks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
