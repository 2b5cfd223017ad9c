/*
 * grow.h — room for one more element in a growable array.
 *
 *   if (gvd_grow((void **)&job->series, &job->series_cap, job->nseries, sizeof *job->series, 4) != 0)
 *       return NULL;  (out of memory: the array is unchanged)
 *
 * The daemon keeps small per-job and per-pipeline arrays (metric series,
 * params changes, a step's jobs, a job's rules); each grows by doubling from
 * a first capacity.  One helper instead of the same five lines at each.
 */
#ifndef GALVANI_DAEMON_UTIL_GROW_H
#define GALVANI_DAEMON_UTIL_GROW_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Make room for element number `used` (0-based) in *arr of *cap elements of
 * `size` bytes: doubles *cap (or sets it to `first`) when full.  0, or -1
 * when out of memory (then *arr and *cap are as they were). */
static inline int gvd_grow(void **arr, size_t *cap, size_t used, size_t size, size_t first)
{
    if (used < *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : first;
    if (n < used + 1 || n > SIZE_MAX / size)
        return -1;
    void *p = realloc(*arr, n * size);
    if (!p)
        return -1;
    *arr = p;
    *cap = n;
    return 0;
}

#endif
