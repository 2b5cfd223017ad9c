/*
 * cases_dynamic.c — the dependency-graph cases of js-reactivity-benchmark
 * (benches/reactively/dependencyGraph.ts with the table of config.ts).
 *
 * A grid `width` nodes wide and `layers` deep: the first layer are signals,
 * every other node sums `nSources` neighbours of the layer above
 * (sources[(i + k) % width]).  A node is static with probability
 * `staticFraction`; a dynamic node drops one of its sources depending on the
 * parity of its first source, so its dependency set changes at run time.  One
 * effect reads a `readFraction` subset of the last layer.  Each iteration
 * writes one signal in a batch and reads the subset again; the result is the
 * sum of the subset at the end, and `count` the number of compute runs.
 *
 * The pseudo-random choices (static or dynamic, which leaves are skipped) use
 * the reference's generator — sfc32 seeded by the xmur3a hash of "seed" — so
 * the graphs, and therefore the expected sums and counts, are the same.
 * Values are doubles, like JS numbers: the sums pass 2^53, and one of them
 * (3.02e241) does not fit in any integer type.
 *
 * Time: after warm-up runs (3; 1 in quick mode), the fastest of 5 runs
 * (2 in quick mode) — the reference's dynamicBench.  Smoke mode runs 50
 * iterations and checks the sum against a direct (non-reactive) evaluation of
 * the same grid; every mode does that cross-check too.
 */
#include "bench.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* The reference's PRNG: xmur3a (seed hash) + sfc32 (generator)              */
/* ------------------------------------------------------------------------ */

typedef struct prng {
    uint32_t a, b, c, d;
} prng;

static uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

/* Seeds a generator exactly like pseudoRandom("seed"): four successive outputs
 * of the xmur3a hash of the string. */
static void prng_init(prng *p, const char *seed)
{
    uint32_t h = 2166136261u;
    size_t len = strlen(seed);
    for (size_t i = 0; i < len; i++) {
        uint32_t k = (uint32_t)(unsigned char)seed[i] * 3432918353u;
        k = rotl32(k, 15);
        h ^= k * 461845907u;
        h = rotl32(h, 13);
        h = h * 5u + 3864292196u;
    }
    h ^= (uint32_t)len;
    uint32_t out[4];
    for (int i = 0; i < 4; i++) {
        h ^= h >> 16;
        h *= 2246822507u;
        h ^= h >> 13;
        h *= 3266489909u;
        h ^= h >> 16;
        out[i] = h;
    }
    p->a = out[0];
    p->b = out[1];
    p->c = out[2];
    p->d = out[3];
}

/* sfc32: a double in [0, 1) with 32 random bits. */
static double prng_next(prng *p)
{
    uint32_t t = p->a + p->b;
    p->a = p->b ^ (p->b >> 9);
    p->b = p->c + (p->c << 3);
    p->c = rotl32(p->c, 21);
    p->d = p->d + 1u;
    t = t + p->d;
    p->c = p->c + t;
    return (double)t / 4294967296.0;
}

/* ------------------------------------------------------------------------ */
/* The graph                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct dyn_config {
    const char *title;
    int width, layers, nsources;
    double static_fraction, read_fraction;
    long iterations;
    double expected_sum;
    double expected_count;
} dyn_config;

typedef struct dyn_node {
    bnode *src; /* nsources entries */
    int nsrc;
    bool is_static;
    long *counter;
} dyn_node;

typedef struct dyn_graph {
    const dyn_config *cfg;
    bench_arena arena;
    gv_signal **sources;  /* width */
    bnode *rows;          /* (layers - 1) * width: the computed layers */
    dyn_node *nodes;      /* same shape */
    gv_computed **leaves; /* the read subset of the last layer */
    int nleaves;
    long counter;
    /* result of the last run */
    double sum;
} dyn_graph;

/* JS `x & 1` and `x % m` for the non-negative integral doubles the graph
 * holds; exact also beyond 2^53 (where JS's ToInt32 sees an even number). */
static void parity_and_mod(double x, int m, bool *odd, int *mod)
{
    if (x >= 0 && x < 9007199254740992.0) {
        uint64_t u = (uint64_t)x;
        *odd = u & 1u;
        *mod = (int)(u % (uint64_t)m);
    } else {
        double w = fmod(trunc(x), 4294967296.0);
        if (w < 0)
            w += 4294967296.0;
        *odd = ((uint32_t)w & 1u) != 0;
        *mod = (int)fmod(x, (double)m);
    }
}

static void compute_static(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    const dyn_node *n = ud;
    (*n->counter)++;
    double sum = 0;
    for (int i = 0; i < n->nsrc; i++)
        sum += bnode_double(&n->src[i]);
    *out = gv_double(sum);
}

static void compute_dynamic(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    const dyn_node *n = ud;
    (*n->counter)++;
    double sum = bnode_double(&n->src[0]);
    int tail = n->nsrc - 1;
    bool drop;
    int drop_dex;
    parity_and_mod(sum, tail, &drop, &drop_dex);
    for (int i = 0; i < tail; i++) {
        if (drop && i == drop_dex)
            continue;
        sum += bnode_double(&n->src[1 + i]);
    }
    *out = gv_double(sum);
}

static void effect_read_leaves(void *ud)
{
    const dyn_graph *g = ud;
    for (int i = 0; i < g->nleaves; i++)
        (void)gv_computed_get_double(g->leaves[i]);
}

static bool dyn_build(dyn_graph *g, bench_ctx *ctx)
{
    const dyn_config *cfg = g->cfg;
    bench_arena *a = &g->arena;
    int w = cfg->width, nrows = cfg->layers - 1;
    g->sources = arena_block(a, (size_t)w * sizeof *g->sources);
    g->rows = arena_block(a, (size_t)nrows * (size_t)w * sizeof *g->rows);
    g->nodes = arena_block(a, (size_t)nrows * (size_t)w * sizeof *g->nodes);
    bnode *srcs = arena_block(a, (size_t)nrows * (size_t)w * (size_t)cfg->nsources * sizeof *srcs);
    if (!g->sources || !g->rows || !g->nodes || !srcs)
        return false;
    for (int i = 0; i < w; i++)
        if (!(g->sources[i] = arena_signal(a, gv_double(i))))
            return false;

    /* Rows, in the reference's order (one random draw per node). */
    prng rnd;
    prng_init(&rnd, "seed");
    for (int l = 0; l < nrows; l++) {
        for (int i = 0; i < w; i++) {
            dyn_node *n = &g->nodes[l * w + i];
            n->src = &srcs[((size_t)l * w + i) * (size_t)cfg->nsources];
            n->nsrc = cfg->nsources;
            n->counter = &g->counter;
            for (int k = 0; k < cfg->nsources; k++) {
                int j = (i + k) % w;
                if (l == 0)
                    n->src[k].s = g->sources[j];
                else
                    n->src[k] = g->rows[(l - 1) * w + j];
            }
            n->is_static = prng_next(&rnd) < cfg->static_fraction;
            gv_computed *c =
                arena_computed(a, n->is_static ? compute_static : compute_dynamic, n);
            if (!c)
                return false;
            g->rows[l * w + i].c = c;
        }
    }

    /* The read subset: remove round(w * (1 - readFraction)) leaves picked by
     * a fresh generator, like removeElems(). */
    g->leaves = arena_block(a, (size_t)w * sizeof *g->leaves);
    if (!g->leaves)
        return false;
    for (int i = 0; i < w; i++)
        g->leaves[i] = g->rows[(nrows - 1) * w + i].c;
    g->nleaves = w;
    long skip = lround(floor((double)w * (1.0 - cfg->read_fraction) + 0.5));
    prng_init(&rnd, "seed");
    for (long k = 0; k < skip; k++) {
        int dex = (int)floor(prng_next(&rnd) * g->nleaves);
        memmove(&g->leaves[dex], &g->leaves[dex + 1],
                (size_t)(g->nleaves - dex - 1) * sizeof *g->leaves);
        g->nleaves--;
    }
    if (!arena_effect(a, effect_read_leaves, g))
        return false;
    return ctx->ok;
}

/* runGraph(): `iterations` batched writes, each followed by reading the
 * leaves; the sum of the leaves at the end. */
static void dyn_run(dyn_graph *g, long iterations)
{
    int w = g->cfg->width;
    for (long i = 0; i < iterations; i++) {
        int dex = (int)(i % w);
        gv_batch_begin();
        gv_signal_set_double(g->sources[dex], (double)(i + dex));
        gv_batch_end();
        for (int k = 0; k < g->nleaves; k++)
            (void)gv_computed_get_double(g->leaves[k]);
    }
    double total = 0;
    for (int k = 0; k < g->nleaves; k++)
        total = gv_computed_get_double(g->leaves[k]) + total;
    g->sum = total;
}

typedef struct dyn_timed {
    dyn_graph *g;
    long iterations;
} dyn_timed;

static void dyn_region(void *arg)
{
    dyn_timed *t = arg;
    t->g->counter = 0;
    dyn_run(t->g, t->iterations);
}

/* The same grid evaluated directly from the signals' current values, without
 * the reactive machinery, summing in the same order (so doubles match). */
static double dyn_direct_sum(const dyn_graph *g, bench_ctx *ctx)
{
    const dyn_config *cfg = g->cfg;
    int w = cfg->width;
    double *prev = malloc((size_t)w * sizeof *prev);
    double *cur = malloc((size_t)w * sizeof *cur);
    if (!prev || !cur) {
        free(prev);
        free(cur);
        bench_check(ctx, false, "out of memory (direct evaluation)");
        return NAN;
    }
    for (int i = 0; i < w; i++)
        prev[i] = gv_value_to_double(gv_signal_peek(g->sources[i]));
    for (int l = 0; l < cfg->layers - 1; l++) {
        for (int i = 0; i < w; i++) {
            const dyn_node *n = &g->nodes[l * w + i];
            double sum;
            if (n->is_static) {
                sum = 0;
                for (int k = 0; k < n->nsrc; k++)
                    sum += prev[(i + k) % w];
            } else {
                sum = prev[i % w];
                int tail = n->nsrc - 1;
                bool drop;
                int drop_dex;
                parity_and_mod(sum, tail, &drop, &drop_dex);
                for (int k = 0; k < tail; k++)
                    if (!(drop && k == drop_dex))
                        sum += prev[(i + 1 + k) % w];
            }
            cur[i] = sum;
        }
        double *t = prev;
        prev = cur;
        cur = t;
    }
    /* prev is the last layer; sum the read subset in leaf order. */
    double total = 0;
    for (int k = 0; k < g->nleaves; k++) {
        for (int i = 0; i < w; i++) {
            if (g->rows[(cfg->layers - 2) * w + i].c == g->leaves[k]) {
                total = prev[i] + total;
                break;
            }
        }
    }
    free(prev);
    free(cur);
    return total;
}

static void dyn_case(bench_ctx *ctx, const dyn_config *cfg)
{
    dyn_graph g;
    memset(&g, 0, sizeof g);
    g.cfg = cfg;
    if (!arena_init(&g.arena, ctx))
        return;
    bool built = dyn_build(&g, ctx);
    arena_leave(&g.arena);
    bool smoke = ctx->mode == BENCH_SMOKE;
    long iterations = smoke ? 50 : cfg->iterations;
    if (built && ctx->ok) {
        /* No warm-up in smoke mode: its single run is then the first one
         * after the build, which changes every written signal (a repeated
         * run writes the same values again and recomputes nothing). */
        int warm = smoke ? 0 : bench_reps(ctx, 3, 1);
        for (int i = 0; i < warm; i++)
            dyn_run(&g, iterations);
        dyn_timed t = {&g, iterations};
        int reps = bench_reps(ctx, 5, 2);
        double best = INFINITY;
        for (int r = 0; r < reps && ctx->ok; r++) {
            double ms = bench_timed(ctx, dyn_region, &t);
            if (ms < best)
                best = ms;
            if (!smoke) {
                bench_check(ctx, g.sum == cfg->expected_sum, "%s: sum %.17g, expected %.17g",
                            cfg->title, g.sum, cfg->expected_sum);
                bench_check(ctx, (double)g.counter == cfg->expected_count,
                            "%s: count %ld, expected %.0f", cfg->title, g.counter,
                            cfg->expected_count);
            }
        }
        ctx->ms = best;
        double direct = dyn_direct_sum(&g, ctx);
        bench_check(ctx, g.sum == direct, "%s: sum %.17g, direct evaluation gives %.17g",
                    cfg->title, g.sum, direct);
        snprintf(ctx->extra, sizeof ctx->extra, "\"sum\":%.17g,\"count\":%ld", g.sum, g.counter);
    }
    arena_free(&g.arena);
    bench_check_no_leaks(ctx);
}

/* The table of the reference's config.ts. */
static const dyn_config dyn_configs[] = {
    {"2-10x5 - lazy80%", 10, 5, 2, 1.0, 0.2, 600000, 19199968.0, 3480000},
    {"6-10x10 - dyn25% - lazy80%", 10, 10, 6, 0.75, 0.2, 15000, 302310782860.0, 1155000},
    {"4-1000x12 - dyn5%", 1000, 12, 4, 0.95, 1.0, 7000, 29355933696000.0, 1463000},
    {"25-1000x5", 1000, 5, 25, 1.0, 1.0, 3000, 1171484375000.0, 732000},
    {"3-5x500", 5, 500, 3, 1.0, 1.0, 500, 3.0239642676898464e241, 1246500},
    {"6-100x15 - dyn50%", 100, 15, 6, 0.5, 1.0, 2000, 15664996402790400.0, 1078000},
};

void case_dyn_2_10x5(bench_ctx *ctx) { dyn_case(ctx, &dyn_configs[0]); }
void case_dyn_6_10x10(bench_ctx *ctx) { dyn_case(ctx, &dyn_configs[1]); }
void case_dyn_4_1000x12(bench_ctx *ctx) { dyn_case(ctx, &dyn_configs[2]); }
void case_dyn_25_1000x5(bench_ctx *ctx) { dyn_case(ctx, &dyn_configs[3]); }
void case_dyn_3_5x500(bench_ctx *ctx) { dyn_case(ctx, &dyn_configs[4]); }
void case_dyn_6_100x15(bench_ctx *ctx) { dyn_case(ctx, &dyn_configs[5]); }
