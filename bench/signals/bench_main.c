/*
 * bench_main.c — driver of the galvani signals benchmark.
 *
 *   galvani_signals_bench [--quick | --smoke | --callgrind] [--filter TEXT]
 *                         [--case NAME]... [--strict-allocs] [--list]
 *
 * Prints one JSON object per line: first a "meta" line (mode, node sizes from
 * gv_get_stats), then one line per case:
 *   {"lib":"galvani","name":"diamond","group":"kairo","ms":1.23,"ok":true,
 *    "allocs_during_propagation":0,"error":null, ...case extras}
 * `ms` follows the reference suite's method for the case's group (see the
 * case files); `allocs_during_propagation` is the number of heap allocations
 * (malloc, calloc, realloc, ...) made during the first timed run, the
 * benchmark's own value objects excluded; null when not measured.
 * Exit status: 0 when every selected case passed its checks, 1 otherwise,
 * 2 on a usage error.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct case_def {
    const char *name;  /* as in the reference's result tables */
    const char *group; /* kairo, cellx, sbench, dynamic */
    void (*run)(bench_ctx *ctx);
} case_def;

static const case_def cases[] = {
    {"avoidablePropagation", "kairo", case_avoidable},
    {"broadPropagation", "kairo", case_broad},
    {"deepPropagation", "kairo", case_deep},
    {"diamond", "kairo", case_diamond},
    {"mux", "kairo", case_mux},
    {"repeatedObservers", "kairo", case_repeated},
    {"triangle", "kairo", case_triangle},
    {"unstable", "kairo", case_unstable},
    {"molBench", "kairo", case_mol},
    {"cellx1000", "cellx", case_cellx1000},
    {"cellx2500", "cellx", case_cellx2500},
    {"cellx5000", "cellx", case_cellx5000},
    {"createSignals", "sbench", case_create_signals},
    {"createComputations", "sbench", case_create_computations},
    {"updateSignals", "sbench", case_update_signals},
    {"2-10x5 - lazy80%", "dynamic", case_dyn_2_10x5},
    {"6-10x10 - dyn25% - lazy80%", "dynamic", case_dyn_6_10x10},
    {"4-1000x12 - dyn5%", "dynamic", case_dyn_4_1000x12},
    {"25-1000x5", "dynamic", case_dyn_25_1000x5},
    {"3-5x500", "dynamic", case_dyn_3_5x500},
    {"6-100x15 - dyn50%", "dynamic", case_dyn_6_100x15},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* The case that is running, for the error handler. */
static bench_ctx *current_ctx;

/* Errors the library reports through the handler (a failing effect, an effect
 * cycle) fail the running case. */
static void on_gv_error(const gv_error *err, const char *node_name, void *ud)
{
    (void)ud;
    if (current_ctx)
        bench_check(current_ctx, false, "galvani error %d in effect '%s': %s", err->code,
                    node_name, err->message);
    else
        fprintf(stderr, "galvani error %d in effect '%s': %s\n", err->code, node_name,
                err->message);
}

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static const char *mode_name(bench_mode m)
{
    switch (m) {
    case BENCH_FULL:
        return "full";
    case BENCH_QUICK:
        return "quick";
    case BENCH_SMOKE:
        return "smoke";
    case BENCH_CALLGRIND:
        return "callgrind";
    }
    return "?";
}

static void usage(FILE *to)
{
    fprintf(to,
            "usage: galvani_signals_bench [--quick|--smoke|--callgrind] [--filter TEXT]\n"
            "                             [--case NAME]... [--strict-allocs] [--list]\n"
            "  --quick          fewer timed repetitions (same iteration counts)\n"
            "  --smoke          tiny correctness-only pass (used by ctest bench_smoke)\n"
            "  --callgrind      warm up, then exactly one timed run per case\n"
            "  --filter TEXT    only cases whose name contains TEXT\n"
            "  --case NAME      only the case named exactly NAME (repeatable)\n"
            "  --strict-allocs  a heap allocation during a timed run fails the case\n"
            "  --list           print the case names and exit\n");
}

#define MAX_SELECTED 64

/* The allocation counter is only worth its numbers if it sees allocations:
 * one malloc must count as one.  (The volatile keeps the compiler from
 * deleting the malloc/free pair.) */
static bool alloc_counter_works(void)
{
    if (bench_alloc_count() < 0)
        return true; /* not compiled in: reported as null, nothing to check */
    long long before = bench_alloc_count();
    void *volatile p = malloc(24);
    long long after = bench_alloc_count();
    free(p);
    return p != NULL && after - before == 1;
}

int main(int argc, char **argv)
{
    bench_mode mode = BENCH_FULL;
    const char *filter = NULL;
    const char *exact[MAX_SELECTED];
    size_t nexact = 0;
    bool strict_allocs = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--quick")) {
            mode = BENCH_QUICK;
        } else if (!strcmp(a, "--smoke")) {
            mode = BENCH_SMOKE;
        } else if (!strcmp(a, "--callgrind")) {
            mode = BENCH_CALLGRIND;
        } else if (!strcmp(a, "--strict-allocs")) {
            strict_allocs = true;
        } else if (!strcmp(a, "--filter") && i + 1 < argc) {
            filter = argv[++i];
        } else if (!strcmp(a, "--case") && i + 1 < argc) {
            if (nexact == MAX_SELECTED) {
                fprintf(stderr, "too many --case options\n");
                return 2;
            }
            exact[nexact++] = argv[++i];
        } else if (!strcmp(a, "--list")) {
            for (size_t k = 0; k < NCASES; k++)
                printf("%s\t%s\n", cases[k].group, cases[k].name);
            return 0;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "unknown argument: %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    for (size_t k = 0; k < nexact; k++) {
        bool known = false;
        for (size_t c = 0; c < NCASES; c++)
            known = known || !strcmp(cases[c].name, exact[k]);
        if (!known) {
            fprintf(stderr, "unknown case: %s (see --list)\n", exact[k]);
            return 2;
        }
    }

    if (!alloc_counter_works()) {
        fprintf(stderr, "the heap allocation counter does not count (--wrap=malloc broken?)\n");
        return 1;
    }
    gv_set_error_handler(on_gv_error, NULL);
    gv_stats st;
    gv_get_stats(&st);
    printf("{\"meta\":\"galvani\",\"mode\":\"%s\",\"alloc_counter\":%s,"
           "\"bytes_signal\":%zu,\"bytes_computed\":%zu,\"bytes_effect\":%zu,"
           "\"bytes_link\":%zu}\n",
           mode_name(mode), bench_alloc_count() >= 0 ? "true" : "false", st.bytes_signal,
           st.bytes_computed, st.bytes_effect, st.bytes_link);
    fflush(stdout);

    int failed = 0, ran = 0;
    for (size_t k = 0; k < NCASES; k++) {
        const case_def *c = &cases[k];
        if (filter && !strstr(c->name, filter))
            continue;
        if (nexact) {
            bool picked = false;
            for (size_t j = 0; j < nexact; j++)
                picked = picked || !strcmp(c->name, exact[j]);
            if (!picked)
                continue;
        }
        bench_ctx ctx;
        memset(&ctx, 0, sizeof ctx);
        ctx.mode = mode;
        ctx.ok = true;
        ctx.allocs = -1;
        current_ctx = &ctx;
        /* Set per case: gv_runtime_release() below may reset the runtime. */
        gv_set_error_handler(on_gv_error, NULL);
        c->run(&ctx);
        current_ctx = NULL;
        gv_runtime_release();
        if (strict_allocs && ctx.allocs > 0)
            bench_check(&ctx, false, "%lld heap allocations during the timed run", ctx.allocs);

        printf("{\"lib\":\"galvani\",\"name\":");
        print_json_string(c->name);
        printf(",\"group\":\"%s\",\"ms\":%.4f,\"ok\":%s,\"allocs_during_propagation\":", c->group,
               ctx.ms, ctx.ok ? "true" : "false");
        if (ctx.allocs >= 0)
            printf("%lld", ctx.allocs);
        else
            printf("null");
        printf(",\"error\":");
        if (ctx.ok)
            printf("null");
        else
            print_json_string(ctx.error);
        if (ctx.extra[0])
            printf(",%s", ctx.extra);
        printf("}\n");
        fflush(stdout);
        ran++;
        if (!ctx.ok)
            failed++;
    }
    if (ran == 0) {
        fprintf(stderr, "no case matched\n");
        return 2;
    }
    if (failed)
        fprintf(stderr, "%d of %d cases FAILED\n", failed, ran);
    return failed ? 1 : 0;
}
