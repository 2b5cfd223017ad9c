/*
 * test_pgconn.c — store/pgconn.c against a real PostgreSQL (tests/pg/with_pg.py
 * starts one and passes its DSN in GALVANI_TEST_PG; CTest runs it so).
 *
 * Pipelining is real: a thousand INSERTs are queued before the loop runs
 * once, and their answers come back in order; a failing query fails alone;
 * LISTEN on one connection hears NOTIFY from another; a refused connection
 * answers its queued query and reports the state; parameters round-trip
 * (NULL, quotes, UTF-8).  Every wait is the loop's, bounded by a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/pg/pgconn.h"

#define T_DEADLINE_MS 30000

static const char *dsn(void)
{
    const char *d = getenv("GALVANI_TEST_PG");
    if (!d || !*d)
        fail_msg("GALVANI_TEST_PG is not set: run through tests/pg/with_pg.py (CTest does)");
    return d;
}

typedef struct ctx {
    uv_loop_t loop;
    uv_timer_t deadline;
    bool timed_out;
    int up, down;
    char down_err[300];
    int answers, errors, in_order;
    int next_expected;
    char last_err[300];
    char notified[200];
    char value[200];
    bool value_null;
} ctx;

static void on_deadline(uv_timer_t *t)
{
    ctx *c = t->data;
    c->timed_out = true;
    uv_stop(&c->loop);
}

static void setup_ctx(ctx *c)
{
    memset(c, 0, sizeof *c);
    assert_int_equal(uv_loop_init(&c->loop), 0);
    uv_timer_init(&c->loop, &c->deadline);
    c->deadline.data = c;
}

/* Run the loop until pred(c) holds (or fail at the deadline). */
static void run_until(ctx *c, bool (*pred)(ctx *))
{
    uv_timer_start(&c->deadline, on_deadline, T_DEADLINE_MS, 0);
    while (!pred(c) && !c->timed_out)
        uv_run(&c->loop, UV_RUN_ONCE);
    uv_timer_stop(&c->deadline);
    assert_false(c->timed_out);
}

static void teardown_ctx(ctx *c)
{
    uv_close((uv_handle_t *)&c->deadline, NULL);
    while (uv_run(&c->loop, UV_RUN_NOWAIT))
        ;
    assert_int_equal(uv_loop_close(&c->loop), 0);
}

static void on_state(void *ud, bool up, const char *err)
{
    ctx *c = ud;
    if (up) {
        c->up++;
    } else {
        c->down++;
        snprintf(c->down_err, sizeof c->down_err, "%s", err ? err : "");
    }
}

static void on_notify(void *ud, const char *channel, const char *payload)
{
    ctx *c = ud;
    snprintf(c->notified, sizeof c->notified, "%s:%s", channel, payload);
}

static const gvd_pg_events events = {on_state, on_notify};

static void on_answer(void *ud, const PGresult *res, const char *err)
{
    ctx *c = ud;
    c->answers++;
    if (err) {
        c->errors++;
        snprintf(c->last_err, sizeof c->last_err, "%s", err);
    } else {
        assert_non_null(res);
    }
}

static bool is_up(ctx *c) { return c->up > 0 || c->down > 0; }

/* ---- the answers of a pipeline come back in order ---------------------- */

typedef struct numbered {
    ctx *c;
    int n;
} numbered;

static void on_numbered(void *ud, const PGresult *res, const char *err)
{
    numbered *q = ud;
    assert_null(err);
    assert_non_null(res);
    if (q->n == q->c->next_expected)
        q->c->in_order++;
    q->c->next_expected++;
    q->c->answers++;
}

static void on_count(void *ud, const PGresult *res, const char *err)
{
    ctx *c = ud;
    assert_null(err);
    snprintf(c->value, sizeof c->value, "%s", PQgetvalue(res, 0, 0));
    c->answers++;
}

static bool all_1002(ctx *c) { return c->answers == 1002; }

static void test_pipelined_queries_answer_in_order(void **state)
{
    (void)state;
    ctx c;
    setup_ctx(&c);
    char err[300];
    gvd_pg *pg = gvd_pg_new(&c.loop, dsn(), &events, &c, err, sizeof err);
    assert_non_null(pg);
    /* queued while connecting, all before the loop runs */
    assert_int_equal(gvd_pg_query(pg, "CREATE TABLE t_order (n int PRIMARY KEY, s text)", 0, NULL, on_answer, &c), 0);
    static numbered qs[1000];
    for (int i = 0; i < 1000; i++) {
        char n[16];
        snprintf(n, sizeof n, "%d", i);
        const char *params[] = {n, "x"};
        qs[i] = (numbered){&c, i};
        assert_int_equal(gvd_pg_query(pg, "INSERT INTO t_order VALUES ($1::int, $2)", 2, params, on_numbered, &qs[i]), 0);
    }
    assert_int_equal(gvd_pg_query(pg, "SELECT count(*) FROM t_order", 0, NULL, on_count, &c), 0);
    assert_int_equal(gvd_pg_pending(pg), 1002);
    run_until(&c, all_1002);
    assert_int_equal(c.errors, 0);
    assert_int_equal(c.in_order, 1000);
    assert_string_equal(c.value, "1000");
    assert_int_equal(c.up, 1);
    assert_int_equal(gvd_pg_pending(pg), 0);
    gvd_pg_free(pg);
    teardown_ctx(&c);
}

/* ---- one failing query fails alone --------------------------------------- */

static bool three(ctx *c) { return c->answers == 3; }

static void test_a_failure_fails_only_its_query(void **state)
{
    (void)state;
    ctx c;
    setup_ctx(&c);
    char err[300];
    gvd_pg *pg = gvd_pg_new(&c.loop, dsn(), &events, &c, err, sizeof err);
    assert_non_null(pg);
    run_until(&c, is_up);
    assert_int_equal(gvd_pg_query(pg, "SELECT 1", 0, NULL, on_answer, &c), 0);
    assert_int_equal(gvd_pg_query(pg, "SELEKT oops", 0, NULL, on_answer, &c), 0);
    assert_int_equal(gvd_pg_query(pg, "SELECT 2", 0, NULL, on_answer, &c), 0);
    run_until(&c, three);
    assert_int_equal(c.errors, 1);
    assert_non_null(strstr(c.last_err, "syntax error"));
    assert_true(gvd_pg_up(pg));
    gvd_pg_free(pg);
    teardown_ctx(&c);
}

/* ---- LISTEN / NOTIFY across two connections -------------------------------- */

/* Two connections on one loop (a's): la reports to a, nb to b. */
static void open_two(ctx *a, ctx *b, gvd_pg **la, gvd_pg **nb)
{
    setup_ctx(a);
    memset(b, 0, sizeof *b); /* b shares a's loop */
    char err[300];
    *la = gvd_pg_new(&a->loop, dsn(), &events, a, err, sizeof err);
    *nb = gvd_pg_new(&a->loop, dsn(), &events, b, err, sizeof err);
    assert_non_null(*la);
    assert_non_null(*nb);
}

static bool notified(ctx *c) { return c->notified[0] != '\0'; }
static bool one(ctx *c) { return c->answers >= 1; }

static void test_listen_hears_notify(void **state)
{
    (void)state;
    ctx a, b;
    gvd_pg *la, *nb;
    open_two(&a, &b, &la, &nb);
    assert_int_equal(gvd_pg_query(la, "LISTEN galvani_test", 0, NULL, on_answer, &a), 0);
    run_until(&a, one);
    const char *params[] = {"galvani_test", "job 7 changed"};
    assert_int_equal(gvd_pg_query(nb, "SELECT pg_notify($1, $2)", 2, params, NULL, NULL), 0);
    run_until(&a, notified);
    assert_string_equal(a.notified, "galvani_test:job 7 changed");
    gvd_pg_free(la);
    gvd_pg_free(nb);
    teardown_ctx(&a);
}

/* A NOTIFY committed while this connection's pipelined queries run reaches
 * it along with their answers (the read handler hands notifications on
 * both before and after it reads answers: one parsed while an answer is
 * read must not wait for the next bytes, which on a quiet connection come
 * seconds later; bench/run-cluster.sh measured that stall, 1 in 25-65
 * cross-node answers at ~5 s, and its end with this code, 0 in 400). */
static bool three_and_notified(ctx *c) { return c->answers >= 3 && notified(c); }

static void test_notify_with_an_answer_is_not_held_back(void **state)
{
    (void)state;
    ctx a, b;
    gvd_pg *la, *nb;
    open_two(&a, &b, &la, &nb);
    assert_int_equal(gvd_pg_query(la, "LISTEN galvani_race", 0, NULL, on_answer, &a), 0);
    assert_int_equal(gvd_pg_query(nb, "SELECT 1", 0, NULL, on_answer, &b), 0);
    run_until(&a, one);
    while (b.answers < 1)
        uv_run(&a.loop, UV_RUN_ONCE);
    assert_int_equal(gvd_pg_query(la, "SELECT pg_sleep(0.5)", 0, NULL, on_answer, &a), 0);
    assert_int_equal(gvd_pg_query(la, "SELECT 1", 0, NULL, on_answer, &a), 0);
    const char *params[] = {"galvani_race", "between the answers"};
    assert_int_equal(gvd_pg_query(nb, "SELECT pg_notify($1, $2)", 2, params, NULL, NULL), 0);
    run_until(&a, three_and_notified);
    assert_string_equal(a.notified, "galvani_race:between the answers");
    gvd_pg_free(la);
    gvd_pg_free(nb);
    teardown_ctx(&a);
}

/* ---- a refused connection ------------------------------------------------- */

static bool went_down(ctx *c) { return c->down > 0 && c->answers > 0; }

static void test_refused_connection_answers_and_reports(void **state)
{
    (void)state;
    ctx c;
    setup_ctx(&c);
    /* a port nothing listens on: bind one, note it, close it */
    uv_tcp_t probe;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(&c.loop, &probe);
    assert_int_equal(uv_tcp_bind(&probe, (const struct sockaddr *)&addr, 0), 0);
    int len = sizeof addr;
    uv_tcp_getsockname(&probe, (struct sockaddr *)&addr, &len);
    uv_close((uv_handle_t *)&probe, NULL);
    uv_run(&c.loop, UV_RUN_NOWAIT);
    char info[200], err[300];
    snprintf(info, sizeof info, "postgresql://galvani@127.0.0.1:%d/postgres?connect_timeout=10", ntohs(addr.sin_port));
    gvd_pg *pg = gvd_pg_new(&c.loop, info, &events, &c, err, sizeof err);
    assert_non_null(pg); /* refused later, on the loop */
    assert_int_equal(gvd_pg_query(pg, "SELECT 1", 0, NULL, on_answer, &c), 0);
    run_until(&c, went_down);
    assert_int_equal(c.up, 0);
    assert_int_equal(c.errors, 1);
    assert_non_null(strstr(c.down_err, "refused"));
    assert_int_equal(gvd_pg_query(pg, "SELECT 1", 0, NULL, on_answer, &c), -1); /* down: refused at once */
    gvd_pg_free(pg);
    /* a malformed conninfo cannot even start */
    assert_null(gvd_pg_new(&c.loop, "postgresql://[bad", &events, &c, err, sizeof err));
    assert_non_null(strstr(err, "cannot connect to PostgreSQL"));
    teardown_ctx(&c);
}

/* ---- parameters round-trip ------------------------------------------------ */

static void on_echo(void *ud, const PGresult *res, const char *err)
{
    ctx *c = ud;
    assert_null(err);
    c->value_null = PQgetisnull(res, 0, 1);
    snprintf(c->value, sizeof c->value, "%s", PQgetvalue(res, 0, 0));
    c->answers++;
}

static void test_parameters_round_trip(void **state)
{
    (void)state;
    ctx c;
    setup_ctx(&c);
    char err[300];
    gvd_pg *pg = gvd_pg_new(&c.loop, dsn(), &events, &c, err, sizeof err);
    assert_non_null(pg);
    const char *params[] = {"it's \"quoted\"; DROP TABLE x; -- ünïcödé", NULL};
    assert_int_equal(gvd_pg_query(pg, "SELECT $1::text, $2::text", 2, params, on_echo, &c), 0);
    run_until(&c, one);
    assert_string_equal(c.value, params[0]);
    assert_true(c.value_null);
    gvd_pg_free(pg);
    teardown_ctx(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipelined_queries_answer_in_order),
        cmocka_unit_test(test_a_failure_fails_only_its_query),
        cmocka_unit_test(test_listen_hears_notify),
        cmocka_unit_test(test_notify_with_an_answer_is_not_held_back),
        cmocka_unit_test(test_refused_connection_answers_and_reports),
        cmocka_unit_test(test_parameters_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
