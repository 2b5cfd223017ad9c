/*
 * test_signal.c — gv_signal: values of every type, get/peek/set/update,
 * "equal write notifies nothing", custom equality, string copying, pointer
 * ownership (destroy counted) and the gv_value helpers.
 */
#include "gv_test.h"

/* An effect that records how often it ran and what it saw.  Counting runs is
 * how these tests observe notifications: a write that notifies nobody must
 * leave `runs` unchanged. */
typedef struct watch {
    gv_signal *s;
    int runs;
    int64_t last_int;
} watch;

static void watch_int_fn(void *ud)
{
    watch *w = ud;
    w->runs++;
    w->last_int = gv_signal_get_int(w->s);
}

/* ------------------------------------------------------------------------ */

static void test_int_get_peek_set(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(7));
    assert_non_null(s);

    const gv_value *v = gv_signal_get(s);
    assert_int_equal(v->type, GV_INT);
    assert_int_equal(v->as.i, 7);
    const gv_value *p = gv_signal_peek(s);
    assert_int_equal(p->type, GV_INT);
    assert_int_equal(p->as.i, 7);
    assert_int_equal(gv_signal_get_int(s), 7);

    assert_true(gv_signal_set_int(s, -9));
    assert_int_equal(gv_signal_get_int(s), -9);
    assert_int_equal(gv_signal_peek(s)->as.i, -9);
    /* Same value again: nothing happens. */
    assert_false(gv_signal_set_int(s, -9));
    assert_true(gv_signal_set(s, gv_int(INT64_MAX)));
    assert_true(gv_signal_get_int(s) == INT64_MAX);
    assert_true(gv_signal_set(s, gv_int(INT64_MIN)));
    assert_true(gv_signal_get_int(s) == INT64_MIN);

    gv_signal_free(s);
}

static void test_equal_write_notifies_nothing(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(5));
    watch w = {.s = s};
    gv_effect *e = gv_effect_new(watch_int_fn, &w);
    assert_non_null(e);
    assert_int_equal(w.runs, 1);
    assert_int_equal(w.last_int, 5);

    assert_false(gv_signal_set_int(s, 5));
    assert_int_equal(w.runs, 1);

    /* Outside a batch the effect has run before set returns. */
    assert_true(gv_signal_set_int(s, 6));
    assert_int_equal(w.runs, 2);
    assert_int_equal(w.last_int, 6);

    assert_false(gv_signal_set(s, gv_int(6)));
    assert_int_equal(w.runs, 2);

    assert_true(gv_signal_set_int(s, 7));
    assert_true(gv_signal_set_int(s, 8));
    assert_int_equal(w.runs, 4);
    assert_int_equal(w.last_int, 8);

    gv_effect_free(e);
    gv_signal_free(s);
}

/* ------------------------------------------------------------------------ */
/* update                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct add_ud {
    int64_t delta;
    int calls;
    int64_t seen; /* the current value handed to the update function */
} add_ud;

static gv_value add_fn(const gv_value *current, void *ud)
{
    add_ud *a = ud;
    a->calls++;
    a->seen = current->as.i;
    return gv_int(current->as.i + a->delta);
}

static void test_update(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(10));
    watch w = {.s = s};
    gv_effect *e = gv_effect_new(watch_int_fn, &w);

    add_ud a = {.delta = 5};
    assert_true(gv_signal_update(s, add_fn, &a));
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.seen, 10);
    assert_int_equal(gv_signal_get_int(s), 15);
    assert_int_equal(w.runs, 2);
    assert_int_equal(w.last_int, 15);

    /* An update producing the same value is an equal write. */
    add_ud zero = {.delta = 0};
    assert_false(gv_signal_update(s, add_fn, &zero));
    assert_int_equal(zero.calls, 1);
    assert_int_equal(zero.seen, 15);
    assert_int_equal(w.runs, 2);

    gv_effect_free(e);
    gv_signal_free(s);
}

/* An effect that bumps `counter` with gv_signal_update whenever `trigger`
 * changes.  update reads the current value without subscribing, so the effect
 * must depend on `trigger` only — otherwise it would re-trigger itself. */
typedef struct bump {
    gv_signal *trigger, *counter;
    add_ud add;
    int runs;
} bump;

static void bump_fn(void *ud)
{
    bump *b = ud;
    b->runs++;
    (void)gv_signal_get_int(b->trigger);
    assert_true(gv_signal_update(b->counter, add_fn, &b->add));
}

static void test_update_inside_effect_does_not_subscribe(void **state)
{
    (void)state;
    bump b = {.add = {.delta = 1}};
    b.trigger = gv_signal_new(gv_int(0));
    b.counter = gv_signal_new(gv_int(100));
    gv_effect *e = gv_effect_new(bump_fn, &b);
    assert_int_equal(b.runs, 1);
    assert_int_equal(gv_signal_peek(b.counter)->as.i, 101);
    assert_int_equal(gv_effect_dependency_count(e), 1);
    assert_int_equal(gv_signal_subscriber_count(b.trigger), 1);
    assert_int_equal(gv_signal_subscriber_count(b.counter), 0);

    assert_true(gv_signal_set_int(b.trigger, 1));
    assert_int_equal(b.runs, 2);
    assert_int_equal(gv_signal_peek(b.counter)->as.i, 102);

    /* Writing the counter from outside does not run the effect. */
    assert_true(gv_signal_set_int(b.counter, 0));
    assert_int_equal(b.runs, 2);

    gv_effect_free(e);
    gv_signal_free(b.trigger);
    gv_signal_free(b.counter);
}

/* ------------------------------------------------------------------------ */
/* Custom equality                                                           */
/* ------------------------------------------------------------------------ */

typedef struct eq_calls {
    int calls;
} eq_calls;

/* |a| == |b|: 5 and -5 are "the same". */
static bool abs_equal(const gv_value *a, const gv_value *b, void *ud)
{
    eq_calls *c = ud;
    c->calls++;
    int64_t x = a->as.i < 0 ? -a->as.i : a->as.i;
    int64_t y = b->as.i < 0 ? -b->as.i : b->as.i;
    return a->type == b->type && x == y;
}

static void test_custom_equality_abs(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(5));
    eq_calls calls = {0};
    gv_signal_set_equal(s, abs_equal, &calls);
    watch w = {.s = s};
    gv_effect *e = gv_effect_new(watch_int_fn, &w);

    assert_false(gv_signal_set_int(s, -5));
    assert_true(calls.calls >= 1);
    assert_int_equal(gv_signal_get_int(s), 5); /* the old value is kept */
    assert_int_equal(w.runs, 1);

    assert_true(gv_signal_set_int(s, -6));
    assert_int_equal(gv_signal_get_int(s), -6);
    assert_int_equal(w.runs, 2);
    assert_int_equal(w.last_int, -6);

    assert_false(gv_signal_set_int(s, 6));
    assert_int_equal(gv_signal_get_int(s), -6);
    assert_int_equal(w.runs, 2);

    /* NULL restores the default equality: 6 != -6 again. */
    gv_signal_set_equal(s, NULL, NULL);
    int before = calls.calls;
    assert_true(gv_signal_set_int(s, 6));
    assert_int_equal(calls.calls, before);
    assert_int_equal(gv_signal_get_int(s), 6);
    assert_int_equal(w.runs, 3);

    gv_effect_free(e);
    gv_signal_free(s);
}

static bool epsilon_equal(const gv_value *a, const gv_value *b, void *ud)
{
    const double *eps = ud;
    double d = gv_value_to_double(a) - gv_value_to_double(b);
    return (d < 0 ? -d : d) <= *eps;
}

typedef struct dwatch {
    gv_signal *s;
    int runs;
    double last;
} dwatch;

static void dwatch_fn(void *ud)
{
    dwatch *w = ud;
    w->runs++;
    w->last = gv_signal_get_double(w->s);
}

static void test_custom_equality_epsilon_double(void **state)
{
    (void)state;
    static double eps = 0.01;
    gv_signal *s = gv_signal_new(gv_double(1.0));
    gv_signal_set_equal(s, epsilon_equal, &eps);
    dwatch w = {.s = s};
    gv_effect *e = gv_effect_new(dwatch_fn, &w);
    assert_int_equal(w.runs, 1);

    assert_false(gv_signal_set_double(s, 1.005));
    assert_true(gv_signal_get_double(s) == 1.0);
    assert_int_equal(w.runs, 1);

    assert_true(gv_signal_set_double(s, 1.5));
    assert_int_equal(w.runs, 2);
    assert_true(w.last == 1.5);

    assert_false(gv_signal_set_double(s, 1.4999));
    assert_true(gv_signal_get_double(s) == 1.5);
    assert_int_equal(w.runs, 2);

    gv_effect_free(e);
    gv_signal_free(s);
}

/* ------------------------------------------------------------------------ */
/* Doubles, bools, conversions                                               */
/* ------------------------------------------------------------------------ */

static void test_double_and_bool(void **state)
{
    (void)state;
    gv_signal *d = gv_signal_new(gv_double(2.75));
    assert_int_equal(gv_signal_get(d)->type, GV_DOUBLE);
    assert_true(gv_signal_get_double(d) == 2.75);
    assert_int_equal(gv_signal_get_int(d), 2); /* double -> int truncates */
    assert_true(gv_signal_get_bool(d));
    assert_null(gv_signal_get_string(d));
    assert_null(gv_signal_get_pointer(d));
    assert_false(gv_signal_set_double(d, 2.75));
    assert_true(gv_signal_set_double(d, -3.5));
    assert_int_equal(gv_signal_get_int(d), -3);
    assert_true(gv_signal_set_double(d, 0.0));
    assert_false(gv_signal_get_bool(d));

    gv_signal *b = gv_signal_new(gv_bool(false));
    assert_int_equal(gv_signal_get(b)->type, GV_BOOL);
    assert_false(gv_signal_get_bool(b));
    assert_int_equal(gv_signal_get_int(b), 0);
    assert_false(gv_signal_set_bool(b, false));
    assert_true(gv_signal_set_bool(b, true));
    assert_true(gv_signal_get_bool(b));
    assert_int_equal(gv_signal_get_int(b), 1);
    assert_true(gv_signal_get_double(b) == 1.0);
    assert_false(gv_signal_set_bool(b, true));

    gv_signal_free(d);
    gv_signal_free(b);
}

static void test_type_change_is_a_change(void **state)
{
    (void)state;
    /* The default equality requires the same type: int 1 and double 1.0 are
     * different values, so the write goes through and notifies. */
    gv_signal *s = gv_signal_new(gv_int(1));
    watch w = {.s = s};
    gv_effect *e = gv_effect_new(watch_int_fn, &w);
    assert_true(gv_signal_set_double(s, 1.0));
    assert_int_equal(gv_signal_get(s)->type, GV_DOUBLE);
    assert_int_equal(w.runs, 2);
    assert_int_equal(w.last_int, 1);
    assert_true(gv_signal_set_string(s, "1"));
    assert_int_equal(gv_signal_get(s)->type, GV_STRING);
    assert_int_equal(w.runs, 3);
    assert_int_equal(w.last_int, 0); /* a string reads as 0 */
    assert_true(gv_signal_set_int(s, 1));
    assert_int_equal(w.runs, 4);
    assert_true(gv_signal_set(s, gv_none()));
    assert_int_equal(gv_signal_get(s)->type, GV_NONE);
    assert_int_equal(w.runs, 5);
    assert_false(gv_signal_set(s, gv_none()));
    assert_int_equal(w.runs, 5);
    gv_effect_free(e);
    gv_signal_free(s);
}

static void test_value_conversions(void **state)
{
    (void)state;
    gv_value i = gv_int(-42), d = gv_double(-2.9), bt = gv_bool(true), bf = gv_bool(false);
    gv_value s = gv_str("12"), n = gv_none();
    int obj = 0;
    gv_value p = gv_ptr(&obj, NULL);

    assert_int_equal(gv_value_to_int(&i), -42);
    assert_int_equal(gv_value_to_int(&d), -2);
    assert_int_equal(gv_value_to_int(&bt), 1);
    assert_int_equal(gv_value_to_int(&bf), 0);
    assert_int_equal(gv_value_to_int(&s), 0); /* strings do not parse */
    assert_int_equal(gv_value_to_int(&n), 0);
    assert_int_equal(gv_value_to_int(&p), 0);

    assert_true(gv_value_to_double(&i) == -42.0);
    assert_true(gv_value_to_double(&d) == -2.9);
    assert_true(gv_value_to_double(&bt) == 1.0);
    assert_true(gv_value_to_double(&s) == 0.0);

    assert_true(gv_value_to_bool(&i));
    assert_true(gv_value_to_bool(&d));
    assert_false(gv_value_to_bool(&bf));
    assert_false(gv_value_to_bool(&n));
    assert_false(gv_value_to_bool(&s));
    gv_value zero = gv_int(0);
    assert_false(gv_value_to_bool(&zero));

    assert_string_equal(gv_value_to_string(&s), "12");
    assert_null(gv_value_to_string(&i));
    assert_null(gv_value_to_string(&p));
    assert_ptr_equal(gv_value_to_pointer(&p), &obj);
    assert_null(gv_value_to_pointer(&s));
    assert_null(gv_value_to_pointer(&i));

    gv_value nulls = gv_str(NULL); /* documented: a NULL string reads as "" */
    assert_string_equal(gv_value_to_string(&nulls), "");
}

static void test_value_equal_default(void **state)
{
    (void)state;
    int x = 0, y = 0;
    char b1[] = "abc", b2[] = "abc";
    gv_value a, b;

    a = gv_int(3); b = gv_int(3);
    assert_true(gv_value_equal(&a, &b));
    b = gv_int(4);
    assert_false(gv_value_equal(&a, &b));
    b = gv_double(3.0);
    assert_false(gv_value_equal(&a, &b)); /* different types */
    a = gv_double(0.5); b = gv_double(0.5);
    assert_true(gv_value_equal(&a, &b));
    a = gv_bool(true); b = gv_bool(true);
    assert_true(gv_value_equal(&a, &b));
    b = gv_bool(false);
    assert_false(gv_value_equal(&a, &b));
    a = gv_str(b1); b = gv_str(b2); /* contents, not addresses */
    assert_true(gv_value_equal(&a, &b));
    b = gv_str("abd");
    assert_false(gv_value_equal(&a, &b));
    a = gv_ptr(&x, NULL); b = gv_ptr(&x, NULL);
    assert_true(gv_value_equal(&a, &b));
    b = gv_ptr(&y, NULL); /* identity, even though *x == *y */
    assert_false(gv_value_equal(&a, &b));
    a = gv_none(); b = gv_none();
    assert_true(gv_value_equal(&a, &b));
    b = gv_int(0);
    assert_false(gv_value_equal(&a, &b));
}

/* ------------------------------------------------------------------------ */
/* Strings                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct swatch {
    gv_signal *s;
    int runs;
    char last[512];
} swatch;

static void swatch_fn(void *ud)
{
    swatch *w = ud;
    w->runs++;
    const char *str = gv_signal_get_string(w->s);
    snprintf(w->last, sizeof w->last, "%s", str ? str : "(null)");
}

static void test_strings_are_copied(void **state)
{
    (void)state;
    char buf[64] = "hello";
    gv_signal *s = gv_signal_new(gv_str(buf));
    buf[0] = 'J'; /* mutate the caller's buffer: the node kept its own copy */
    assert_string_equal(gv_signal_get_string(s), "hello");
    assert_ptr_not_equal(gv_signal_get_string(s), buf);
    assert_int_equal(gv_signal_get(s)->type, GV_STRING);

    swatch w = {.s = s};
    gv_effect *e = gv_effect_new(swatch_fn, &w);
    assert_int_equal(w.runs, 1);
    assert_string_equal(w.last, "hello");

    snprintf(buf, sizeof buf, "world");
    assert_true(gv_signal_set_string(s, buf));
    memset(buf, 'X', sizeof buf - 1);
    assert_string_equal(gv_signal_get_string(s), "world");
    assert_int_equal(w.runs, 2);
    assert_string_equal(w.last, "world");

    /* Equal contents from another buffer: an equal write. */
    char other[] = "world";
    assert_false(gv_signal_set_string(s, other));
    assert_false(gv_signal_set(s, gv_str("world")));
    assert_int_equal(w.runs, 2);

    /* One character longer than any string the node held so far. */
    assert_true(gv_signal_set_string(s, "world!"));
    assert_string_equal(gv_signal_get_string(s), "world!");
    assert_true(gv_signal_set_string(s, "world"));
    assert_int_equal(w.runs, 4);

    /* Grow well past the previous length, then shrink again. */
    char big[400];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_true(gv_signal_set_string(s, big));
    big[0] = 'b';
    assert_int_equal(strlen(gv_signal_get_string(s)), sizeof big - 1);
    assert_int_equal(gv_signal_get_string(s)[0], 'a');
    assert_int_equal(w.runs, 5);
    assert_true(gv_signal_set_string(s, "x"));
    assert_string_equal(gv_signal_get_string(s), "x");
    assert_string_equal(w.last, "x");
    assert_true(gv_signal_set_string(s, ""));
    assert_string_equal(gv_signal_get_string(s), "");
    assert_int_equal(w.runs, 7);
    /* Writing (a suffix of) the node's own current string back into it. */
    assert_true(gv_signal_set_string(s, "hello world"));
    assert_true(gv_signal_set_string(s, gv_signal_get_string(s) + 6));
    assert_string_equal(gv_signal_get_string(s), "world");
    assert_string_equal(w.last, "world");
    assert_true(gv_signal_set_string(s, ""));
    assert_int_equal(w.runs, 10);
    /* gv_str(NULL) is the empty string, so this is an equal write. */
    assert_false(gv_signal_set(s, gv_str(NULL)));
    assert_int_equal(w.runs, 10);

    gv_effect_free(e);
    gv_signal_free(s);
}

/* ------------------------------------------------------------------------ */
/* Pointers: ownership and destroy                                           */
/* ------------------------------------------------------------------------ */

static void test_pointer_destroyed_when_replaced_and_freed(void **state)
{
    (void)state;
    int destroyed = 0;
    owned_obj *p1 = owned_obj_new(&destroyed, 1);
    owned_obj *p2 = owned_obj_new(&destroyed, 2);

    gv_signal *s = gv_signal_new(gv_ptr(p1, owned_obj_destroy));
    assert_int_equal(gv_signal_get(s)->type, GV_POINTER);
    assert_ptr_equal(gv_signal_get_pointer(s), p1);
    assert_int_equal(destroyed, 0);

    assert_true(gv_signal_set(s, gv_ptr(p2, owned_obj_destroy)));
    assert_int_equal(destroyed, 1); /* p1 released exactly once */
    assert_ptr_equal(gv_signal_get_pointer(s), p2);

    /* The very pointer already held: an equal write, and p2 must survive. */
    assert_false(gv_signal_set(s, gv_ptr(p2, owned_obj_destroy)));
    assert_int_equal(destroyed, 1);
    assert_int_equal(((owned_obj *)gv_signal_get_pointer(s))->value, 2);

    /* Replacing a pointer with a scalar drops (destroys) the pointer. */
    assert_true(gv_signal_set_int(s, 3));
    assert_int_equal(destroyed, 2);
    owned_obj *p3 = owned_obj_new(&destroyed, 3);
    assert_true(gv_signal_set(s, gv_ptr(p3, owned_obj_destroy)));
    assert_int_equal(destroyed, 2);

    gv_signal_free(s);
    assert_int_equal(destroyed, 3); /* freeing the node drops its value */
}

static bool obj_value_equal(const gv_value *a, const gv_value *b, void *ud)
{
    (void)ud;
    if (a->type != GV_POINTER || b->type != GV_POINTER)
        return gv_value_equal(a, b);
    return ((const owned_obj *)a->as.p)->value == ((const owned_obj *)b->as.p)->value;
}

static void test_pointer_equal_by_custom_eq_is_destroyed_at_once(void **state)
{
    (void)state;
    int destroyed = 0;
    owned_obj *held = owned_obj_new(&destroyed, 10);
    gv_signal *s = gv_signal_new(gv_ptr(held, owned_obj_destroy));
    gv_signal_set_equal(s, obj_value_equal, NULL);

    /* A different pointer judged equal: nothing changes, and since the graph
     * took ownership of it but does not keep it, it is destroyed right away. */
    owned_obj *twin = owned_obj_new(&destroyed, 10);
    assert_false(gv_signal_set(s, gv_ptr(twin, owned_obj_destroy)));
    assert_int_equal(destroyed, 1);
    assert_ptr_equal(gv_signal_get_pointer(s), held);

    /* The held pointer itself: not destroyed. */
    assert_false(gv_signal_set(s, gv_ptr(held, owned_obj_destroy)));
    assert_int_equal(destroyed, 1);

    owned_obj *next = owned_obj_new(&destroyed, 11);
    assert_true(gv_signal_set(s, gv_ptr(next, owned_obj_destroy)));
    assert_int_equal(destroyed, 2); /* `held` went away */
    assert_ptr_equal(gv_signal_get_pointer(s), next);

    gv_signal_free(s);
    assert_int_equal(destroyed, 3);
}

static void test_pointer_without_destroy(void **state)
{
    (void)state;
    /* destroy == NULL means "nothing to free": stack objects are fine. */
    int a = 1, b = 2;
    gv_signal *s = gv_signal_new(gv_ptr(&a, NULL));
    assert_ptr_equal(gv_signal_get_pointer(s), &a);
    assert_true(gv_signal_set(s, gv_ptr(&b, NULL)));
    assert_ptr_equal(gv_signal_get_pointer(s), &b);
    assert_false(gv_signal_set(s, gv_ptr(&b, NULL)));
    assert_int_equal(gv_signal_get_int(s), 0);
    assert_null(gv_signal_get_string(s));
    gv_signal_free(s);
    assert_int_equal(a + b, 3);
}

/* ------------------------------------------------------------------------ */
/* Names, NULL handles                                                       */
/* ------------------------------------------------------------------------ */

static void test_names_are_copied(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(0));
    assert_string_equal(gv_signal_name(s), "");
    char name[16] = "price";
    gv_signal_set_name(s, name);
    name[0] = 'X';
    assert_string_equal(gv_signal_name(s), "price");
    gv_signal_set_name(s, "total price");
    assert_string_equal(gv_signal_name(s), "total price");
    gv_signal_free(s);
}

static void test_free_null_is_noop(void **state)
{
    (void)state;
    gv_signal_free(NULL);
    gv_computed_free(NULL);
    gv_effect_free(NULL);
    gv_test_assert_empty_runtime();
}

static void test_stats_count_signals(void **state)
{
    (void)state;
    gv_signal *s[3];
    for (int i = 0; i < 3; i++)
        s[i] = gv_signal_new(gv_int(i));
    gv_stats st;
    gv_test_stats(&st);
    assert_int_equal(st.signals, 3);
    assert_int_equal(st.links, 0);
    assert_true(st.bytes_signal > 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(gv_signal_subscriber_count(s[i]), 0);
        gv_signal_free(s[i]);
    }
    gv_test_stats(&st);
    assert_int_equal(st.signals, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GV_TEST(test_int_get_peek_set),
        GV_TEST(test_equal_write_notifies_nothing),
        GV_TEST(test_update),
        GV_TEST(test_update_inside_effect_does_not_subscribe),
        GV_TEST(test_custom_equality_abs),
        GV_TEST(test_custom_equality_epsilon_double),
        GV_TEST(test_double_and_bool),
        GV_TEST(test_type_change_is_a_change),
        GV_TEST(test_value_conversions),
        GV_TEST(test_value_equal_default),
        GV_TEST(test_strings_are_copied),
        GV_TEST(test_pointer_destroyed_when_replaced_and_freed),
        GV_TEST(test_pointer_equal_by_custom_eq_is_destroyed_at_once),
        GV_TEST(test_pointer_without_destroy),
        GV_TEST(test_names_are_copied),
        GV_TEST(test_free_null_is_noop),
        GV_TEST(test_stats_count_signals),
    };
    return GV_RUN_TESTS(tests);
}
