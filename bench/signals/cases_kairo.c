/*
 * cases_kairo.c — the kairo cases of js-reactivity-benchmark, on galvani.
 *
 * Each case builds a small graph once, then its `iter` function is run
 * 500 times per timed run; the case's time is the fastest of 10 such runs
 * (3 in quick mode), after three warm-up iterations — the reference's
 * kairoBench method.  The checks are the reference's console.asserts (values
 * and exact effect run counts), except molBench, which has none there: we
 * check its derived value G and the number of effect runs (see case_mol).
 */
#include "bench.h"

#include <math.h>
#include <stdlib.h>

#define KAIRO_ITERS 500

/* ------------------------------------------------------------------------ */
/* Shared compute and effect functions                                       */
/* ------------------------------------------------------------------------ */

/* out = src + add */
typedef struct add_ud {
    bnode src;
    int64_t add;
} add_ud;

static void compute_add(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    const add_ud *a = ud;
    *out = gv_int(bnode_int(&a->src) + a->add);
}

/* out = sum of n sources */
typedef struct sum_ud {
    bnode *src;
    size_t n;
} sum_ud;

static void compute_sum(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    const sum_ud *s = ud;
    int64_t sum = 0;
    for (size_t i = 0; i < s->n; i++)
        sum += bnode_int(&s->src[i]);
    *out = gv_int(sum);
}

/* An effect that reads one computed and counts its runs. */
typedef struct count_ud {
    gv_computed *c;
    long *runs;
} count_ud;

static void effect_count(void *ud)
{
    const count_ud *e = ud;
    (void)gv_computed_get_int(e->c);
    if (e->runs)
        (*e->runs)++;
}

static add_ud *new_add(bench_arena *a, bnode src, int64_t add)
{
    add_ud *u = arena_block(a, sizeof *u);
    if (u) {
        u->src = src;
        u->add = add;
    }
    return u;
}

static gv_computed *computed_add(bench_arena *a, bnode src, int64_t add)
{
    add_ud *u = new_add(a, src, add);
    return u ? arena_computed(a, compute_add, u) : NULL;
}

static bool effect_counting(bench_arena *a, gv_computed *c, long *runs)
{
    count_ud *u = arena_block(a, sizeof *u);
    if (!u)
        return false;
    u->c = c;
    u->runs = runs;
    return arena_effect(a, effect_count, u) != NULL;
}

static bnode sig_node(gv_signal *s) { bnode n = {s, NULL}; return n; }
static bnode comp_node(gv_computed *c) { bnode n = {NULL, c}; return n; }

static void write_batched(gv_signal *s, int64_t v)
{
    gv_batch_begin();
    gv_signal_set_int(s, v);
    gv_batch_end();
}

/* ------------------------------------------------------------------------ */
/* The common driver                                                         */
/* ------------------------------------------------------------------------ */

/* State every case keeps: its arena, the context for checks, the case's own
 * data and its iteration function. */
typedef struct kairo {
    bench_arena arena;
    bench_ctx *ctx;
    void (*iter)(struct kairo *k);
    gv_signal *head;
    gv_computed *last; /* the node the checks read */
    long runs;         /* effect run counter */
    void *extra;       /* case-specific */
} kairo;

typedef struct kairo_batch {
    kairo *k;
    int iters;
} kairo_batch;

static void kairo_region(void *arg)
{
    kairo_batch *b = arg;
    for (int i = 0; i < b->iters; i++)
        b->k->iter(b->k);
}

/* Build with `build` (which creates nodes in k->arena and sets k->iter), then
 * measure.  Teardown and the leak check follow in every case. */
static void kairo_run(bench_ctx *ctx, bool (*build)(kairo *k))
{
    kairo k = {0};
    k.ctx = ctx;
    if (!arena_init(&k.arena, ctx))
        return;
    bool built = build(&k);
    arena_leave(&k.arena);
    if (built && ctx->ok && k.iter) {
        if (ctx->mode == BENCH_SMOKE) {
            /* Correctness only: one iteration to settle, one measured. */
            kairo_batch one = {&k, 1};
            k.iter(&k);
            ctx->ms = bench_timed(ctx, kairo_region, &one);
        } else {
            kairo_batch b = {&k, KAIRO_ITERS};
            for (int i = 0; i < 3; i++)
                k.iter(&k);
            double best = INFINITY;
            int reps = bench_reps(ctx, 10, 3);
            for (int r = 0; r < reps; r++) {
                double t = bench_timed(ctx, kairo_region, &b);
                if (t < best)
                    best = t;
            }
            ctx->ms = best;
        }
    }
    arena_free(&k.arena);
    bench_check_no_leaks(ctx);
}

/* ------------------------------------------------------------------------ */
/* avoidablePropagation                                                      */
/* ------------------------------------------------------------------------ */

static void compute_zero_after(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    (void)gv_computed_get_int(ud);
    *out = gv_int(0);
}

static void compute_busy_plus1(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    bench_busy(); /* the "heavy computation" */
    *out = gv_int(gv_computed_get_int(ud) + 1);
}

static void effect_busy(void *ud)
{
    (void)gv_computed_get_int(ud);
    bench_busy(); /* the "heavy side effect" */
}

static void avoidable_iter(kairo *k)
{
    write_batched(k->head, 1);
    bench_check(k->ctx, gv_computed_get_int(k->last) == 6, "avoidable: c5 != 6");
    for (int i = 0; i < 1000; i++) {
        write_batched(k->head, i);
        int64_t v = gv_computed_get_int(k->last);
        bench_check(k->ctx, v == 6, "avoidable: c5 == %lld after write %d, expected 6",
                    (long long)v, i);
    }
}

static bool avoidable_build(kairo *k)
{
    bench_arena *a = &k->arena;
    k->head = arena_signal(a, gv_int(0));
    if (!k->head)
        return false;
    gv_computed *c1 = computed_add(a, sig_node(k->head), 0);
    gv_computed *c2 = c1 ? arena_computed(a, compute_zero_after, c1) : NULL;
    gv_computed *c3 = c2 ? arena_computed(a, compute_busy_plus1, c2) : NULL;
    gv_computed *c4 = c3 ? computed_add(a, comp_node(c3), 2) : NULL;
    gv_computed *c5 = c4 ? computed_add(a, comp_node(c4), 3) : NULL;
    if (!c5 || !arena_effect(a, effect_busy, c5))
        return false;
    k->last = c5;
    k->iter = avoidable_iter;
    return true;
}

void case_avoidable(bench_ctx *ctx) { kairo_run(ctx, avoidable_build); }

/* ------------------------------------------------------------------------ */
/* broadPropagation                                                          */
/* ------------------------------------------------------------------------ */

static void broad_iter(kairo *k)
{
    write_batched(k->head, 1);
    k->runs = 0;
    for (int i = 0; i < 50; i++) {
        write_batched(k->head, i);
        int64_t v = gv_computed_get_int(k->last);
        bench_check(k->ctx, v == i + 50, "broad: last == %lld, expected %d", (long long)v, i + 50);
    }
    bench_check(k->ctx, k->runs == 50 * 50, "broad: %ld effect runs, expected 2500", k->runs);
}

static bool broad_build(kairo *k)
{
    bench_arena *a = &k->arena;
    k->head = arena_signal(a, gv_int(0));
    if (!k->head)
        return false;
    for (int i = 0; i < 50; i++) {
        gv_computed *cur = computed_add(a, sig_node(k->head), i);
        gv_computed *cur2 = cur ? computed_add(a, comp_node(cur), 1) : NULL;
        if (!cur2 || !effect_counting(a, cur2, &k->runs))
            return false;
        k->last = cur2;
    }
    k->iter = broad_iter;
    return true;
}

void case_broad(bench_ctx *ctx) { kairo_run(ctx, broad_build); }

/* ------------------------------------------------------------------------ */
/* deepPropagation                                                           */
/* ------------------------------------------------------------------------ */

#define DEEP_LEN 50

static void deep_iter(kairo *k)
{
    write_batched(k->head, 1);
    k->runs = 0;
    for (int i = 0; i < 50; i++) {
        write_batched(k->head, i);
        int64_t v = gv_computed_get_int(k->last);
        bench_check(k->ctx, v == DEEP_LEN + i, "deep: end == %lld, expected %d", (long long)v,
                    DEEP_LEN + i);
    }
    bench_check(k->ctx, k->runs == 50, "deep: %ld effect runs, expected 50", k->runs);
}

static bool deep_build(kairo *k)
{
    bench_arena *a = &k->arena;
    k->head = arena_signal(a, gv_int(0));
    if (!k->head)
        return false;
    bnode cur = sig_node(k->head);
    gv_computed *c = NULL;
    for (int i = 0; i < DEEP_LEN; i++) {
        c = computed_add(a, cur, 1);
        if (!c)
            return false;
        cur = comp_node(c);
    }
    if (!effect_counting(a, c, &k->runs))
        return false;
    k->last = c;
    k->iter = deep_iter;
    return true;
}

void case_deep(bench_ctx *ctx) { kairo_run(ctx, deep_build); }

/* ------------------------------------------------------------------------ */
/* diamond                                                                   */
/* ------------------------------------------------------------------------ */

#define DIAMOND_WIDTH 5

static void diamond_iter(kairo *k)
{
    write_batched(k->head, 1);
    int64_t v = gv_computed_get_int(k->last);
    bench_check(k->ctx, v == 2 * DIAMOND_WIDTH, "diamond: sum == %lld, expected %d", (long long)v,
                2 * DIAMOND_WIDTH);
    k->runs = 0;
    for (int i = 0; i < 500; i++) {
        write_batched(k->head, i);
        v = gv_computed_get_int(k->last);
        bench_check(k->ctx, v == (int64_t)(i + 1) * DIAMOND_WIDTH,
                    "diamond: sum == %lld, expected %d", (long long)v, (i + 1) * DIAMOND_WIDTH);
    }
    bench_check(k->ctx, k->runs == 500, "diamond: %ld effect runs, expected 500", k->runs);
}

static bool diamond_build(kairo *k)
{
    bench_arena *a = &k->arena;
    k->head = arena_signal(a, gv_int(0));
    sum_ud *s = arena_block(a, sizeof *s);
    bnode *src = arena_block(a, DIAMOND_WIDTH * sizeof *src);
    if (!k->head || !s || !src)
        return false;
    for (int i = 0; i < DIAMOND_WIDTH; i++) {
        gv_computed *c = computed_add(a, sig_node(k->head), 1);
        if (!c)
            return false;
        src[i] = comp_node(c);
    }
    s->src = src;
    s->n = DIAMOND_WIDTH;
    gv_computed *sum = arena_computed(a, compute_sum, s);
    if (!sum || !effect_counting(a, sum, &k->runs))
        return false;
    k->last = sum;
    k->iter = diamond_iter;
    return true;
}

void case_diamond(bench_ctx *ctx) { kairo_run(ctx, diamond_build); }

/* ------------------------------------------------------------------------ */
/* mux                                                                       */
/* ------------------------------------------------------------------------ */

#define MUX_N 100

typedef struct mux_state {
    gv_signal *heads[MUX_N];
    gv_computed *mux;
    gv_computed *split[MUX_N]; /* the "+1" computeds */
} mux_state;

/* The reference builds a fresh object of all head values on every run; here a
 * fresh array, handed to the graph (a new pointer: never "equal", exactly like
 * a new JS object).  It is the benchmark's own allocation, so it bypasses the
 * allocation counter. */
static void compute_mux(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    mux_state *m = ud;
    int64_t *arr = bench_user_alloc(MUX_N * sizeof *arr);
    if (!arr) {
        gv_fail(GV_EFAIL, "mux: out of memory");
        return;
    }
    for (int i = 0; i < MUX_N; i++)
        arr[i] = gv_signal_get_int(m->heads[i]);
    *out = gv_ptr(arr, bench_user_free);
}

typedef struct index_ud {
    gv_computed *mux;
    int index;
} index_ud;

static void compute_index(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    const index_ud *x = ud;
    const int64_t *arr = gv_computed_get_pointer(x->mux);
    *out = gv_int(arr ? arr[x->index] : -1);
}

static void mux_iter(kairo *k)
{
    mux_state *m = k->extra;
    for (int i = 0; i < 10; i++) {
        write_batched(m->heads[i], i);
        int64_t v = gv_computed_get_int(m->split[i]);
        bench_check(k->ctx, v == i + 1, "mux: split[%d] == %lld, expected %d", i, (long long)v,
                    i + 1);
    }
    for (int i = 0; i < 10; i++) {
        write_batched(m->heads[i], i * 2);
        int64_t v = gv_computed_get_int(m->split[i]);
        bench_check(k->ctx, v == i * 2 + 1, "mux: split[%d] == %lld, expected %d", i,
                    (long long)v, i * 2 + 1);
    }
}

static bool mux_build(kairo *k)
{
    bench_arena *a = &k->arena;
    mux_state *m = arena_block(a, sizeof *m);
    if (!m)
        return false;
    k->extra = m;
    for (int i = 0; i < MUX_N; i++)
        if (!(m->heads[i] = arena_signal(a, gv_int(0))))
            return false;
    if (!(m->mux = arena_computed(a, compute_mux, m)))
        return false;
    gv_computed *idx[MUX_N];
    for (int i = 0; i < MUX_N; i++) {
        index_ud *u = arena_block(a, sizeof *u);
        if (!u)
            return false;
        u->mux = m->mux;
        u->index = i;
        if (!(idx[i] = arena_computed(a, compute_index, u)))
            return false;
    }
    for (int i = 0; i < MUX_N; i++)
        if (!(m->split[i] = computed_add(a, comp_node(idx[i]), 1)))
            return false;
    for (int i = 0; i < MUX_N; i++)
        if (!effect_counting(a, m->split[i], NULL))
            return false;
    k->iter = mux_iter;
    return true;
}

void case_mux(bench_ctx *ctx) { kairo_run(ctx, mux_build); }

/* ------------------------------------------------------------------------ */
/* repeatedObservers                                                         */
/* ------------------------------------------------------------------------ */

#define REPEATED_SIZE 30

static void compute_repeated(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    int64_t r = 0;
    for (int i = 0; i < REPEATED_SIZE; i++)
        r += gv_signal_get_int(ud);
    *out = gv_int(r);
}

static void repeated_iter(kairo *k)
{
    write_batched(k->head, 1);
    int64_t v = gv_computed_get_int(k->last);
    bench_check(k->ctx, v == REPEATED_SIZE, "repeatedObservers: %lld, expected %d", (long long)v,
                REPEATED_SIZE);
    k->runs = 0;
    for (int i = 0; i < 100; i++) {
        write_batched(k->head, i);
        v = gv_computed_get_int(k->last);
        bench_check(k->ctx, v == (int64_t)i * REPEATED_SIZE,
                    "repeatedObservers: %lld, expected %d", (long long)v, i * REPEATED_SIZE);
    }
    bench_check(k->ctx, k->runs == 100, "repeatedObservers: %ld effect runs, expected 100",
                k->runs);
}

static bool repeated_build(kairo *k)
{
    bench_arena *a = &k->arena;
    k->head = arena_signal(a, gv_int(0));
    gv_computed *c = k->head ? arena_computed(a, compute_repeated, k->head) : NULL;
    if (!c || !effect_counting(a, c, &k->runs))
        return false;
    k->last = c;
    k->iter = repeated_iter;
    return true;
}

void case_repeated(bench_ctx *ctx) { kairo_run(ctx, repeated_build); }

/* ------------------------------------------------------------------------ */
/* triangle                                                                  */
/* ------------------------------------------------------------------------ */

#define TRIANGLE_WIDTH 10

static void triangle_iter(kairo *k)
{
    const int64_t constant = TRIANGLE_WIDTH * (TRIANGLE_WIDTH + 1) / 2; /* 1 + ... + 10 */
    write_batched(k->head, 1);
    int64_t v = gv_computed_get_int(k->last);
    bench_check(k->ctx, v == constant, "triangle: sum == %lld, expected %lld", (long long)v,
                (long long)constant);
    k->runs = 0;
    for (int i = 0; i < 100; i++) {
        write_batched(k->head, i);
        v = gv_computed_get_int(k->last);
        int64_t want = constant - TRIANGLE_WIDTH + (int64_t)i * TRIANGLE_WIDTH;
        bench_check(k->ctx, v == want, "triangle: sum == %lld, expected %lld", (long long)v,
                    (long long)want);
    }
    bench_check(k->ctx, k->runs == 100, "triangle: %ld effect runs, expected 100", k->runs);
}

static bool triangle_build(kairo *k)
{
    bench_arena *a = &k->arena;
    k->head = arena_signal(a, gv_int(0));
    sum_ud *s = arena_block(a, sizeof *s);
    bnode *list = arena_block(a, TRIANGLE_WIDTH * sizeof *list);
    if (!k->head || !s || !list)
        return false;
    /* list = head, c1, ..., c9; the chain's last node c10 is not summed. */
    bnode cur = sig_node(k->head);
    for (int i = 0; i < TRIANGLE_WIDTH; i++) {
        list[i] = cur;
        gv_computed *c = computed_add(a, cur, 1);
        if (!c)
            return false;
        cur = comp_node(c);
    }
    s->src = list;
    s->n = TRIANGLE_WIDTH;
    gv_computed *sum = arena_computed(a, compute_sum, s);
    if (!sum || !effect_counting(a, sum, &k->runs))
        return false;
    k->last = sum;
    k->iter = triangle_iter;
    return true;
}

void case_triangle(bench_ctx *ctx) { kairo_run(ctx, triangle_build); }

/* ------------------------------------------------------------------------ */
/* unstable                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct unstable_ud {
    gv_signal *head;
    gv_computed *dbl, *inv;
} unstable_ud;

static void compute_double(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    *out = gv_int(gv_signal_get_int(ud) * 2);
}

static void compute_inverse(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    *out = gv_int(-gv_signal_get_int(ud));
}

/* Switches between two dependencies depending on the head's parity. */
static void compute_unstable(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    const unstable_ud *u = ud;
    int64_t r = 0;
    for (int i = 0; i < 20; i++)
        r += gv_signal_get_int(u->head) % 2 ? gv_computed_get_int(u->dbl)
                                            : gv_computed_get_int(u->inv);
    *out = gv_int(r);
}

static void unstable_iter(kairo *k)
{
    write_batched(k->head, 1);
    int64_t v = gv_computed_get_int(k->last);
    bench_check(k->ctx, v == 40, "unstable: %lld, expected 40", (long long)v);
    k->runs = 0;
    for (int i = 0; i < 100; i++)
        write_batched(k->head, i);
    bench_check(k->ctx, k->runs == 100, "unstable: %ld effect runs, expected 100", k->runs);
}

static bool unstable_build(kairo *k)
{
    bench_arena *a = &k->arena;
    unstable_ud *u = arena_block(a, sizeof *u);
    k->head = arena_signal(a, gv_int(0));
    if (!u || !k->head)
        return false;
    u->head = k->head;
    u->dbl = arena_computed(a, compute_double, k->head);
    u->inv = arena_computed(a, compute_inverse, k->head);
    gv_computed *c = (u->dbl && u->inv) ? arena_computed(a, compute_unstable, u) : NULL;
    if (!c || !effect_counting(a, c, &k->runs))
        return false;
    k->last = c;
    k->iter = unstable_iter;
    return true;
}

void case_unstable(bench_ctx *ctx) { kairo_run(ctx, unstable_build); }
