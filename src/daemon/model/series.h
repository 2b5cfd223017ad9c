/*
 * series.h — a bounded time series for one ::metric of one job: the
 * daemon's metric history (GET /jobs/{id}/metrics, docs/api.md).
 *
 * A series holds at most `bound` points.  Adding a point to a full series
 * first merges its older half pairwise (each pair becomes one point at the
 * weighted mean of their times and values, weighted by how many reported
 * points each already stands for), which frees about a quarter of the
 * bound; the very first point is never merged, so the series always starts
 * where the run started.  So the newest half of the bound is always at full
 * resolution, and the older a stretch of the history, the coarser it is
 * (each compaction halves the resolution of what it merges): the whole run
 * stays visible, its recent part in detail.  Memory is bound * 24 bytes per
 * series, allocated once.
 *
 * Pure: no I/O, no signals; unit-tested in tests/daemon/test_params.c.  The
 * store bookkeeping (`stored`, `stored_len`) is only read and written by
 * model/metrics.c.
 */
#ifndef GALVANI_DAEMON_SERIES_H
#define GALVANI_DAEMON_SERIES_H

#include <stddef.h>
#include <stdint.h>

#define GVD_SERIES_MIN_BOUND 4
#define GVD_SERIES_DEFAULT_BOUND 512

typedef struct gvd_point {
    double t_ms;    /* wall clock, milliseconds since the UNIX epoch */
    double v;
    int64_t w;      /* reported points this one stands for (>= 1) */
} gvd_point;

typedef struct gvd_series {
    char *name;       /* owned */
    gvd_point *pts;   /* owned, `bound` slots */
    size_t len, bound;
    size_t compactions;
    /* metrics.c: points [0, stored) are in the store as they are here; the
     * store holds stored_len points (more than len after a compaction). */
    size_t stored, stored_len;
} gvd_series;

/* A new series named `name` (copied) with room for `bound` points (raised to
 * GVD_SERIES_MIN_BOUND).  0, or -1 when out of memory (nothing to clear). */
int gvd_series_init(gvd_series *s, const char *name, size_t bound);
/* Free what init allocated; the series is empty (and may be inited again). */
void gvd_series_clear(gvd_series *s);
/* Append a point of weight w (1 for a reported point), compacting first if
 * the series is full.  -1 (nothing changed) for a non-finite time or value
 * or a weight < 1: the protocol never produces them, and one NaN would
 * poison every mean it is merged into. */
int gvd_series_push(gvd_series *s, double t_ms, double v, int64_t w);

#endif
