/*
 * test_dispose.c — disposal from inside the graph's own work, and batches that
 * end where they began.
 *
 * The library calls user code in the middle of its walks: a compute function
 * while an effect is being validated, effects and cleanups during a flush,
 * the error handler, a value's destroy function.  Each test below disposes a
 * node from one of those places — the node itself, the effect being
 * validated, a queued sibling, an owner — and checks what users can see (who
 * runs, how often, with which value) and, in the ASan tree, that nothing
 * touches freed memory.  The first three are the scenarios that crashed or
 * misbehaved before disposal was deferred (internal.h, "Deferred
 * destruction") and before the batch journal ("Batches and the journal").
 *
 * Callbacks never call cmocka asserts (a failed assert would longjmp through
 * library frames); they record into their user data and the tests assert
 * afterwards.
 */
#include "gv_test.h"

/* ------------------------------------------------------------------------ */
/* 1. An effect whose cleanup frees that same effect                         */
/* ------------------------------------------------------------------------ */

typedef struct selfclean {
    gv_signal *a;
    gv_effect *self;
    int runs, cleanups;
} selfclean;

static void selfclean_cleanup(void *ud)
{
    selfclean *s = ud;
    s->cleanups++;
    gv_effect_free(s->self);
}

static void selfclean_fn(void *ud)
{
    selfclean *s = ud;
    s->runs++;
    (void)gv_signal_get_int(s->a);
    (void)gv_on_cleanup(selfclean_cleanup, s);
}

static void test_cleanup_frees_own_effect(void **state)
{
    (void)state;
    selfclean s = {0};
    s.a = gv_signal_new(gv_int(1));
    s.self = gv_effect_new(selfclean_fn, &s);
    assert_non_null(s.self);
    assert_int_equal(s.runs, 1);

    /* The re-run starts with the cleanup, which disposes the effect: it must
     * not run again, and nothing may touch it afterwards. */
    gv_signal_set_int(s.a, 2);
    assert_int_equal(s.cleanups, 1);
    assert_int_equal(s.runs, 1);
    gv_stats st;
    gv_test_stats(&st);
    assert_int_equal(st.effects, 0);
    assert_int_equal(gv_signal_subscriber_count(s.a), 0);

    gv_signal_set_int(s.a, 3);
    assert_int_equal(s.runs, 1);
    assert_int_equal(s.cleanups, 1);
    gv_signal_free(s.a);
}

/* The same from gv_effect_free at top level: the cleanup frees the effect it
 * is the cleanup of while that effect is already being disposed. */
static void test_cleanup_frees_own_effect_on_free(void **state)
{
    (void)state;
    selfclean s = {0};
    s.a = gv_signal_new(gv_int(1));
    s.self = gv_effect_new(selfclean_fn, &s);
    gv_effect_free(s.self);
    assert_int_equal(s.cleanups, 1);
    assert_int_equal(s.runs, 1);
    gv_signal_free(s.a);
}

/* ------------------------------------------------------------------------ */
/* 2. A computed that frees an effect while it evaluates                     */
/* ------------------------------------------------------------------------ */

typedef struct killer {
    gv_signal *a;
    gv_effect **victim; /* freed (and cleared) when a == kill_at */
    int64_t kill_at;
    bool constant;      /* the computed's value ignores a: it never changes */
    int computes;
} killer;

static void killer_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    killer *k = ud;
    k->computes++;
    int64_t a = gv_signal_get_int(k->a);
    if (a == k->kill_at && *k->victim) {
        gv_effect_free(*k->victim);
        *k->victim = NULL;
    }
    *out = gv_int(k->constant ? 7 : a * 10);
}

typedef struct reader {
    gv_computed *c;
    int runs;
    int64_t seen;
    gv_effect **victim; /* if set, this effect frees it when it runs */
} reader;

static void reader_fn(void *ud)
{
    reader *r = ud;
    r->runs++;
    r->seen = gv_computed_get_int(r->c);
    if (r->victim && *r->victim) {
        gv_effect_free(*r->victim);
        *r->victim = NULL;
    }
}

/* The effect being validated is freed by the compute function its validation
 * runs. */
static void test_computed_frees_validating_effect(void **state)
{
    (void)state;
    gv_effect *e = NULL;
    killer k = {.kill_at = 2, .victim = &e};
    k.a = gv_signal_new(gv_int(1));
    gv_computed *c = gv_computed_new(killer_fn, &k);
    reader r = {.c = c};
    e = gv_effect_new(reader_fn, &r);
    assert_int_equal(r.runs, 1);
    assert_int_equal(r.seen, 10);

    gv_signal_set_int(k.a, 2);
    assert_null(e);
    assert_int_equal(r.runs, 1); /* freed during its validation: never runs again */
    assert_int_equal(gv_computed_subscriber_count(c), 0);
    gv_signal_set_int(k.a, 3);
    assert_int_equal(r.runs, 1);

    gv_computed_free(c);
    gv_signal_free(k.a);
}

/* Two siblings read the computed; the compute function frees the second
 * while the first is being validated, with the value changing or not.  The
 * survivor is notified exactly as it would be otherwise. */
static void sibling_case(bool constant)
{
    gv_effect *second = NULL;
    killer k = {.kill_at = 2, .victim = &second, .constant = constant};
    k.a = gv_signal_new(gv_int(1));
    gv_computed *c = gv_computed_new(killer_fn, &k);
    reader r1 = {.c = c}, r2 = {.c = c};
    gv_effect *first = gv_effect_new(reader_fn, &r1);
    second = gv_effect_new(reader_fn, &r2);
    assert_int_equal(r1.runs, 1);
    assert_int_equal(r2.runs, 1);

    gv_signal_set_int(k.a, 2);
    assert_null(second);
    assert_int_equal(r2.runs, 1);
    assert_int_equal(r1.runs, constant ? 1 : 2);
    assert_int_equal(r1.seen, constant ? 7 : 20);

    gv_signal_set_int(k.a, 4);
    assert_int_equal(r2.runs, 1);
    assert_int_equal(r1.runs, constant ? 1 : 3);

    gv_effect_free(first);
    gv_computed_free(c);
    gv_signal_free(k.a);
}

static void test_computed_frees_sibling_effect(void **state)
{
    (void)state;
    sibling_case(false);
}

static void test_computed_frees_sibling_value_unchanged(void **state)
{
    (void)state;
    sibling_case(true);
}

/* The first sibling to run frees the other, which is queued behind it. */
static void test_effect_frees_queued_sibling(void **state)
{
    (void)state;
    gv_effect *second = NULL;
    killer k = {.kill_at = -1, .victim = &second};
    k.a = gv_signal_new(gv_int(1));
    gv_computed *c = gv_computed_new(killer_fn, &k);
    reader r1 = {.c = c}, r2 = {.c = c};
    gv_effect *first = gv_effect_new(reader_fn, &r1);
    second = gv_effect_new(reader_fn, &r2);
    r1.victim = &second;
    gv_signal_set_int(k.a, 2);
    assert_null(second);
    assert_int_equal(r1.runs, 2);
    assert_int_equal(r2.runs, 1);
    gv_effect_free(first);
    gv_computed_free(c);
    gv_signal_free(k.a);
}

/* ------------------------------------------------------------------------ */
/* 3. A batch that sets a signal to a new value and back                     */
/* ------------------------------------------------------------------------ */

typedef struct twice {
    gv_signal *a;
    int computes;
} twice;

static void twice_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    twice *t = ud;
    t->computes++;
    *out = gv_int(gv_signal_get_int(t->a) * 2);
}

typedef struct cwatch {
    gv_computed *c;
    gv_signal *s; /* read too, if set */
    int runs;
    int64_t seen;
} cwatch;

static void cwatch_fn(void *ud)
{
    cwatch *w = ud;
    w->runs++;
    w->seen = gv_computed_get_int(w->c);
    if (w->s)
        (void)gv_signal_get_int(w->s);
}

static void test_batch_round_trip_is_noop(void **state)
{
    (void)state;
    twice t = {0};
    t.a = gv_signal_new(gv_int(1));
    gv_computed *c = gv_computed_new(twice_fn, &t);
    cwatch w = {.c = c, .s = t.a};
    gv_effect *e = gv_effect_new(cwatch_fn, &w);
    assert_int_equal(t.computes, 1);
    assert_int_equal(w.runs, 1);

    gv_batch_begin();
    assert_true(gv_signal_set_int(t.a, 2));
    assert_true(gv_signal_set_int(t.a, 3));
    assert_true(gv_signal_set_int(t.a, 1));
    gv_batch_end();
    assert_int_equal(t.computes, 1);
    assert_int_equal(w.runs, 1);

    /* Nested batches: the outermost one decides. */
    gv_batch_begin();
    gv_signal_set_int(t.a, 5);
    gv_batch_begin();
    gv_signal_set_int(t.a, 1);
    gv_batch_end();
    gv_batch_end();
    assert_int_equal(t.computes, 1);
    assert_int_equal(w.runs, 1);

    /* A batch that really changes it still does. */
    gv_batch_begin();
    gv_signal_set_int(t.a, 2);
    gv_signal_set_int(t.a, 4);
    gv_batch_end();
    assert_int_equal(t.computes, 2);
    assert_int_equal(w.runs, 2);
    assert_int_equal(w.seen, 8);

    /* The journal is per batch: the start value is the one the next batch
     * begins with (4), not the one of an earlier batch. */
    gv_batch_begin();
    gv_signal_set_int(t.a, 1);
    gv_signal_set_int(t.a, 4);
    gv_batch_end();
    assert_int_equal(t.computes, 2);
    assert_int_equal(w.runs, 2);

    gv_effect_free(e);
    gv_computed_free(c);
    gv_signal_free(t.a);
}

/* An unwatched computed, read after the batch, does not re-evaluate either. */
static void test_batch_round_trip_unwatched_computed(void **state)
{
    (void)state;
    twice t = {0};
    t.a = gv_signal_new(gv_int(1));
    gv_computed *c = gv_computed_new(twice_fn, &t);
    assert_int_equal(gv_computed_get_int(c), 2);
    gv_batch_begin();
    gv_signal_set_int(t.a, 9);
    gv_signal_set_int(t.a, 1);
    gv_batch_end();
    assert_int_equal(gv_computed_get_int(c), 2);
    assert_int_equal(t.computes, 1);
    gv_computed_free(c);
    gv_signal_free(t.a);
}

/* A reader that saw the value in between has seen a change: it re-runs, and
 * every reader ends with the right value. */
static void test_batch_round_trip_observed(void **state)
{
    (void)state;
    twice t = {0};
    t.a = gv_signal_new(gv_int(1));
    gv_computed *c = gv_computed_new(twice_fn, &t);
    cwatch w = {.c = c};
    gv_effect *e = gv_effect_new(cwatch_fn, &w);

    gv_batch_begin();
    gv_signal_set_int(t.a, 2);
    assert_int_equal(gv_computed_get_int(c), 4); /* reads see the batch's values */
    gv_signal_set_int(t.a, 1);
    assert_int_equal(gv_computed_get_int(c), 2);
    gv_batch_end();
    assert_int_equal(t.computes, 3);
    /* The computed went 2 -> 4 -> 2 under the effect: its version moved, as
     * in alien-signals and preact; the effect sees the right value. */
    assert_int_equal(w.runs, 2);
    assert_int_equal(w.seen, 2);

    gv_effect_free(e);
    gv_computed_free(c);
    gv_signal_free(t.a);
}

/* Writes made by an effect during a flush are journaled too. */
typedef struct bouncer {
    gv_signal *trigger, *a;
} bouncer;

static void bouncer_fn(void *ud)
{
    bouncer *b = ud;
    if (gv_signal_get_int(b->trigger) > 0) {
        int64_t v = gv_signal_peek(b->a)->as.i;
        gv_signal_set_int(b->a, v + 100);
        gv_signal_set_int(b->a, v);
    }
}

static void test_flush_round_trip_is_noop(void **state)
{
    (void)state;
    twice t = {0};
    t.a = gv_signal_new(gv_int(1));
    gv_computed *c = gv_computed_new(twice_fn, &t);
    cwatch w = {.c = c};
    gv_effect *e = gv_effect_new(cwatch_fn, &w);
    bouncer b = {.trigger = gv_signal_new(gv_int(0)), .a = t.a};
    gv_effect *be = gv_effect_new(bouncer_fn, &b);
    gv_signal_set_int(b.trigger, 1);
    assert_int_equal(t.computes, 1);
    assert_int_equal(w.runs, 1);
    gv_effect_free(be);
    gv_effect_free(e);
    gv_computed_free(c);
    gv_signal_free(b.trigger);
    gv_signal_free(t.a);
}

typedef struct strwatch {
    gv_signal *s;
    int runs;
} strwatch;

static void strwatch_fn(void *ud)
{
    strwatch *w = ud;
    w->runs++;
    (void)gv_signal_get_string(w->s);
}

static void test_batch_round_trip_string(void **state)
{
    (void)state;
    strwatch w = {.s = gv_signal_new(gv_str("start"))};
    gv_effect *e = gv_effect_new(strwatch_fn, &w);
    for (int i = 0; i < 3; i++) { /* each batch journals its own copy */
        gv_batch_begin();
        gv_signal_set_string(w.s, "a much longer string than the start value");
        gv_signal_set_string(w.s, "start");
        gv_batch_end();
    }
    assert_string_equal(gv_signal_peek(w.s)->as.s, "start");
    assert_int_equal(w.runs, 1);
    gv_effect_free(e);
    gv_signal_free(w.s);
}

/* Pointers: the start value stays alive until the batch ends, so an object
 * allocated at the same address cannot pass for it; custom equality decides
 * what "back to the start value" means. */
static bool obj_same_value(const gv_value *a, const gv_value *b, void *ud)
{
    (void)ud;
    if (a->type != GV_POINTER || b->type != GV_POINTER)
        return gv_value_equal(a, b);
    return ((const owned_obj *)a->as.p)->value == ((const owned_obj *)b->as.p)->value;
}

typedef struct pwatch {
    gv_signal *s;
    int runs;
    int seen;
} pwatch;

static void pwatch_fn(void *ud)
{
    pwatch *w = ud;
    w->runs++;
    const owned_obj *o = gv_signal_get_pointer(w->s);
    w->seen = o ? o->value : -1;
}

static void test_batch_round_trip_pointer(void **state)
{
    (void)state;
    int destroyed = 0;
    pwatch w = {0};
    w.s = gv_signal_new(gv_ptr(owned_obj_new(&destroyed, 1), owned_obj_destroy));
    gv_signal_set_equal(w.s, obj_same_value, NULL);
    gv_effect *e = gv_effect_new(pwatch_fn, &w);

    gv_batch_begin();
    gv_signal_set(w.s, gv_ptr(owned_obj_new(&destroyed, 2), owned_obj_destroy));
    assert_int_equal(destroyed, 0); /* the start value is kept for the batch */
    gv_signal_set(w.s, gv_ptr(owned_obj_new(&destroyed, 1), owned_obj_destroy));
    assert_int_equal(destroyed, 1); /* the "2" replaced at once */
    gv_batch_end();
    assert_int_equal(destroyed, 2); /* the start value, once the batch ended */
    assert_int_equal(w.runs, 1);

    /* The very start pointer written back: the signal owns it again, and it
     * is destroyed exactly once, when it is finally replaced. */
    void *start = gv_signal_peek(w.s)->as.p;
    gv_batch_begin();
    gv_signal_set(w.s, gv_ptr(owned_obj_new(&destroyed, 3), owned_obj_destroy));
    gv_signal_set(w.s, gv_ptr(start, owned_obj_destroy));
    gv_signal_set(w.s, gv_ptr(owned_obj_new(&destroyed, 4), owned_obj_destroy));
    gv_batch_end();
    assert_int_equal(destroyed, 4); /* "3", then the start object at the end */
    assert_int_equal(w.runs, 2);
    assert_int_equal(w.seen, 4);

    gv_effect_free(e);
    gv_signal_free(w.s);
    assert_int_equal(destroyed, 5);
}

/* ------------------------------------------------------------------------ */
/* Other places disposal may come from                                       */
/* ------------------------------------------------------------------------ */

/* The error handler disposes the effect whose failure it reports. */
typedef struct failer {
    gv_signal *a;
    gv_effect *self;
    int runs, reports;
} failer;

static void failer_fn(void *ud)
{
    failer *f = ud;
    f->runs++;
    if (gv_signal_get_int(f->a) > 1)
        gv_fail(GV_EFAIL, "boom");
}

static void failer_handler(const gv_error *err, const char *node_name, void *ud)
{
    (void)err;
    (void)node_name;
    failer *f = ud;
    f->reports++;
    gv_effect_free(f->self);
}

static void test_error_handler_frees_failing_effect(void **state)
{
    (void)state;
    failer f = {0};
    f.a = gv_signal_new(gv_int(1));
    f.self = gv_effect_new(failer_fn, &f);
    gv_set_error_handler(failer_handler, &f);
    gv_signal_set_int(f.a, 2);
    assert_int_equal(f.reports, 1);
    assert_int_equal(f.runs, 2);
    gv_signal_set_int(f.a, 3);
    assert_int_equal(f.runs, 2);
    gv_set_error_handler(errlog_handler, &gv_test_errors);
    gv_signal_free(f.a);
}

/* A child effect disposes the scope that owns it, from its own run and from
 * its cleanup while the scope is disposing it. */
typedef struct scoped {
    gv_signal *a;
    gv_scope *scope;
    int runs, cleanups;
} scoped;

static void scoped_cleanup(void *ud)
{
    scoped *s = ud;
    s->cleanups++;
    gv_scope_free(s->scope);
}

static void scoped_fn(void *ud)
{
    scoped *s = ud;
    s->runs++;
    if (gv_signal_get_int(s->a) == 2)
        gv_scope_free(s->scope);
    (void)gv_on_cleanup(scoped_cleanup, s);
}

static void test_child_frees_its_scope(void **state)
{
    (void)state;
    scoped s = {0};
    s.a = gv_signal_new(gv_int(1));
    s.scope = gv_scope_new();
    gv_scope_enter(s.scope);
    (void)gv_effect_new(scoped_fn, &s);
    (void)gv_effect_new(scoped_fn, &s);
    gv_scope_leave(s.scope);
    gv_signal_set_int(s.a, 2); /* each child's re-run starts by cleaning up */
    assert_int_equal(s.runs, 2);
    assert_int_equal(s.cleanups, 2);
    gv_stats st;
    gv_test_stats(&st);
    assert_int_equal(st.effects, 0);
    assert_int_equal(st.scopes, 0);
    gv_signal_free(s.a);
}

/* A child effect disposes its parent effect from its own run; the parent's
 * other child, queued too, never runs again. */
typedef struct family {
    gv_signal *a;
    gv_effect *parent;
    int parent_runs, child_runs;
} family;

static void family_child(void *ud)
{
    family *f = ud;
    f->child_runs++;
    if (gv_signal_get_int(f->a) == 2 && f->parent) {
        gv_effect *p = f->parent;
        f->parent = NULL;
        gv_effect_free(p);
    }
}

static void family_parent(void *ud)
{
    family *f = ud;
    f->parent_runs++;
    (void)gv_effect_new(family_child, f);
    (void)gv_effect_new(family_child, f);
}

static void test_child_frees_its_parent(void **state)
{
    (void)state;
    family f = {0};
    f.a = gv_signal_new(gv_int(1));
    f.parent = gv_effect_new(family_parent, &f);
    assert_int_equal(f.child_runs, 2);
    gv_signal_set_int(f.a, 2);
    assert_int_equal(f.parent_runs, 1);
    assert_int_equal(f.child_runs, 3); /* the first child ran, disposed all */
    gv_signal_set_int(f.a, 3);
    assert_int_equal(f.child_runs, 3);
    gv_stats st;
    gv_test_stats(&st);
    assert_int_equal(st.effects, 0);
    gv_signal_free(f.a);
}

/* A compute function drops the last handle of the computed a first-time
 * reader is reading: the reader's link keeps it alive. */
typedef struct selfdrop {
    gv_signal *a;
    gv_computed *self;
} selfdrop;

static void selfdrop_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    selfdrop *s = ud;
    *out = gv_int(gv_signal_get_int(s->a) + 1);
    if (s->self) {
        gv_computed_free(s->self);
        s->self = NULL;
    }
}

typedef struct creader {
    gv_computed *c;
    int runs;
    int64_t seen;
} creader;

static void creader_fn(void *ud)
{
    creader *r = ud;
    r->runs++;
    r->seen = gv_computed_get_int(r->c);
}

static void test_compute_drops_own_handle(void **state)
{
    (void)state;
    selfdrop s = {0};
    s.a = gv_signal_new(gv_int(1));
    gv_computed *c = gv_computed_new(selfdrop_fn, &s);
    s.self = c;
    creader r = {.c = c};
    gv_effect *e = gv_effect_new(creader_fn, &r);
    assert_int_equal(r.seen, 2);
    gv_signal_set_int(s.a, 5);
    assert_int_equal(r.runs, 2);
    assert_int_equal(r.seen, 6);
    gv_effect_free(e); /* the computed dies with its last reader */
    gv_stats st;
    gv_test_stats(&st);
    assert_int_equal(st.computeds, 0);
    gv_signal_free(s.a);
}

/* A value's destroy function frees the signal being written. */
typedef struct holder {
    gv_signal *s;
    int destroyed;
} holder;

static void holder_destroy(void *p)
{
    holder *h = p;
    h->destroyed++;
    if (h->s) {
        gv_signal *s = h->s;
        h->s = NULL;
        gv_signal_free(s);
    }
}

static void test_destroy_fn_frees_its_signal(void **state)
{
    (void)state;
    holder h = {0};
    h.s = gv_signal_new(gv_ptr(&h, holder_destroy));
    gv_signal *s = h.s;
    int other = 0;
    gv_signal_set(s, gv_ptr(&other, NULL)); /* destroys &h, which frees s */
    assert_int_equal(h.destroyed, 1);
    gv_stats st;
    gv_test_stats(&st);
    assert_int_equal(st.signals, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GV_TEST(test_cleanup_frees_own_effect),
        GV_TEST(test_cleanup_frees_own_effect_on_free),
        GV_TEST(test_computed_frees_validating_effect),
        GV_TEST(test_computed_frees_sibling_effect),
        GV_TEST(test_computed_frees_sibling_value_unchanged),
        GV_TEST(test_effect_frees_queued_sibling),
        GV_TEST(test_batch_round_trip_is_noop),
        GV_TEST(test_batch_round_trip_unwatched_computed),
        GV_TEST(test_batch_round_trip_observed),
        GV_TEST(test_flush_round_trip_is_noop),
        GV_TEST(test_batch_round_trip_string),
        GV_TEST(test_batch_round_trip_pointer),
        GV_TEST(test_error_handler_frees_failing_effect),
        GV_TEST(test_child_frees_its_scope),
        GV_TEST(test_child_frees_its_parent),
        GV_TEST(test_compute_drops_own_handle),
        GV_TEST(test_destroy_fn_frees_its_signal),
    };
    return GV_RUN_TESTS(tests);
}
