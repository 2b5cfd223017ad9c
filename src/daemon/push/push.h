/*
 * push.h — live job state for WebSocket and Server-Sent Events clients.
 *
 * One subscription and coalescing core (hub.c, flush.c), two transports
 * (ws.c, sse.c).  The job model calls gvd_push_job_changed() from its change
 * effect; that only marks the job dirty.  A flush, at most every `flush_ms`,
 * encodes each dirty job ONCE into a shared reference-counted buffer and
 * hands that same buffer to every subscriber.  A subscriber holds at most one
 * unsent frame per job ("latest wins"): a slow client skips intermediate
 * states instead of queuing them, so no client ever has an unbounded
 * queue.  Each client gets at most one socket write in flight; the frames
 * gathered while it was in flight leave together in the next one (one
 * writev).
 *
 * Streams (docs/api.md, "Streams"):
 *   GVD_STREAM_DEMO  /ws        the seed's stream: the newest demo job's JSON
 *                               on connect and on every change of it
 *   GVD_STREAM_JOBS  /ws/jobs   {"type":"snapshot"...} first, then "job",
 *                    /events    "removed" and "counts" messages; all jobs (plus
 *                               "pipeline" and "pipeline_removed", and the
 *                               snapshot's "pipelines") or
 *                               one (?job=ID)
 *   GVD_STREAM_UPDATES  ?v=2    the same snapshot, then "update" messages:
 *                               one per flush with everything that changed,
 *                               each job as only its changed fields (the
 *                               whole object on first sight) — the compact
 *                               stream the dashboard and the CLI use
 *
 * Everything runs on the loop thread.
 */
#ifndef GALVANI_DAEMON_PUSH_H
#define GALVANI_DAEMON_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../model/jobs.h"

struct st_h2o_req_t; /* h2o_req_t, from <h2o.h> */

/* How the API and the streams encode JSON: compact (one line, which SSE
 * needs), and numbers with 15 significant digits so that 9.945 is not sent
 * as 9.9450000000000003. */
#define GVD_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

typedef struct gvd_push gvd_push;

/* Zero fields take the default in brackets. */
typedef struct gvd_push_opts {
    unsigned flush_ms;      /* coalescing interval: at most one flush per interval [20] */
    unsigned ping_ms;       /* WebSocket ping interval; a client that answers nothing for two
                               intervals is disconnected [30000] */
    unsigned keepalive_ms;  /* SSE keep-alive comment interval [15000] */
    size_t max_pending;     /* bytes a client may leave unsent ... [1 MiB]; also its socket's
                               SO_SNDBUF, within 8..64 KiB, so the kernel cannot hide a stuck
                               client behind megabytes of autotuned buffer (hub.c) */
    unsigned slow_ms;       /* ... for this long before it is dropped (WebSocket close 1008,
                               SSE stream closed) [10000]; 8 x max_pending drops at once */
    size_t snapshot_limit;  /* jobs in a snapshot message [1000] */
} gvd_push_opts;

typedef enum gvd_stream {
    GVD_STREAM_DEMO = 0, /* /ws */
    GVD_STREAM_JOBS = 1, /* /ws/jobs, /events */
    GVD_STREAM_UPDATES = 2 /* /ws/jobs?v=2, /events?v=2 */
} gvd_stream;

typedef struct gvd_push_stats {
    size_t ws_clients;       /* connected now (including those still upgrading) */
    size_t sse_clients;
    uint64_t flushes;        /* flushes that had something to send */
    uint64_t encoded;        /* messages encoded (once per flush each, whatever the client count) */
    uint64_t queued;         /* message handed to a client */
    uint64_t coalesced;      /* ... replacing an older unsent one for the same job */
    uint64_t writes;         /* socket writes (one per client per flush at most) */
    uint64_t snapshots;      /* all-jobs snapshots encoded (one per flush, shared by every new client) */
    uint64_t resyncs;        /* ?v=2 clients so far behind that a snapshot replaced their updates */
    uint64_t dropped_slow;   /* clients dropped for leaving too much unsent */
    uint64_t dropped_ping;   /* WebSocket clients dropped for not answering pings */
    size_t max_unsent;       /* high-water mark of one client's unsent bytes */
} gvd_push_stats;

/* Create the hub and register it as the jobs' change listener
 * (gvd_jobs_on_change).  NULL on allocation failure. */
gvd_push *gvd_push_new(uv_loop_t *loop, gvd_jobs *jobs, const gvd_push_opts *opts);

/* The jobs' change listener (a gvd_job_change_fn; `hub` is the gvd_push). */
void gvd_push_job_changed(void *hub, gvd_job *job, bool removed);
/* The pipelines' (a gvd_pipeline_change_fn): {"type":"pipeline",...} and
 * {"type":"pipeline_removed","id":N} to the streams following every job,
 * whose snapshot also carries "pipelines". */
struct gvd_pipeline;
void gvd_push_pipeline_changed(void *hub, struct gvd_pipeline *pl, bool removed);

/* Serve a stream request (an SSE stream is GVD_STREAM_JOBS or
 * GVD_STREAM_UPDATES).  `job` is 0 for every job, or the one job to
 * follow (it must exist).  Returns 0 when the request was taken (upgraded /
 * streaming), or -1 with *err set (400 not a WebSocket handshake, 404 no such
 * job, 503 closing) for the caller to answer. */
int gvd_push_ws(gvd_push *p, struct st_h2o_req_t *req, gvd_stream stream, int64_t job, gvd_error *err);
int gvd_push_sse(gvd_push *p, struct st_h2o_req_t *req, gvd_stream stream, int64_t job, gvd_error *err);

void gvd_push_stats_get(const gvd_push *p, gvd_push_stats *out);

/* Stop listening to the jobs (the hub never touches them again after this
 * returns), end every stream (WebSocket close 1001 "server shutting down",
 * SSE streams finished), and call done(ud) once every client is gone or
 * after a 1 s grace (clients still stuck then are left to their
 * connections, which free them when they close).  The hub frees itself
 * after `done`; its timers close on the loop. */
void gvd_push_close(gvd_push *p, void (*done)(void *ud), void *ud);

#endif
