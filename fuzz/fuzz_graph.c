/*
 * fuzz_graph.c — libFuzzer target for libgalvani's graph itself: the input
 * is a program of the operation language of tests/core/graph_ops.c (create
 * signals, computeds with dynamic dependencies, effects with nested effects,
 * scopes and cleanups; set, batch, read, free; dispose nodes from inside
 * compute functions, effects, cleanups and the error handler), run against
 * the real library and checked step by step against the reference model
 * (the randomized differential test, tests/core/test_graph_random.c, runs
 * the same language from a seeded PRNG).
 *
 * Checks, beyond "no crash / no sanitizer report": every value the library
 * hands out equals the model's, no effect or compute function runs without a
 * reason or misses one, disposed effects never run again, cleanups run once
 * and in order, errors reach the handler exactly when the model says, and
 * everything is released at the end (gv_get_stats; LeakSanitizer for the
 * rest).  A failed check prints the decoded program and the finding, then
 * aborts (libFuzzer saves the input).  To replay a saved input in the
 * normal test binary (readable output, minimizing):
 *   GV_GRAPH_FILE=crash-... build-asan/tests/test_graph_random
 *
 * Inputs longer than 4 KiB are cut: a program's interesting part is its
 * first few hundred operations, and short runs keep the fuzzer fast.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "galvani/signals.h"
#include "graph_ops.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        size = 4096;
    go_result r;
    if (go_run(data, size, 0, &r) != 0) {
        go_print(data, size, stderr);
        fprintf(stderr, "fuzz_graph: %s\n", r.message);
        abort();
    }
    return 0;
}
