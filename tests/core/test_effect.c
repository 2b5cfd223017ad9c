/*
 * test_effect.c — gv_effect: run counts, dependencies, cleanups and their
 * order, and writes made by effects (to other effects' sources, to their own,
 * batched after the run).  Disposal, nesting and scopes: test_owner.c.
 *
 * Effect functions never call cmocka asserts (a failed assert would longjmp
 * through library frames); they record into their user data and the tests
 * assert afterwards.
 */
#include "gv_test.h"


typedef struct swatch {
    gv_signal *s;
    int runs;
    int64_t last;
} swatch;

static void swatch_fn(void *ud)
{
    swatch *w = ud;
    w->runs++;
    w->last = gv_signal_get_int(w->s);
}

/* ------------------------------------------------------------------------ */

static void test_runs_now_and_after_each_change(void **state)
{
    (void)state;
    uint64_t runs0 = gv_test_effect_runs();
    gv_signal *s = gv_signal_new(gv_int(1));
    swatch w = {.s = s};
    gv_effect *e = gv_effect_new(swatch_fn, &w);
    assert_non_null(e);
    assert_int_equal(w.runs, 1);
    assert_int_equal(w.last, 1);
    for (int i = 2; i <= 50; i++) {
        assert_true(gv_signal_set_int(s, i));
        assert_int_equal(w.runs, i);
        assert_int_equal(w.last, i);
    }
    assert_int_equal(gv_test_effect_runs() - runs0, 50);
    gv_stats st;
    gv_test_stats(&st);
    assert_int_equal(st.effects, 1);
    assert_int_equal(st.links, 1);
    assert_true(st.bytes_effect > 0);
    assert_true(st.bytes_link > 0);
    gv_effect_free(e);
    assert_int_equal(gv_signal_subscriber_count(s), 0);
    assert_true(gv_signal_set_int(s, 0));
    assert_int_equal(w.runs, 50);
    gv_signal_free(s);
}

typedef struct multi {
    gv_signal *a, *b;
    int runs;
} multi;

static void multi_fn(void *ud)
{
    multi *m = ud;
    m->runs++;
    /* Reading the same signal several times is still one dependency. */
    (void)gv_signal_get_int(m->a);
    (void)gv_signal_get_int(m->a);
    (void)gv_signal_get(m->b);
    (void)gv_signal_get_int(m->a);
}

static void test_dependency_count(void **state)
{
    (void)state;
    multi m = {0};
    m.a = gv_signal_new(gv_int(0));
    m.b = gv_signal_new(gv_int(0));
    gv_effect *e = gv_effect_new(multi_fn, &m);
    assert_int_equal(gv_effect_dependency_count(e), 2);
    assert_int_equal(gv_signal_subscriber_count(m.a), 1);
    assert_true(gv_signal_set_int(m.a, 1));
    assert_int_equal(m.runs, 2);
    assert_int_equal(gv_effect_dependency_count(e), 2);
    gv_effect_free(e);
    gv_signal_free(m.a);
    gv_signal_free(m.b);
}

/* Reads a, then a computed that itself reads a, then a again: still two
 * dependencies (a and the computed), one link each. */
typedef struct interleave {
    gv_signal *a;
    gv_computed *c;
    int runs, cruns;
} interleave;

static void interleave_compute(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    interleave *x = ud;
    x->cruns++;
    *out = gv_int(2 * gv_signal_get_int(x->a));
}

static void interleave_fn(void *ud)
{
    interleave *x = ud;
    x->runs++;
    (void)gv_signal_get_int(x->a);
    (void)gv_computed_get_int(x->c);
    (void)gv_signal_get_int(x->a);
}

static void test_dependency_counted_once_across_interleaved_reads(void **state)
{
    (void)state;
    interleave x = {0};
    x.a = gv_signal_new(gv_int(1));
    x.c = gv_computed_new(interleave_compute, &x);
    gv_effect *e = gv_effect_new(interleave_fn, &x);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(gv_effect_dependency_count(e), 2);
        assert_int_equal(gv_signal_subscriber_count(x.a), 2); /* e and c */
        assert_int_equal(gv_computed_subscriber_count(x.c), 1);
        gv_stats st;
        gv_test_stats(&st);
        assert_int_equal(st.links, 3);
        assert_true(gv_signal_set_int(x.a, 2 + i));
        assert_int_equal(x.runs, 2 + i);
        assert_int_equal(x.cruns, 2 + i);
    }
    gv_effect_free(e);
    gv_computed_free(x.c);
    gv_signal_free(x.a);
}

/* ------------------------------------------------------------------------ */
/* Cleanups and their order                                                  */
/* ------------------------------------------------------------------------ */

typedef struct child {
    mark m; /* logged by the child's cleanup */
    int runs;
} child;

static void child_fn(void *ud)
{
    child *c = ud;
    c->runs++;
    (void)gv_on_cleanup(mark_cleanup, &c->m);
}

/* Parent: creates children "1" and "2", then registers cleanups "a", "b". */
typedef struct parent {
    gv_signal *s;
    charlog log;
    child c1, c2;
    mark ma, mb;
    int runs;
    int cleanup_refused; /* gv_on_cleanup returned false inside the run */
} parent;

static void parent_fn(void *ud)
{
    parent *p = ud;
    p->runs++;
    (void)gv_signal_get_int(p->s);
    if (!gv_effect_new(child_fn, &p->c1) || !gv_effect_new(child_fn, &p->c2))
        p->cleanup_refused++;
    if (!gv_on_cleanup(mark_cleanup, &p->ma))
        p->cleanup_refused++;
    if (!gv_on_cleanup(mark_cleanup, &p->mb))
        p->cleanup_refused++;
}

static void test_cleanup_order(void **state)
{
    (void)state;
    parent p = {0};
    p.s = gv_signal_new(gv_int(0));
    p.c1.m = (mark){&p.log, '1'};
    p.c2.m = (mark){&p.log, '2'};
    p.ma = (mark){&p.log, 'a'};
    p.mb = (mark){&p.log, 'b'};

    gv_effect *e = gv_effect_new(parent_fn, &p);
    assert_int_equal(p.cleanup_refused, 0);
    assert_string_equal(p.log.buf, "");
    gv_stats st;
    gv_test_stats(&st);
    assert_int_equal(st.effects, 3);

    /* Before the re-run: owned effects newest first, then cleanups newest first. */
    assert_true(gv_signal_set_int(p.s, 1));
    assert_string_equal(p.log.buf, "21ba");
    assert_int_equal(p.runs, 2);
    assert_int_equal(p.c1.runs, 2);
    assert_int_equal(p.c2.runs, 2);
    gv_test_stats(&st);
    assert_int_equal(st.effects, 3);

    charlog_clear(&p.log);
    gv_effect_free(e);
    assert_string_equal(p.log.buf, "21ba");
    assert_int_equal(p.runs, 2);
    gv_signal_free(p.s);
}

static void test_on_cleanup_outside_effect(void **state)
{
    (void)state;
    int n = 0;
    assert_false(gv_on_cleanup(count_cleanup, &n));
    assert_int_equal(n, 0);
}

/* ------------------------------------------------------------------------ */
/* Writes from effects                                                       */
/* ------------------------------------------------------------------------ */

/* Writes dst = 2 * src whenever src changes. */
typedef struct doubler {
    gv_signal *src, *dst;
    int runs;
} doubler;

static void doubler_fn(void *ud)
{
    doubler *d = ud;
    d->runs++;
    (void)gv_signal_set_int(d->dst, 2 * gv_signal_get_int(d->src));
}

static void run_writer_reader(bool reader_first)
{
    gv_signal *s = gv_signal_new(gv_int(0));
    gv_signal *t = gv_signal_new(gv_int(0));
    doubler a = {.src = s, .dst = t};
    swatch b = {.s = t};
    gv_effect *ea = NULL, *eb = NULL;
    if (reader_first) {
        eb = gv_effect_new(swatch_fn, &b);
        ea = gv_effect_new(doubler_fn, &a);
    } else {
        ea = gv_effect_new(doubler_fn, &a);
        eb = gv_effect_new(swatch_fn, &b);
    }
    assert_int_equal(a.runs, 1);
    assert_int_equal(b.runs, 1);

    for (int i = 1; i <= 5; i++) {
        assert_true(gv_signal_set_int(s, i));
        /* B has already run with the value A wrote, before set returned. */
        assert_int_equal(a.runs, 1 + i);
        assert_int_equal(b.runs, 1 + i);
        assert_int_equal(b.last, 2 * i);
    }
    gv_effect_free(ea);
    gv_effect_free(eb);
    gv_signal_free(s);
    gv_signal_free(t);
}

static void test_effect_writes_signal_read_by_other_effect(void **state)
{
    (void)state;
    run_writer_reader(true);
    run_writer_reader(false);
}

static void test_effect_write_chain(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(0));
    gv_signal *t = gv_signal_new(gv_int(0));
    gv_signal *u = gv_signal_new(gv_int(0));
    doubler a = {.src = s, .dst = t}, b = {.src = t, .dst = u};
    swatch c = {.s = u};
    gv_effect *ec = gv_effect_new(swatch_fn, &c);
    gv_effect *eb = gv_effect_new(doubler_fn, &b);
    gv_effect *ea = gv_effect_new(doubler_fn, &a);
    assert_true(gv_signal_set_int(s, 3));
    assert_int_equal(c.last, 12);
    assert_int_equal(a.runs, 2);
    assert_int_equal(b.runs, 2);
    assert_int_equal(c.runs, 2);
    gv_effect_free(ea);
    gv_effect_free(eb);
    gv_effect_free(ec);
    gv_signal_free(s);
    gv_signal_free(t);
    gv_signal_free(u);
}

/* Increments its own dependency until it reaches `bound`. */
typedef struct climber {
    gv_signal *n;
    int64_t bound;
    int runs;
} climber;

static void climber_fn(void *ud)
{
    climber *c = ud;
    c->runs++;
    int64_t v = gv_signal_get_int(c->n);
    if (v < c->bound)
        (void)gv_signal_set_int(c->n, v + 1);
}

static void test_effect_writes_own_dependency_converges(void **state)
{
    (void)state;
    gv_signal *n = gv_signal_new(gv_int(10));
    climber c = {.n = n, .bound = 10};
    gv_effect *e = gv_effect_new(climber_fn, &c);
    assert_int_equal(c.runs, 1);

    /* One external write; the effect re-runs for 0,1,...,10. */
    assert_true(gv_signal_set_int(n, 0));
    assert_int_equal(gv_signal_get_int(n), 10);
    assert_int_equal(c.runs, 12);
    gv_effect_free(e);

    /* The same from the creating run: settled when gv_effect_new returns. */
    assert_true(gv_signal_set_int(n, 0));
    climber c2 = {.n = n, .bound = 10};
    e = gv_effect_new(climber_fn, &c2);
    assert_int_equal(gv_signal_get_int(n), 10);
    assert_int_equal(c2.runs, 11);
    gv_effect_free(e);
    gv_signal_free(n);
}

/* An effect's writes are applied as one batch after its run: a reader of both
 * written signals runs once per writer run and never sees them torn. */
typedef struct twowriter {
    gv_signal *trigger, *x, *y;
    int runs;
} twowriter;

static void twowriter_fn(void *ud)
{
    twowriter *t = ud;
    t->runs++;
    int64_t v = gv_signal_get_int(t->trigger);
    (void)gv_signal_set_int(t->x, v);
    (void)gv_signal_set_int(t->y, v);
}

typedef struct pairwatch {
    gv_signal *x, *y;
    int runs, torn;
} pairwatch;

static void pairwatch_fn(void *ud)
{
    pairwatch *p = ud;
    p->runs++;
    if (gv_signal_get_int(p->x) != gv_signal_get_int(p->y))
        p->torn++;
}

static void test_effect_writes_flush_after_its_run(void **state)
{
    (void)state;
    twowriter t = {0};
    t.trigger = gv_signal_new(gv_int(1));
    t.x = gv_signal_new(gv_int(0));
    t.y = gv_signal_new(gv_int(0));
    pairwatch p = {.x = t.x, .y = t.y};
    gv_effect *ep = gv_effect_new(pairwatch_fn, &p);
    gv_effect *et = gv_effect_new(twowriter_fn, &t); /* first run writes 1, 1 */
    assert_int_equal(p.runs, 2);
    for (int i = 2; i <= 4; i++) {
        assert_true(gv_signal_set_int(t.trigger, i));
        assert_int_equal(t.runs, i);
        assert_int_equal(p.runs, 1 + i);
    }
    assert_int_equal(p.torn, 0);
    gv_effect_free(et);
    gv_effect_free(ep);
    gv_signal_free(t.trigger);
    gv_signal_free(t.x);
    gv_signal_free(t.y);
}

static void test_effect_names(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(0));
    swatch w = {.s = s};
    gv_effect *e = gv_effect_new(swatch_fn, &w);
    assert_string_equal(gv_effect_name(e), "");
    char name[] = "logger";
    gv_effect_set_name(e, name);
    name[0] = 'X';
    assert_string_equal(gv_effect_name(e), "logger");
    gv_effect_free(e);
    gv_signal_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GV_TEST(test_runs_now_and_after_each_change),
        GV_TEST(test_dependency_count),
        GV_TEST(test_dependency_counted_once_across_interleaved_reads),
        GV_TEST(test_cleanup_order),
        GV_TEST(test_on_cleanup_outside_effect),
        GV_TEST(test_effect_writes_signal_read_by_other_effect),
        GV_TEST(test_effect_write_chain),
        GV_TEST(test_effect_writes_own_dependency_converges),
        GV_TEST(test_effect_writes_flush_after_its_run),
        GV_TEST(test_effect_names),
    };
    return GV_RUN_TESTS(tests);
}
