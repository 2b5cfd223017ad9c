/*
 * cases_sbench.c — S-bench (js-reactivity-benchmark's sBench, after Solid's
 * bench.cjs): creating signals, creating effects over them in various fan-in
 * and fan-out shapes, and updating signals read by such effects.
 *
 * For every sub-case (fn, n, scount), as in the reference:
 *   - three warm-up rounds at n/100;
 *   - then 10 timed rounds (3 in quick mode): create `scount` signals and read
 *     each three times (untimed), then time: create the effects (inside the
 *     graph's scope), run the update function, dispose the effects.  Freeing
 *     the signals afterwards is the C equivalent of the garbage collection the
 *     reference runs after its timer stops, so it is not timed either.
 * A case's time is the sum of the sub-cases' fastest rounds.
 *
 * The reference has no assertions here; we check the exact number of effect
 * runs (every effect runs once when created; each write that changes the
 * signal re-runs every effect reading it, and the first write — of 0 over 0 —
 * changes nothing).  Smoke mode runs each sub-case once at n/100.
 */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define SB_COUNT 100000

typedef struct sb sb;
typedef void (*sb_fn)(sb *s, long n);

struct sb {
    bench_arena arena;
    bench_ctx *ctx;
    gv_signal **sources; /* scount signals */
    long nsources;
    /* The update phase the sub-case's function sets up (NULL: nothing). */
    void (*update)(sb *s);
    long update_n;
    uint64_t expect_update_runs; /* effect runs the update must cause */
    uint64_t expect_create_runs; /* effect runs the creation must cause */
    long long update_allocs;     /* allocations during update(), -1 unknown */
};

/* ------------------------------------------------------------------------ */
/* Effect functions                                                          */
/* ------------------------------------------------------------------------ */

static void effect_nothing(void *ud) { (void)ud; }

static void effect_read1(void *ud) { (void)gv_signal_get_int(ud); }

static void effect_read2(void *ud)
{
    gv_signal **s = ud;
    (void)(gv_signal_get_int(s[0]) + gv_signal_get_int(s[1]));
}

static void effect_read4(void *ud)
{
    gv_signal **s = ud;
    (void)(gv_signal_get_int(s[0]) + gv_signal_get_int(s[1]) + gv_signal_get_int(s[2]) +
           gv_signal_get_int(s[3]));
}

static void effect_read1000(void *ud)
{
    gv_signal **s = ud;
    int64_t sum = 0;
    for (int i = 0; i < 1000; i++)
        sum += gv_signal_get_int(s[i]);
    (void)sum;
}

/* JS `for (i = 0; i < n / k; i++)` runs ceil(n / k) times. */
static long ceil_div(long n, long k) { return (n + k - 1) / k; }

static void add_effect(sb *s, gv_effect_fn fn, void *ud)
{
    arena_effect(&s->arena, fn, ud);
    s->expect_create_runs++;
}

/* ------------------------------------------------------------------------ */
/* Creation sub-cases                                                        */
/* ------------------------------------------------------------------------ */

static void create_signals(sb *s, long n)
{
    for (long i = 0; i < n; i++)
        arena_signal(&s->arena, gv_int(i));
}

static void create0to1(sb *s, long n)
{
    for (long i = 0; i < n; i++)
        add_effect(s, effect_nothing, (void *)(intptr_t)i);
}

static void create1to1(sb *s, long n)
{
    for (long i = 0; i < n; i++)
        add_effect(s, effect_read1, s->sources[i]);
}

static void create2to1(sb *s, long n)
{
    for (long i = 0; i < n; i++)
        add_effect(s, effect_read2, &s->sources[i * 2]);
}

static void create4to1(sb *s, long n)
{
    for (long i = 0; i < n; i++)
        add_effect(s, effect_read4, &s->sources[i * 4]);
}

static void create1000to1(sb *s, long n)
{
    for (long i = 0; i < n; i++)
        add_effect(s, effect_read1000, &s->sources[i * 1000]);
}

/* One source, `fanout` effects reading it. */
static void create_fanout(sb *s, long n, int fanout)
{
    long groups = ceil_div(n, fanout);
    for (long i = 0; i < groups; i++)
        for (int j = 0; j < fanout; j++)
            add_effect(s, effect_read1, s->sources[i]);
}

static void create1to2(sb *s, long n) { create_fanout(s, n, 2); }
static void create1to4(sb *s, long n) { create_fanout(s, n, 4); }
static void create1to8(sb *s, long n) { create_fanout(s, n, 8); }
static void create1to1000(sb *s, long n) { create_fanout(s, n, 1000); }

/* ------------------------------------------------------------------------ */
/* Update sub-cases                                                          */
/* ------------------------------------------------------------------------ */

/* Write 0, 1, ..., writes-1 to source 0, one batch per write. */
static void update_writes(sb *s)
{
    gv_signal *s1 = s->sources[0];
    for (long i = 0; i < s->update_n; i++) {
        gv_batch_begin();
        gv_signal_set_int(s1, i);
        gv_batch_end();
    }
}

/* `effects` effects built by `fn`, then `writes` writes; each write but the
 * first (0 over the initial 0) re-runs every effect. */
static void setup_update(sb *s, long writes, long effects)
{
    s->update = update_writes;
    s->update_n = writes;
    s->expect_update_runs = (uint64_t)(effects * (writes > 0 ? writes - 1 : 0));
}

static void update1to1(sb *s, long n)
{
    add_effect(s, effect_read1, s->sources[0]);
    setup_update(s, n, 1);
}

static void update2to1(sb *s, long n)
{
    add_effect(s, effect_read2, s->sources);
    setup_update(s, n, 1);
}

static void update4to1(sb *s, long n)
{
    add_effect(s, effect_read4, s->sources);
    setup_update(s, n, 1);
}

static void update1000to1(sb *s, long n)
{
    add_effect(s, effect_read1000, s->sources);
    setup_update(s, n, 1);
}

static void update1to2(sb *s, long n)
{
    for (int i = 0; i < 2; i++)
        add_effect(s, effect_read1, s->sources[0]);
    setup_update(s, n, 2);
}

static void update1to4(sb *s, long n)
{
    for (int i = 0; i < 4; i++)
        add_effect(s, effect_read1, s->sources[0]);
    setup_update(s, n, 4);
}

static void update1to1000(sb *s, long n)
{
    for (int i = 0; i < 1000; i++)
        add_effect(s, effect_read1, s->sources[0]);
    setup_update(s, ceil_div(n, 10), 1000);
}

/* ------------------------------------------------------------------------ */
/* Driver                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct sb_timed {
    sb *s;
    sb_fn fn;
    long n;
    uint64_t runs_before_update, runs_after_update;
} sb_timed;

static uint64_t effect_runs_now(void)
{
    gv_stats st;
    gv_get_stats(&st);
    return st.effect_runs;
}

/* The timed part: create (inside the scope), update, dispose. */
static void sb_region(void *arg)
{
    sb_timed *t = arg;
    sb *s = t->s;
    t->fn(s, t->n);
    arena_leave(&s->arena);
    t->runs_before_update = effect_runs_now();
    if (s->update) {
        long long a0 = bench_alloc_count();
        s->update(s);
        long long a1 = bench_alloc_count();
        s->update_allocs = a0 < 0 ? -1 : a1 - a0;
    }
    t->runs_after_update = effect_runs_now();
    arena_dispose_effects(&s->arena);
}

/* One round: build sources, run the timed part if `timed`, check counts, free.
 * Returns the time in ms (0 when untimed), or -1 on failure. */
static double sb_round(bench_ctx *ctx, const char *name, sb_fn fn, long n, long scount,
                       bool timed, long long *allocs_out)
{
    sb s;
    memset(&s, 0, sizeof s);
    s.ctx = ctx;
    s.update_allocs = -1;
    if (!arena_init(&s.arena, ctx))
        return -1;
    bool ok = true;
    if (scount > 0) {
        s.sources = arena_block(&s.arena, (size_t)scount * sizeof *s.sources);
        ok = s.sources != NULL;
        for (long i = 0; ok && i < scount; i++)
            ok = (s.sources[i] = arena_signal(&s.arena, gv_int(i))) != NULL;
        s.nsources = scount;
        /* Read each source three times, like the reference, outside any
         * computation (so nothing subscribes). */
        for (long i = 0; ok && i < scount; i++)
            for (int k = 0; k < 3; k++)
                (void)gv_signal_get_int(s.sources[i]);
    }
    double ms = 0;
    if (ok) {
        sb_timed t = {&s, fn, n, 0, 0};
        uint64_t runs0 = effect_runs_now();
        if (timed) {
            /* bench_timed counts the whole region's allocations (creation
             * included); what sb_case reports is the update phase's. */
            ms = bench_timed(ctx, sb_region, &t);
        } else {
            sb_region(&t);
        }
        if (allocs_out)
            *allocs_out = s.update_allocs;
        uint64_t created = t.runs_before_update - runs0;
        uint64_t updated = t.runs_after_update - t.runs_before_update;
        ok = bench_check(ctx, created == s.expect_create_runs,
                         "%s(n=%ld): %llu effect runs on creation, expected %llu", name, n,
                         (unsigned long long)created,
                         (unsigned long long)s.expect_create_runs) &&
             bench_check(ctx, updated == s.expect_update_runs,
                         "%s(n=%ld): %llu effect runs on update, expected %llu", name, n,
                         (unsigned long long)updated, (unsigned long long)s.expect_update_runs);
    }
    arena_free(&s.arena);
    bench_check_no_leaks(ctx);
    return ok && ctx->ok ? ms : -1;
}

typedef struct sb_sub {
    const char *name;
    sb_fn fn;
    long n, scount;
} sb_sub;

/* Run sub-cases; ms = sum of their fastest rounds; parts listed in extra. */
static void sb_case(bench_ctx *ctx, const sb_sub *subs, size_t nsubs)
{
    double total = 0;
    long long allocs = 0;
    bool allocs_known = true;
    size_t used = (size_t)snprintf(ctx->extra, sizeof ctx->extra, "\"parts\":{");
    for (size_t k = 0; k < nsubs && ctx->ok; k++) {
        const sb_sub *sub = &subs[k];
        double best = INFINITY;
        long long sub_allocs = -1;
        if (ctx->mode == BENCH_SMOKE) {
            best = sb_round(ctx, sub->name, sub->fn, sub->n / 100, sub->scount, true, &sub_allocs);
        } else {
            for (int w = 0; w < 3 && ctx->ok; w++)
                sb_round(ctx, sub->name, sub->fn, sub->n / 100, sub->scount, false, NULL);
            int reps = bench_reps(ctx, 10, 3);
            for (int r = 0; r < reps && ctx->ok; r++) {
                double t = sb_round(ctx, sub->name, sub->fn, sub->n, sub->scount, true,
                                    &sub_allocs);
                if (t >= 0 && t < best)
                    best = t;
            }
        }
        if (!ctx->ok)
            break;
        total += best;
        if (sub_allocs < 0)
            allocs_known = false;
        else
            allocs += sub_allocs;
        if (used < sizeof ctx->extra)
            used += (size_t)snprintf(ctx->extra + used, sizeof ctx->extra - used, "%s\"%s\":%.4f",
                                     k ? "," : "", sub->name, best);
    }
    if (used < sizeof ctx->extra)
        snprintf(ctx->extra + used, sizeof ctx->extra - used, "}");
    else
        ctx->extra[0] = '\0';
    ctx->ms = total;
    /* Allocations of the update phases (last round of each sub-case); the
     * creation cases have no propagation phase: null. */
    ctx->allocs = allocs_known ? allocs : -1;
}

void case_create_signals(bench_ctx *ctx)
{
    static const sb_sub subs[] = {{"createSignals", create_signals, SB_COUNT, SB_COUNT}};
    sb_case(ctx, subs, 1);
}

void case_create_computations(bench_ctx *ctx)
{
    static const sb_sub subs[] = {
        {"create0to1", create0to1, SB_COUNT, 0},
        {"create1to1", create1to1, SB_COUNT, SB_COUNT},
        {"create2to1", create2to1, SB_COUNT / 2, SB_COUNT},
        {"create4to1", create4to1, SB_COUNT / 4, SB_COUNT},
        {"create1000to1", create1000to1, SB_COUNT / 1000, SB_COUNT},
        {"create1to2", create1to2, SB_COUNT, SB_COUNT / 2},
        {"create1to4", create1to4, SB_COUNT, SB_COUNT / 4},
        {"create1to8", create1to8, SB_COUNT, SB_COUNT / 8},
        {"create1to1000", create1to1000, SB_COUNT, SB_COUNT / 1000},
    };
    sb_case(ctx, subs, sizeof subs / sizeof subs[0]);
}

void case_update_signals(bench_ctx *ctx)
{
    static const sb_sub subs[] = {
        {"update1to1", update1to1, SB_COUNT * 4, 1},
        {"update2to1", update2to1, SB_COUNT * 2, 2},
        {"update4to1", update4to1, SB_COUNT, 4},
        {"update1000to1", update1000to1, SB_COUNT / 250, 1000},
        {"update1to2", update1to2, SB_COUNT, 1},
        {"update1to4", update1to4, SB_COUNT, 1},
        {"update1to1000", update1to1000, SB_COUNT, 1},
    };
    sb_case(ctx, subs, sizeof subs / sizeof subs[0]);
}
