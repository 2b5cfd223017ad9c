/*
 * text.c — writing the Prometheus text exposition format, version 0.0.4
 * (obs.h), and the histogram the registry is made of.
 *
 * The format is line-based: "# HELP name text" and "# TYPE name type" once
 * per family, then one "name{label="value",...} number" line per series.
 * Three things are easy to get wrong and are done once here: label values
 * escape backslash, double quote and newline (HELP text escapes backslash
 * and newline only); histogram buckets are cumulative, each "le" bucket
 * counting everything at or below its bound, ending with le="+Inf" equal to
 * _count; numbers are printed so that they read back as the same double
 * (integers without a fraction, NaN and infinities in Prometheus' spelling).
 *
 * The scrape is the only caller, so this side may allocate; the counting
 * side (gvd_obs_hist_observe) never does.
 */
#include "obs.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t gvd_obs_clock_ns(void)
{
    struct timespec ts;
    /* CLOCK_MONOTONIC cannot fail on Linux; a zero reading only makes one
     * duration wrong, never a crash. */
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void gvd_obs_hist_observe(gvd_obs_hist *h, double v)
{
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

/* ---- the buffer ------------------------------------------------------------- */

void gvd_obs_text_free(gvd_obs_text *t)
{
    free(t->p);
    t->p = NULL;
    t->len = t->cap = 0;
}

static bool gvd_obs_reserve(gvd_obs_text *t, size_t more)
{
    if (t->oom)
        return false;
    if (t->len + more + 1 <= t->cap)
        return true;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->len + more + 1)
        cap *= 2;
    char *p = realloc(t->p, cap);
    if (!p) {
        t->oom = true;
        return false;
    }
    t->p = p;
    t->cap = cap;
    return true;
}

static void gvd_obs_put(gvd_obs_text *t, const char *s, size_t n)
{
    if (!gvd_obs_reserve(t, n))
        return;
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void gvd_obs_puts(gvd_obs_text *t, const char *s)
{
    gvd_obs_put(t, s, strlen(s));
}

/* `s` with the characters of `special` escaped as \\, \" or \n. */
static void gvd_obs_escaped(gvd_obs_text *t, const char *s, const char *special)
{
    for (const char *run = s;; s++) {
        if (*s && !strchr(special, *s))
            continue;
        gvd_obs_put(t, run, (size_t)(s - run));
        if (!*s)
            return;
        gvd_obs_puts(t, *s == '\n' ? "\\n" : *s == '"' ? "\\\"" : "\\\\");
        run = s + 1;
    }
}

/* Shortest of %.15g / %.17g that reads back as v: 0.1 stays "0.1", 3 is
 * "3", and a sum of durations keeps every bit. */
static void gvd_obs_number(gvd_obs_text *t, double v)
{
    if (isnan(v)) {
        gvd_obs_puts(t, "NaN");
        return;
    }
    if (isinf(v)) {
        gvd_obs_puts(t, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char buf[40];
    snprintf(buf, sizeof buf, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, sizeof buf, "%.17g", v);
    gvd_obs_puts(t, buf);
}

/* ---- lines ------------------------------------------------------------------- */

void gvd_obs_family(gvd_obs_text *t, const char *name, const char *type, const char *help)
{
    gvd_obs_puts(t, "# HELP ");
    gvd_obs_puts(t, name);
    gvd_obs_puts(t, " ");
    gvd_obs_escaped(t, help, "\\\n");
    gvd_obs_puts(t, "\n# TYPE ");
    gvd_obs_puts(t, name);
    gvd_obs_puts(t, " ");
    gvd_obs_puts(t, type);
    gvd_obs_puts(t, "\n");
}

void gvd_obs_sample(gvd_obs_text *t, const char *name, const char *const *labels, double value)
{
    gvd_obs_puts(t, name);
    size_t i = 0;
    for (; labels && labels[i]; i += 2) {
        gvd_obs_puts(t, i ? "," : "{");
        gvd_obs_puts(t, labels[i]);
        gvd_obs_puts(t, "=\"");
        gvd_obs_escaped(t, labels[i + 1] ? labels[i + 1] : "", "\\\"\n");
        gvd_obs_puts(t, "\"");
    }
    gvd_obs_puts(t, i ? "} " : " ");
    gvd_obs_number(t, value);
    gvd_obs_puts(t, "\n");
}

void gvd_obs_histogram(gvd_obs_text *t, const char *name, const char *help, const gvd_obs_hist *h)
{
    char series[128], le[40];
    gvd_obs_family(t, name, "histogram", help);
    snprintf(series, sizeof series, "%s_bucket", name);
    uint64_t below = 0;
    for (size_t i = 0; i < h->nbounds; i++) {
        below += h->counts[i];
        snprintf(le, sizeof le, "%.15g", h->bounds[i]);
        gvd_obs_sample(t, series, GVD_OBS_LABELS("le", le), (double)below);
    }
    gvd_obs_sample(t, series, GVD_OBS_LABELS("le", "+Inf"), (double)h->count);
    snprintf(series, sizeof series, "%s_sum", name);
    gvd_obs_sample(t, series, NULL, h->sum);
    snprintf(series, sizeof series, "%s_count", name);
    gvd_obs_sample(t, series, NULL, (double)h->count);
}
