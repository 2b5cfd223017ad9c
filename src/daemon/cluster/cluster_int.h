/*
 * cluster_int.h — the cluster module's private structure, shared by node.c
 * (registration, heartbeat, leases, GET /nodes), mirror.c (LISTEN and the
 * rows of other nodes' jobs) and claim.c (claiming queued jobs).
 */
#ifndef GALVANI_DAEMON_CLUSTER_INT_H
#define GALVANI_DAEMON_CLUSTER_INT_H

#include "../store/pg/pgconn.h"
#include "cluster.h"

struct gvd_cluster {
    uv_loop_t *loop;
    gvd_pg *pg;              /* the cluster's own connection, owned */
    char *node_id;
    char *advertise;
    double lease_s;
    unsigned max_running;
    int64_t epoch;           /* 0 until registered */
    bool registered;
    char open_err[512];      /* registration's failure */

    gvd_jobs *jobs;          /* attached model (borrowed), NULL before/after */
    void (*lost)(void *ud, const char *why);
    void *lost_ud;
    bool fenced;             /* lost once: said once */

    /* node.c: heartbeat and lease watch */
    uv_timer_t beat;
    uv_timer_t fence_timer;  /* re-armed by each renewal: fires when this node must assume it was declared lost */
    bool beating;            /* a heartbeat query in flight */
    double last_beat_ok;     /* uv_now (s) of the last renewal that worked */
    json_t *nodes;           /* the last read of the nodes table (array), owned */
    double nodes_read_at;    /* gvd_cluster_now of that read */

    /* mirror.c: job ids to read, gathered over a tick */
    int64_t *want;
    size_t nwant, cap_want;
    uv_check_t read_check;
    bool read_armed;
    bool reading;

    /* control.c: requests forwarded to other nodes, waiting for answers */
    struct gvd_ctl_req *ctl;
    uint64_t ctl_seq;

    /* claim.c */
    bool claiming;           /* a claim in flight */
    unsigned claim_again;    /* free slots asked for while one was in flight */

    int open_handles;
    bool freeing;
};

typedef struct gvd_ctl_req gvd_ctl_req;

/* node.c */
double gvd_cluster_now(const gvd_cluster *c); /* uv_now in seconds */
void gvd_cluster_release(gvd_cluster *c);     /* free the memory once every handle closed */
void gvd_cluster_fence(gvd_cluster *c, const char *why);
int gvd_cluster_start_beat(gvd_cluster *c);

/* mirror.c: the NOTIFY callback of the connection, and queuing a read of
 * job `id`'s row (at the end of the tick, one query for all). */
void gvd_cluster_on_notify(void *ud, const char *channel, const char *payload);
void gvd_cluster_want(gvd_cluster *c, int64_t id);
int gvd_cluster_mirror_init(gvd_cluster *c);
int gvd_cluster_catch_up(gvd_cluster *c);
void gvd_cluster_read_rules(gvd_cluster *c);
/* Read pipeline rows — `ids` "1,2,3", or NULL for all (a mirror with no
 * row left is deleted) — and hand them to the pipeline module. */
void gvd_cluster_read_pipelines(gvd_cluster *c, const char *ids);

/* control.c: a galvani_ctl payload; answering what is still waiting at
 * the end (503). */
void gvd_cluster_on_ctl(gvd_cluster *c, const char *payload);
void gvd_cluster_forward_quiet(void *ud, int64_t job_id, const char *verb); /* the model's forward hook */
void gvd_cluster_ctl_abort(gvd_cluster *c);

/* claim.c: the model's claim hook. */
extern const gvd_cluster_hooks gvd_cluster_hooks_claim;

#endif
