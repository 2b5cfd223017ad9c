/*
 * obs.h — galvanid's own metrics: a fixed registry the layers count into,
 * rendered as Prometheus text at GET /metrics (docs/observability.md).
 *
 * Counting must cost nothing a request or a frame would notice, so the
 * registry is a set of plain counters and histograms in static storage,
 * sized at compile time: a hook is an array index (or a short scan of a
 * few slots) and an increment, never an allocation, a lock or a format.
 * Label values come from closed sets (job statuses, exit outcomes, route
 * patterns, ...), so the number of series is bounded whatever clients send.
 * What is a state rather than an event (jobs per status, stream clients,
 * open connections) is not counted here at all: the scrape reads it from
 * its owner and passes it in (gvd_obs_live), so it can never drift.
 *
 * Everything runs on the loop thread, like the layers that count: the
 * counters are plain integers.  They live as long as the process, which is
 * what Prometheus expects of a counter (they never go back, a restart
 * starts them at zero).
 */
#ifndef GALVANI_DAEMON_OBS_H
#define GALVANI_DAEMON_OBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../model/jobs.h"
#include "../push/push.h"
#include "../store/store.h"

/* ---- time ---------------------------------------------------------------- */

/* A monotonic clock in nanoseconds, for durations: take it before the work,
 * hand it to the hook after. */
uint64_t gvd_obs_clock_ns(void);

/* ---- hooks: what the layers count ---------------------------------------- */

/* model: a job's status changed (one per "job.status" log line); `from` is
 * GVD_NSTATUS for a new job. */
void gvd_obs_job_transition(gvd_status from, gvd_status to);

/* runner: starting a process job (its supervisor's "hello" included, which
 * the loop waits for) took from `started_ns` to now; ok = it runs. */
void gvd_obs_process_spawned(bool ok, uint64_t started_ns);

/* runner: a process job ended (the fields of its gvd_exit). */
void gvd_obs_process_exited(int64_t exit_status, int term_signal, bool cancelled, bool lost);

/* rules: a rule fired; `action` is its static action name ("pause", ...). */
void gvd_obs_rule_fired(const char *action);

/* push: frames handed to a client's socket, and frames a client never got:
 * replaced by a newer state of the same job before it was sent ("latest
 * wins"), or discarded with a client that was dropped or went away. */
typedef enum gvd_obs_transport { GVD_OBS_WS = 0, GVD_OBS_SSE, GVD_OBS_NTRANSPORT } gvd_obs_transport;
typedef enum gvd_obs_drop { GVD_OBS_COALESCED = 0, GVD_OBS_DISCARDED, GVD_OBS_NDROP } gvd_obs_drop;
void gvd_obs_frames_sent(gvd_obs_transport t, size_t n);
/* push: a client's frames were handed to its socket `waited_ms` after the
 * first of them was queued (loop milliseconds). */
void gvd_obs_stream_written(uint64_t waited_ms);
void gvd_obs_frames_dropped(gvd_obs_transport t, gvd_obs_drop why, size_t n);

/* store: a write committed (an autocommit statement or a batch's COMMIT)
 * after starting at `started_ns`; a write failed; a fault began (or changed
 * its cause). */
void gvd_obs_store_committed(uint64_t started_ns);
void gvd_obs_store_write_failed(void);
void gvd_obs_store_fault(gvd_store_fault cause);

/* api: one answered request.  `route` is the route's pattern ("/jobs/{id}"),
 * a static string from a closed set; `status` the HTTP status. */
void gvd_obs_http_request(const char *route, int status);

/* ---- the scrape ------------------------------------------------------------ */

/* What the scrape reads from the state's owners. */
typedef struct gvd_obs_live {
    gvd_jobs_stats jobs;          /* per status, the limit, the store's state */
    gvd_push_stats push;          /* stream clients, clients dropped */
    size_t conns_open, conns_max; /* the server's connections */
    uint64_t conns_refused;
} gvd_obs_live;

/* A growable text buffer; `oom` once an append failed (the text is then
 * incomplete and must not be served). */
typedef struct gvd_obs_text {
    char *p;
    size_t len, cap;
    bool oom;
} gvd_obs_text;
void gvd_obs_text_free(gvd_obs_text *t);

/* Every metric in the text exposition format 0.0.4, appended to out.
 * 0, or -1 when out of memory. */
int gvd_obs_render(gvd_obs_text *out, const gvd_obs_live *live);

/* The Content-Type of that text. */
#define GVD_OBS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- building blocks (render.c; the unit test uses them) ------------------ */

/* A histogram over fixed upper bounds (ascending; +Inf is implicit). */
#define GVD_OBS_MAX_BUCKETS 16
typedef struct gvd_obs_hist {
    const double *bounds;
    size_t nbounds;                          /* <= GVD_OBS_MAX_BUCKETS */
    uint64_t counts[GVD_OBS_MAX_BUCKETS + 1]; /* per bucket, not cumulative; last: above every bound */
    uint64_t count;
    double sum;
} gvd_obs_hist;
void gvd_obs_hist_observe(gvd_obs_hist *h, double v);

/* "# HELP" and "# TYPE" lines. */
void gvd_obs_family(gvd_obs_text *t, const char *name, const char *type, const char *help);
/* One sample: name{l1="v1",l2="v2",...} value.  `labels` holds name, value
 * pairs and ends with NULL (NULL itself: no labels); values are escaped as
 * the format requires.  GVD_OBS_LABELS("status", "queued") builds the list. */
void gvd_obs_sample(gvd_obs_text *t, const char *name, const char *const *labels, double value);
#define GVD_OBS_LABELS(...) ((const char *const[]){__VA_ARGS__, NULL})
/* A whole histogram family (help, type, buckets, sum, count). */
void gvd_obs_histogram(gvd_obs_text *t, const char *name, const char *help, const gvd_obs_hist *h);

#endif
