/*
 * graph_ops.h — a randomized differential test of libgalvani: an operation
 * language over the public API, its interpreter, a reference model and the
 * checker (graph_ops.c).
 *
 * A program is a byte string.  Bytes decode into a sequence of top-level
 * operations (create signals, computeds, effects and scopes; set signals,
 * batches, reads, frees), and the bodies of computeds and effects decode into
 * steps (tracked and untracked reads with dynamic branches, failures, nested
 * effects, scopes, cleanups, writes, and actions that dispose nodes from
 * inside the callback).  Every byte string is a valid program: running out of
 * bytes ends it, and a reference to a node picks one of those that exist.  So
 * libFuzzer can drive it (fuzz/fuzz_graph.c) and a seeded PRNG can (the CTest
 * test tests/core/test_graph_random.c).
 *
 * go_run executes a program against the real library, checking every value
 * the library hands out and every run of a compute or effect function against
 * a naive model; see graph_ops.c for what exactly is checked.  It never
 * aborts on a finding: it reports the first one (operation index, expected,
 * seen) and still frees everything it created.  A crash or a sanitizer report
 * is the other kind of finding, and is the caller's to see.
 *
 * Not thread-safe: one program at a time per process (the interpreter state
 * is static, so that callbacks can reach it without a pointer in every ud).
 */
#ifndef GALVANI_TEST_GRAPH_OPS_H
#define GALVANI_TEST_GRAPH_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Flags for go_run: switch parts of the language off, to validate the model
 * against a core with known bugs (the bytes decode the same; the switched-off
 * steps become no-ops). */
enum {
    GO_NO_CALLBACK_ACTIONS = 1u << 0, /* no dispose / free from inside callbacks
                                         (compute, effect, cleanup, handler) */
    GO_NO_BATCH_SETBACK = 1u << 1,    /* a batch never ends with a signal back
                                         at the value it had when it began */
    GO_TRACE = 1u << 2,               /* print each operation (and effect run) to stderr */
    GO_NO_COMPUTE_FREE = 1u << 3,     /* compute functions never free value handles */
    GO_NO_HANDLER_ACTIONS = 1u << 4   /* the error handler does nothing but check */
};

typedef struct go_result {
    bool failed;
    size_t op_index;   /* top-level operation that was running (or "end") */
    size_t nops;       /* operations in the program */
    char message[768]; /* what was expected, what was seen */
} go_result;

/* Run one program.  Returns 0 if every check passed, -1 otherwise (details in
 * *res).  The thread's error handler is replaced while the program runs and
 * reset to the default afterwards. */
int go_run(const uint8_t *data, size_t size, unsigned flags, go_result *res);

/* Print the decoded program, one operation per line, numbered like
 * go_result.op_index. */
void go_print(const uint8_t *data, size_t size, FILE *out);

/* Byte offsets where each top-level operation starts (for minimizing by
 * removing whole operations).  Returns the number of operations; fills at
 * most `max` entries of `starts`. */
size_t go_op_starts(const uint8_t *data, size_t size, size_t *starts, size_t max);

/* A program of `size` bytes from `seed` (splitmix64). */
void go_generate(uint64_t seed, uint8_t *buf, size_t size);

#endif /* GALVANI_TEST_GRAPH_OPS_H */
