/*
 * test_pgschema.c — store/pgschema.c against a real PostgreSQL (run through
 * tests/pg/with_pg.py, like test_pgconn): two nodes migrating one fresh
 * database at once end at the same version with one set of tables — the
 * same tables the SQLite store has, so everything the model stores has a
 * place on both; a second run changes nothing; a database newer than the
 * build is refused untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/pg/pgschema.h"
#include "store/store.h"

#define T_DEADLINE_MS 30000

typedef struct ctx {
    uv_loop_t loop;
    uv_timer_t deadline;
    bool timed_out;
    int migrated, version[2];
    char err[2][300];
    char tables[2000];
    int answers;
} ctx;

typedef struct node {
    ctx *c;
    int i;
} node;

static void on_deadline(uv_timer_t *t)
{
    ((ctx *)t->data)->timed_out = true;
}

static void run_until(ctx *c, bool (*pred)(ctx *))
{
    uv_timer_start(&c->deadline, on_deadline, T_DEADLINE_MS, 0);
    while (!pred(c) && !c->timed_out)
        uv_run(&c->loop, UV_RUN_ONCE);
    uv_timer_stop(&c->deadline);
    assert_false(c->timed_out);
}

static void on_migrated(void *ud, int version, const char *err)
{
    node *n = ud;
    n->c->version[n->i] = version;
    snprintf(n->c->err[n->i], sizeof n->c->err[n->i], "%s", err ? err : "");
    n->c->migrated++;
}

static void on_tables(void *ud, const PGresult *res, const char *err)
{
    ctx *c = ud;
    assert_null(err);
    c->tables[0] = '\0';
    for (int r = 0; r < PQntuples(res); r++) {
        strcat(c->tables, PQgetvalue(res, r, 0));
        strcat(c->tables, " ");
    }
    c->answers++;
}

static bool two_migrated(ctx *c) { return c->migrated == 2; }
static bool one_migrated(ctx *c) { return c->migrated >= 1; }
static bool answered(ctx *c) { return c->answers > 0; }

static const char *dsn(void)
{
    const char *d = getenv("GALVANI_TEST_PG");
    if (!d || !*d)
        fail_msg("GALVANI_TEST_PG is not set: run through tests/pg/with_pg.py (CTest does)");
    return d;
}

/* The SQLite store's tables, sorted, space-separated (its own bookkeeping
 * left out). */
static void sqlite_tables(char *out, size_t n)
{
    char dir[] = "/tmp/galvani-pgschema-XXXXXX", path[128], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/g.db", dir);
    gvd_store *st = gvd_store_open(path, err, sizeof err);
    assert_non_null(st);
    gvd_store_close(st);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                                        "'sqlite_%' ORDER BY name",
                                        -1, &s, NULL),
                     SQLITE_OK);
    out[0] = '\0';
    while (sqlite3_step(s) == SQLITE_ROW) {
        strncat(out, (const char *)sqlite3_column_text(s, 0), n - strlen(out) - 2);
        strcat(out, " ");
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_migrations(void **state)
{
    (void)state;
    ctx c;
    memset(&c, 0, sizeof c);
    assert_int_equal(uv_loop_init(&c.loop), 0);
    uv_timer_init(&c.loop, &c.deadline);
    c.deadline.data = &c;
    char err[300];
    gvd_pg *a = gvd_pg_new(&c.loop, dsn(), NULL, NULL, err, sizeof err);
    gvd_pg *b = gvd_pg_new(&c.loop, dsn(), NULL, NULL, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);

    /* two nodes at once on a fresh database */
    node na = {&c, 0}, nb = {&c, 1};
    assert_int_equal(gvd_pg_migrate(a, on_migrated, &na), 0);
    assert_int_equal(gvd_pg_migrate(b, on_migrated, &nb), 0);
    run_until(&c, two_migrated);
    assert_string_equal(c.err[0], "");
    assert_string_equal(c.err[1], "");
    assert_int_equal(c.version[0], gvd_pg_schema_version());
    assert_int_equal(c.version[1], gvd_pg_schema_version());

    /* one set of tables: the SQLite store's, the version table, and the
     * nodes (several nodes on one database: PostgreSQL's alone) */
    assert_int_equal(gvd_pg_query(a,
                                  "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                                  "AND table_name NOT IN ('galvani_schema', 'nodes') ORDER BY table_name",
                                  0, NULL, on_tables, &c),
                     0);
    run_until(&c, answered);
    char lite[2000];
    sqlite_tables(lite, sizeof lite);
    assert_string_equal(c.tables, lite);

    /* again: nothing to do */
    c.migrated = 0;
    assert_int_equal(gvd_pg_migrate(a, on_migrated, &na), 0);
    run_until(&c, one_migrated);
    assert_string_equal(c.err[0], "");

    /* a database from a newer galvanid: refused, untouched */
    char newer[16];
    snprintf(newer, sizeof newer, "%d", gvd_pg_schema_version() + 1);
    const char *params[] = {newer};
    assert_int_equal(gvd_pg_query(a, "UPDATE galvani_schema SET version = $1::int", 1, params, NULL, NULL), 0);
    c.migrated = 0;
    assert_int_equal(gvd_pg_migrate(a, on_migrated, &na), 0);
    run_until(&c, one_migrated);
    assert_non_null(strstr(c.err[0], "newer than this galvanid knows"));
    assert_int_equal(c.version[0], gvd_pg_schema_version() + 1);

    gvd_pg_free(a);
    gvd_pg_free(b);
    uv_close((uv_handle_t *)&c.deadline, NULL);
    while (uv_run(&c.loop, UV_RUN_NOWAIT))
        ;
    assert_int_equal(uv_loop_close(&c.loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_migrations)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
