/*
 * test_computed_values.c — what compute functions produce: strings (views
 * copied into the node, gv_str_copy() copies handed over, equal contents cut
 * off), pointers (owned, destroyed exactly once, equal results dropped),
 * doubles, bools, GV_NONE, and the typed getters.
 *
 * Compute and effect functions never call cmocka asserts; they count in their
 * user data and the tests assert afterwards.
 */
#include "gv_test.h"

/* ------------------------------------------------------------------------ */
/* Result types                                                              */
/* ------------------------------------------------------------------------ */

typedef struct strc {
    gv_signal *src;
    char buf[64]; /* the function formats here; the graph must copy it */
    int runs;
} strc;

static void strc_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    strc *sc = ud;
    sc->runs++;
    snprintf(sc->buf, sizeof sc->buf, "n=%lld", (long long)gv_signal_get_int(sc->src));
    *out = gv_str(sc->buf);
}

static void test_string_result_is_copied(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(1));
    strc sc = {.src = s};
    gv_computed *c = gv_computed_new(strc_fn, &sc);
    assert_string_equal(gv_computed_get_string(c), "n=1");
    memset(sc.buf, 'Z', sizeof sc.buf - 1);
    assert_string_equal(gv_computed_get_string(c), "n=1");
    assert_int_equal(gv_computed_get(c)->type, GV_STRING);
    assert_true(gv_signal_set_int(s, 12345));
    assert_string_equal(gv_computed_get_string(c), "n=12345");
    assert_int_equal(sc.runs, 2);
    assert_int_equal(gv_computed_get_int(c), 0); /* a string reads as 0 */
    gv_computed_free(c);
    gv_signal_free(s);
}

/* signals.h, gv_compute_fn: a string formatted into a buffer local to the
 * compute function must be handed over with gv_str_copy() (gv_str() would
 * leave the graph a view of a dead stack frame).  The copy is handed over:
 * LeakSanitizer checks nothing is left behind, including when the result is
 * an equal string (cut-off) or the run fails after writing *out. */
typedef struct stackstr {
    gv_signal *src;
    int runs;
    bool fail_after; /* write *out, then gv_fail */
} stackstr;

static void stackstr_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    stackstr *st = ud;
    st->runs++;
    char buf[32];
    snprintf(buf, sizeof buf, "value-%lld", (long long)(gv_signal_get_int(st->src) / 10));
    *out = gv_str_copy(buf);
    if (st->fail_after)
        (void)gv_fail(GV_EFAIL, "failed after writing a copy");
}

static void test_string_result_from_stack_buffer(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(10));
    stackstr st = {.src = s};
    gv_computed *c = gv_computed_new(stackstr_fn, &st);
    assert_string_equal(gv_computed_get_string(c), "value-1");
    assert_true(gv_signal_set_int(s, 220));
    assert_string_equal(gv_computed_get_string(c), "value-22");
    assert_true(gv_signal_set_int(s, 225)); /* same string: cut-off, copy freed */
    assert_string_equal(gv_computed_get_string(c), "value-22");
    assert_int_equal(st.runs, 3);
    st.fail_after = true;
    assert_true(gv_signal_set_int(s, 330));
    const gv_error *err = gv_computed_error(c);
    assert_non_null(err);
    assert_int_equal(err->code, GV_EFAIL);
    assert_int_equal(gv_computed_get(c)->type, GV_NONE);
    gv_computed_free(c);
    gv_signal_free(s);
}

static void test_str_copy_into_signals(void **state)
{
    (void)state;
    char buf[16] = "first";
    gv_value v = gv_str_copy(buf);
    assert_int_equal(v.type, GV_STRING);
    assert_string_equal(v.as.s, "first");
    assert_ptr_not_equal(v.as.s, buf);
    gv_signal *s = gv_signal_new(v); /* handed over */
    buf[0] = 'X';
    assert_string_equal(gv_signal_get_string(s), "first");
    assert_true(gv_signal_set(s, gv_str_copy("second")));
    assert_string_equal(gv_signal_get_string(s), "second");
    assert_false(gv_signal_set(s, gv_str_copy("second"))); /* equal: copy dropped */
    assert_true(gv_signal_set(s, gv_str_copy("a considerably longer third value")));
    assert_string_equal(gv_signal_get_string(s), "a considerably longer third value");
    assert_true(gv_signal_set_int(s, 1)); /* string released */
    assert_true(gv_signal_set(s, gv_str_copy(NULL)));
    assert_string_equal(gv_signal_get_string(s), "");
    gv_signal_free(s);
}

/* Views the graph accepts without a copy by the caller: a string read from a
 * node, and `prev`'s own string. */
typedef struct viewstr {
    gv_signal *src, *keep; /* keep: true -> return prev's string */
    int runs;
} viewstr;

static void viewstr_fn(gv_value *out, const gv_value *prev, void *ud)
{
    viewstr *v = ud;
    v->runs++;
    bool keep = gv_signal_get_bool(v->keep);
    const char *src = gv_signal_get_string(v->src);
    if (keep && prev->type == GV_STRING)
        *out = gv_str(prev->as.s);
    else
        *out = gv_str(src);
}

static void test_string_views_from_nodes_and_prev(void **state)
{
    (void)state;
    viewstr v = {0};
    v.src = gv_signal_new(gv_str("alpha"));
    v.keep = gv_signal_new(gv_bool(false));
    gv_computed *c = gv_computed_new(viewstr_fn, &v);
    assert_string_equal(gv_computed_get_string(c), "alpha");
    assert_ptr_not_equal(gv_computed_get_string(c), gv_signal_peek(v.src)->as.s);
    assert_true(gv_signal_set_bool(v.keep, true));
    assert_true(gv_signal_set_string(v.src, "beta"));
    assert_string_equal(gv_computed_get_string(c), "alpha"); /* prev kept */
    assert_true(gv_signal_set_bool(v.keep, false));
    assert_string_equal(gv_computed_get_string(c), "beta");
    assert_int_equal(v.runs, 3);
    gv_computed_free(c);
    gv_signal_free(v.src);
    gv_signal_free(v.keep);
}

typedef struct objc {
    gv_signal *src;
    int *destroyed;
    int runs;
    int prev_ok; /* prev pointed at the previous result */
    void *last;
} objc;

/* Allocates a fresh object per run holding src / 2. */
static void objc_fn(gv_value *out, const gv_value *prev, void *ud)
{
    objc *o = ud;
    o->runs++;
    if (prev->type == GV_POINTER && prev->as.p == o->last)
        o->prev_ok++;
    owned_obj *obj = owned_obj_new(o->destroyed, (int)(gv_signal_get_int(o->src) / 2));
    *out = gv_ptr(obj, owned_obj_destroy);
}

static bool obj_value_equal(const gv_value *a, const gv_value *b, void *ud)
{
    (void)ud;
    if (a->type != GV_POINTER || b->type != GV_POINTER)
        return false;
    return ((const owned_obj *)a->as.p)->value == ((const owned_obj *)b->as.p)->value;
}

static void test_pointer_result_owned(void **state)
{
    (void)state;
    int destroyed = 0;
    gv_signal *s = gv_signal_new(gv_int(0));
    objc o = {.src = s, .destroyed = &destroyed};
    gv_computed *c = gv_computed_new(objc_fn, &o);

    /* Default equality is identity: every recompute replaces the object. */
    o.last = gv_computed_get_pointer(c);
    assert_non_null(o.last);
    assert_int_equal(((owned_obj *)o.last)->value, 0);
    assert_true(gv_signal_set_int(s, 2));
    void *second = gv_computed_get_pointer(c);
    assert_ptr_not_equal(second, o.last);
    assert_int_equal(destroyed, 1);
    assert_int_equal(o.prev_ok, 1);
    o.last = second;

    /* With a value equality, an equal result is dropped (destroyed) and the
     * old object stays. */
    gv_computed_set_equal(c, obj_value_equal, NULL);
    assert_true(gv_signal_set_int(s, 3)); /* 3 / 2 == 1 == 2 / 2 */
    assert_ptr_equal(gv_computed_get_pointer(c), second);
    assert_int_equal(o.runs, 3);
    assert_int_equal(destroyed, 2);

    assert_true(gv_signal_set_int(s, 4));
    void *third = gv_computed_get_pointer(c);
    assert_ptr_not_equal(third, second);
    assert_int_equal(((owned_obj *)third)->value, 2);
    assert_int_equal(destroyed, 3);
    assert_int_equal(o.runs, 4);

    /* prev was always the value the node held, even after a dropped result. */
    assert_int_equal(o.prev_ok, 3);

    gv_computed_free(c);
    assert_int_equal(destroyed, 4); /* every object made was destroyed once */
    gv_signal_free(s);
}

typedef struct kinds {
    gv_signal *src;
    int which;
} kinds;

static void kinds_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    kinds *k = ud;
    int64_t v = gv_signal_get_int(k->src);
    switch (k->which) {
    case 0: *out = gv_double((double)v + 0.5); break;
    case 1: *out = gv_bool(v != 0); break;
    default: break; /* leaves *out as GV_NONE */
    }
}

static void test_typed_getters(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(3));
    kinds kd = {.src = s, .which = 0}, kb = {.src = s, .which = 1}, kn = {.src = s, .which = 2};
    gv_computed *d = gv_computed_new(kinds_fn, &kd);
    gv_computed *b = gv_computed_new(kinds_fn, &kb);
    gv_computed *n = gv_computed_new(kinds_fn, &kn);
    assert_true(gv_computed_get_double(d) == 3.5);
    assert_int_equal(gv_computed_get_int(d), 3);
    assert_true(gv_computed_get_bool(b));
    assert_int_equal(gv_computed_get(b)->type, GV_BOOL);
    assert_int_equal(gv_computed_get(n)->type, GV_NONE);
    assert_null(gv_computed_error(n)); /* GV_NONE is a value, not a failure */
    assert_null(gv_computed_get_string(d));
    assert_null(gv_computed_get_pointer(d));
    assert_true(gv_signal_set_int(s, 0));
    assert_false(gv_computed_get_bool(b));
    assert_true(gv_computed_get_double(d) == 0.5);
    gv_computed_free(d);
    gv_computed_free(b);
    gv_computed_free(n);
    gv_signal_free(s);
}

typedef struct parity_str {
    gv_signal *src;
    int runs;
    char buf[8]; /* reused by every run: the node must keep its own copy */
} parity_str;

static void parity_str_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    parity_str *p = ud;
    p->runs++;
    snprintf(p->buf, sizeof p->buf, "%s", gv_signal_get_int(p->src) % 2 ? "odd" : "even");
    *out = gv_str(p->buf);
}

typedef struct strwatch {
    gv_computed *c;
    int runs;
    char last[16];
} strwatch;

static void strwatch_fn(void *ud)
{
    strwatch *w = ud;
    w->runs++;
    const char *s = gv_computed_get_string(w->c);
    snprintf(w->last, sizeof w->last, "%s", s ? s : "(null)");
}

static void test_string_equality_cutoff(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(2));
    parity_str p = {.src = s};
    gv_computed *c = gv_computed_new(parity_str_fn, &p);
    strwatch w = {.c = c};
    gv_effect *e = gv_effect_new(strwatch_fn, &w);
    assert_string_equal(w.last, "even");
    assert_true(gv_signal_set_int(s, 4));
    assert_int_equal(p.runs, 2);
    assert_int_equal(w.runs, 1);
    assert_true(gv_signal_set_int(s, 5));
    assert_int_equal(w.runs, 2);
    assert_string_equal(w.last, "odd");
    assert_true(gv_signal_set_int(s, 7));
    assert_int_equal(p.runs, 4);
    assert_int_equal(w.runs, 2);
    gv_effect_free(e);
    gv_computed_free(c);
    gv_signal_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GV_TEST(test_string_result_is_copied),
        GV_TEST(test_string_result_from_stack_buffer),
        GV_TEST(test_str_copy_into_signals),
        GV_TEST(test_string_views_from_nodes_and_prev),
        GV_TEST(test_pointer_result_owned),
        GV_TEST(test_typed_getters),
        GV_TEST(test_string_equality_cutoff),
    };
    return GV_RUN_TESTS(tests);
}
