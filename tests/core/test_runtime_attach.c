/*
 * test_runtime_attach.c — the features a language binding needs from the
 * core (the Python module uses all three):
 *
 *   - a runtime not tied to a thread (gv_runtime_new / attach / free): one
 *     graph used by several threads in turn, under the caller's mutex; the
 *     thread's own runtime is untouched meanwhile;
 *   - root effects (gv_effect_new_root): created inside an effect, they are
 *     not disposed when that effect re-runs;
 *   - a computed's ud handed over (gv_computed_set_ud_destroy): released once,
 *     when the node dies, which is after gv_computed_free while a reader still
 *     reads it; gv_computed_cached reads the stored value without running.
 *
 * cmocka's asserts are not thread-safe: the worker thread records, the main
 * thread asserts after joining.
 */
#include "gv_test.h"

#include <pthread.h>

typedef struct shared {
    pthread_mutex_t mu;
    gv_runtime *rt;
    gv_signal *s;
    int64_t seen; /* last value the effect saw */
    int runs;
    int worker_own_signals; /* stats of the worker's own runtime while attached elsewhere */
} shared;

static void record_fn(void *ud)
{
    shared *sh = ud;
    sh->seen = gv_signal_get_int(sh->s);
    sh->runs++;
}

static void *worker(void *arg)
{
    shared *sh = arg;
    for (int i = 1; i <= 100; i++) {
        if (pthread_mutex_lock(&sh->mu) != 0)
            return NULL;
        gv_runtime *prev = gv_runtime_attach(sh->rt);
        gv_signal_set_int(sh->s, gv_signal_peek(sh->s)->as.i + 1);
        gv_runtime_attach(prev);
        gv_stats own;
        gv_get_stats(&own);
        sh->worker_own_signals += (int)own.signals;
        if (pthread_mutex_unlock(&sh->mu) != 0)
            return NULL;
    }
    return NULL;
}

static void test_shared_runtime_across_threads(void **state)
{
    (void)state;
    shared sh = {.runs = 0};
    assert_int_equal(pthread_mutex_init(&sh.mu, NULL), 0);
    sh.rt = gv_runtime_new();
    assert_non_null(sh.rt);

    assert_int_equal(pthread_mutex_lock(&sh.mu), 0);
    assert_null(gv_runtime_attach(sh.rt));
    sh.s = gv_signal_new(gv_int(0));
    gv_effect *e = gv_effect_new(record_fn, &sh);
    assert_int_equal(sh.runs, 1);
    gv_runtime_attach(NULL);
    /* The main thread's own runtime saw none of it. */
    gv_stats own;
    gv_test_stats(&own);
    assert_int_equal(own.signals, 0);
    assert_int_equal(own.effects, 0);
    assert_int_equal(pthread_mutex_unlock(&sh.mu), 0);

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, worker, &sh), 0);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(pthread_mutex_lock(&sh.mu), 0);
        gv_runtime_attach(sh.rt);
        gv_signal_set_int(sh.s, gv_signal_peek(sh.s)->as.i + 1);
        gv_runtime_attach(NULL);
        assert_int_equal(pthread_mutex_unlock(&sh.mu), 0);
    }
    assert_int_equal(pthread_join(th, NULL), 0);

    /* Every write ran the effect, whichever thread made it. */
    assert_int_equal(sh.seen, 200);
    assert_int_equal(sh.runs, 201);
    assert_int_equal(sh.worker_own_signals, 0);

    gv_runtime_attach(sh.rt);
    gv_stats st;
    gv_get_stats(&st);
    assert_int_equal(st.signals, 1);
    assert_int_equal(st.effects, 1);
    gv_effect_free(e);
    gv_runtime_attach(NULL);
    /* A node is still alive: refused, nothing freed. */
    assert_false(gv_runtime_free(sh.rt));
    gv_runtime_attach(sh.rt);
    gv_signal_free(sh.s);
    /* Attached: refused too. */
    assert_false(gv_runtime_free(sh.rt));
    gv_runtime_attach(NULL);
    assert_true(gv_runtime_free(sh.rt));
    assert_true(gv_runtime_free(NULL));
    assert_int_equal(pthread_mutex_destroy(&sh.mu), 0);
}

typedef struct nest {
    gv_signal *outer_sig, *inner_sig;
    gv_effect *inner;
    int inner_runs;
    int root; /* create the inner effect with gv_effect_new_root */
} nest;

static void inner_fn(void *ud)
{
    nest *n = ud;
    (void)gv_signal_get_int(n->inner_sig);
    n->inner_runs++;
}

static void outer_fn(void *ud)
{
    nest *n = ud;
    if (gv_signal_get_int(n->outer_sig) == 0)
        n->inner = n->root ? gv_effect_new_root(inner_fn, n) : gv_effect_new(inner_fn, n);
}

static void test_root_effect_survives_owner_rerun(void **state)
{
    (void)state;
    nest n = {.root = 1};
    n.outer_sig = gv_signal_new(gv_int(0));
    n.inner_sig = gv_signal_new(gv_int(0));
    gv_effect *outer = gv_effect_new(outer_fn, &n);
    assert_non_null(n.inner);
    assert_int_equal(n.inner_runs, 1);

    gv_signal_set_int(n.outer_sig, 1); /* the owner re-runs ... */
    gv_signal_set_int(n.inner_sig, 1); /* ... and the root effect still runs */
    assert_int_equal(n.inner_runs, 2);
    gv_effect_free(outer); /* nor does disposing the creator dispose it */
    gv_signal_set_int(n.inner_sig, 2);
    assert_int_equal(n.inner_runs, 3);
    gv_effect_free(n.inner);
    gv_signal_set_int(n.inner_sig, 3);
    assert_int_equal(n.inner_runs, 3);
    gv_signal_free(n.outer_sig);
    gv_signal_free(n.inner_sig);
}

static void test_owned_effect_for_contrast(void **state)
{
    (void)state;
    nest n = {.root = 0};
    n.outer_sig = gv_signal_new(gv_int(0));
    n.inner_sig = gv_signal_new(gv_int(0));
    gv_effect *outer = gv_effect_new(outer_fn, &n);
    assert_int_equal(n.inner_runs, 1);
    gv_signal_set_int(n.outer_sig, 1); /* disposes the owned inner effect */
    gv_signal_set_int(n.inner_sig, 1);
    assert_int_equal(n.inner_runs, 1);
    gv_effect_free(outer);
    gv_signal_free(n.outer_sig);
    gv_signal_free(n.inner_sig);
}

typedef struct boxed {
    gv_signal *src;
    int destroyed;
} boxed;

static void boxed_release(void *ud)
{
    ((boxed *)ud)->destroyed++;
}

static void plus_one(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    *out = gv_int(gv_signal_get_int(((boxed *)ud)->src) + 1);
}

typedef struct reader {
    gv_computed *c;
    int64_t seen;
} reader;

static void read_fn(void *ud)
{
    reader *r = ud;
    r->seen = gv_computed_get_int(r->c);
}

static void test_computed_ud_destroy(void **state)
{
    (void)state;
    boxed b = {.src = gv_signal_new(gv_int(1))};
    gv_computed *c = gv_computed_new(plus_one, &b);
    gv_computed_set_ud_destroy(c, boxed_release);
    assert_int_equal(gv_computed_cached(c)->type, GV_NONE); /* never ran */
    reader r = {.c = c};
    gv_effect *e = gv_effect_new(read_fn, &r);
    assert_int_equal(r.seen, 2);
    assert_int_equal(gv_computed_cached(c)->as.i, 2);

    gv_computed_free(c);          /* the handle goes; the effect still reads it */
    assert_int_equal(b.destroyed, 0);
    gv_signal_set_int(b.src, 5);  /* so its function, and its ud, still run */
    assert_int_equal(r.seen, 6);
    assert_int_equal(b.destroyed, 0);
    gv_effect_free(e);            /* the last reader goes: the node, and ud */
    assert_int_equal(b.destroyed, 1);
    gv_signal_free(b.src);
    assert_int_equal(b.destroyed, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GV_TEST(test_shared_runtime_across_threads),
        GV_TEST(test_root_effect_survives_owner_rerun),
        GV_TEST(test_owned_effect_for_contrast),
        GV_TEST(test_computed_ud_destroy),
    };
    return GV_RUN_TESTS(tests);
}
