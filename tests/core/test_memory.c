/*
 * test_memory.c — ownership and lifetimes: nodes outliving their handles
 * while depended on, unobserved computeds not held by (nor subscribed to)
 * their sources, subscriber counts dropping when the last observer goes,
 * pointer values destroyed exactly when their node dies, live counters in
 * gv_get_stats returning to zero, and the runtime being reusable after
 * gv_runtime_release.
 */
#include "gv_test.h"

typedef struct times {
    gv_signal *src;
    int64_t k;
    int runs;
} times;

static void times_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    times *t = ud;
    t->runs++;
    *out = gv_int(t->k * gv_signal_get_int(t->src));
}

/* Reads another computed: k * upstream. */
typedef struct ctimes {
    gv_computed *src;
    int64_t k;
    int runs;
} ctimes;

static void ctimes_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    ctimes *t = ud;
    t->runs++;
    *out = gv_int(t->k * gv_computed_get_int(t->src));
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

static gv_stats stats(void)
{
    gv_stats st;
    gv_test_stats(&st);
    return st;
}

/* ------------------------------------------------------------------------ */

static void test_freed_signal_lives_while_read(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(5));
    times t = {.src = s, .k = 2};
    gv_computed *c = gv_computed_new(times_fn, &t);
    cwatch w = {.c = c};
    gv_effect *e = gv_effect_new(cwatch_fn, &w);
    assert_int_equal(w.last, 10);

    /* The caller lets go of the signal; the computed still depends on it. */
    gv_signal_free(s);
    assert_int_equal(stats().signals, 1);
    assert_int_equal(gv_computed_get_int(c), 10);
    assert_null(gv_computed_error(c));
    assert_int_equal(t.runs, 1);

    gv_effect_free(e);
    assert_int_equal(stats().signals, 1); /* c still depends on it */
    assert_int_equal(gv_computed_get_int(c), 10);
    gv_computed_free(c);
    assert_int_equal(stats().signals, 0);
    assert_int_equal(stats().computeds, 0);
}

static void test_freed_signal_lives_while_unobserved_computed_reads_it(void **state)
{
    (void)state;
    gv_signal *k = gv_signal_new(gv_int(2));
    times t = {.src = k, .k = 1};
    gv_computed *c = gv_computed_new(times_fn, &t);
    assert_int_equal(gv_computed_get_int(c), 2);

    /* c is not subscribed to k, but it depends on k: k outlives its handle. */
    gv_signal_free(k);
    assert_int_equal(stats().signals, 1);
    assert_int_equal(gv_computed_get_int(c), 2);
    assert_null(gv_computed_error(c));
    assert_int_equal(t.runs, 1);

    /* A signal nobody depends on dies (and drops its pointer) at once. */
    int destroyed = 0;
    gv_signal *lonely = gv_signal_new(gv_ptr(owned_obj_new(&destroyed, 21), owned_obj_destroy));
    assert_int_equal(stats().signals, 2);
    gv_signal_free(lonely);
    assert_int_equal(destroyed, 1);
    assert_int_equal(stats().signals, 1);

    gv_computed_free(c);
    assert_int_equal(stats().signals, 0);
}

/* Reads the int inside the owned object of a pointer signal. */
typedef struct objread {
    gv_signal *src;
    int runs;
} objread;

static void objread_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    objread *o = ud;
    o->runs++;
    const owned_obj *obj = gv_signal_get_pointer(o->src);
    *out = gv_int(obj ? obj->value : -1);
}

static void test_pointer_value_dies_with_its_node(void **state)
{
    (void)state;
    int destroyed = 0;
    gv_signal *s = gv_signal_new(gv_ptr(owned_obj_new(&destroyed, 33), owned_obj_destroy));
    objread o = {.src = s};
    gv_computed *c = gv_computed_new(objread_fn, &o);
    assert_int_equal(gv_computed_get_int(c), 33);

    gv_signal_free(s);
    assert_int_equal(destroyed, 0); /* still a dependency of c */
    gv_computed_free(c);
    assert_int_equal(destroyed, 1);
    assert_int_equal(o.runs, 1);
}

static void test_unobserved_computed_is_not_subscribed(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(3));
    times t = {.src = s, .k = 10};
    gv_computed *c = gv_computed_new(times_fn, &t);
    assert_int_equal(gv_computed_get_int(c), 30);
    assert_int_equal(gv_signal_subscriber_count(s), 0);
    assert_int_equal(gv_computed_dependency_count(c), 1);
    assert_int_equal(gv_computed_subscriber_count(c), 0);
    assert_int_equal(stats().links, 1);

    assert_true(gv_signal_set_int(s, 4));
    assert_int_equal(t.runs, 1);
    assert_int_equal(gv_computed_get_int(c), 40);
    assert_int_equal(t.runs, 2);
    assert_true(gv_signal_set_int(s, 4) == false);
    assert_int_equal(gv_computed_get_int(c), 40);
    assert_int_equal(t.runs, 2);

    /* An unobserved chain of two: neither subscribes upstream. */
    ctimes t2 = {.src = c, .k = 2};
    gv_computed *c2 = gv_computed_new(ctimes_fn, &t2);
    assert_int_equal(gv_computed_get_int(c2), 80);
    assert_int_equal(gv_computed_subscriber_count(c), 0);
    assert_int_equal(gv_signal_subscriber_count(s), 0);
    assert_true(gv_signal_set_int(s, 5));
    assert_int_equal(gv_computed_get_int(c2), 100);
    assert_int_equal(t.runs, 3);
    assert_int_equal(t2.runs, 2);

    gv_computed_free(c2);
    gv_computed_free(c);
    gv_signal_free(s);
}

static void test_last_observer_gone_unsubscribes(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(1));
    times t = {.src = s, .k = 3};
    gv_computed *c = gv_computed_new(times_fn, &t);
    ctimes t2 = {.src = c, .k = 2};
    gv_computed *c2 = gv_computed_new(ctimes_fn, &t2);
    cwatch w1 = {.c = c2}, w2 = {.c = c2};
    gv_effect *e1 = gv_effect_new(cwatch_fn, &w1);
    gv_effect *e2 = gv_effect_new(cwatch_fn, &w2);
    assert_int_equal(gv_signal_subscriber_count(s), 1);
    assert_int_equal(gv_computed_subscriber_count(c), 1);
    assert_int_equal(gv_computed_subscriber_count(c2), 2);
    assert_int_equal(stats().links, 4);

    gv_effect_free(e1);
    assert_int_equal(gv_computed_subscriber_count(c2), 1);
    assert_int_equal(gv_signal_subscriber_count(s), 1);
    assert_true(gv_signal_set_int(s, 2));
    assert_int_equal(w2.last, 12);
    assert_int_equal(w1.runs, 1);

    gv_effect_free(e2);
    assert_int_equal(gv_computed_subscriber_count(c2), 0);
    assert_int_equal(gv_computed_subscriber_count(c), 0);
    assert_int_equal(gv_signal_subscriber_count(s), 0);

    /* Unobserved again: lazy, yet correct on the next read. */
    int runs = t.runs, runs2 = t2.runs;
    assert_true(gv_signal_set_int(s, 5));
    assert_int_equal(t.runs, runs);
    assert_int_equal(t2.runs, runs2);
    assert_int_equal(gv_computed_get_int(c2), 30);
    assert_int_equal(t.runs, runs + 1);
    assert_int_equal(t2.runs, runs2 + 1);

    /* Observed again: subscribed again. */
    cwatch w3 = {.c = c2};
    gv_effect *e3 = gv_effect_new(cwatch_fn, &w3);
    assert_int_equal(gv_signal_subscriber_count(s), 1);
    assert_true(gv_signal_set_int(s, 6));
    assert_int_equal(w3.runs, 2);
    assert_int_equal(w3.last, 36);
    gv_effect_free(e3);

    gv_computed_free(c2);
    gv_computed_free(c);
    gv_signal_free(s);
}

/* An effect reads cond ? c : s.  With c's handle already released, the
 * effect switching away from c is what finally destroys it. */
typedef struct switcher {
    gv_signal *cond, *s;
    gv_computed *c;
    int runs;
    int64_t last;
} switcher;

static void switcher_fn(void *ud)
{
    switcher *w = ud;
    w->runs++;
    w->last = gv_signal_get_bool(w->cond) ? gv_computed_get_int(w->c) : gv_signal_get_int(w->s);
}

static void test_dropped_dependency_frees_released_computed(void **state)
{
    (void)state;
    int destroyed = 0;
    switcher w = {0};
    w.cond = gv_signal_new(gv_bool(true));
    w.s = gv_signal_new(gv_int(5));
    objread o = {.src = gv_signal_new(gv_ptr(owned_obj_new(&destroyed, 9), owned_obj_destroy))};
    w.c = gv_computed_new(objread_fn, &o);
    gv_effect *e = gv_effect_new(switcher_fn, &w);
    assert_int_equal(w.last, 9);
    gv_computed_free(w.c);
    gv_signal_free(o.src);
    assert_int_equal(stats().computeds, 1);
    assert_int_equal(stats().signals, 3);
    assert_int_equal(destroyed, 0);

    assert_true(gv_signal_set_bool(w.cond, false));
    assert_int_equal(w.last, 5);
    assert_int_equal(stats().computeds, 0); /* no reader, no handle: gone */
    assert_int_equal(stats().signals, 2);
    assert_int_equal(destroyed, 1);
    assert_int_equal(gv_effect_dependency_count(e), 2);

    gv_effect_free(e);
    gv_signal_free(w.cond);
    gv_signal_free(w.s);
}

static void test_freed_computed_lives_while_observed(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(1));
    times t = {.src = s, .k = 7};
    gv_computed *c = gv_computed_new(times_fn, &t);
    cwatch w = {.c = c};
    gv_effect *e = gv_effect_new(cwatch_fn, &w);
    gv_computed_free(c); /* the effect still reads it */
    assert_int_equal(stats().computeds, 1);
    assert_true(gv_signal_set_int(s, 2));
    assert_int_equal(w.runs, 2);
    assert_int_equal(w.last, 14);
    assert_int_equal(t.runs, 2);
    gv_effect_free(e);
    assert_int_equal(stats().computeds, 0);
    assert_int_equal(gv_signal_subscriber_count(s), 0);
    gv_signal_free(s);
}

typedef struct counted_cleanup {
    gv_signal *s;
    int runs, cleanups;
} counted_cleanup;

static void cc_cleanup(void *ud)
{
    ((counted_cleanup *)ud)->cleanups++;
}

static void cc_fn(void *ud)
{
    counted_cleanup *c = ud;
    c->runs++;
    (void)gv_signal_get_int(c->s);
    (void)gv_on_cleanup(cc_cleanup, c);
}

static void test_free_pending_effect_inside_batch(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(0));
    counted_cleanup c = {.s = s};
    gv_effect *e = gv_effect_new(cc_fn, &c);
    gv_batch_begin();
    assert_true(gv_signal_set_int(s, 1)); /* queues e */
    gv_effect_free(e);                    /* ... which is gone before the flush */
    assert_int_equal(c.cleanups, 1);
    gv_batch_end();
    assert_int_equal(c.runs, 1);
    assert_int_equal(c.cleanups, 1);
    gv_signal_free(s);
}

/* The observer goes away in the middle of a batch that already wrote the
 * computed's source: the now unobserved computed must still be correct, and
 * a new observer created after a write must see the new value. */
static void test_observer_leaves_and_returns_across_writes(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(1));
    times t = {.src = s, .k = 4};
    gv_computed *c = gv_computed_new(times_fn, &t);
    cwatch w = {.c = c};
    gv_effect *e = gv_effect_new(cwatch_fn, &w);

    gv_batch_begin();
    assert_true(gv_signal_set_int(s, 5)); /* marks c and queues e */
    gv_effect_free(e);
    gv_batch_end();
    assert_int_equal(w.runs, 1);
    assert_int_equal(gv_signal_subscriber_count(s), 0);
    assert_int_equal(gv_computed_get_int(c), 20);
    assert_int_equal(t.runs, 2);

    /* Unobserved write, then a new observer without a read in between. */
    assert_true(gv_signal_set_int(s, 6));
    cwatch w2 = {.c = c};
    e = gv_effect_new(cwatch_fn, &w2);
    assert_int_equal(w2.last, 24);
    assert_int_equal(t.runs, 3);
    assert_true(gv_signal_set_int(s, 7));
    assert_int_equal(w2.last, 28);
    assert_int_equal(w2.runs, 2);
    assert_int_equal(t.runs, 4);
    gv_effect_free(e);

    /* And once more: unobserved write, observed again, observed write. */
    assert_true(gv_signal_set_int(s, 8));
    cwatch w3 = {.c = c};
    e = gv_effect_new(cwatch_fn, &w3);
    assert_int_equal(w3.last, 32);
    assert_true(gv_signal_set_int(s, 9));
    assert_int_equal(w3.last, 36);
    assert_int_equal(t.runs, 6);
    gv_effect_free(e);

    gv_computed_free(c);
    gv_signal_free(s);
}

static void test_stats_return_to_zero(void **state)
{
    (void)state;
    gv_stats st0 = stats();
    gv_signal *a = gv_signal_new(gv_int(1));
    gv_signal *b = gv_signal_new(gv_str("a string that needs storage"));
    times ta = {.src = a, .k = 2}, tb = {.src = a, .k = 3};
    gv_computed *ca = gv_computed_new(times_fn, &ta);
    gv_computed *cb = gv_computed_new(times_fn, &tb);
    gv_scope *sc = gv_scope_new();
    gv_scope_enter(sc);
    cwatch wa = {.c = ca}, wb = {.c = cb};
    assert_non_null(gv_effect_new(cwatch_fn, &wa));
    assert_non_null(gv_effect_new(cwatch_fn, &wb));
    gv_scope_leave(sc);

    gv_stats st = stats();
    assert_int_equal(st.signals, 2);
    assert_int_equal(st.computeds, 2);
    assert_int_equal(st.effects, 2);
    assert_int_equal(st.scopes, 1);
    assert_int_equal(st.links, 4);
    assert_int_equal(st.computes - st0.computes, 2);
    assert_int_equal(st.effect_runs - st0.effect_runs, 2);
    assert_true(st.bytes_signal > 0 && st.bytes_computed > 0 && st.bytes_effect > 0 && st.bytes_link > 0);

    assert_true(gv_signal_set_int(a, 2));
    st = stats();
    assert_int_equal(st.computes - st0.computes, 4);
    assert_int_equal(st.effect_runs - st0.effect_runs, 4);

    gv_scope_free(sc);
    st = stats();
    assert_int_equal(st.effects, 0);
    assert_int_equal(st.scopes, 0);
    gv_computed_free(ca);
    gv_computed_free(cb);
    gv_signal_free(a);
    gv_signal_free(b);
    st = stats();
    assert_int_equal(st.signals, 0);
    assert_int_equal(st.computeds, 0);
    assert_int_equal(st.links, 0);
    /* The totals are totals: they do not go back down. */
    assert_int_equal(st.computes - st0.computes, 4);
}

static void test_runtime_release_then_reuse(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(1));
    times t = {.src = s, .k = 2};
    gv_computed *c = gv_computed_new(times_fn, &t);
    cwatch w = {.c = c};
    gv_effect *e = gv_effect_new(cwatch_fn, &w);
    gv_effect_free(e);
    gv_computed_free(c);
    gv_signal_free(s);
    gv_runtime_release();
    gv_runtime_release(); /* twice is harmless */

    /* The thread can build a new graph afterwards. */
    s = gv_signal_new(gv_int(4));
    t = (times){.src = s, .k = 2};
    c = gv_computed_new(times_fn, &t);
    w = (cwatch){.c = c};
    e = gv_effect_new(cwatch_fn, &w);
    assert_true(gv_signal_set_int(s, 5));
    assert_int_equal(w.last, 10);
    assert_int_equal(w.runs, 2);
    gv_effect_free(e);
    gv_computed_free(c);
    gv_signal_free(s);
    /* Restore this test's runtime settings for the teardown's checks. */
    gv_test_setup(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GV_TEST(test_freed_signal_lives_while_read),
        GV_TEST(test_freed_signal_lives_while_unobserved_computed_reads_it),
        GV_TEST(test_pointer_value_dies_with_its_node),
        GV_TEST(test_unobserved_computed_is_not_subscribed),
        GV_TEST(test_last_observer_gone_unsubscribes),
        GV_TEST(test_freed_computed_lives_while_observed),
        GV_TEST(test_dropped_dependency_frees_released_computed),
        GV_TEST(test_free_pending_effect_inside_batch),
        GV_TEST(test_observer_leaves_and_returns_across_writes),
        GV_TEST(test_stats_return_to_zero),
        GV_TEST(test_runtime_release_then_reuse),
    };
    return GV_RUN_TESTS(tests);
}
