/*
 * test_effect.c — gv_effect: run counts, cleanups and their order, disposal
 * (also from inside the effect's own run), ownership of nested effects,
 * scopes, and writes made by effects.
 *
 * Effect functions never call cmocka asserts (a failed assert would longjmp
 * through library frames); they record into their user data and the tests
 * assert afterwards.
 */
#include "gv_test.h"

/* A log of single characters, appended by cleanups, to check their order. */
typedef struct charlog {
    char buf[128];
    size_t len;
} charlog;

static void charlog_put(charlog *l, char c)
{
    if (l->len + 1 < sizeof l->buf) {
        l->buf[l->len++] = c;
        l->buf[l->len] = '\0';
    }
}

static void charlog_clear(charlog *l)
{
    l->len = 0;
    l->buf[0] = '\0';
}

/* A cleanup that logs one character. */
typedef struct mark {
    charlog *log;
    char ch;
} mark;

static void mark_cleanup(void *ud)
{
    mark *m = ud;
    charlog_put(m->log, m->ch);
}

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

static void count_cleanup(void *ud)
{
    (*(int *)ud)++;
}

static void test_on_cleanup_outside_effect(void **state)
{
    (void)state;
    int n = 0;
    assert_false(gv_on_cleanup(count_cleanup, &n));
    assert_int_equal(n, 0);
}

/* ------------------------------------------------------------------------ */
/* Disposal                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct selfkill {
    gv_signal *s;
    gv_effect *self; /* set by the test after creation */
    int runs, cleanups, kids_alive;
} selfkill;

static void kid_dec(void *ud)
{
    (*(int *)ud)--;
}

static void kid_fn(void *ud)
{
    int *alive = ud;
    (*alive)++;
    (void)gv_on_cleanup(kid_dec, alive);
}

static void selfkill_fn(void *ud)
{
    selfkill *k = ud;
    k->runs++;
    int64_t v = gv_signal_get_int(k->s);
    (void)gv_on_cleanup(count_cleanup, &k->cleanups);
    (void)gv_effect_new(kid_fn, &k->kids_alive);
    if (v == 3 && k->self) {
        gv_effect_free(k->self);
        /* The run goes on until it returns: reading is still harmless. */
        (void)gv_signal_get_int(k->s);
    }
}

static void test_dispose_inside_own_run(void **state)
{
    (void)state;
    selfkill k = {0};
    k.s = gv_signal_new(gv_int(1));
    k.self = gv_effect_new(selfkill_fn, &k);
    assert_int_equal(k.runs, 1);
    assert_int_equal(k.kids_alive, 1);
    assert_true(gv_signal_set_int(k.s, 2));
    assert_int_equal(k.runs, 2);
    assert_int_equal(k.cleanups, 1);
    assert_int_equal(k.kids_alive, 1);

    assert_true(gv_signal_set_int(k.s, 3)); /* the effect frees itself */
    assert_int_equal(k.runs, 3);
    assert_int_equal(k.cleanups, 3); /* the one of the last run ran too */
    assert_int_equal(k.kids_alive, 0);
    assert_int_equal(gv_signal_subscriber_count(k.s), 0);
    gv_stats st;
    gv_test_stats(&st);
    assert_int_equal(st.effects, 0);

    assert_true(gv_signal_set_int(k.s, 4));
    assert_true(gv_signal_set_int(k.s, 3));
    assert_int_equal(k.runs, 3);
    assert_int_equal(k.cleanups, 3);
    gv_signal_free(k.s);
}

/* Effect A frees effect B (owned by the caller) while B is queued. */
typedef struct killer {
    gv_signal *s, *t;
    gv_effect *victim;
    int runs;
} killer;

static void killer_fn(void *ud)
{
    killer *k = ud;
    k->runs++;
    if (gv_signal_get_int(k->s) == 2 && k->victim) {
        (void)gv_signal_set_int(k->t, 99); /* queues the victim */
        gv_effect_free(k->victim);
        k->victim = NULL;
    }
}

static void test_dispose_queued_effect(void **state)
{
    (void)state;
    killer k = {0};
    k.s = gv_signal_new(gv_int(0));
    k.t = gv_signal_new(gv_int(0));
    swatch w = {.s = k.t};
    gv_effect *victim = gv_effect_new(swatch_fn, &w);
    gv_effect *ek = gv_effect_new(killer_fn, &k);
    k.victim = victim;
    assert_true(gv_signal_set_int(k.s, 2));
    assert_int_equal(k.runs, 2);
    assert_int_equal(w.runs, 1); /* disposed before its queued run */
    assert_int_equal(gv_signal_get_int(k.t), 99);
    assert_int_equal(gv_signal_subscriber_count(k.t), 0);
    gv_effect_free(ek);
    gv_signal_free(k.s);
    gv_signal_free(k.t);
}

/* Parent creating two children that read `t`. */
typedef struct brood {
    gv_signal *p, *t;
    swatch kid[2];
    int runs, created;
} brood;

static void brood_fn(void *ud)
{
    brood *b = ud;
    b->runs++;
    (void)gv_signal_get_int(b->p);
    for (int i = 0; i < 2; i++) {
        b->kid[i].s = b->t;
        if (gv_effect_new(swatch_fn, &b->kid[i]))
            b->created++;
    }
}

static void test_dispose_parent_disposes_children(void **state)
{
    (void)state;
    brood b = {0};
    b.p = gv_signal_new(gv_int(0));
    b.t = gv_signal_new(gv_int(0));
    gv_effect *e = gv_effect_new(brood_fn, &b);
    assert_int_equal(b.created, 2);
    assert_int_equal(gv_signal_subscriber_count(b.t), 2);
    /* The children subscribed themselves, not the parent. */
    assert_int_equal(gv_effect_dependency_count(e), 1);
    assert_true(gv_signal_set_int(b.t, 1));
    assert_int_equal(b.kid[0].runs, 2);
    assert_int_equal(b.kid[1].runs, 2);
    assert_int_equal(b.runs, 1);

    gv_effect_free(e);
    gv_stats st;
    gv_test_stats(&st);
    assert_int_equal(st.effects, 0);
    assert_int_equal(gv_signal_subscriber_count(b.t), 0);
    assert_true(gv_signal_set_int(b.t, 2));
    assert_int_equal(b.kid[0].runs, 2);
    assert_int_equal(b.kid[1].runs, 2);
    gv_signal_free(b.p);
    gv_signal_free(b.t);
}

/* Parent reads `p` and creates one child reading `c`. */
typedef struct nest {
    gv_signal *p, *c;
    int parent_runs, created, child_runs, alive;
} nest;

static void nest_child_dec(void *ud)
{
    nest *n = ud;
    n->alive--;
}

static void nest_child(void *ud)
{
    nest *n = ud;
    n->child_runs++;
    n->alive++;
    (void)gv_signal_get_int(n->c);
    (void)gv_on_cleanup(nest_child_dec, n);
}

static void nest_parent(void *ud)
{
    nest *n = ud;
    n->parent_runs++;
    (void)gv_signal_get_int(n->p);
    if (gv_effect_new(nest_child, n))
        n->created++;
}

static void test_nested_child_recreated_on_parent_rerun(void **state)
{
    (void)state;
    nest n = {0};
    n.p = gv_signal_new(gv_int(0));
    n.c = gv_signal_new(gv_int(0));
    gv_effect *e = gv_effect_new(nest_parent, &n);
    assert_int_equal(n.created, 1);
    assert_int_equal(n.alive, 1);
    assert_int_equal(n.child_runs, 1);

    assert_true(gv_signal_set_int(n.c, 1)); /* only the child re-runs */
    assert_int_equal(n.child_runs, 2);
    assert_int_equal(n.parent_runs, 1);
    assert_int_equal(n.alive, 1);

    for (int i = 1; i <= 4; i++) {
        assert_true(gv_signal_set_int(n.p, i));
        assert_int_equal(n.parent_runs, 1 + i);
        assert_int_equal(n.created, 1 + i);
        assert_int_equal(n.alive, 1); /* the old child was disposed */
        assert_int_equal(gv_signal_subscriber_count(n.c), 1);
    }
    assert_int_equal(n.child_runs, 6);
    gv_stats st;
    gv_test_stats(&st);
    assert_int_equal(st.effects, 2);

    assert_true(gv_signal_set_int(n.c, 2)); /* exactly one child is alive */
    assert_int_equal(n.child_runs, 7);

    gv_effect_free(e);
    assert_int_equal(n.alive, 0);
    assert_int_equal(gv_signal_subscriber_count(n.c), 0);
    gv_signal_free(n.p);
    gv_signal_free(n.c);
}

/* Parent and child both read `s`, so one write queues both.  The parent must
 * run first: its re-run disposes the old child, which must then not run. */
typedef struct family {
    gv_signal *s;
    bool child_first; /* parent reads s after creating the child */
    int parent_runs, child_runs;
} family;

static void family_child(void *ud)
{
    family *f = ud;
    f->child_runs++;
    (void)gv_signal_get_int(f->s);
}

static void family_parent(void *ud)
{
    family *f = ud;
    f->parent_runs++;
    if (!f->child_first)
        (void)gv_signal_get_int(f->s);
    (void)gv_effect_new(family_child, f);
    if (f->child_first)
        (void)gv_signal_get_int(f->s);
}

static void run_family(bool child_first)
{
    family f = {.child_first = child_first};
    f.s = gv_signal_new(gv_int(0));
    gv_effect *e = gv_effect_new(family_parent, &f);
    assert_int_equal(gv_signal_subscriber_count(f.s), 2);
    for (int i = 1; i <= 3; i++) {
        assert_true(gv_signal_set_int(f.s, i));
        assert_int_equal(f.parent_runs, 1 + i);
        assert_int_equal(f.child_runs, 1 + i); /* only the new child's first run */
        assert_int_equal(gv_signal_subscriber_count(f.s), 2);
    }
    gv_effect_free(e);
    gv_signal_free(f.s);
}

static void test_queued_child_of_queued_parent_does_not_run(void **state)
{
    (void)state;
    run_family(false);
    run_family(true);
}

/* A child effect that disposes its own parent (from the child's run). */
typedef struct parricide {
    gv_signal *p, *c;
    gv_effect *parent; /* set by the test after creation */
    int parent_runs, child_runs, parent_cleanups, child_cleanups;
} parricide;

static void parricide_child_cleanup(void *ud)
{
    ((parricide *)ud)->child_cleanups++;
}

static void parricide_parent_cleanup(void *ud)
{
    ((parricide *)ud)->parent_cleanups++;
}

static void parricide_child(void *ud)
{
    parricide *x = ud;
    x->child_runs++;
    (void)gv_on_cleanup(parricide_child_cleanup, x);
    if (gv_signal_get_int(x->c) == 1 && x->parent) {
        gv_effect *victim = x->parent;
        x->parent = NULL;
        gv_effect_free(victim); /* disposes this running child too */
    }
}

static void parricide_parent(void *ud)
{
    parricide *x = ud;
    x->parent_runs++;
    (void)gv_signal_get_int(x->p);
    (void)gv_on_cleanup(parricide_parent_cleanup, x);
    (void)gv_effect_new(parricide_child, x);
}

static void test_child_disposes_parent(void **state)
{
    (void)state;
    parricide x = {0};
    x.p = gv_signal_new(gv_int(0));
    x.c = gv_signal_new(gv_int(0));
    x.parent = gv_effect_new(parricide_parent, &x);
    assert_true(gv_signal_set_int(x.c, 1));
    assert_int_equal(x.child_runs, 2);
    assert_int_equal(x.child_cleanups, 2);
    assert_int_equal(x.parent_cleanups, 1);
    gv_stats st;
    gv_test_stats(&st);
    assert_int_equal(st.effects, 0);
    assert_int_equal(gv_signal_subscriber_count(x.p), 0);
    assert_int_equal(gv_signal_subscriber_count(x.c), 0);
    assert_true(gv_signal_set_int(x.p, 1));
    assert_true(gv_signal_set_int(x.c, 2));
    assert_int_equal(x.parent_runs, 1);
    assert_int_equal(x.child_runs, 2);
    gv_signal_free(x.p);
    gv_signal_free(x.c);
}

/* A cleanup that writes a signal another effect reads. */
typedef struct writing_cleanup {
    gv_signal *trigger, *out;
    int runs;
} writing_cleanup;

static void wc_cleanup(void *ud)
{
    writing_cleanup *w = ud;
    (void)gv_signal_set_int(w->out, gv_signal_peek(w->out)->as.i + 1);
}

static void wc_fn(void *ud)
{
    writing_cleanup *w = ud;
    w->runs++;
    (void)gv_signal_get_int(w->trigger);
    (void)gv_on_cleanup(wc_cleanup, w);
}

static void test_cleanup_may_write_signals(void **state)
{
    (void)state;
    writing_cleanup w = {0};
    w.trigger = gv_signal_new(gv_int(0));
    w.out = gv_signal_new(gv_int(0));
    swatch reader = {.s = w.out};
    gv_effect *er = gv_effect_new(swatch_fn, &reader);
    gv_effect *ew = gv_effect_new(wc_fn, &w);
    assert_true(gv_signal_set_int(w.trigger, 1)); /* cleanup before re-run writes out */
    assert_int_equal(reader.runs, 2);
    assert_int_equal(reader.last, 1);
    gv_effect_free(ew); /* cleanup on dispose writes out again, outside any flush */
    assert_int_equal(reader.runs, 3);
    assert_int_equal(reader.last, 2);
    gv_effect_free(er);
    gv_signal_free(w.trigger);
    gv_signal_free(w.out);
}

/* ------------------------------------------------------------------------ */
/* Scopes                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct scoped {
    gv_signal *s;
    mark m;
    int runs;
} scoped;

static void scoped_fn(void *ud)
{
    scoped *x = ud;
    x->runs++;
    (void)gv_signal_get_int(x->s);
    (void)gv_on_cleanup(mark_cleanup, &x->m);
}

static void test_scope_disposes_group(void **state)
{
    (void)state;
    charlog log = {0};
    gv_signal *s = gv_signal_new(gv_int(0));
    scoped x[3] = {{s, {&log, 'a'}, 0}, {s, {&log, 'b'}, 0}, {s, {&log, 'c'}, 0}};
    gv_scope *sc = gv_scope_new();
    assert_non_null(sc);
    gv_scope_enter(sc);
    for (int i = 0; i < 3; i++)
        assert_non_null(gv_effect_new(scoped_fn, &x[i]));
    gv_scope_leave(sc);

    /* Created after leave: owned by the caller, not the scope. */
    scoped outside = {s, {&log, 'z'}, 0};
    gv_effect *eo = gv_effect_new(scoped_fn, &outside);

    gv_stats st;
    gv_test_stats(&st);
    assert_int_equal(st.scopes, 1);
    assert_int_equal(st.effects, 4);
    assert_true(gv_signal_set_int(s, 1));
    for (int i = 0; i < 3; i++)
        assert_int_equal(x[i].runs, 2);
    charlog_clear(&log);

    gv_scope_free(sc);
    assert_string_equal(log.buf, "cba"); /* newest first */
    gv_test_stats(&st);
    assert_int_equal(st.scopes, 0);
    assert_int_equal(st.effects, 1);
    assert_true(gv_signal_set_int(s, 2));
    for (int i = 0; i < 3; i++)
        assert_int_equal(x[i].runs, 2);
    assert_int_equal(outside.runs, 3);

    gv_effect_free(eo);
    gv_signal_free(s);
}

static void test_nested_scopes(void **state)
{
    (void)state;
    charlog log = {0};
    gv_signal *s = gv_signal_new(gv_int(0));
    scoped x[3] = {{s, {&log, '1'}, 0}, {s, {&log, '2'}, 0}, {s, {&log, '3'}, 0}};
    gv_scope *outer = gv_scope_new();
    gv_scope_enter(outer);
    assert_non_null(gv_effect_new(scoped_fn, &x[0]));
    gv_scope *inner = gv_scope_new(); /* owned by `outer` */
    gv_scope_enter(inner);
    assert_non_null(gv_effect_new(scoped_fn, &x[1]));
    gv_scope_leave(inner);
    assert_non_null(gv_effect_new(scoped_fn, &x[2]));
    gv_scope_leave(outer);

    gv_stats st;
    gv_test_stats(&st);
    assert_int_equal(st.scopes, 2);
    assert_int_equal(st.effects, 3);

    /* Newest first: effect 3, then the inner scope (effect 2), then effect 1. */
    gv_scope_free(outer);
    assert_string_equal(log.buf, "321");
    gv_test_stats(&st);
    assert_int_equal(st.scopes, 0);
    assert_int_equal(st.effects, 0);
    gv_signal_free(s);
}

static void test_free_scope_member_early(void **state)
{
    (void)state;
    charlog log = {0};
    gv_signal *s = gv_signal_new(gv_int(0));
    scoped x[2] = {{s, {&log, 'a'}, 0}, {s, {&log, 'b'}, 0}};
    gv_scope *sc = gv_scope_new();
    gv_scope_enter(sc);
    gv_effect *ea = gv_effect_new(scoped_fn, &x[0]);
    assert_non_null(gv_effect_new(scoped_fn, &x[1]));
    gv_scope_leave(sc);

    /* Freeing a member before its scope is allowed; the scope forgets it. */
    gv_effect_free(ea);
    assert_string_equal(log.buf, "a");
    gv_scope_free(sc);
    assert_string_equal(log.buf, "ab");
    gv_signal_free(s);
}

/* A scope holding a parent effect whose run creates a child: the child is
 * owned by the parent, and freeing the scope takes both. */
static void test_scope_with_nested_effects(void **state)
{
    (void)state;
    nest n = {0};
    n.p = gv_signal_new(gv_int(0));
    n.c = gv_signal_new(gv_int(0));
    gv_scope *sc = gv_scope_new();
    gv_scope_enter(sc);
    assert_non_null(gv_effect_new(nest_parent, &n));
    gv_scope_leave(sc);
    assert_true(gv_signal_set_int(n.p, 1));
    assert_int_equal(n.alive, 1);
    assert_int_equal(n.created, 2);
    gv_scope_free(sc);
    assert_int_equal(n.alive, 0);
    gv_signal_free(n.p);
    gv_signal_free(n.c);
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

/* Many cleanups and children in one run (past any small initial capacity). */
#define MANY 300

typedef struct many {
    gv_signal *s;
    int order[MANY]; /* cleanup indices in the order they ran */
    int ncalled;
    int children_alive;
    struct many_item {
        struct many *m;
        int idx;
    } items[MANY];
    int runs;
} many;

static void many_cleanup(void *ud)
{
    struct many_item *it = ud;
    if (it->m->ncalled < MANY)
        it->m->order[it->m->ncalled] = it->idx;
    it->m->ncalled++;
}

static void many_child_cleanup(void *ud)
{
    ((many *)ud)->children_alive--;
}

static void many_child(void *ud)
{
    many *m = ud;
    m->children_alive++;
    (void)gv_on_cleanup(many_child_cleanup, m);
}

static void many_fn(void *ud)
{
    many *m = ud;
    m->runs++;
    (void)gv_signal_get_int(m->s);
    for (int i = 0; i < MANY; i++) {
        m->items[i] = (struct many_item){m, i};
        (void)gv_on_cleanup(many_cleanup, &m->items[i]);
        (void)gv_effect_new(many_child, m);
    }
}

static void test_many_cleanups_and_children(void **state)
{
    (void)state;
    many *m = calloc(1, sizeof *m);
    assert_non_null(m);
    m->s = gv_signal_new(gv_int(0));
    gv_effect *e = gv_effect_new(many_fn, m);
    assert_int_equal(m->children_alive, MANY);
    gv_stats st;
    gv_test_stats(&st);
    assert_int_equal(st.effects, MANY + 1);

    assert_true(gv_signal_set_int(m->s, 1));
    assert_int_equal(m->ncalled, MANY);
    for (int i = 0; i < MANY; i++)
        assert_int_equal(m->order[i], MANY - 1 - i); /* newest first */
    assert_int_equal(m->children_alive, MANY);

    m->ncalled = 0;
    gv_effect_free(e);
    assert_int_equal(m->ncalled, MANY);
    assert_int_equal(m->order[0], MANY - 1);
    assert_int_equal(m->children_alive, 0);
    gv_signal_free(m->s);
    free(m);
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
        GV_TEST(test_dispose_inside_own_run),
        GV_TEST(test_dispose_queued_effect),
        GV_TEST(test_dispose_parent_disposes_children),
        GV_TEST(test_nested_child_recreated_on_parent_rerun),
        GV_TEST(test_queued_child_of_queued_parent_does_not_run),
        GV_TEST(test_child_disposes_parent),
        GV_TEST(test_cleanup_may_write_signals),
        GV_TEST(test_scope_disposes_group),
        GV_TEST(test_nested_scopes),
        GV_TEST(test_free_scope_member_early),
        GV_TEST(test_scope_with_nested_effects),
        GV_TEST(test_effect_writes_signal_read_by_other_effect),
        GV_TEST(test_effect_write_chain),
        GV_TEST(test_effect_writes_own_dependency_converges),
        GV_TEST(test_effect_writes_flush_after_its_run),
        GV_TEST(test_many_cleanups_and_children),
        GV_TEST(test_effect_names),
    };
    return GV_RUN_TESTS(tests);
}
