/*
 * test_owner.c — ownership of effects: disposal (also from inside the
 * effect's own run, of a queued effect, of a parent by its child), nested
 * effects disposed and re-created with their parent's runs, scopes disposing
 * groups, and large numbers of cleanups and children.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
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
        GV_TEST(test_many_cleanups_and_children),
    };
    return GV_RUN_TESTS(tests);
}
