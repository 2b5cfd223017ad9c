/*
 * bench_util.c — timing, checks and the node arena of the signals benchmark.
 */
#include "bench.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int bench_reps(const bench_ctx *ctx, int full, int quick)
{
    switch (ctx->mode) {
    case BENCH_FULL:
        return full;
    case BENCH_QUICK:
        return quick;
    case BENCH_SMOKE:
    case BENCH_CALLGRIND:
        return 1;
    }
    return 1;
}

bool bench_check(bench_ctx *ctx, bool cond, const char *fmt, ...)
{
    if (cond)
        return true;
    if (ctx->ok) {
        /* Only the first failure is kept: later ones are usually its echo. */
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
        va_end(ap);
        ctx->ok = false;
    }
    return false;
}

double bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The measured code, in a function of its own with a stable symbol name:
 * `valgrind --tool=callgrind --collect-atstart=no
 * --toggle-collect=bench_timed_region` then counts exactly the timed phases.
 * Kept out of line (and external) so the symbol exists. */
void bench_timed_region(bench_region_fn fn, void *arg);

#if defined(__GNUC__)
__attribute__((noinline))
#endif
void bench_timed_region(bench_region_fn fn, void *arg)
{
    fn(arg);
}

double bench_timed(bench_ctx *ctx, bench_region_fn fn, void *arg)
{
    long long a0 = bench_alloc_count();
    double t0 = bench_now_ms();
    bench_timed_region(fn, arg);
    double t1 = bench_now_ms();
    long long a1 = bench_alloc_count();
    ctx->allocs = a0 < 0 ? -1 : a1 - a0;
    return t1 - t0;
}

void bench_busy(void)
{
    /* The reference's busy() counts to 100 and throws the result away.  The
     * empty asm makes the compiler believe `a` is used, so the loop stays a
     * real 100-step loop instead of being deleted at -O2. */
    unsigned a = 0;
    for (int i = 0; i < 100; i++) {
        a++;
#if defined(__GNUC__)
        __asm__ volatile("" : "+r"(a));
#endif
    }
    (void)a;
}

/* ------------------------------------------------------------------------ */
/* Arena                                                                     */
/* ------------------------------------------------------------------------ */

/* Append `p` to a growable array of pointers; false when out of memory. */
static bool push_ptr(void ***arr, size_t *n, size_t *cap, void *p)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        void **grown = realloc(*arr, ncap * sizeof *grown);
        if (!grown)
            return false;
        *arr = grown;
        *cap = ncap;
    }
    (*arr)[(*n)++] = p;
    return true;
}

bool arena_init(bench_arena *a, bench_ctx *ctx)
{
    memset(a, 0, sizeof *a);
    a->ctx = ctx;
    a->scope = gv_scope_new();
    if (!bench_check(ctx, a->scope != NULL, "gv_scope_new returned NULL"))
        return false;
    gv_scope_enter(a->scope);
    a->entered = true;
    return true;
}

void arena_leave(bench_arena *a)
{
    if (a->scope && a->entered) {
        gv_scope_leave(a->scope);
        a->entered = false;
    }
}

void arena_dispose_effects(bench_arena *a)
{
    arena_leave(a);
    if (a->scope) {
        gv_scope_free(a->scope);
        a->scope = NULL;
    }
}

void arena_free(bench_arena *a)
{
    arena_dispose_effects(a);
    /* Newest first: readers before what they read (either order would be
     * correct — a read node lives while its readers do — this one just frees
     * each node at once). */
    for (size_t i = a->ncomputeds; i-- > 0;)
        gv_computed_free(a->computeds[i]);
    for (size_t i = a->nsignals; i-- > 0;)
        gv_signal_free(a->signals[i]);
    for (size_t i = 0; i < a->nblocks; i++)
        free(a->blocks[i]);
    free(a->computeds);
    free(a->signals);
    free(a->blocks);
    memset(a, 0, sizeof *a);
}

gv_signal *arena_signal(bench_arena *a, gv_value v)
{
    gv_signal *s = gv_signal_new(v);
    if (!bench_check(a->ctx, s != NULL, "gv_signal_new returned NULL"))
        return NULL;
    if (!push_ptr((void ***)&a->signals, &a->nsignals, &a->capsignals, s)) {
        gv_signal_free(s);
        bench_check(a->ctx, false, "out of memory (arena)");
        return NULL;
    }
    return s;
}

gv_computed *arena_computed(bench_arena *a, gv_compute_fn fn, void *ud)
{
    gv_computed *c = gv_computed_new(fn, ud);
    if (!bench_check(a->ctx, c != NULL, "gv_computed_new returned NULL"))
        return NULL;
    if (!push_ptr((void ***)&a->computeds, &a->ncomputeds, &a->capcomputeds, c)) {
        gv_computed_free(c);
        bench_check(a->ctx, false, "out of memory (arena)");
        return NULL;
    }
    return c;
}

gv_effect *arena_effect(bench_arena *a, gv_effect_fn fn, void *ud)
{
    /* Owned by the arena's scope: no handle to keep. */
    gv_effect *e = gv_effect_new(fn, ud);
    bench_check(a->ctx, e != NULL, "gv_effect_new returned NULL");
    return e;
}

void *arena_block(bench_arena *a, size_t size)
{
    void *p = calloc(1, size ? size : 1);
    if (!p || !push_ptr(&a->blocks, &a->nblocks, &a->capblocks, p)) {
        free(p);
        bench_check(a->ctx, false, "out of memory (arena block)");
        return NULL;
    }
    return p;
}

void bench_check_no_leaks(bench_ctx *ctx)
{
    gv_stats st;
    gv_get_stats(&st);
    bench_check(ctx,
                st.signals == 0 && st.computeds == 0 && st.effects == 0 && st.scopes == 0 &&
                    st.links == 0,
                "nodes left after teardown: %zu signals, %zu computeds, %zu effects, "
                "%zu scopes, %zu links",
                st.signals, st.computeds, st.effects, st.scopes, st.links);
}
