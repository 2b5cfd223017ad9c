/*
 * test_threads.c — each thread has its own runtime: two threads build
 * graphs of different shapes at the same time, drive them in parallel and
 * get independent results, counters and error handlers.  One thread calls
 * gv_runtime_release before exiting, the other relies on the automatic
 * release at thread exit; both must be leak-free under LeakSanitizer.
 *
 * cmocka's asserts are not thread-safe, so the worker threads only record
 * what they observed; the main thread asserts after joining them.
 */
#include "gv_test.h"

#include <pthread.h>

#define ITERATIONS 20000

typedef struct scaled {
    gv_signal *src;
    int64_t k;
    uint64_t runs;
} scaled;

static void scaled_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    scaled *s = ud;
    s->runs++;
    *out = gv_int(s->k * gv_signal_get_int(s->src));
}

typedef struct summer {
    gv_computed *c;
    uint64_t runs;
    int64_t sum;
} summer;

static void summer_fn(void *ud)
{
    summer *s = ud;
    s->runs++;
    s->sum += gv_computed_get_int(s->c);
}

typedef struct failing {
    gv_signal *s;
    int code;
} failing;

static void failing_fn(void *ud)
{
    failing *f = ud;
    if (gv_signal_get_int(f->s) > 0)
        (void)gv_fail(f->code, "thread failure %d", f->code);
}

typedef struct worker {
    int id;
    int extra_signals; /* makes the two graphs differ in size */
    bool release;      /* call gv_runtime_release before exiting */
    pthread_barrier_t *barrier;
    /* Observations, asserted by the main thread. */
    gv_stats built;       /* stats right after building */
    gv_stats after_free;  /* stats after freeing everything */
    uint64_t compute_runs, effect_runs;
    int64_t sum;
    errlog errors;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    gv_set_error_handler(errlog_handler, &w->errors);

    gv_signal *extra[8] = {0};
    for (int i = 0; i < w->extra_signals; i++)
        extra[i] = gv_signal_new(gv_int(i));
    gv_signal *src = gv_signal_new(gv_int(0));
    scaled sc = {.src = src, .k = w->id + 1};
    gv_computed *c = gv_computed_new(scaled_fn, &sc);
    summer sm = {.c = c};
    gv_effect *e = gv_effect_new(summer_fn, &sm);
    failing fl = {.s = src, .code = 100 + w->id};
    gv_effect *ef = gv_effect_new(failing_fn, &fl);
    gv_get_stats(&w->built);

    /* Both graphs exist and run at the same time from here on. */
    pthread_barrier_wait(w->barrier);
    for (int64_t i = 1; i <= ITERATIONS; i++)
        (void)gv_signal_set_int(src, i);
    pthread_barrier_wait(w->barrier);

    w->compute_runs = sc.runs;
    w->effect_runs = sm.runs;
    w->sum = sm.sum;

    gv_effect_free(ef);
    gv_effect_free(e);
    gv_computed_free(c);
    gv_signal_free(src);
    for (int i = 0; i < w->extra_signals; i++)
        gv_signal_free(extra[i]);
    gv_get_stats(&w->after_free);
    if (w->release)
        gv_runtime_release();
    return NULL;
}

static void test_two_threads_independent(void **state)
{
    (void)state;
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, 2), 0);
    worker w[2] = {
        {.id = 0, .extra_signals = 0, .release = true, .barrier = &barrier},
        {.id = 1, .extra_signals = 3, .release = false, .barrier = &barrier},
    };
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(pthread_barrier_destroy(&barrier), 0);

    /* sum over i = 1..N of k * i */
    const int64_t tri = (int64_t)ITERATIONS * (ITERATIONS + 1) / 2;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(w[i].built.signals, 1 + w[i].extra_signals);
        assert_int_equal(w[i].built.computeds, 1);
        assert_int_equal(w[i].built.effects, 2);
        assert_int_equal(w[i].built.links, 3);
        assert_int_equal(w[i].compute_runs, ITERATIONS + 1);
        assert_int_equal(w[i].effect_runs, ITERATIONS + 1);
        assert_true(w[i].sum == (int64_t)(i + 1) * tri);
        assert_int_equal(w[i].after_free.signals, 0);
        assert_int_equal(w[i].after_free.computeds, 0);
        assert_int_equal(w[i].after_free.effects, 0);
        assert_int_equal(w[i].after_free.links, 0);
        /* The effect failed on every write, and only this thread's handler
         * heard about it. */
        assert_int_equal(w[i].errors.count, ITERATIONS);
        assert_int_equal(w[i].errors.last_code, 100 + i);
    }
    /* The main thread's runtime saw none of it. */
    gv_stats st;
    gv_get_stats(&st);
    assert_int_equal(st.signals + st.computeds + st.effects + st.links, 0);
    assert_int_equal(gv_test_errors.count, 0);
}

/* The main thread keeps a graph alive while a worker builds and frees its
 * own: the worker's frees must not touch the main thread's nodes. */
static void *short_worker(void *arg)
{
    int *ok = arg;
    gv_signal *s = gv_signal_new(gv_int(1));
    gv_stats st;
    gv_test_stats(&st);
    *ok = st.signals == 1 && gv_signal_subscriber_count(s) == 0;
    gv_signal_free(s);
    return NULL;
}

static void test_main_graph_unaffected_by_worker(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(2));
    scaled sc = {.src = s, .k = 3};
    gv_computed *c = gv_computed_new(scaled_fn, &sc);
    summer sm = {.c = c};
    gv_effect *e = gv_effect_new(summer_fn, &sm);

    int ok = 0;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, short_worker, &ok), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(ok, 1);

    gv_stats st;
    gv_test_stats(&st);
    assert_int_equal(st.signals, 1);
    assert_true(gv_signal_set_int(s, 4));
    assert_int_equal(sm.sum, 6 + 12);
    gv_effect_free(e);
    gv_computed_free(c);
    gv_signal_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GV_TEST(test_two_threads_independent),
        GV_TEST(test_main_graph_unaffected_by_worker),
    };
    return GV_RUN_TESTS(tests);
}
