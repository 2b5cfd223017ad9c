/*
 * bench.h — shared plumbing of the galvani signals benchmark.
 *
 * The benchmark is a C port of the cases of milomg/js-reactivity-benchmark
 * (kairo, cellx, S-bench, the reactively dependency graphs) so that galvani
 * can be compared with alien-signals and @preact/signals-core, which run the
 * same cases in bench/signals/js/bench.mjs.  Sizes, iteration counts, expected
 * values and the timing method follow the reference suite; the code is ours.
 *
 * Every case is one function `void case_xxx(bench_ctx *ctx)` that builds its
 * graph, measures it with bench_timed(), checks the results with bench_check()
 * and tears the graph down again.  The driver (bench_main.c) prints one JSON
 * line per case.
 */
#ifndef GALVANI_BENCH_H
#define GALVANI_BENCH_H

#include <galvani/signals.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How much work a run does.  The iteration counts of a case never change
 * between modes (expected values depend on them), only the number of timed
 * repetitions — except in smoke mode, which is correctness only. */
typedef enum bench_mode {
    BENCH_FULL,      /* repetitions as in the reference suite */
    BENCH_QUICK,     /* fewer repetitions, same iteration counts */
    BENCH_SMOKE,     /* one small pass per case, every check on: for CTest */
    BENCH_CALLGRIND  /* warm-up, then exactly one timed run (instruction counts) */
} bench_mode;

/* The result of the case that is running. */
typedef struct bench_ctx {
    bench_mode mode;
    double ms;           /* the case's time, as the reference reports it */
    bool ok;             /* false after any failed check */
    char error[320];     /* first failed check */
    long long allocs;    /* heap allocations in the last timed run, -1: unknown */
    char extra[640];     /* optional JSON members appended to the result line,
                          * e.g. "\"parts\":{...}" (no leading comma) */
} bench_ctx;

/* Repetitions for the current mode: `full` in full mode, fewer otherwise. */
int bench_reps(const bench_ctx *ctx, int full, int quick);

/* Record a failure (keeps the first message) unless `cond` holds. */
bool bench_check(bench_ctx *ctx, bool cond, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Run fn(arg) once, timed; returns milliseconds.  The heap allocations it
 * makes are counted into ctx->allocs, so after a case's timed runs it holds
 * the count of the last one: the steady state, after warm-up runs (or earlier
 * timed runs) grew the runtime's work stacks and queues to their final size.  Under callgrind only this function's callees are measured
 * (the script passes --toggle-collect=bench_timed_region). */
typedef void (*bench_region_fn)(void *arg);
double bench_timed(bench_ctx *ctx, bench_region_fn fn, void *arg);

/* Monotonic clock in milliseconds. */
double bench_now_ms(void);

/* ------------------------------------------------------------------------ */
/* Heap allocation counter (bench_alloc.c)                                   */
/* ------------------------------------------------------------------------ */

/* Number of malloc/calloc/realloc/strdup/... calls so far in this process
 * (the library's and the bench's), or -1 when the binary was linked without
 * the --wrap counters. */
long long bench_alloc_count(void);

/* Allocation for values the *benchmark* creates inside compute functions
 * (mux's object, molBench's array).  They bypass the counter, so that the
 * reported number is what the library itself allocates.  Pair with
 * bench_user_free, which is also the gv_destroy_fn for such values. */
void *bench_user_alloc(size_t size);
void bench_user_free(void *p);

/* ------------------------------------------------------------------------ */
/* Graph arena: every node a case creates, freed in one go                   */
/* ------------------------------------------------------------------------ */

/* A source a compute function reads: either a signal or a computed (the
 * reference suite reads both through one `read()`). */
typedef struct bnode {
    gv_signal *s;
    gv_computed *c;
} bnode;

static inline int64_t bnode_int(const bnode *n)
{
    return n->s ? gv_signal_get_int(n->s) : gv_computed_get_int(n->c);
}

static inline double bnode_double(const bnode *n)
{
    return n->s ? gv_signal_get_double(n->s) : gv_computed_get_double(n->c);
}

/* Keeps the handles of a graph.  Effects are owned by the arena's scope (the
 * equivalent of the reference's effectScope / cleanup()); signals and computeds
 * are released by arena_free, the equivalent of JS garbage collection. */
typedef struct bench_arena {
    gv_scope *scope;
    bool entered; /* scope entered and not yet left */
    gv_signal **signals;
    size_t nsignals, capsignals;
    gv_computed **computeds;
    size_t ncomputeds, capcomputeds;
    void **blocks; /* user data of compute / effect functions */
    size_t nblocks, capblocks;
    bench_ctx *ctx; /* out-of-memory is reported here */
} bench_arena;

/* Start a graph: creates the scope and enters it (effects created from now on
 * belong to it).  Returns false when out of memory. */
bool arena_init(bench_arena *a, bench_ctx *ctx);
/* Stop owning new effects (leave the scope) — the graph stays alive. */
void arena_leave(bench_arena *a);
/* Dispose the effects (the reference's cleanup()). */
void arena_dispose_effects(bench_arena *a);
/* Dispose the effects if not done yet, release every node and block. */
void arena_free(bench_arena *a);

gv_signal *arena_signal(bench_arena *a, gv_value v);
gv_computed *arena_computed(bench_arena *a, gv_compute_fn fn, void *ud);
gv_effect *arena_effect(bench_arena *a, gv_effect_fn fn, void *ud);
/* Zeroed memory that lives until arena_free (user data of the nodes). */
void *arena_block(bench_arena *a, size_t size);

/* After a case's graph is gone: every node and link must be gone too. */
void bench_check_no_leaks(bench_ctx *ctx);

/* A tiny loop the optimiser may not delete (kairo's `busy()`). */
void bench_busy(void);

/* ------------------------------------------------------------------------ */
/* Cases                                                                     */
/* ------------------------------------------------------------------------ */

void case_avoidable(bench_ctx *ctx);
void case_broad(bench_ctx *ctx);
void case_deep(bench_ctx *ctx);
void case_diamond(bench_ctx *ctx);
void case_mux(bench_ctx *ctx);
void case_repeated(bench_ctx *ctx);
void case_triangle(bench_ctx *ctx);
void case_unstable(bench_ctx *ctx);
void case_mol(bench_ctx *ctx);

void case_cellx1000(bench_ctx *ctx);
void case_cellx2500(bench_ctx *ctx);
void case_cellx5000(bench_ctx *ctx);

void case_create_signals(bench_ctx *ctx);
void case_create_computations(bench_ctx *ctx);
void case_update_signals(bench_ctx *ctx);

void case_dyn_2_10x5(bench_ctx *ctx);
void case_dyn_6_10x10(bench_ctx *ctx);
void case_dyn_4_1000x12(bench_ctx *ctx);
void case_dyn_25_1000x5(bench_ctx *ctx);
void case_dyn_3_5x500(bench_ctx *ctx);
void case_dyn_6_100x15(bench_ctx *ctx);

#endif /* GALVANI_BENCH_H */
