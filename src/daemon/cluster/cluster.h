/*
 * cluster.h — galvanid nodes on one PostgreSQL (issue 18).
 *
 * When the store is PostgreSQL, galvanid is one node of a cluster that may
 * have several: every node serves every job (its model holds them all), a
 * job runs on the node that owns it (model/owner.c), and the database is
 * the only channel between nodes — no cluster protocol of our own:
 *
 *   nodes          one row per node: its id, an epoch (new at each start),
 *                  state (up / left / lost), heartbeat (the database's
 *                  clock, so nodes' clocks need not agree), lease, the
 *                  address it serves, its --max-running.
 *   jobs.node      the job's owner; NULL: queued, claimable by any node.
 *   galvani_jobs   a NOTIFY channel: "<node> <id>,<id>,..." after a commit
 *                  that changed those jobs (the store's batch sends it); the
 *                  other nodes read the rows and their mirrors follow
 *                  (mirror.c).  Payloads carry ids only: rows are read.
 *   galvani_rules  "<node>" after a commit that created or deleted a global
 *                  rule: the other nodes read the rules table again.
 *   galvani_ctl    a transition asked of the node that runs the job, and
 *                  its answer (control.c).
 *
 * Claims (claim.c).  A node with free slots and queued jobs nobody owns
 * claims up to that many, by priority then age, with FOR UPDATE SKIP
 * LOCKED: two nodes never get the same job and never wait for each other.
 * A job created on a node with a free slot is that node's from its insert.
 *
 * Leases (node.c).  Each node renews its heartbeat every lease / 3.  Any
 * node that finds another's heartbeat older than the lease marks it lost
 * and, in the same statement, hands its jobs back: queued ones become
 * claimable, running and paused ones are queued again to be retried —
 * their attempt counted — or failed ("node lost") when their retries are
 * spent or the job says "at_most_once": true.  A node whose renewal finds
 * it no longer "up" under its epoch has been declared lost: it kills its
 * jobs' processes (the cluster gave them away) and stops, exit 75.
 *
 * The cluster module has its own connection (LISTEN, claims, heartbeats,
 * reads); the store's connection carries only the batches, so a slow read
 * never delays a commit.
 *
 * Ownership: gvd_cluster_new returns a cluster the caller frees with
 * gvd_cluster_free, after the model it is attached to (or before
 * attaching).  Everything runs on the loop thread.
 */
#ifndef GALVANI_DAEMON_CLUSTER_H
#define GALVANI_DAEMON_CLUSTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../model/jobs.h"

typedef struct gvd_cluster gvd_cluster;

typedef struct gvd_cluster_opts {
    const char *conninfo;  /* the store's postgres:// URL */
    const char *node_id;   /* this node's id (unique in the cluster) */
    const char *advertise; /* where this node serves HTTP ("127.0.0.1:8000"), shown in GET /nodes */
    double lease_s;        /* heartbeat older than this: the node is lost (default 15) */
    unsigned max_running;  /* shown in GET /nodes */
} gvd_cluster_opts;

#define GVD_CLUSTER_LEASE_DEFAULT_S 15.0
/* Progress write-behind in a cluster (ms): the other nodes see a job's
 * progress through its row, so it is written about every tick rather than
 * every 250 ms; one batch in flight at a time coalesces it under load. */
#define GVD_CLUSTER_PROGRESS_FLUSH_MS 10

/* Connect and register this node (a new epoch), running `loop` until done
 * or timeout_ms (start-up: before the model loads, so that a node id taken
 * by a live node is refused before anything is adopted).  NULL + err. */
gvd_cluster *gvd_cluster_new(uv_loop_t *loop, const gvd_cluster_opts *o, unsigned timeout_ms, char *err,
                             size_t errlen);
/* Where this node serves HTTP, once it listens (--listen HOST:0 is known
 * only then): GET /nodes shows it. */
void gvd_cluster_advertise(gvd_cluster *c, const char *address);
/* This node's epoch (registration's). */
int64_t gvd_cluster_epoch(const gvd_cluster *c);
/* Start: LISTEN, heartbeats and the lease watch, claims for `jobs`'
 * scheduler.  `lost(ud, why)` when this node finds itself fenced or its
 * connection fails (galvanid stops, as when the store is lost). */
int gvd_cluster_attach(gvd_cluster *c, gvd_jobs *jobs, void (*lost)(void *ud, const char *why), void *ud,
                       char *err, size_t errlen);
/* Detach from the model (before it is freed) and say this node left (sent,
 * not waited for: run the loop until gvd_cluster_idle, bounded). */
void gvd_cluster_detach(gvd_cluster *c);
bool gvd_cluster_idle(const gvd_cluster *c);
void gvd_cluster_free(gvd_cluster *c);

/* Pause, resume or cancel (`verb`; or "hold"/"release": a pipeline's
 * queued step, taken by this node; or "claim": only make sure somebody owns
 * it) job `job_id`, which this node does not run
 * (control.c): the owner applies it and answers; a queued job nobody
 * owns is claimed here first.  done(ud, status, code, message) once: 200
 * (the mirror then shows the owner's row), or the owner's refusal (409...),
 * 504 when it did not answer in time, 503 at shutdown.  0, or -1 (unknown
 * verb, out of memory: done is not called). */
typedef void (*gvd_cluster_done_fn)(void *ud, int status, const char *code, const char *message);
int gvd_cluster_forward(gvd_cluster *c, int64_t job_id, const char *verb, gvd_cluster_done_fn done, void *ud);

/* Where node `node` serves HTTP (api/relay.c sends it the requests only
 * the node running a job can answer), read from the nodes table now; or,
 * `node` NULL, where the node that drives pipeline `pipeline_id` does.
 * fn(ud, node, address, state, NULL) — address NULL if the node never
 * said, state "up", "left" or "lost"; node NULL if there is no such node
 * or pipeline — or fn(ud, NULL, NULL, NULL, err) when the database did not
 * answer.  0 (fn is called once), or -1 (out of memory, connection gone:
 * fn is not called). */
typedef void (*gvd_cluster_located_fn)(void *ud, const char *node, const char *address, const char *state,
                                       const char *err);
int gvd_cluster_locate(gvd_cluster *c, const char *node, int64_t pipeline_id, gvd_cluster_located_fn fn, void *ud);

/* GET /nodes: {"nodes": [{"id", "epoch", "state", "address", "started_at",
 * "heartbeat_age", "lease", "max_running", "running", "queued", "self"}]}
 * as last read (every heartbeat), with the running counts of this node's
 * model.  New reference, or NULL when out of memory. */
json_t *gvd_cluster_nodes_json(gvd_cluster *c);

#endif
