/*
 * node.c — this node in the nodes table: registration, heartbeat, the
 * lease watch over the other nodes, and GET /nodes.
 *
 * Registration takes a new epoch (a sequence) and sets the row "up".  A row
 * of the same id that is up, with a fresh heartbeat, from another host or
 * from a process still alive on this one, is a second node under the same
 * id: refused.  Our own previous life (killed, restarted within the lease)
 * is not: its pid is gone.
 *
 * Every lease / 3 one query renews this node's heartbeat — only while the
 * row is still "up" under this epoch, so a node another declared lost
 * learns it here — and one statement declares lost every node whose
 * heartbeat is older than its lease and hands its jobs back, telling the
 * other nodes on galvani_jobs.  A node that stopped cleanly ("left") keeps
 * its jobs for a lease too — they run on under their supervisors, for a
 * restart to re-adopt — and is then treated as lost.  Heartbeats use the database's clock
 * (now()), so nodes need not agree on the time.  A node that cannot renew
 * (the database unreachable) must assume it will be declared lost, and
 * stop its jobs *before* another node can start them again: its own fence
 * timer, re-armed by each renewal, fires GVD_FENCE_SHARE of a lease after
 * the last one — sooner than any other node can find the heartbeat a whole
 * lease old (the database stamped it before this node heard the answer).
 */
#include "cluster_int.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../util/log.h"

/* The part of a lease after the last renewal at which a node that cannot
 * renew fences itself. */
#define GVD_FENCE_SHARE 0.8

double gvd_cluster_now(const gvd_cluster *c)
{
    return (double)uv_now(c->loop) / 1000.0;
}

void gvd_cluster_fence(gvd_cluster *c, const char *why)
{
    if (c->fenced)
        return;
    c->fenced = true;
    gvd_log(GVD_LOG_ERROR, "cluster.fenced", "node=%s epoch=%lld why=%s", c->node_id, (long long)c->epoch,
            gvd_log_quote(why, (char[400]){0}, 400));
    /* The cluster gives (or gave) this node's jobs to others: what runs
     * here must end now, not when its supervisors next hear from a node. */
    if (c->jobs)
        gvd_jobs_kill_own(c->jobs);
    if (c->lost)
        c->lost(c->lost_ud, why);
}

/* ---- registration ------------------------------------------------------ */

/* A live node of this id elsewhere (or a live process here): refuse. */
static const char gvd_sql_register[] =
    "WITH prev AS (SELECT host, pid, state, extract(epoch FROM now() - heartbeat_at) AS age, lease_s "
    "              FROM nodes WHERE id = $1 FOR UPDATE), "
    "reg AS (INSERT INTO nodes (id, epoch, state, address, host, pid, started_at, heartbeat_at, lease_s, "
    "                           max_running) "
    "        SELECT $1, nextval('node_epochs'), 'up', $2, $3, $4, extract(epoch FROM now()), now(), $5, $6 "
    "        WHERE NOT EXISTS (SELECT 1 FROM prev WHERE state = 'up' AND age < lease_s AND "
    "                          (host IS DISTINCT FROM $3 OR $7::boolean)) "
    "        ON CONFLICT (id) DO UPDATE SET epoch = EXCLUDED.epoch, state = 'up', address = EXCLUDED.address, "
    "          host = EXCLUDED.host, pid = EXCLUDED.pid, started_at = EXCLUDED.started_at, "
    "          heartbeat_at = EXCLUDED.heartbeat_at, lease_s = EXCLUDED.lease_s, "
    "          max_running = EXCLUDED.max_running "
    "        RETURNING epoch) "
    "SELECT (SELECT epoch FROM reg), (SELECT host FROM prev), (SELECT pid FROM prev), (SELECT age FROM prev)";

typedef struct gvd_reg_wait {
    gvd_cluster *c;
    bool done, prev_checked;
    int64_t prev_pid;
    char prev_host[256];
} gvd_reg_wait;

static void gvd_on_registered(void *ud, const PGresult *res, const char *err)
{
    gvd_reg_wait *w = ud;
    gvd_cluster *c = w->c;
    w->done = true;
    if (err || !res || PQntuples(res) != 1) {
        snprintf(c->open_err, sizeof c->open_err, "cluster: cannot register node '%s': %s", c->node_id,
                 err ? err : "no answer");
        return;
    }
    if (!PQgetisnull(res, 0, 0)) {
        c->epoch = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        c->registered = true;
        return;
    }
    snprintf(c->open_err, sizeof c->open_err,
             "cluster: node id '%s' is in use by a live node (host %s, pid %s, heartbeat %.1f s ago): give this "
             "node another --node-id",
             c->node_id, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), strtod(PQgetvalue(res, 0, 3), NULL));
}

/* Whether the process a previous row of our id names is alive on this
 * host (a second galvanid with the same id) or gone (our previous life). */
static bool gvd_pid_alive(long pid)
{
    return pid > 0 && pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

static void gvd_on_prev(void *ud, const PGresult *res, const char *err)
{
    gvd_reg_wait *w = ud;
    w->prev_checked = true;
    if (!err && res && PQntuples(res) == 1) {
        snprintf(w->prev_host, sizeof w->prev_host, "%s", PQgetvalue(res, 0, 0));
        w->prev_pid = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    }
}

static void gvd_on_deadline(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

void gvd_cluster_release(gvd_cluster *c)
{
    json_decref(c->nodes);
    free(c->want);
    free(c->node_id);
    free(c->advertise);
    free(c);
}

static void gvd_cluster_closed(uv_handle_t *h)
{
    gvd_cluster *c = h->data;
    if (--c->open_handles == 0 && c->freeing)
        gvd_cluster_release(c);
}

/* Run the loop until *flag or the deadline: start-up only. */
static bool gvd_run_until(uv_loop_t *loop, bool *flag, unsigned timeout_ms)
{
    bool expired = false;
    uv_timer_t t;
    (void)uv_timer_init(loop, &t);
    t.data = &expired;
    (void)uv_timer_start(&t, gvd_on_deadline, timeout_ms, 0);
    while (!*flag && !expired)
        (void)uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    (void)uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

gvd_cluster *gvd_cluster_new(uv_loop_t *loop, const gvd_cluster_opts *o, unsigned timeout_ms, char *err,
                             size_t errlen)
{
    gvd_cluster *c = calloc(1, sizeof *c);
    if (!c || !(c->node_id = strdup(o->node_id)) || !(c->advertise = strdup(o->advertise ? o->advertise : ""))) {
        if (c) {
            free(c->node_id);
            free(c);
        }
        snprintf(err, errlen, "cluster: out of memory");
        return NULL;
    }
    c->loop = loop;
    c->lease_s = o->lease_s > 0 ? o->lease_s : GVD_CLUSTER_LEASE_DEFAULT_S;
    c->max_running = o->max_running;
    static const gvd_pg_events ev = {NULL, gvd_cluster_on_notify};
    char perr[300];
    c->pg = gvd_pg_new(loop, o->conninfo, &ev, c, perr, sizeof perr);
    if (!c->pg) {
        snprintf(err, errlen, "cluster: %s", perr);
        free(c->node_id);
        free(c->advertise);
        free(c);
        return NULL;
    }
    (void)uv_timer_init(loop, &c->beat);
    (void)uv_timer_init(loop, &c->fence_timer);
    c->beat.data = c->fence_timer.data = c;
    c->open_handles = 2;
    if (gvd_cluster_mirror_init(c) != 0) {
        snprintf(err, errlen, "cluster: out of memory");
        gvd_cluster_free(c);
        return NULL;
    }
    /* Our previous row first: is the pid it names alive on this host? */
    char host[256] = "";
    (void)gethostname(host, sizeof host - 1);
    gvd_reg_wait w = {.c = c};
    const char *q1[] = {c->node_id};
    if (gvd_pg_query(c->pg, "SELECT host, pid FROM nodes WHERE id = $1", 1, q1, gvd_on_prev, &w) != 0 ||
        !gvd_run_until(loop, &w.prev_checked, timeout_ms)) {
        snprintf(err, errlen, "cluster: the database did not answer within %u ms", timeout_ms);
        gvd_cluster_free(c);
        return NULL;
    }
    bool same_host_alive = strcmp(w.prev_host, host) == 0 && gvd_pid_alive((long)w.prev_pid);
    char pid[24], lease[32], maxrun[24];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    snprintf(lease, sizeof lease, "%.3f", c->lease_s);
    snprintf(maxrun, sizeof maxrun, "%u", c->max_running);
    const char *q2[] = {c->node_id, c->advertise, host, pid, lease, maxrun, same_host_alive ? "true" : "false"};
    if (gvd_pg_query(c->pg, gvd_sql_register, 7, q2, gvd_on_registered, &w) != 0 ||
        !gvd_run_until(loop, &w.done, timeout_ms)) {
        snprintf(err, errlen, "cluster: the database did not answer within %u ms", timeout_ms);
        gvd_cluster_free(c);
        return NULL;
    }
    if (!c->registered) {
        snprintf(err, errlen, "%s", c->open_err);
        gvd_cluster_free(c);
        return NULL;
    }
    c->last_beat_ok = gvd_cluster_now(c);
    gvd_log(GVD_LOG_INFO, "cluster.registered", "node=%s epoch=%lld lease=%g", c->node_id, (long long)c->epoch,
            c->lease_s);
    return c;
}

int64_t gvd_cluster_epoch(const gvd_cluster *c)
{
    return c->epoch;
}

/* ---- heartbeat and the lease watch ---------------------------------------- */

static const char gvd_sql_beat[] =
    "UPDATE nodes SET heartbeat_at = now() WHERE id = $1 AND epoch = $2 AND state = 'up' RETURNING epoch";

/* Nodes past their lease are lost; their jobs go back: queued ones become
 * claimable, running / paused ones are retried (queued, attempt counted)
 * or failed when retries are spent or the job is at_most_once.  Every job
 * changed is announced on galvani_jobs.  One row at least: the lost nodes
 * (NULL: none) beside each moved job (NULL: none). */
#define GVD_SQL_SPENT                                                                                            \
    "(coalesce((j.spec_json::jsonb ->> 'at_most_once')::boolean, false) OR "                                     \
    "j.attempts > coalesce((j.spec_json::jsonb ->> 'max_retries')::bigint, 0))"
static const char gvd_sql_reap[] =
    "WITH lost AS (UPDATE nodes SET state = 'lost' "
    "              WHERE state IN ('up', 'left') AND id <> $1 "
    "                AND heartbeat_at < now() - make_interval(secs => lease_s) "
    "              RETURNING id), "
    "moved AS (UPDATE jobs j SET node = NULL, epoch = 0, pid = 0, updated_at = extract(epoch FROM now()), "
    "  status = CASE WHEN j.status <> 'queued' AND " GVD_SQL_SPENT " THEN 'failed' ELSE 'queued' END, "
    "  error = CASE WHEN j.status = 'queued' THEN j.error "
    "               ELSE 'node lost: ' || j.node || ' stopped renewing its lease' END, "
    "  finished_at = CASE WHEN j.status <> 'queued' AND " GVD_SQL_SPENT " THEN extract(epoch FROM now()) "
    "                     ELSE j.finished_at END "
    "  WHERE j.node IN (SELECT id FROM lost) AND j.status IN ('queued', 'running', 'paused') RETURNING j.id) "
    "SELECT (SELECT string_agg(id, ',') FROM lost), m.id, "
    "       CASE WHEN m.id IS NOT NULL THEN pg_notify('galvani_jobs', $1 || ' ' || m.id) END "
    "FROM (SELECT 1) AS one LEFT JOIN moved m ON true";

static const char gvd_sql_nodes[] =
    "SELECT id, epoch, state, address, started_at, extract(epoch FROM now() - heartbeat_at), lease_s, "
    "max_running, (SELECT count(*) FROM jobs WHERE jobs.node = nodes.id AND status IN ('running', 'paused')) "
    "FROM nodes ORDER BY id";

static void gvd_fence_cb(uv_timer_t *t)
{
    gvd_cluster *c = t->data;
    if (!c->freeing && c->jobs)
        gvd_cluster_fence(c, "the database did not take this node's heartbeat for most of a lease: the other "
                             "nodes will hand its jobs on");
}

static void gvd_arm_fence(gvd_cluster *c)
{
    (void)uv_timer_start(&c->fence_timer, gvd_fence_cb, (uint64_t)(c->lease_s * GVD_FENCE_SHARE * 1000.0), 0);
}

static void gvd_on_beat(void *ud, const PGresult *res, const char *err)
{
    gvd_cluster *c = ud;
    c->beating = false;
    if (c->freeing || c->fenced)
        return;
    if (err) {
        gvd_log(GVD_LOG_WARN, "cluster.heartbeat_failed", "error=%s", gvd_log_quote(err, (char[400]){0}, 400));
        return; /* the lease check in the timer decides */
    }
    if (!res || PQntuples(res) != 1) {
        gvd_cluster_fence(c, "this node was declared lost by another node (its lease ran out)");
        return;
    }
    c->last_beat_ok = gvd_cluster_now(c);
    gvd_arm_fence(c);
}

static void gvd_on_reaped(void *ud, const PGresult *res, const char *err)
{
    gvd_cluster *c = ud;
    if (err || !res || c->freeing)
        return;
    int n = PQntuples(res);
    if (n > 0 && !PQgetisnull(res, 0, 0))
        gvd_log(GVD_LOG_WARN, "cluster.node_lost", "nodes=%s jobs=%d by=%s", PQgetvalue(res, 0, 0),
                PQgetisnull(res, 0, 1) ? 0 : n, c->node_id);
    /* This node's mirrors follow too (its own NOTIFY is not for it). */
    for (int i = 0; i < n; i++)
        if (!PQgetisnull(res, i, 1))
            gvd_cluster_want(c, strtoll(PQgetvalue(res, i, 1), NULL, 10));
}

static json_t *gvd_node_json(const PGresult *r, int i, const char *self)
{
    const char *id = PQgetvalue(r, i, 0);
    return json_pack("{s:s, s:I, s:s, s:s?, s:f, s:f, s:f, s:I, s:I, s:b}", "id", id, "epoch",
                     (json_int_t)strtoll(PQgetvalue(r, i, 1), NULL, 10), "state", PQgetvalue(r, i, 2), "address",
                     PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3), "started_at",
                     strtod(PQgetvalue(r, i, 4), NULL), "heartbeat_age", strtod(PQgetvalue(r, i, 5), NULL), "lease",
                     strtod(PQgetvalue(r, i, 6), NULL), "max_running",
                     (json_int_t)strtoll(PQgetvalue(r, i, 7), NULL, 10), "running",
                     (json_int_t)strtoll(PQgetvalue(r, i, 8), NULL, 10), "self", strcmp(id, self) == 0);
}

static void gvd_on_nodes(void *ud, const PGresult *res, const char *err)
{
    gvd_cluster *c = ud;
    if (err || !res || c->freeing)
        return;
    json_t *a = json_array();
    for (int i = 0; a && i < PQntuples(res); i++)
        if (json_array_append_new(a, gvd_node_json(res, i, c->node_id)) != 0) {
            json_decref(a);
            a = NULL;
        }
    if (a) {
        json_decref(c->nodes);
        c->nodes = a;
        c->nodes_read_at = gvd_cluster_now(c);
    }
}

static void gvd_beat_cb(uv_timer_t *t)
{
    gvd_cluster *c = t->data;
    if (c->fenced || c->freeing)
        return;
    char epoch[24];
    snprintf(epoch, sizeof epoch, "%lld", (long long)c->epoch);
    const char *p1[] = {c->node_id, epoch};
    const char *p2[] = {c->node_id};
    if (!c->beating && gvd_pg_query(c->pg, gvd_sql_beat, 2, p1, gvd_on_beat, c) == 0)
        c->beating = true;
    (void)gvd_pg_query(c->pg, gvd_sql_reap, 1, p2, gvd_on_reaped, c);
    (void)gvd_pg_query(c->pg, gvd_sql_nodes, 0, NULL, gvd_on_nodes, c);
}

int gvd_cluster_start_beat(gvd_cluster *c)
{
    gvd_arm_fence(c); /* from registration, the last renewal so far */
    uint64_t every = (uint64_t)(c->lease_s * 1000.0 / 3.0);
    if (every < 50)
        every = 50;
    gvd_beat_cb(&c->beat);
    return uv_timer_start(&c->beat, gvd_beat_cb, every, every);
}

void gvd_cluster_advertise(gvd_cluster *c, const char *address)
{
    char *copy = strdup(address);
    if (!copy)
        return;
    free(c->advertise);
    c->advertise = copy;
    char epoch[24];
    snprintf(epoch, sizeof epoch, "%lld", (long long)c->epoch);
    const char *p[] = {c->node_id, epoch, address};
    (void)gvd_pg_query(c->pg, "UPDATE nodes SET address = $3 WHERE id = $1 AND epoch = $2", 3, p, NULL, NULL);
    (void)gvd_pg_query(c->pg, gvd_sql_nodes, 0, NULL, gvd_on_nodes, c); /* GET /nodes says it at once */
}

typedef struct gvd_locate {
    gvd_cluster_located_fn fn;
    void *ud;
} gvd_locate;

static void gvd_on_located(void *ud, const PGresult *res, const char *err)
{
    gvd_locate *l = ud;
    if (err || !res)
        l->fn(l->ud, NULL, NULL, NULL, err ? err : "connection closed");
    else if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
        l->fn(l->ud, NULL, NULL, NULL, NULL);
    else
        l->fn(l->ud, PQgetvalue(res, 0, 0), PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1),
              PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2), NULL);
    free(l);
}

int gvd_cluster_locate(gvd_cluster *c, const char *node, int64_t pipeline_id, gvd_cluster_located_fn fn, void *ud)
{
    /* A pipeline's state names the node that drives it
     * (pipeline/control.c); a node that never registered is found with
     * no state. */
    static const char by_node[] = "SELECT $1::text, address, state FROM nodes WHERE id = $1";
    static const char by_pipeline[] = "SELECT p.state_json::json->>'node', n.address, n.state FROM pipelines p "
                                      "LEFT JOIN nodes n ON n.id = p.state_json::json->>'node' WHERE p.id = $1";
    gvd_locate *l = malloc(sizeof *l);
    if (!l || c->freeing) {
        free(l);
        return -1;
    }
    *l = (gvd_locate){fn, ud};
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)pipeline_id);
    const char *p[] = {node ? node : id};
    if (gvd_pg_query(c->pg, node ? by_node : by_pipeline, 1, p, gvd_on_located, l) != 0) {
        free(l);
        return -1;
    }
    return 0;
}

/* The table as last read (every lease / 3), brought up to now: heartbeat
 * ages grow since the read (this node's own is its last renewal's), and
 * the running counts are this node's model's, which follows every job. */
json_t *gvd_cluster_nodes_json(gvd_cluster *c)
{
    json_t *nodes = c->nodes ? json_deep_copy(c->nodes) : json_array();
    if (!nodes)
        return NULL;
    double now = gvd_cluster_now(c);
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n) {
        const char *id = json_string_value(json_object_get(n, "id"));
        double age = json_real_value(json_object_get(n, "heartbeat_age")) + (now - c->nodes_read_at);
        if (id && strcmp(id, c->node_id) == 0)
            age = now - c->last_beat_ok;
        json_object_set_new(n, "heartbeat_age", json_real(round(age * 1000.0) / 1000.0));
        if (c->jobs && id)
            json_object_set_new(n, "running", json_integer((json_int_t)gvd_jobs_running_on(c->jobs, id)));
    }
    return json_pack("{s:o}", "nodes", nodes);
}

/* ---- the end -------------------------------------------------------------- */

void gvd_cluster_detach(gvd_cluster *c)
{
    if (!c || !c->jobs)
        return;
    gvd_cluster_ctl_abort(c);
    gvd_jobs_set_cluster(c->jobs, NULL, NULL);
    c->jobs = NULL;
    uv_timer_stop(&c->beat);
    uv_timer_stop(&c->fence_timer);
    if (c->fenced)
        return;
    /* Say this node left, so that nobody waits a lease for it; its running
     * jobs keep their owner (they run on under their supervisors and the
     * next start of this node adopts them).  Not waited for here (this
     * runs inside the loop): gvd_cluster_idle tells main when it is sent. */
    char epoch[24];
    snprintf(epoch, sizeof epoch, "%lld", (long long)c->epoch);
    const char *p[] = {c->node_id, epoch};
    (void)gvd_pg_query(c->pg, "UPDATE nodes SET state = 'left' WHERE id = $1 AND epoch = $2", 2, p, NULL, NULL);
}

bool gvd_cluster_idle(const gvd_cluster *c)
{
    return !c || !c->pg || gvd_pg_pending(c->pg) == 0;
}

void gvd_cluster_free(gvd_cluster *c)
{
    if (!c)
        return;
    gvd_cluster_detach(c);
    c->freeing = true;
    gvd_pg_free(c->pg);
    c->pg = NULL;
    if (c->read_armed || uv_is_active((uv_handle_t *)&c->read_check))
        uv_check_stop(&c->read_check);
    uv_close((uv_handle_t *)&c->read_check, gvd_cluster_closed);
    uv_close((uv_handle_t *)&c->beat, gvd_cluster_closed);
    uv_close((uv_handle_t *)&c->fence_timer, gvd_cluster_closed);
}
