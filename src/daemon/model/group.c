/*
 * group.c — group commit: every transition of one loop tick in one
 * transaction.
 *
 * Committing each transition on its own costs a SQLite transaction (a WAL
 * append, the write lock, the index updates) per request; under load the
 * loop spends its time committing.  Inside a group window (gvd_jobs_group_
 * begin / _end: the HTTP handlers of POST /jobs and the transitions, and a
 * process's exit) the persist effect does not write: it stages the job
 * (group_pending) and everything downstream of the write waits for it —
 *   reconcile  does not touch the process (a spawn, a SIGSTOP, a cancel),
 *   notify     does not tell the push hub,
 *   log        does not write the transition's line,
 *   an exit    keeps the supervisor's exit record (the handle is released
 *              only once the outcome is stored).
 * At the end of the tick (a uv_check after the poll, where requests are
 * read; a uv_prepare before it, for transitions made by timers) one
 * transaction writes every staged row.  Committed: the held-back steps run
 * (gvd_job_committed) and the waiters — the requests whose answers said
 * nothing yet — are answered.  Refused: the transaction is rolled back and
 * every request-driven transition in it reverted exactly as a refused
 * single write is (fault.c); a transition the world made stays in memory,
 * dirty, for the retry timer; the waiters answer 503.
 *
 * So the rule of docs/guarantees.md holds for the group as for one write:
 * a transition reaches the world (the process, the streams, an answer) only
 * once it is durable.  A kill -9 before the commit loses only transitions
 * nobody has heard of.
 *
 * Writes outside a window (params, rules, pipelines, a timeout) stay
 * synchronous, except for a job already staged, which stays in the group.
 * The API holds every other request while a group is pending (answered
 * after the commit), so no answer shows a state not yet durable.  Deleting
 * a job commits the group first, so that no staged row outlives its job.
 */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>

#include "../util/log.h"

typedef struct gvd_group_waiter {
    gvd_committed_fn fn;
    void *ud;
    struct gvd_group_waiter *next;
} gvd_group_waiter;

struct gvd_group {
    gvd_jobs *jobs;
    uv_check_t check;
    uv_prepare_t prepare;
    bool armed;
    int window;                     /* gvd_jobs_group_begin depth */
    gvd_job *first;                 /* staged jobs, via job->group_next */
    gvd_group_waiter *waiters, **tail;
    int open_handles;
};

static void gvd_group_tick(gvd_group *g)
{
    gvd_jobs_group_commit(g->jobs);
}

static void gvd_group_check_cb(uv_check_t *h)
{
    gvd_group_tick(h->data);
}

static void gvd_group_prepare_cb(uv_prepare_t *h)
{
    gvd_group_tick(h->data);
}

static void gvd_group_arm(gvd_group *g)
{
    if (g->armed || g->jobs->closing)
        return;
    g->armed = true;
    (void)uv_check_start(&g->check, gvd_group_check_cb);
    (void)uv_prepare_start(&g->prepare, gvd_group_prepare_cb);
}

void gvd_jobs_group_begin(gvd_jobs *jobs)
{
    if (jobs->group)
        jobs->group->window++;
}

void gvd_jobs_group_end(gvd_jobs *jobs)
{
    if (jobs->group && jobs->group->window > 0)
        jobs->group->window--;
}

bool gvd_jobs_group_pending(gvd_jobs *jobs)
{
    return jobs->group && jobs->group->first;
}

int gvd_jobs_after_commit(gvd_jobs *jobs, gvd_committed_fn fn, void *ud)
{
    gvd_group *g = jobs->group;
    gvd_group_waiter *w = g ? malloc(sizeof *w) : NULL;
    if (!w)
        return -1;
    *w = (gvd_group_waiter){fn, ud, NULL};
    *g->tail = w;
    g->tail = &w->next;
    gvd_group_arm(g);
    return 0;
}

bool gvd_group_stage(gvd_job *job)
{
    gvd_group *g = job->jobs->group;
    /* Outside a window a staged job stays staged: its row is written once,
     * with the tick's, and what waits for it keeps waiting. */
    if (!g || job->jobs->closing || (g->window == 0 && !job->group_pending))
        return false;
    if (!job->group_pending) {
        job->group_pending = true;
        job->group_next = g->first;
        g->first = job;
    }
    gvd_group_arm(g);
    return true;
}

/* Write every staged row in one transaction: 0, or -1 with err. */
static int gvd_group_write(gvd_jobs *jobs, gvd_job *list, char *err, size_t errlen)
{
    if (gvd_store_begin(jobs->store, err, errlen) != 0)
        return -1;
    for (gvd_job *job = list; job; job = job->group_next) {
        gvd_job_row row;
        char *owned[3];
        gv_untracked_t t = gv_untracked_begin();
        gvd_job_to_row(job, &row, owned);
        gv_untracked_end(t);
        int rc = gvd_store_update(jobs->store, &row, err, errlen);
        gvd_job_row_release(owned);
        if (rc != 0) {
            gvd_store_rollback(jobs->store);
            return -1;
        }
    }
    return gvd_store_commit(jobs->store, err, errlen);
}

void gvd_jobs_group_commit(gvd_jobs *jobs)
{
    gvd_group *g = jobs->group;
    if (!g)
        return;
    /* A held-back step may stage again (a spawn refused before its
     * supervisor was launched fails the job): that is the next group. */
    for (int round = 0; (g->first || g->waiters) && round < 8; round++) {
        gvd_job *list = g->first;
        g->first = NULL;
        char err[256] = "";
        bool ok = !list || gvd_group_write(jobs, list, err, sizeof err) == 0;
        size_t n = 0;
        for (gvd_job *job = list; job; job = job->group_next)
            n++;
        if (!ok)
            gvd_log(gvd_store_available(jobs->store) ? GVD_LOG_ERROR : GVD_LOG_DEBUG, "store.group_failed",
                    "jobs=%zu error=%s", n, gvd_log_quote(err, (char[300]){0}, 300));
        gv_batch_begin();
        for (gvd_job *job = list, *next; job; job = next) {
            next = job->group_next;
            job->group_next = NULL;
            job->group_pending = false;
            gvd_job_committed(job, ok, err);
        }
        gv_batch_end();
        /* The waiters registered so far: their transitions were in this group
         * (or in none: a request that changed nothing waits for nothing). */
        gvd_group_waiter *w = g->waiters;
        g->waiters = NULL;
        g->tail = &g->waiters;
        while (w) {
            gvd_group_waiter *next = w->next;
            w->fn(w->ud, ok, err);
            free(w);
            w = next;
        }
    }
    if (!g->first && !g->waiters && g->armed) {
        g->armed = false;
        (void)uv_check_stop(&g->check);
        (void)uv_prepare_stop(&g->prepare);
    }
}

int gvd_group_new(gvd_jobs *jobs)
{
    gvd_group *g = calloc(1, sizeof *g);
    if (!g)
        return -1;
    g->jobs = jobs;
    g->tail = &g->waiters;
    if (uv_check_init(jobs->loop, &g->check) != 0 || uv_prepare_init(jobs->loop, &g->prepare) != 0)
        abort(); /* cannot fail on Unix */
    g->check.data = g->prepare.data = g;
    /* They run while something is staged; the loop lives for other reasons. */
    uv_unref((uv_handle_t *)&g->check);
    uv_unref((uv_handle_t *)&g->prepare);
    g->open_handles = 2;
    jobs->group = g;
    return 0;
}

static void gvd_group_closed(uv_handle_t *h)
{
    gvd_group *g = h->data;
    if (--g->open_handles == 0)
        free(g);
}

/* At shutdown, before the last flush: what is staged is committed (and its
 * waiters answered) like at the end of any tick. */
void gvd_group_free(gvd_jobs *jobs)
{
    gvd_group *g = jobs->group;
    if (!g)
        return;
    gvd_jobs_group_commit(jobs);
    jobs->group = NULL;
    uv_close((uv_handle_t *)&g->check, gvd_group_closed);
    uv_close((uv_handle_t *)&g->prepare, gvd_group_closed);
}
