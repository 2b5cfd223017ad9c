/*
 * test_computed.c — gv_computed: laziness and caching, glitch-freedom in
 * diamonds and triangles, dynamic dependencies (switching, shrinking,
 * re-ordering), equality cut-off and custom equality, sharing.  Result value
 * types: test_computed_values.c.
 *
 * Compute and effect functions never call cmocka asserts themselves (a failed
 * assert would longjmp through library frames); they count anomalies in their
 * user data and the test asserts the counters afterwards.
 */
#include "gv_test.h"

/* ------------------------------------------------------------------------ */
/* A computed "k * src + add" over one signal, counted                       */
/* ------------------------------------------------------------------------ */

typedef struct lin {
    gv_signal *src;
    int64_t k, add;
    int runs;
    int prev_none; /* how many runs saw prev == GV_NONE */
} lin;

static void lin_fn(gv_value *out, const gv_value *prev, void *ud)
{
    lin *l = ud;
    l->runs++;
    if (prev->type == GV_NONE)
        l->prev_none++;
    *out = gv_int(l->k * gv_signal_get_int(l->src) + l->add);
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

/* ------------------------------------------------------------------------ */
/* Laziness and caching                                                      */
/* ------------------------------------------------------------------------ */

static void test_never_read_never_runs(void **state)
{
    (void)state;
    uint64_t computes0 = gv_test_computes();
    gv_signal *s = gv_signal_new(gv_int(1));
    lin l = {.src = s, .k = 2};
    gv_computed *c = gv_computed_new(lin_fn, &l);
    assert_non_null(c);
    assert_true(gv_signal_set_int(s, 2));
    assert_true(gv_signal_set_int(s, 3));
    assert_int_equal(l.runs, 0);
    assert_int_equal(gv_test_computes() - computes0, 0);
    assert_int_equal(gv_computed_dependency_count(c), 0);
    gv_computed_free(c);
    gv_signal_free(s);
    assert_int_equal(l.runs, 0);
}

static void test_cached_until_dependency_changes(void **state)
{
    (void)state;
    uint64_t computes0 = gv_test_computes();
    gv_signal *s = gv_signal_new(gv_int(1));
    lin l = {.src = s, .k = 2, .add = 1};
    gv_computed *c = gv_computed_new(lin_fn, &l);

    assert_int_equal(gv_computed_get_int(c), 3);
    assert_int_equal(gv_computed_get_int(c), 3);
    assert_int_equal(gv_computed_peek(c)->as.i, 3);
    assert_int_equal(gv_computed_get(c)->type, GV_INT);
    assert_int_equal(l.runs, 1);
    assert_int_equal(l.prev_none, 1);
    assert_int_equal(gv_test_computes() - computes0, 1);
    assert_int_equal(gv_computed_dependency_count(c), 1);

    /* A write does not run an unobserved computed; the next read does. */
    assert_true(gv_signal_set_int(s, 10));
    assert_int_equal(l.runs, 1);
    assert_int_equal(gv_computed_get_int(c), 21);
    assert_int_equal(l.runs, 2);
    assert_int_equal(l.prev_none, 1);
    assert_int_equal(gv_computed_get_int(c), 21);
    assert_int_equal(l.runs, 2);

    /* An equal write is no change: still cached. */
    assert_false(gv_signal_set_int(s, 10));
    assert_int_equal(gv_computed_get_int(c), 21);
    assert_int_equal(l.runs, 2);

    /* Several writes between reads: one recompute. */
    assert_true(gv_signal_set_int(s, 11));
    assert_true(gv_signal_set_int(s, 12));
    assert_true(gv_signal_set_int(s, 13));
    assert_int_equal(gv_computed_get_int(c), 27);
    assert_int_equal(l.runs, 3);
    assert_int_equal(gv_test_computes() - computes0, 3);

    gv_computed_free(c);
    gv_signal_free(s);
}

typedef struct acc {
    gv_signal *src;
    int runs;
} acc;

/* prev + src: exercises `prev` (GV_NONE on the first run). */
static void acc_fn(gv_value *out, const gv_value *prev, void *ud)
{
    acc *a = ud;
    a->runs++;
    int64_t base = prev->type == GV_NONE ? 0 : prev->as.i;
    *out = gv_int(base + gv_signal_get_int(a->src));
}

static void test_prev_value(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(1));
    acc a = {.src = s};
    gv_computed *c = gv_computed_new(acc_fn, &a);
    assert_int_equal(gv_computed_get_int(c), 1);
    assert_true(gv_signal_set_int(s, 2));
    assert_int_equal(gv_computed_get_int(c), 3);
    assert_true(gv_signal_set_int(s, 5));
    assert_int_equal(gv_computed_get_int(c), 8);
    assert_int_equal(gv_computed_get_int(c), 8);
    assert_int_equal(a.runs, 3);
    gv_computed_free(c);
    gv_signal_free(s);
}

/* ------------------------------------------------------------------------ */
/* Diamond: a -> b, a -> c, b + c -> d, effect on d                          */
/* ------------------------------------------------------------------------ */

typedef struct diamond {
    gv_signal *a;
    gv_computed *b, *c, *d;
    int rb, rc, rd, re;
    int glitches; /* a reader saw values that do not belong to one `a` */
    int64_t seen;
} diamond;

static void dia_b(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    diamond *g = ud;
    g->rb++;
    *out = gv_int(gv_signal_get_int(g->a) + 1);
}

static void dia_c(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    diamond *g = ud;
    g->rc++;
    *out = gv_int(gv_signal_get_int(g->a) * 2);
}

static void dia_d(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    diamond *g = ud;
    g->rd++;
    int64_t b = gv_computed_get_int(g->b), c = gv_computed_get_int(g->c);
    int64_t a = gv_signal_peek(g->a)->as.i;
    if (b != a + 1 || c != 2 * a)
        g->glitches++;
    *out = gv_int(b + c);
}

static void dia_effect(void *ud)
{
    diamond *g = ud;
    g->re++;
    int64_t d = gv_computed_get_int(g->d);
    int64_t a = gv_signal_peek(g->a)->as.i;
    if (d != (a + 1) + 2 * a)
        g->glitches++;
    g->seen = d;
}

static void test_diamond_glitch_free(void **state)
{
    (void)state;
    diamond g = {0};
    g.a = gv_signal_new(gv_int(1));
    g.b = gv_computed_new(dia_b, &g);
    g.c = gv_computed_new(dia_c, &g);
    g.d = gv_computed_new(dia_d, &g);
    gv_effect *e = gv_effect_new(dia_effect, &g);
    assert_int_equal(g.seen, 4); /* (1 + 1) + 2 * 1 */
    assert_int_equal(g.rb, 1);
    assert_int_equal(g.rc, 1);
    assert_int_equal(g.rd, 1);
    assert_int_equal(g.re, 1);
    assert_int_equal(gv_signal_subscriber_count(g.a), 2);
    assert_int_equal(gv_computed_dependency_count(g.d), 2);

    for (int64_t v = 2; v <= 20; v++) {
        assert_true(gv_signal_set_int(g.a, v));
        int n = (int)v; /* runs after this write: 1 initial + (v - 1) writes */
        assert_int_equal(g.rb, n);
        assert_int_equal(g.rc, n);
        assert_int_equal(g.rd, n);
        assert_int_equal(g.re, n);
        assert_int_equal(g.seen, 3 * v + 1);
    }
    assert_int_equal(g.glitches, 0);

    gv_effect_free(e);
    gv_computed_free(g.d);
    gv_computed_free(g.c);
    gv_computed_free(g.b);
    gv_signal_free(g.a);
}

/* Triangle: a -> b = 10a; c = a + b reads a directly and through b. */
typedef struct triangle {
    gv_signal *a;
    gv_computed *b, *c;
    bool b_first; /* read order inside c */
    int rb, rc, re, glitches;
    int64_t seen;
} triangle;

static void tri_b(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    triangle *t = ud;
    t->rb++;
    *out = gv_int(10 * gv_signal_get_int(t->a));
}

static void tri_c(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    triangle *t = ud;
    t->rc++;
    int64_t a, b;
    if (t->b_first) {
        b = gv_computed_get_int(t->b);
        a = gv_signal_get_int(t->a);
    } else {
        a = gv_signal_get_int(t->a);
        b = gv_computed_get_int(t->b);
    }
    if (b != 10 * a)
        t->glitches++;
    *out = gv_int(a + b);
}

static void tri_effect(void *ud)
{
    triangle *t = ud;
    t->re++;
    int64_t c = gv_computed_get_int(t->c);
    if (c != 11 * gv_signal_peek(t->a)->as.i)
        t->glitches++;
    t->seen = c;
}

static void run_triangle(bool b_first)
{
    triangle t = {.b_first = b_first};
    t.a = gv_signal_new(gv_int(1));
    t.b = gv_computed_new(tri_b, &t);
    t.c = gv_computed_new(tri_c, &t);
    gv_effect *e = gv_effect_new(tri_effect, &t);
    assert_int_equal(t.seen, 11);
    for (int64_t v = 2; v <= 10; v++) {
        assert_true(gv_signal_set_int(t.a, v));
        assert_int_equal(t.rb, (int)v);
        assert_int_equal(t.rc, (int)v);
        assert_int_equal(t.re, (int)v);
        assert_int_equal(t.seen, 11 * v);
    }
    assert_int_equal(t.glitches, 0);
    assert_int_equal(gv_signal_subscriber_count(t.a), 2);
    gv_effect_free(e);
    gv_computed_free(t.c);
    gv_computed_free(t.b);
    gv_signal_free(t.a);
}

static void test_triangle_glitch_free(void **state)
{
    (void)state;
    run_triangle(false);
    run_triangle(true);
}

/* ------------------------------------------------------------------------ */
/* Dynamic dependencies: cond ? a : b                                        */
/* ------------------------------------------------------------------------ */

typedef struct pick {
    gv_signal *cond, *a, *b;
    int runs;
} pick;

static void pick_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    pick *p = ud;
    p->runs++;
    *out = gv_int(gv_signal_get_bool(p->cond) ? gv_signal_get_int(p->a) : gv_signal_get_int(p->b));
}

static void test_dynamic_dependencies_observed(void **state)
{
    (void)state;
    pick p = {0};
    p.cond = gv_signal_new(gv_bool(true));
    p.a = gv_signal_new(gv_int(1));
    p.b = gv_signal_new(gv_int(2));
    gv_computed *c = gv_computed_new(pick_fn, &p);
    cwatch w = {.c = c};
    gv_effect *e = gv_effect_new(cwatch_fn, &w);
    assert_int_equal(w.last, 1);
    assert_int_equal(p.runs, 1);
    assert_int_equal(gv_computed_dependency_count(c), 2);
    assert_int_equal(gv_signal_subscriber_count(p.a), 1);
    assert_int_equal(gv_signal_subscriber_count(p.b), 0);

    /* b is not read yet: writing it does nothing. */
    assert_true(gv_signal_set_int(p.b, 20));
    assert_int_equal(p.runs, 1);
    assert_int_equal(w.runs, 1);

    assert_true(gv_signal_set_bool(p.cond, false));
    assert_int_equal(p.runs, 2);
    assert_int_equal(w.runs, 2);
    assert_int_equal(w.last, 20);
    assert_int_equal(gv_computed_dependency_count(c), 2);
    assert_int_equal(gv_signal_subscriber_count(p.a), 0);
    assert_int_equal(gv_signal_subscriber_count(p.b), 1);
    assert_int_equal(gv_signal_subscriber_count(p.cond), 1);

    /* The old branch no longer notifies anyone. */
    assert_true(gv_signal_set_int(p.a, 100));
    assert_true(gv_signal_set_int(p.a, 101));
    assert_int_equal(p.runs, 2);
    assert_int_equal(w.runs, 2);

    assert_true(gv_signal_set_int(p.b, 21));
    assert_int_equal(p.runs, 3);
    assert_int_equal(w.runs, 3);
    assert_int_equal(w.last, 21);

    /* And back. */
    assert_true(gv_signal_set_bool(p.cond, true));
    assert_int_equal(p.runs, 4);
    assert_int_equal(w.last, 101);
    assert_int_equal(gv_signal_subscriber_count(p.b), 0);
    assert_true(gv_signal_set_int(p.b, 22));
    assert_int_equal(p.runs, 4);
    assert_int_equal(w.runs, 4);

    gv_effect_free(e);
    gv_computed_free(c);
    gv_signal_free(p.cond);
    gv_signal_free(p.a);
    gv_signal_free(p.b);
}

static void test_dynamic_dependencies_unobserved(void **state)
{
    (void)state;
    pick p = {0};
    p.cond = gv_signal_new(gv_bool(true));
    p.a = gv_signal_new(gv_int(1));
    p.b = gv_signal_new(gv_int(2));
    gv_computed *c = gv_computed_new(pick_fn, &p);
    assert_int_equal(gv_computed_get_int(c), 1);
    assert_true(gv_signal_set_bool(p.cond, false));
    assert_int_equal(gv_computed_get_int(c), 2);
    assert_int_equal(p.runs, 2);
    assert_int_equal(gv_computed_dependency_count(c), 2);
    /* a was dropped: changing it leaves the cached value valid. */
    assert_true(gv_signal_set_int(p.a, 50));
    assert_int_equal(gv_computed_get_int(c), 2);
    assert_int_equal(p.runs, 2);
    assert_true(gv_signal_set_int(p.b, 7));
    assert_int_equal(gv_computed_get_int(c), 7);
    assert_int_equal(p.runs, 3);
    gv_computed_free(c);
    gv_signal_free(p.cond);
    gv_signal_free(p.a);
    gv_signal_free(p.b);
}

/* A computed that stops reading anything once `off` is set: its dependency
 * count goes to just `off`. */
typedef struct gate {
    gv_signal *off, *x, *y;
    int runs;
} gate;

static void gate_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    gate *g = ud;
    g->runs++;
    if (gv_signal_get_bool(g->off)) {
        *out = gv_int(-1);
        return;
    }
    *out = gv_int(gv_signal_get_int(g->x) + gv_signal_get_int(g->y));
}

static void test_dependency_count_shrinks(void **state)
{
    (void)state;
    gate g = {0};
    g.off = gv_signal_new(gv_bool(false));
    g.x = gv_signal_new(gv_int(3));
    g.y = gv_signal_new(gv_int(4));
    gv_computed *c = gv_computed_new(gate_fn, &g);
    cwatch w = {.c = c};
    gv_effect *e = gv_effect_new(cwatch_fn, &w);
    assert_int_equal(w.last, 7);
    assert_int_equal(gv_computed_dependency_count(c), 3);
    assert_true(gv_signal_set_bool(g.off, true));
    assert_int_equal(w.last, -1);
    assert_int_equal(gv_computed_dependency_count(c), 1);
    assert_int_equal(gv_signal_subscriber_count(g.x), 0);
    assert_int_equal(gv_signal_subscriber_count(g.y), 0);
    assert_true(gv_signal_set_int(g.x, 30));
    assert_true(gv_signal_set_int(g.y, 40));
    assert_int_equal(g.runs, 2);
    assert_int_equal(w.runs, 2);
    assert_true(gv_signal_set_bool(g.off, false));
    assert_int_equal(w.last, 70);
    assert_int_equal(gv_computed_dependency_count(c), 3);
    gv_effect_free(e);
    gv_computed_free(c);
    gv_signal_free(g.off);
    gv_signal_free(g.x);
    gv_signal_free(g.y);
}

/* ------------------------------------------------------------------------ */
/* Equality cut-off                                                          */
/* ------------------------------------------------------------------------ */

typedef struct parity {
    gv_signal *a;
    gv_computed *par, *label;
    int rpar, rlabel;
} parity;

static void par_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    parity *p = ud;
    p->rpar++;
    *out = gv_int(gv_signal_get_int(p->a) % 2);
}

static void label_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    parity *p = ud;
    p->rlabel++;
    *out = gv_int(gv_computed_get_int(p->par) ? 100 : 200);
}

static void test_equality_cutoff(void **state)
{
    (void)state;
    parity p = {0};
    p.a = gv_signal_new(gv_int(1));
    p.par = gv_computed_new(par_fn, &p);
    p.label = gv_computed_new(label_fn, &p);
    cwatch w = {.c = p.label};
    gv_effect *e = gv_effect_new(cwatch_fn, &w);
    assert_int_equal(w.last, 100);

    /* 1 -> 3: parity recomputes to the same 1; nothing downstream runs. */
    assert_true(gv_signal_set_int(p.a, 3));
    assert_int_equal(p.rpar, 2);
    assert_int_equal(p.rlabel, 1);
    assert_int_equal(w.runs, 1);

    assert_true(gv_signal_set_int(p.a, 4));
    assert_int_equal(p.rpar, 3);
    assert_int_equal(p.rlabel, 2);
    assert_int_equal(w.runs, 2);
    assert_int_equal(w.last, 200);

    assert_true(gv_signal_set_int(p.a, 6));
    assert_true(gv_signal_set_int(p.a, 8));
    assert_int_equal(p.rpar, 5);
    assert_int_equal(p.rlabel, 2);
    assert_int_equal(w.runs, 2);

    gv_effect_free(e);
    gv_computed_free(p.label);
    gv_computed_free(p.par);
    gv_signal_free(p.a);
}

static bool abs_equal(const gv_value *a, const gv_value *b, void *ud)
{
    int *calls = ud;
    (*calls)++;
    int64_t x = a->as.i < 0 ? -a->as.i : a->as.i;
    int64_t y = b->as.i < 0 ? -b->as.i : b->as.i;
    return a->type == b->type && x == y;
}

static void test_custom_equality_on_computed(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(5));
    lin l = {.src = s, .k = 1};
    gv_computed *c = gv_computed_new(lin_fn, &l);
    int calls = 0;
    gv_computed_set_equal(c, abs_equal, &calls);
    cwatch w = {.c = c};
    gv_effect *e = gv_effect_new(cwatch_fn, &w);
    assert_int_equal(w.last, 5);

    /* -5 is "equal" to 5: the old value is kept and nobody is notified. */
    assert_true(gv_signal_set_int(s, -5));
    assert_int_equal(l.runs, 2);
    assert_true(calls >= 1);
    assert_int_equal(w.runs, 1);
    assert_int_equal(gv_computed_get_int(c), 5);

    assert_true(gv_signal_set_int(s, -6));
    assert_int_equal(l.runs, 3);
    assert_int_equal(w.runs, 2);
    assert_int_equal(w.last, -6);

    /* Back to the default equality. */
    gv_computed_set_equal(c, NULL, NULL);
    assert_true(gv_signal_set_int(s, 6));
    assert_int_equal(w.runs, 3);
    assert_int_equal(w.last, 6);

    gv_effect_free(e);
    gv_computed_free(c);
    gv_signal_free(s);
}

/* ------------------------------------------------------------------------ */
/* Sharing                                                                   */
/* ------------------------------------------------------------------------ */

static void test_shared_computed_runs_once_per_change(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(1));
    lin l = {.src = s, .k = 3};
    gv_computed *c = gv_computed_new(lin_fn, &l);
    cwatch w[3] = {{.c = c}, {.c = c}, {.c = c}};
    gv_effect *e[3];
    for (int i = 0; i < 3; i++)
        e[i] = gv_effect_new(cwatch_fn, &w[i]);
    assert_int_equal(l.runs, 1);
    assert_int_equal(gv_computed_subscriber_count(c), 3);
    assert_int_equal(gv_signal_subscriber_count(s), 1);
    assert_true(gv_signal_set_int(s, 2));
    assert_int_equal(l.runs, 2);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(w[i].runs, 2);
        assert_int_equal(w[i].last, 6);
    }
    for (int i = 0; i < 3; i++)
        gv_effect_free(e[i]);
    assert_int_equal(gv_computed_subscriber_count(c), 0);
    gv_computed_free(c);
    gv_signal_free(s);
}

/* "even"/"odd" as a string: recomputing the same contents is a cut-off. */
/* Reads a then b, or b then a: re-ordering the same dependencies. */
typedef struct order {
    gv_signal *flip, *a, *b;
    int runs;
} order;

static void order_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    order *o = ud;
    o->runs++;
    int64_t x, y;
    if (gv_signal_get_bool(o->flip)) {
        y = gv_signal_get_int(o->b);
        x = gv_signal_get_int(o->a);
    } else {
        x = gv_signal_get_int(o->a);
        y = gv_signal_get_int(o->b);
    }
    *out = gv_int(10 * x + y);
}

static void test_dependency_order_change(void **state)
{
    (void)state;
    order o = {0};
    o.flip = gv_signal_new(gv_bool(false));
    o.a = gv_signal_new(gv_int(1));
    o.b = gv_signal_new(gv_int(2));
    gv_computed *c = gv_computed_new(order_fn, &o);
    cwatch w = {.c = c};
    gv_effect *e = gv_effect_new(cwatch_fn, &w);
    for (int i = 0; i < 4; i++) {
        assert_true(gv_signal_set_bool(o.flip, i % 2 == 0));
        assert_int_equal(gv_computed_dependency_count(c), 3);
        assert_int_equal(gv_signal_subscriber_count(o.a), 1);
        assert_int_equal(gv_signal_subscriber_count(o.b), 1);
        int runs = o.runs;
        assert_true(gv_signal_set_int(o.a, 3 + i));
        assert_true(gv_signal_set_int(o.b, 5 + i));
        assert_int_equal(o.runs, runs + 2);
        assert_int_equal(w.last, 10 * (3 + i) + 5 + i);
    }
    gv_stats st;
    gv_test_stats(&st);
    assert_int_equal(st.links, 4);
    gv_effect_free(e);
    gv_computed_free(c);
    gv_signal_free(o.flip);
    gv_signal_free(o.a);
    gv_signal_free(o.b);
}

static void test_computed_names(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(1));
    lin l = {.src = s, .k = 1};
    gv_computed *c = gv_computed_new(lin_fn, &l);
    assert_string_equal(gv_computed_name(c), "");
    char name[] = "doubled";
    gv_computed_set_name(c, name);
    name[0] = '_';
    assert_string_equal(gv_computed_name(c), "doubled");
    gv_computed_free(c);
    gv_signal_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GV_TEST(test_never_read_never_runs),
        GV_TEST(test_cached_until_dependency_changes),
        GV_TEST(test_prev_value),
        GV_TEST(test_diamond_glitch_free),
        GV_TEST(test_triangle_glitch_free),
        GV_TEST(test_dynamic_dependencies_observed),
        GV_TEST(test_dynamic_dependencies_unobserved),
        GV_TEST(test_dependency_count_shrinks),
        GV_TEST(test_equality_cutoff),
        GV_TEST(test_custom_equality_on_computed),
        GV_TEST(test_shared_computed_runs_once_per_change),
        GV_TEST(test_dependency_order_change),
        GV_TEST(test_computed_names),
    };
    return GV_RUN_TESTS(tests);
}
