/*
 * test_found.c — bugs the randomized differential test (test_graph_random.c,
 * graph_ops.c) found, each reduced to the smallest program that showed it.
 * Every test here failed on the core it was found in; the comment above each
 * says what was wrong.
 *
 * Callbacks never call cmocka asserts (a failed assert would longjmp through
 * library frames); they record into their user data and the tests assert
 * afterwards.
 */
#include "gv_test.h"

/* ------------------------------------------------------------------------ */
/* A compute function frees the last handle of the computed being read       */
/* ------------------------------------------------------------------------ */

/* The read returned a pointer into the node that its own compute function had
 * released: the node was freed when the read released its hold, and the getter
 * then read freed memory.  Now the read hands out nothing (GV_NONE) for a node
 * that is going away. */
typedef struct selffree {
    gv_signal *s;
    gv_computed *self;
    int computes;
} selffree;

static void selffree_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    selffree *f = ud;
    f->computes++;
    *out = gv_int(gv_signal_get_int(f->s) + 1);
    if (f->self) {
        gv_computed *c = f->self;
        f->self = NULL;
        gv_computed_free(c);
    }
}

static void test_read_frees_its_own_computed(void **state)
{
    (void)state;
    selffree f = {0};
    f.s = gv_signal_new(gv_int(0));

    /* Each read frees the handle it reads through: the value (1) is not
     * handed out, GV_NONE is (it reads as 0). */
    gv_computed *c = gv_computed_new(selffree_fn, &f);
    f.self = c;
    assert_int_equal(gv_computed_get_int(c), 0);

    c = gv_computed_new(selffree_fn, &f);
    f.self = c;
    assert_int_equal(gv_computed_peek(c)->type, GV_NONE);

    c = gv_computed_new(selffree_fn, &f);
    f.self = c;
    assert_null(gv_computed_error(c));

    gv_stats st;
    gv_test_stats(&st);
    assert_int_equal(st.computeds, 0);
    assert_int_equal(f.computes, 3);
    gv_signal_free(f.s);
}

/* ------------------------------------------------------------------------ */
/* A flush's own round trip is measured from the flush's start               */
/* ------------------------------------------------------------------------ */

/* The journal of the batch stayed open through the flush that ended it, so an
 * effect that set a signal to a new value and back during that flush was
 * compared with the batch's start value: the signal got a new version and a
 * reader that had already run in this flush ran again. */
typedef struct rwatch {
    gv_signal *s;
    int runs;
    int64_t seen;
} rwatch;

static void rwatch_fn(void *ud)
{
    rwatch *r = ud;
    r->runs++;
    r->seen = gv_signal_get_int(r->s);
}

typedef struct wbounce {
    gv_signal *t, *s;
} wbounce;

static void wbounce_fn(void *ud)
{
    wbounce *w = ud;
    if (gv_signal_get_int(w->t) > 0) {
        int64_t v = gv_signal_peek(w->s)->as.i;
        gv_signal_set_int(w->s, 100);
        gv_signal_set_int(w->s, v);
    }
}

static void test_flush_round_trip_after_batch(void **state)
{
    (void)state;
    rwatch r = {.s = gv_signal_new(gv_int(0))};
    wbounce w = {.t = gv_signal_new(gv_int(0)), .s = r.s};
    gv_effect *re = gv_effect_new(rwatch_fn, &r);
    gv_effect *we = gv_effect_new(wbounce_fn, &w);
    assert_int_equal(r.runs, 1);

    gv_batch_begin();
    gv_signal_set_int(r.s, 5);
    gv_signal_set_int(w.t, 1);
    gv_batch_end();
    assert_int_equal(r.runs, 2); /* once, for the batch's 5; W's detour is none */
    assert_int_equal(r.seen, 5);

    gv_effect_free(we);
    gv_effect_free(re);
    gv_signal_free(w.t);
    gv_signal_free(r.s);
}

/* Within a batch, the value a reader saw is the one a detour returns to: a
 * batch recorded only its start value, so s := 15; read; s := 5; s := 15 gave
 * the signal a new version and the reader re-ran for nothing. */
typedef struct counted {
    gv_signal *s;
    int computes;
} counted;

static void counted_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    counted *c = ud;
    c->computes++;
    *out = gv_int(gv_signal_get_int(c->s));
}

static void test_batch_detour_back_to_seen_value(void **state)
{
    (void)state;
    counted k = {.s = gv_signal_new(gv_int(0))};
    gv_computed *c = gv_computed_new(counted_fn, &k);
    gv_batch_begin();
    gv_signal_set_int(k.s, 15);
    assert_int_equal(gv_computed_get_int(c), 15);
    gv_signal_set_int(k.s, 5);
    gv_signal_set_int(k.s, 15);
    assert_int_equal(gv_computed_get_int(c), 15);
    gv_batch_end();
    assert_int_equal(gv_computed_get_int(c), 15);
    assert_int_equal(k.computes, 1);
    gv_computed_free(c);
    gv_signal_free(k.s);
}

/* ------------------------------------------------------------------------ */
/* A computed re-watched after a write still passes later writes on          */
/* ------------------------------------------------------------------------ */

/* gv_watch marked a computed PENDING when it joined the subscriber lists
 * without having been validated since the last write.  A PENDING node stops
 * propagate (below it everything is supposed to be PENDING or queued), but the
 * new reader was neither: a later write upstream never reached it.  Now such
 * a node is STALE: reads validate it, writes pass through. */
typedef struct topsum {
    gv_signal *b;
    gv_computed *ca;
} topsum;

static void ca_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    *out = gv_int(gv_signal_get_int(ud));
}

static void top_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    topsum *t = ud;
    *out = gv_int(gv_signal_get_int(t->b) * 10 + gv_computed_get_int(t->ca));
}

typedef struct ctop {
    gv_computed *c;
    int runs;
    int64_t seen;
} ctop;

static void ctop_fn(void *ud)
{
    ctop *w = ud;
    w->runs++;
    w->seen = gv_computed_get_int(w->c);
}

static void test_rewatched_computed_passes_writes_on(void **state)
{
    (void)state;
    gv_signal *a = gv_signal_new(gv_int(1));
    topsum t = {.b = gv_signal_new(gv_int(0))};
    t.ca = gv_computed_new(ca_fn, a);
    gv_computed *top = gv_computed_new(top_fn, &t);

    ctop w0 = {.c = top};
    gv_effect *e0 = gv_effect_new(ctop_fn, &w0);
    gv_signal_set_int(t.b, 1);
    assert_int_equal(w0.seen, 11);
    gv_effect_free(e0); /* top and ca are unwatched now */

    ctop w1 = {.c = top};
    gv_effect *e1 = gv_effect_new(ctop_fn, &w1);
    assert_int_equal(w1.seen, 11);
    gv_signal_set_int(a, 2);
    assert_int_equal(w1.runs, 2);
    assert_int_equal(w1.seen, 12);
    assert_int_equal(gv_computed_get_int(top), 12);

    gv_effect_free(e1);
    gv_computed_free(top);
    gv_computed_free(t.ca);
    gv_signal_free(t.b);
    gv_signal_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GV_TEST(test_read_frees_its_own_computed),
        GV_TEST(test_flush_round_trip_after_batch),
        GV_TEST(test_batch_detour_back_to_seen_value),
        GV_TEST(test_rewatched_computed_passes_writes_on),
    };
    return GV_RUN_TESTS(tests);
}
