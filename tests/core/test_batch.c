/*
 * test_batch.c — gv_batch_begin/end (effects flush once, at the outermost
 * end; reads inside see new values) and untracked reads (gv_untracked_begin/
 * end, gv_signal_peek, gv_computed_peek: no subscription).
 */
#include "gv_test.h"

typedef struct sum3 {
    gv_signal *a, *b, *c;
    int runs;
    int64_t last;
} sum3;

static void sum3_fn(void *ud)
{
    sum3 *s = ud;
    s->runs++;
    s->last = gv_signal_get_int(s->a) + gv_signal_get_int(s->b) + gv_signal_get_int(s->c);
}

static void test_batch_runs_effect_once(void **state)
{
    (void)state;
    sum3 s = {0};
    s.a = gv_signal_new(gv_int(1));
    s.b = gv_signal_new(gv_int(2));
    s.c = gv_signal_new(gv_int(3));
    gv_effect *e = gv_effect_new(sum3_fn, &s);
    assert_int_equal(s.runs, 1);
    assert_int_equal(s.last, 6);

    gv_batch_begin();
    assert_true(gv_signal_set_int(s.a, 10));
    assert_true(gv_signal_set_int(s.b, 20));
    assert_true(gv_signal_set_int(s.c, 30));
    assert_true(gv_signal_set_int(s.a, 100));
    assert_int_equal(s.runs, 1); /* nothing runs before the batch ends */
    gv_batch_end();
    assert_int_equal(s.runs, 2);
    assert_int_equal(s.last, 150);

    /* A batch of equal writes runs nothing. */
    gv_batch_begin();
    assert_false(gv_signal_set_int(s.a, 100));
    assert_false(gv_signal_set_int(s.b, 20));
    gv_batch_end();
    assert_int_equal(s.runs, 2);

    /* An empty batch runs nothing either. */
    gv_batch_begin();
    gv_batch_end();
    assert_int_equal(s.runs, 2);

    gv_effect_free(e);
    gv_signal_free(s.a);
    gv_signal_free(s.b);
    gv_signal_free(s.c);
}

static void test_nested_batch_flushes_at_outermost_end(void **state)
{
    (void)state;
    sum3 s = {0};
    s.a = gv_signal_new(gv_int(0));
    s.b = gv_signal_new(gv_int(0));
    s.c = gv_signal_new(gv_int(0));
    gv_effect *e = gv_effect_new(sum3_fn, &s);

    gv_batch_begin();
    assert_true(gv_signal_set_int(s.a, 1));
    gv_batch_begin();
    assert_true(gv_signal_set_int(s.b, 2));
    gv_batch_begin();
    assert_true(gv_signal_set_int(s.c, 3));
    gv_batch_end();
    assert_int_equal(s.runs, 1);
    gv_batch_end();
    assert_int_equal(s.runs, 1);
    assert_true(gv_signal_set_int(s.a, 4));
    assert_int_equal(s.runs, 1);
    gv_batch_end();
    assert_int_equal(s.runs, 2);
    assert_int_equal(s.last, 9);

    gv_effect_free(e);
    gv_signal_free(s.a);
    gv_signal_free(s.b);
    gv_signal_free(s.c);
}

typedef struct twice {
    gv_signal *src;
    int runs;
} twice;

static void twice_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    twice *t = ud;
    t->runs++;
    *out = gv_int(2 * gv_signal_get_int(t->src));
}

typedef struct cwatch {
    gv_computed *c;
    int runs;
    int64_t last;
} cwatch;

static void cwatch_fn(void *ud)
{
    cwatch *w = ud;
    w->runs++;
    w->last = gv_computed_get_int(w->c);
}

static void test_reads_inside_batch_see_new_values(void **state)
{
    (void)state;
    gv_signal *a = gv_signal_new(gv_int(1));
    twice t = {.src = a};
    gv_computed *d = gv_computed_new(twice_fn, &t);
    cwatch w = {.c = d};
    gv_effect *e = gv_effect_new(cwatch_fn, &w);
    assert_int_equal(t.runs, 1);

    gv_batch_begin();
    assert_true(gv_signal_set_int(a, 5));
    assert_int_equal(gv_signal_get_int(a), 5);
    assert_int_equal(gv_signal_peek(a)->as.i, 5);
    assert_int_equal(gv_computed_get_int(d), 10); /* recomputed on demand */
    assert_int_equal(t.runs, 2);
    assert_int_equal(gv_computed_get_int(d), 10);
    assert_int_equal(t.runs, 2);
    assert_true(gv_signal_set_int(a, 6));
    assert_int_equal(gv_computed_peek(d)->as.i, 12);
    assert_int_equal(t.runs, 3);
    assert_int_equal(w.runs, 1);
    gv_batch_end();

    /* The effect runs once; the computed is already up to date. */
    assert_int_equal(w.runs, 2);
    assert_int_equal(w.last, 12);
    assert_int_equal(t.runs, 3);

    gv_effect_free(e);
    gv_computed_free(d);
    gv_signal_free(a);
}

static void test_effect_created_inside_batch(void **state)
{
    (void)state;
    sum3 s = {0};
    s.a = gv_signal_new(gv_int(1));
    s.b = gv_signal_new(gv_int(1));
    s.c = gv_signal_new(gv_int(1));
    gv_batch_begin();
    assert_true(gv_signal_set_int(s.a, 2));
    gv_effect *e = gv_effect_new(sum3_fn, &s); /* runs now, even in a batch */
    assert_int_equal(s.runs, 1);
    assert_int_equal(s.last, 4);
    assert_true(gv_signal_set_int(s.b, 2));
    assert_int_equal(s.runs, 1);
    gv_batch_end();
    assert_int_equal(s.runs, 2);
    assert_int_equal(s.last, 5);
    gv_effect_free(e);
    gv_signal_free(s.a);
    gv_signal_free(s.b);
    gv_signal_free(s.c);
}

/* An effect that batches its two writes: the reader of both runs once. */
typedef struct pairwriter {
    gv_signal *trigger, *x, *y;
    int runs;
} pairwriter;

static void pairwriter_fn(void *ud)
{
    pairwriter *p = ud;
    p->runs++;
    int64_t v = gv_signal_get_int(p->trigger);
    gv_batch_begin();
    (void)gv_signal_set_int(p->x, v);
    (void)gv_signal_set_int(p->y, -v);
    gv_batch_end();
}

typedef struct pairreader {
    gv_signal *x, *y;
    int runs, torn; /* torn: saw x and y from different writes */
} pairreader;

static void pairreader_fn(void *ud)
{
    pairreader *r = ud;
    r->runs++;
    if (gv_signal_get_int(r->x) != -gv_signal_get_int(r->y))
        r->torn++;
}

static void test_batch_inside_effect(void **state)
{
    (void)state;
    pairwriter pw = {0};
    pw.trigger = gv_signal_new(gv_int(0));
    pw.x = gv_signal_new(gv_int(0));
    pw.y = gv_signal_new(gv_int(0));
    pairreader pr = {.x = pw.x, .y = pw.y};
    gv_effect *er = gv_effect_new(pairreader_fn, &pr);
    gv_effect *ew = gv_effect_new(pairwriter_fn, &pw);
    for (int i = 1; i <= 5; i++) {
        assert_true(gv_signal_set_int(pw.trigger, i));
        assert_int_equal(pw.runs, 1 + i);
        assert_int_equal(pr.runs, 1 + i);
    }
    assert_int_equal(pr.torn, 0);
    gv_effect_free(ew);
    gv_effect_free(er);
    gv_signal_free(pw.trigger);
    gv_signal_free(pw.x);
    gv_signal_free(pw.y);
}

/* ------------------------------------------------------------------------ */
/* Untracked reads                                                           */
/* ------------------------------------------------------------------------ */

typedef struct untr {
    gv_signal *a, *b, *c;
    int runs;
    int64_t seen_b;
    bool nested; /* use two nested untracked regions */
} untr;

static void untr_effect(void *ud)
{
    untr *u = ud;
    u->runs++;
    (void)gv_signal_get_int(u->a);
    gv_untracked_t t = gv_untracked_begin();
    if (u->nested) {
        gv_untracked_t t2 = gv_untracked_begin();
        (void)gv_signal_get_int(u->c);
        gv_untracked_end(t2);
        /* Still inside the outer untracked region. */
    }
    u->seen_b = gv_signal_get_int(u->b);
    gv_untracked_end(t);
}

static void run_untracked(bool nested)
{
    untr u = {.nested = nested};
    u.a = gv_signal_new(gv_int(1));
    u.b = gv_signal_new(gv_int(2));
    u.c = gv_signal_new(gv_int(3));
    gv_effect *e = gv_effect_new(untr_effect, &u);
    assert_int_equal(u.runs, 1);
    assert_int_equal(u.seen_b, 2);
    assert_int_equal(gv_effect_dependency_count(e), 1);
    assert_int_equal(gv_signal_subscriber_count(u.b), 0);
    assert_int_equal(gv_signal_subscriber_count(u.c), 0);

    assert_true(gv_signal_set_int(u.b, 20));
    assert_true(gv_signal_set_int(u.c, 30));
    assert_int_equal(u.runs, 1);
    assert_true(gv_signal_set_int(u.a, 10));
    assert_int_equal(u.runs, 2);
    assert_int_equal(u.seen_b, 20); /* untracked reads still see current values */

    gv_effect_free(e);
    gv_signal_free(u.a);
    gv_signal_free(u.b);
    gv_signal_free(u.c);
}

static void test_untracked_region_in_effect(void **state)
{
    (void)state;
    run_untracked(false);
    run_untracked(true);
}

/* Reads a, then b untracked, then c tracked again. */
typedef struct mixc {
    gv_signal *a, *b, *c;
    int runs;
} mixc;

static void mixc_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    mixc *m = ud;
    m->runs++;
    int64_t a = gv_signal_get_int(m->a);
    gv_untracked_t t = gv_untracked_begin();
    int64_t b = gv_signal_get_int(m->b);
    gv_untracked_end(t);
    int64_t c = gv_signal_get_int(m->c);
    *out = gv_int(100 * a + 10 * b + c);
}

static void test_untracked_region_in_computed(void **state)
{
    (void)state;
    mixc m = {0};
    m.a = gv_signal_new(gv_int(1));
    m.b = gv_signal_new(gv_int(2));
    m.c = gv_signal_new(gv_int(3));
    gv_computed *c = gv_computed_new(mixc_fn, &m);
    cwatch w = {.c = c};
    gv_effect *e = gv_effect_new(cwatch_fn, &w);
    assert_int_equal(w.last, 123);
    assert_int_equal(gv_computed_dependency_count(c), 2);
    assert_true(gv_signal_set_int(m.b, 5));
    assert_int_equal(m.runs, 1);
    assert_int_equal(w.runs, 1);
    assert_true(gv_signal_set_int(m.c, 4)); /* tracking resumed after end */
    assert_int_equal(m.runs, 2);
    assert_int_equal(w.last, 154);
    gv_effect_free(e);
    gv_computed_free(c);
    gv_signal_free(m.a);
    gv_signal_free(m.b);
    gv_signal_free(m.c);
}

/* Reads `a` tracked and `b` with gv_signal_peek. */
typedef struct peeker {
    gv_signal *a, *b;
    int runs;
} peeker;

static void peeker_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    peeker *p = ud;
    p->runs++;
    *out = gv_int(gv_signal_get_int(p->a) + gv_signal_peek(p->b)->as.i);
}

static void test_peek_does_not_subscribe(void **state)
{
    (void)state;
    peeker p = {0};
    p.a = gv_signal_new(gv_int(1));
    p.b = gv_signal_new(gv_int(10));
    gv_computed *c = gv_computed_new(peeker_fn, &p);
    cwatch w = {.c = c};
    gv_effect *e = gv_effect_new(cwatch_fn, &w);
    assert_int_equal(w.last, 11);
    assert_int_equal(gv_computed_dependency_count(c), 1);
    assert_int_equal(gv_signal_subscriber_count(p.b), 0);
    assert_true(gv_signal_set_int(p.b, 20));
    assert_int_equal(p.runs, 1);
    assert_int_equal(w.runs, 1);
    assert_int_equal(gv_computed_get_int(c), 11); /* still cached */
    assert_true(gv_signal_set_int(p.a, 2));
    assert_int_equal(w.last, 22);
    assert_int_equal(p.runs, 2);
    gv_effect_free(e);
    gv_computed_free(c);
    gv_signal_free(p.a);
    gv_signal_free(p.b);
}

/* An effect that peeks a computed: it brings it up to date but does not
 * depend on it. */
typedef struct cpeek {
    gv_computed *c;
    int runs;
    int64_t last;
} cpeek;

static void cpeek_fn(void *ud)
{
    cpeek *p = ud;
    p->runs++;
    p->last = gv_computed_peek(p->c)->as.i;
}

static void test_computed_peek_does_not_subscribe(void **state)
{
    (void)state;
    gv_signal *a = gv_signal_new(gv_int(4));
    twice t = {.src = a};
    gv_computed *c = gv_computed_new(twice_fn, &t);
    cpeek p = {.c = c};
    gv_effect *e = gv_effect_new(cpeek_fn, &p);
    assert_int_equal(p.last, 8);
    assert_int_equal(gv_effect_dependency_count(e), 0);
    assert_int_equal(gv_computed_subscriber_count(c), 0);
    assert_true(gv_signal_set_int(a, 5));
    assert_int_equal(p.runs, 1);
    assert_int_equal(t.runs, 1); /* nobody observes c: it stays lazy */
    assert_int_equal(gv_computed_peek(c)->as.i, 10);
    assert_int_equal(t.runs, 2);
    gv_effect_free(e);
    gv_computed_free(c);
    gv_signal_free(a);
}

static void test_untracked_outside_any_function(void **state)
{
    (void)state;
    gv_signal *a = gv_signal_new(gv_int(7));
    gv_untracked_t t = gv_untracked_begin();
    assert_int_equal(gv_signal_get_int(a), 7);
    gv_untracked_end(t);
    assert_int_equal(gv_signal_subscriber_count(a), 0);
    gv_signal_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GV_TEST(test_batch_runs_effect_once),
        GV_TEST(test_nested_batch_flushes_at_outermost_end),
        GV_TEST(test_reads_inside_batch_see_new_values),
        GV_TEST(test_effect_created_inside_batch),
        GV_TEST(test_batch_inside_effect),
        GV_TEST(test_untracked_region_in_effect),
        GV_TEST(test_untracked_region_in_computed),
        GV_TEST(test_peek_does_not_subscribe),
        GV_TEST(test_computed_peek_does_not_subscribe),
        GV_TEST(test_untracked_outside_any_function),
    };
    return GV_RUN_TESTS(tests);
}
