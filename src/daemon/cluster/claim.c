/*
 * claim.c — taking queued jobs nobody owns.
 *
 * The model's scheduler starts this node's own queued jobs first; with
 * slots left and claimable jobs in sight it asks here (gvd_cluster_hooks).
 * One statement claims up to that many, in the order every node uses —
 * priority, then age, then id — skipping rows another node's claim holds
 * locked (FOR UPDATE SKIP LOCKED): two nodes never get the same job and
 * never wait for each other.  The claim says so on galvani_jobs in the same
 * statement, so the other nodes' mirrors stop counting those jobs as
 * claimable.  The jobs claimed become this node's and the scheduler starts
 * them (their "running" is then written by the store's batch, as any
 * start).  One claim is in flight at a time; a request made meanwhile is
 * remembered and made when it returns.
 */
#include "cluster_int.h"

#include <stdio.h>
#include <stdlib.h>

#include "../util/log.h"

static const char gvd_sql_claim[] =
    "WITH c AS (SELECT id FROM jobs WHERE status = 'queued' AND node IS NULL "
    "           ORDER BY priority DESC, created_at, id LIMIT $3 FOR UPDATE SKIP LOCKED), "
    "u AS (UPDATE jobs j SET node = $1, epoch = $2 FROM c WHERE j.id = c.id RETURNING j.id) "
    "SELECT id, pg_notify('galvani_jobs', $1 || ' ' || id) FROM u";

static void gvd_claim(void *ud, unsigned free_slots);

static void gvd_on_claimed(void *ud, const PGresult *res, const char *err)
{
    gvd_cluster *c = ud;
    if (c->freeing || !c->jobs) {
        c->claiming = false;
        return;
    }
    if (err) {
        c->claiming = false;
        gvd_log(GVD_LOG_WARN, "cluster.claim_failed", "error=%s", gvd_log_quote(err, (char[400]){0}, 400));
        return; /* the next run of the scheduler asks again */
    }
    int n = res ? PQntuples(res) : 0;
    for (int i = 0; i < n; i++) {
        int64_t id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        gvd_log(GVD_LOG_DEBUG, "cluster.claimed", "job=%lld node=%s", (long long)id, c->node_id);
        gvd_jobs_claimed(c->jobs, id);
    }
    /* All recorded first: the scheduler then counts every job claimed, starts
     * them, and claims more only for the slots still free. */
    c->claiming = false;
    c->claim_again = 0;
    if (n > 0)
        gvd_jobs_wake(c->jobs);
}

static void gvd_claim(void *ud, unsigned free_slots)
{
    gvd_cluster *c = ud;
    if (c->fenced || c->freeing)
        return;
    if (c->claiming) {
        c->claim_again = free_slots;
        return;
    }
    char epoch[24], limit[16];
    snprintf(epoch, sizeof epoch, "%lld", (long long)c->epoch);
    snprintf(limit, sizeof limit, "%u", free_slots);
    const char *p[] = {c->node_id, epoch, limit};
    if (gvd_pg_query(c->pg, gvd_sql_claim, 3, p, gvd_on_claimed, c) == 0)
        c->claiming = true;
}

const gvd_cluster_hooks gvd_cluster_hooks_claim = {gvd_claim, gvd_cluster_forward_quiet};

int gvd_cluster_attach(gvd_cluster *c, gvd_jobs *jobs, void (*lost)(void *ud, const char *why), void *ud,
                       char *err, size_t errlen)
{
    c->jobs = jobs;
    c->lost = lost;
    c->lost_ud = ud;
    if (gvd_pg_query(c->pg, "LISTEN galvani_jobs", 0, NULL, NULL, NULL) != 0 ||
        gvd_pg_query(c->pg, "LISTEN galvani_ctl", 0, NULL, NULL, NULL) != 0 ||
        gvd_pg_query(c->pg, "LISTEN galvani_rules", 0, NULL, NULL, NULL) != 0 ||
        gvd_pg_query(c->pg, "LISTEN galvani_pipelines", 0, NULL, NULL, NULL) != 0 || gvd_cluster_catch_up(c) != 0 ||
        gvd_cluster_start_beat(c) != 0) {
        snprintf(err, errlen, "cluster: cannot start (out of memory)");
        c->jobs = NULL;
        return -1;
    }
    gvd_jobs_set_cluster(jobs, &gvd_cluster_hooks_claim, c);
    return 0;
}
