/*
 * series.c — see series.h: a bounded series that downsamples its older half
 * pairwise when it is full.
 *
 * Why pairwise merging of the older half, rather than a fixed number of time
 * buckets: the run's length is not known in advance (buckets would need
 * re-bucketing as it grows), and the newest points — what someone watching
 * a training run looks at — stay exact.  Weighted means keep a merged point
 * honest: a point that already stands for 8 reports counts 8 times when it
 * is merged with a point that stands for 1.
 */
#include "series.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int gvd_series_init(gvd_series *s, const char *name, size_t bound)
{
    memset(s, 0, sizeof *s);
    if (bound < GVD_SERIES_MIN_BOUND)
        bound = GVD_SERIES_MIN_BOUND;
    size_t n = strlen(name) + 1;
    s->name = malloc(n);
    s->pts = calloc(bound, sizeof *s->pts);
    if (!s->name || !s->pts) {
        gvd_series_clear(s);
        return -1;
    }
    memcpy(s->name, name, n);
    s->bound = bound;
    return 0;
}

void gvd_series_clear(gvd_series *s)
{
    free(s->name);
    free(s->pts);
    memset(s, 0, sizeof *s);
}

static gvd_point gvd_merge(gvd_point a, gvd_point b)
{
    /* Weights as fractions first: a * (wa / w) + b * (wb / w) stays between
     * a and b, where (a * wa + b * wb) / w could overflow for huge values. */
    double wa = (double)a.w, wb = (double)b.w, w = wa + wb;
    return (gvd_point){.t_ms = a.t_ms * (wa / w) + b.t_ms * (wb / w),
                       .v = a.v * (wa / w) + b.v * (wb / w),
                       .w = a.w + b.w};
}

/* Merge the older half pairwise, in place.  The very first point is kept
 * as it is: a merged point sits at the mean time of what it merged, so
 * merging the first one would move the start of the chart away from the
 * start of the run. */
static void gvd_compact(gvd_series *s)
{
    /* An even count of points after the first, at least 2 (bound >= 4), so
     * that every compaction frees room. */
    size_t half = ((s->len - 1) / 2 + 1) & ~(size_t)1;
    gvd_point *older = s->pts + 1;
    for (size_t i = 0; i < half / 2; i++)
        older[i] = gvd_merge(older[2 * i], older[2 * i + 1]);
    memmove(older + half / 2, older + half, (s->len - 1 - half) * sizeof *s->pts);
    s->len -= half / 2;
    s->compactions++;
    s->stored = 0; /* every index moved: the store's copy is rewritten */
}

int gvd_series_push(gvd_series *s, double t_ms, double v, int64_t w)
{
    if (!s->pts || !isfinite(t_ms) || !isfinite(v) || w < 1)
        return -1;
    if (s->len == s->bound)
        gvd_compact(s);
    s->pts[s->len++] = (gvd_point){.t_ms = t_ms, .v = v, .w = w};
    return 0;
}
