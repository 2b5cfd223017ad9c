/*
 * bench_alloc.c — counting heap allocations of the benchmark process.
 *
 * galvani promises that a graph which has run once propagates without
 * allocating.  To check that claim on every benchmark case, the bench binary
 * is linked with `-Wl,--wrap=malloc,--wrap=calloc,...` (see
 * bench/CMakeLists.txt): every call to malloc from the bench *and from the
 * statically linked libgalvani* goes to __wrap_malloc below, which counts it
 * and forwards to the real allocator (__real_malloc).  Calls made inside libc
 * itself are not redirected, which is fine: the library under test is what we
 * want to observe.  --wrap is a link-time rename, so unlike an LD_PRELOAD
 * interposer it cannot recurse and it works unchanged under ASan and valgrind
 * (their own malloc is what __real_malloc resolves to).
 *
 * Without BENCH_COUNT_ALLOCS (a linker without --wrap) the counters report -1.
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

#ifdef BENCH_COUNT_ALLOCS

/* Single-threaded benchmark: plain counters are enough. */
static unsigned long long alloc_calls;

/* The real functions, resolved by the linker's --wrap. */
void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void __real_free(void *p);
void *__real_aligned_alloc(size_t align, size_t size);
int __real_posix_memalign(void **out, size_t align, size_t size);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

/* Prototypes for -Wmissing-prototypes: only the linker calls these. */
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
void __wrap_free(void *p);
void *__wrap_aligned_alloc(size_t align, size_t size);
int __wrap_posix_memalign(void **out, size_t align, size_t size);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t size)
{
    alloc_calls++;
    return __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    alloc_calls++;
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    /* A realloc may move the block: it is an allocation as far as the
     * "nothing allocates while propagating" promise is concerned. */
    alloc_calls++;
    return __real_realloc(p, size);
}

void __wrap_free(void *p)
{
    __real_free(p);
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
    alloc_calls++;
    return __real_aligned_alloc(align, size);
}

int __wrap_posix_memalign(void **out, size_t align, size_t size)
{
    alloc_calls++;
    return __real_posix_memalign(out, align, size);
}

char *__wrap_strdup(const char *s)
{
    alloc_calls++;
    return __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    alloc_calls++;
    return __real_strndup(s, n);
}

long long bench_alloc_count(void)
{
    return (long long)alloc_calls;
}

void *bench_user_alloc(size_t size)
{
    return __real_malloc(size);
}

void bench_user_free(void *p)
{
    __real_free(p);
}

#else /* !BENCH_COUNT_ALLOCS */

long long bench_alloc_count(void)
{
    return -1;
}

void *bench_user_alloc(size_t size)
{
    return malloc(size);
}

void bench_user_free(void *p)
{
    free(p);
}

#endif
