/*
 * fuzz_common.h — small helpers shared by the fuzz targets.
 *
 * FUZZ_CHECK is the targets' assert: it stays on in every build (assert()
 * would vanish with NDEBUG) and abort()s, which libFuzzer reports as a crash
 * and saves the input.  fuzz_rng / fuzz_chunk cut an input into reads or
 * writes of varied sizes from a seed byte, so one input also explores where
 * the packet boundaries fall (1-byte reads, reads ending right at or around
 * a buffer limit, everything at once).
 */
#ifndef GALVANI_FUZZ_COMMON_H
#define GALVANI_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                         \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond);      \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

typedef struct fuzz_rng {
    uint32_t s;
} fuzz_rng;

static inline fuzz_rng fuzz_rng_init(uint8_t seed)
{
    fuzz_rng r = {0x9E3779B9u ^ ((uint32_t)seed * 0x01000193u)};
    if (!r.s)
        r.s = 1;
    return r;
}

/* xorshift32: deterministic for a given seed, which is all a fuzzer needs. */
static inline uint32_t fuzz_rng_next(fuzz_rng *r)
{
    uint32_t x = r->s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return r->s = x;
}

/* The size of the next piece, 1..left: mostly small, sometimes just below,
 * at or above 4096 (the line limit), sometimes everything that is left. */
static inline size_t fuzz_chunk(fuzz_rng *r, size_t left)
{
    static const size_t sizes[] = {1, 2, 3, 5, 8, 13, 64, 100, 4095, 4096, 4097, 16384};
    uint32_t v = fuzz_rng_next(r);
    size_t n = (v & 3) == 0 ? left : sizes[(v >> 2) % (sizeof sizes / sizeof *sizes)];
    return n < left ? n : left;
}

/* A private temporary directory for a target's database and logs: in
 * /dev/shm when it exists (no disk I/O per execution), else /tmp.  `dir`
 * must hold at least 32 bytes. */
static inline void fuzz_make_tmpdir(char *dir, size_t size)
{
    snprintf(dir, size, "/dev/shm/galvani-fuzz-XXXXXX");
    if (!mkdtemp(dir)) {
        snprintf(dir, size, "/tmp/galvani-fuzz-XXXXXX");
        FUZZ_CHECK(mkdtemp(dir) != NULL);
    }
}

#endif
