/*
 * cases_cellx.c — the cellx benchmark (js-reactivity-benchmark's cellxBench).
 *
 * Four signals feed `layers` layers of four computeds each:
 *     p1' = p2   p2' = p1 - p3   p3' = p2 + p4   p4' = p3
 * and every computed has an effect reading it.  The timed part reads the four
 * computeds of the last layer, writes all four signals in one batch and reads
 * the last layer again; building and teardown are not timed.  The case's time
 * is the *sum* over 10 fresh graphs (the reference's method; quick mode too,
 * so the number keeps its meaning — one graph in smoke and callgrind modes).
 * Expected last-layer values are the reference's.
 */
#include "bench.h"

typedef struct cellx_layer {
    bnode p[4];
} cellx_layer;

static void compute_p1(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    const cellx_layer *m = ud;
    *out = gv_int(bnode_int(&m->p[1]));
}

static void compute_p2(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    const cellx_layer *m = ud;
    *out = gv_int(bnode_int(&m->p[0]) - bnode_int(&m->p[2]));
}

static void compute_p3(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    const cellx_layer *m = ud;
    *out = gv_int(bnode_int(&m->p[1]) + bnode_int(&m->p[3]));
}

static void compute_p4(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    const cellx_layer *m = ud;
    *out = gv_int(bnode_int(&m->p[2]));
}

static void effect_read(void *ud)
{
    (void)gv_computed_get_int(ud);
}

typedef struct cellx_run {
    gv_signal *start[4];
    cellx_layer *end;
    int64_t before[4], after[4];
} cellx_run;

static void read_layer(const cellx_layer *l, int64_t out[4])
{
    for (int i = 0; i < 4; i++)
        out[i] = bnode_int(&l->p[i]);
}

static void cellx_region(void *arg)
{
    cellx_run *r = arg;
    read_layer(r->end, r->before);
    gv_batch_begin();
    gv_signal_set_int(r->start[0], 4);
    gv_signal_set_int(r->start[1], 3);
    gv_signal_set_int(r->start[2], 2);
    gv_signal_set_int(r->start[3], 1);
    gv_batch_end();
    read_layer(r->end, r->after);
}

static bool cellx_build(bench_arena *a, int layers, cellx_run *r)
{
    static const gv_compute_fn fns[4] = {compute_p1, compute_p2, compute_p3, compute_p4};
    cellx_layer *layer = arena_block(a, sizeof *layer);
    if (!layer)
        return false;
    for (int i = 0; i < 4; i++) {
        r->start[i] = arena_signal(a, gv_int(i + 1));
        if (!r->start[i])
            return false;
        layer->p[i].s = r->start[i];
    }
    for (int l = layers; l > 0; l--) {
        cellx_layer *next = arena_block(a, sizeof *next);
        if (!next)
            return false;
        for (int i = 0; i < 4; i++) {
            next->p[i].c = arena_computed(a, fns[i], layer);
            if (!next->p[i].c)
                return false;
        }
        for (int i = 0; i < 4; i++)
            if (!arena_effect(a, effect_read, next->p[i].c))
                return false;
        layer = next;
    }
    r->end = layer;
    return true;
}

static void cellx(bench_ctx *ctx, int layers, const int64_t want_before[4],
                  const int64_t want_after[4])
{
    int reps = bench_reps(ctx, 10, 10);
    double total = 0;
    for (int rep = 0; rep < reps && ctx->ok; rep++) {
        bench_arena a;
        cellx_run r = {0};
        if (!arena_init(&a, ctx))
            return;
        bool built = cellx_build(&a, layers, &r);
        arena_leave(&a);
        if (built && ctx->ok) {
            total += bench_timed(ctx, cellx_region, &r);
            for (int i = 0; i < 4; i++) {
                bench_check(ctx, r.before[i] == want_before[i],
                            "cellx%d: before[%d] == %lld, expected %lld", layers, i,
                            (long long)r.before[i], (long long)want_before[i]);
                bench_check(ctx, r.after[i] == want_after[i],
                            "cellx%d: after[%d] == %lld, expected %lld", layers, i,
                            (long long)r.after[i], (long long)want_after[i]);
            }
        }
        arena_free(&a);
        bench_check_no_leaks(ctx);
    }
    ctx->ms = total;
}

void case_cellx1000(bench_ctx *ctx)
{
    static const int64_t before[4] = {-3, -6, -2, 2}, after[4] = {-2, -4, 2, 3};
    cellx(ctx, 1000, before, after);
}

void case_cellx2500(bench_ctx *ctx)
{
    static const int64_t before[4] = {-3, -6, -2, 2}, after[4] = {-2, -4, 2, 3};
    cellx(ctx, 2500, before, after);
}

void case_cellx5000(bench_ctx *ctx)
{
    static const int64_t before[4] = {2, 4, -1, -6}, after[4] = {-2, 1, -4, -4};
    cellx(ctx, 5000, before, after);
}
