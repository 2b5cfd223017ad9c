/*
 * chain.c — the headline figure of libgalvani: nanoseconds per
 * set -> propagate -> recompute -> effect on a chain of N computeds
 * (c[i] = c[i-1] + 1, an effect on the last), plus the same per node, and
 * the bytes per signal / computed / effect / link.
 *
 *   galvani_chain_bench [N [WRITES [REPEATS]]]     (default 1000 20000 5)
 *
 * Prints the median of REPEATS timed runs.  Not a test: times are noisy on
 * shared machines; use valgrind --tool=callgrind for a stable count.
 */
#include <galvani/signals.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct link_ud {
    gv_computed *prev;
    gv_signal *src;
} link_ud;

static void step(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    link_ud *l = ud;
    int64_t v = l->prev ? gv_computed_get_int(l->prev) : gv_signal_get_int(l->src);
    *out = gv_int(v + 1);
}

static int64_t sink;
static void observe(void *ud) { sink = gv_computed_get_int(ud); }

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    int writes = argc > 2 ? atoi(argv[2]) : 20000;
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    if (n < 1 || writes < 1 || reps < 1 || reps > 100) {
        fprintf(stderr, "usage: galvani_chain_bench [N [WRITES [REPEATS]]]\n");
        return 2;
    }
    gv_signal *src = gv_signal_new(gv_int(0));
    link_ud *uds = calloc((size_t)n, sizeof *uds);
    gv_computed **c = calloc((size_t)n, sizeof *c);
    double *ns = calloc((size_t)reps, sizeof *ns);
    if (!src || !uds || !c || !ns)
        return 1;
    for (int i = 0; i < n; i++) {
        uds[i] = (link_ud){i ? c[i - 1] : NULL, src};
        if (!(c[i] = gv_computed_new(step, &uds[i])))
            return 1;
    }
    gv_effect *e = gv_effect_new(observe, c[n - 1]);
    int64_t value = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (int i = 0; i < writes; i++)
            gv_signal_set_int(src, ++value);
        ns[r] = (now() - t0) * 1e9 / writes;
        if (sink != value + n) {
            fprintf(stderr, "wrong result: %lld, expected %lld\n", (long long)sink, (long long)(value + n));
            return 1;
        }
    }
    qsort(ns, (size_t)reps, sizeof *ns, cmp);
    gv_stats st;
    gv_get_stats(&st);
    printf("chain of %d computeds + 1 effect, %d writes x %d runs (median)\n", n, writes, reps);
    printf("  %.0f ns per set+propagate+recompute+effect, %.2f ns per node\n", ns[reps / 2], ns[reps / 2] / n);
    printf("  bytes: signal %zu, computed %zu, effect %zu, link %zu\n", st.bytes_signal, st.bytes_computed,
           st.bytes_effect, st.bytes_link);
    gv_effect_free(e);
    for (int i = n - 1; i >= 0; i--)
        gv_computed_free(c[i]);
    gv_signal_free(src);
    free(uds);
    free(c);
    free(ns);
    return 0;
}
