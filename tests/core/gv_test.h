/*
 * gv_test.h — shared fixtures of the core test suite (tests/core/test_*.c).
 *
 * Every test program runs its tests one after another on the main thread, so
 * they all share one thread-local runtime.  The fixtures below make each test
 * start from a known runtime state and prove, at the end of each test, that it
 * released every node it created:
 *
 *   gv_test_setup     installs a recording error handler and resets the
 *                     runtime limits to their documented defaults (a test that
 *                     lowers them must not leak that into the next test);
 *   gv_test_teardown  asserts that no node or link is left alive and that no
 *                     error reached the handler unless the test consumed it.
 *
 * Everything here is `static inline` so a program that does not use a helper
 * does not trip -Wunused-function.
 */
#ifndef GALVANI_TEST_H
#define GALVANI_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "galvani/signals.h"

/* Documented defaults (signals.h, "Runtime limits"). */
#define GV_TEST_DEFAULT_FLUSH_ROUNDS 100u
#define GV_TEST_DEFAULT_COMPUTE_DEPTH 2000u

/* ------------------------------------------------------------------------ */
/* Recording error handler                                                   */
/* ------------------------------------------------------------------------ */

/* What the thread's error handler received.  Strings are copied because the
 * gv_error is only valid during the call. */
typedef struct errlog {
    int count;
    int last_code;
    char last_message[256];
    char last_origin[128];
    char last_node[128];
} errlog;

/* One log per thread: the handler is per thread too (test_threads.c). */
static _Thread_local errlog gv_test_errors;

static inline void errlog_handler(const gv_error *err, const char *node_name, void *ud)
{
    errlog *log = ud;
    log->count++;
    log->last_code = err->code;
    /* The header promises message is never NULL; copy defensively anyway so a
     * library bug shows up as a failed assertion, not a crash in the fixture. */
    snprintf(log->last_message, sizeof log->last_message, "%s", err->message ? err->message : "(null)");
    snprintf(log->last_origin, sizeof log->last_origin, "%s", err->origin ? err->origin : "(null)");
    snprintf(log->last_node, sizeof log->last_node, "%s", node_name ? node_name : "(null)");
}

static inline void errlog_reset(void)
{
    memset(&gv_test_errors, 0, sizeof gv_test_errors);
}

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                  */
/* ------------------------------------------------------------------------ */

static inline void gv_test_assert_empty_runtime(void)
{
    gv_stats st;
    gv_get_stats(&st);
    assert_int_equal(st.signals, 0);
    assert_int_equal(st.computeds, 0);
    assert_int_equal(st.effects, 0);
    assert_int_equal(st.scopes, 0);
    assert_int_equal(st.links, 0);
}

/* Live counts when the current test started.  Comparing against this (rather
 * than against zero) keeps one failing test — which longjmps out before it
 * can free its nodes — from failing every test after it. */
static _Thread_local gv_stats gv_test_baseline;

static inline int gv_test_setup(void **state)
{
    (void)state;
    gv_get_stats(&gv_test_baseline);
    errlog_reset();
    gv_set_error_handler(errlog_handler, &gv_test_errors);
    gv_set_max_flush_rounds(GV_TEST_DEFAULT_FLUSH_ROUNDS);
    gv_set_max_compute_depth(GV_TEST_DEFAULT_COMPUTE_DEPTH);
    return 0;
}

static inline int gv_test_teardown(void **state)
{
    (void)state;
    /* A test that expects errors checks them and calls errlog_reset(); any
     * error left here was not expected. */
    if (gv_test_errors.count != 0) {
        print_error("unexpected error(s) reached the handler: %d, last code %d \"%s\" node \"%s\"\n",
                    gv_test_errors.count, gv_test_errors.last_code, gv_test_errors.last_message,
                    gv_test_errors.last_node);
        return -1;
    }
    gv_stats st;
    const gv_stats *b = &gv_test_baseline;
    gv_get_stats(&st);
    if (st.signals != b->signals || st.computeds != b->computeds || st.effects != b->effects ||
        st.scopes != b->scopes || st.links != b->links) {
        print_error("test leaked nodes: signals=%zu computeds=%zu effects=%zu scopes=%zu links=%zu"
                    " (at start: %zu %zu %zu %zu %zu)\n",
                    st.signals, st.computeds, st.effects, st.scopes, st.links, b->signals,
                    b->computeds, b->effects, b->scopes, b->links);
        return -1;
    }
    return 0;
}

/* The thread's stats, with the live counts relative to the start of the
 * current test, so a test asserting "3 effects alive" is not thrown off by
 * what an earlier, failed test left behind. */
static inline void gv_test_stats(gv_stats *out)
{
    gv_get_stats(out);
    out->signals -= gv_test_baseline.signals;
    out->computeds -= gv_test_baseline.computeds;
    out->effects -= gv_test_baseline.effects;
    out->scopes -= gv_test_baseline.scopes;
    out->links -= gv_test_baseline.links;
}

/* Release the runtime caches once the whole group is done, so LeakSanitizer
 * sees a clean exit without relying on thread-exit destructors. */
static inline int gv_test_group_teardown(void **state)
{
    (void)state;
    gv_runtime_release();
    return 0;
}

#define GV_TEST(fn) cmocka_unit_test_setup_teardown(fn, gv_test_setup, gv_test_teardown)

/* GV_TEST_FILTER=pattern runs only the matching tests (cmocka's wildcards),
 * e.g. to watch one scenario fail against an older build of the core. */
static inline void gv_test_apply_filter(void)
{
    const char *filter = getenv("GV_TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
}

#define GV_RUN_TESTS(tests) (gv_test_apply_filter(), cmocka_run_group_tests(tests, NULL, gv_test_group_teardown))

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

static inline uint64_t gv_test_computes(void)
{
    gv_stats st;
    gv_get_stats(&st);
    return st.computes;
}

static inline uint64_t gv_test_effect_runs(void)
{
    gv_stats st;
    gv_get_stats(&st);
    return st.effect_runs;
}

/* A counted destructor for GV_POINTER values: each test owns a counter and the
 * pointed-to objects are heap blocks whose first member points at it, so the
 * destructor can count without globals and ASan sees every double free. */
typedef struct owned_obj {
    int *destroyed; /* incremented by owned_obj_destroy */
    int value;      /* payload, compared by custom equalities */
} owned_obj;

static inline void owned_obj_destroy(void *p)
{
    owned_obj *o = p;
    (*o->destroyed)++;
    free(o);
}

static inline owned_obj *owned_obj_new(int *destroyed, int value)
{
    owned_obj *o = malloc(sizeof *o);
    assert_non_null(o);
    o->destroyed = destroyed;
    o->value = value;
    return o;
}

/* ------------------------------------------------------------------------ */
/* Cleanup helpers                                                           */
/* ------------------------------------------------------------------------ */

/* A log of single characters, appended by cleanups, to check their order. */
typedef struct charlog {
    char buf[128];
    size_t len;
} charlog;

static inline void charlog_put(charlog *l, char c)
{
    if (l->len + 1 < sizeof l->buf) {
        l->buf[l->len++] = c;
        l->buf[l->len] = '\0';
    }
}

static inline void charlog_clear(charlog *l)
{
    l->len = 0;
    l->buf[0] = '\0';
}

/* A cleanup that logs one character. */
typedef struct mark {
    charlog *log;
    char ch;
} mark;

static inline void mark_cleanup(void *ud)
{
    mark *m = ud;
    charlog_put(m->log, m->ch);
}

static inline void count_cleanup(void *ud)
{
    (*(int *)ud)++;
}


#endif /* GALVANI_TEST_H */
