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
 * transaction writes every staged row.  Committed: the waiters — the
 * requests whose answers said nothing yet — are answered, then the
 * held-back steps run (gvd_job_follow_committed): an answer does not wait
 * for the spawns its commit allows.  Refused: the transaction is rolled back and
 * every request-driven transition in it reverted exactly as a refused
 * single write is (fault.c); a transition the world made stays in memory,
 * dirty, for the retry timer; the waiters answer 503.
 *
 * So the rule of docs/guarantees.md holds for the group as for one write:
 * a transition reaches the world (the process, the streams, an answer) only
 * once it is durable.  A kill -9 before the commit loses only transitions
 * nobody has heard of.
 *
 * On PostgreSQL (store.h) "written" means "answered": the round's rows are
 * queued in the store's batch, gvd_store_flush sends it, and the rest of
 * the round — everything after "Committed:" above — runs when the store
 * says the batch is durable (gvd_store_sync).  On SQLite that is at once,
 * inside the tick, exactly as before.  While a round is in flight new
 * transitions stage for the next round; a job of the round in flight that
 * changes again is marked (group_again) and, once its round is answered,
 * staged again instead of followed: what its write holds back waits for
 * the row of its newest state, and so do the round's answers.  A write
 * outside the group on PostgreSQL (a params change, a rule's firing) is
 * queued too: the store tells the group (its dirty hook) and the end of
 * the tick flushes it with the rest.
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
    bool early;
    struct gvd_group_waiter *next;
} gvd_group_waiter;

/* One round written and not yet known durable: its jobs (via group_next,
 * each with group_inflight set) and the waiters it answers. */
typedef struct gvd_group_round {
    struct gvd_group *g;
    gvd_job *list;
    gvd_group_waiter *waiters;
    struct gvd_group_round *next;   /* the rounds in flight, oldest first */
} gvd_group_round;

struct gvd_group {
    gvd_jobs *jobs;
    uv_check_t check;
    uv_prepare_t prepare;
    bool armed;
    bool committing;                /* inside gvd_jobs_group_commit */
    int window;                     /* gvd_jobs_group_begin depth */
    gvd_job *first;                 /* staged jobs, via job->group_next */
    gvd_group_waiter *waiters, **tail;
    gvd_group_round *rounds, **rounds_tail; /* in flight (PostgreSQL), answered in order */
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
    return (jobs->group && (jobs->group->first || jobs->group->rounds)) || gvd_store_unsynced(jobs->store);
}

int gvd_jobs_after_commit(gvd_jobs *jobs, gvd_committed_fn fn, void *ud, bool early)
{
    gvd_group *g = jobs->group;
    gvd_group_waiter *w = g ? malloc(sizeof *w) : NULL;
    if (!w)
        return -1;
    *w = (gvd_group_waiter){fn, ud, early, NULL};
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
    if (job->group_inflight) {
        job->group_again = true; /* staged again once its round is answered */
    } else if (!job->group_pending) {
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

/* Call (and free) the waiters of *list that are `early` (or not), in order;
 * the others stay in *list. */
static void gvd_group_call(gvd_group_waiter **list, bool early, bool ok, const char *err)
{
    for (gvd_group_waiter **p = list; *p;) {
        gvd_group_waiter *w = *p;
        if (w->early != early) {
            p = &w->next;
            continue;
        }
        *p = w->next;
        w->fn(w->ud, ok, err);
        free(w);
    }
}

/* The end of a round: its rows are durable (ok) or refused.  Records it
 * in every job (or reverts), answers the early waiters, runs what the
 * writes held back, then answers the others. */
static void gvd_group_finish(gvd_jobs *jobs, gvd_job *list, gvd_group_waiter *w, bool ok, const char *err)
{
    if (!ok) {
        size_t n = 0;
        for (gvd_job *job = list; job; job = job->group_next)
            n++;
        gvd_log(gvd_store_available(jobs->store) ? GVD_LOG_ERROR : GVD_LOG_DEBUG, "store.group_failed",
                "jobs=%zu error=%s", n, gvd_log_quote(err, (char[300]){0}, 300));
    }
    gv_batch_begin();
    for (gvd_job *job = list; job; job = job->group_next) {
        job->group_pending = false;
        job->group_follow = gvd_job_committed(job, ok, err);
    }
    gv_batch_end();
    gvd_group_call(&w, true, ok, err); /* the answers: stored, not yet acted on */
    gv_batch_begin();
    for (gvd_job *job = list, *next; job; job = next) {
        next = job->group_next;
        job->group_next = NULL;
        if (job->group_follow) {
            job->group_follow = false;
            gvd_job_follow_committed(job, ok);
        }
    }
    gv_batch_end();
    gvd_group_call(&w, false, ok, err);
}

static void gvd_group_disarm_if_idle(gvd_group *g)
{
    if (!g->first && !g->waiters && g->armed) {
        g->armed = false;
        (void)uv_check_stop(&g->check);
        (void)uv_prepare_stop(&g->prepare);
    }
}

/* The store's answer to a round (gvd_store_sync): rounds are answered in
 * the order they were written. */
static void gvd_group_synced(void *ud, bool ok, const char *err)
{
    gvd_group_round *r = ud;
    gvd_group *g = r->g;
    if (!g) { /* answered at shutdown (gvd_group_free); the store's word came later */
        free(r);
        return;
    }
    for (gvd_group_round **p = &g->rounds; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            break;
        }
    if (!g->rounds)
        g->rounds_tail = &g->rounds;
    /* Jobs that changed again while in flight: their newest state is not
     * written yet, so they (and this round's answers) wait for the next. */
    bool again = false;
    for (gvd_job **p = &r->list; *p;) {
        gvd_job *job = *p;
        job->group_inflight = false;
        if (job->group_again && ok) {
            job->group_again = false;
            *p = job->group_next;
            job->group_next = g->first;
            g->first = job;
            again = true;
            continue;
        }
        job->group_again = false;
        p = &job->group_next;
    }
    gvd_group_waiter *w = r->waiters;
    if (again && w) {
        gvd_group_waiter *last = w;
        while (last->next)
            last = last->next;
        last->next = g->waiters;
        if (!g->waiters)
            g->tail = &last->next;
        g->waiters = w;
        w = NULL;
    }
    gvd_group_finish(g->jobs, r->list, w, ok, err);
    free(r);
    if (g->first || g->waiters)
        gvd_group_arm(g);
}

void gvd_jobs_group_commit(gvd_jobs *jobs)
{
    gvd_group *g = jobs->group;
    if (!g || g->committing)
        return;
    g->committing = true;
    /* A held-back step may stage again (a spawn refused before its
     * supervisor was launched fails the job): that is the next round. */
    for (int round = 0; (g->first || g->waiters) && round < 8; round++) {
        gvd_job *list = g->first;
        g->first = NULL;
        char err[256] = "";
        bool ok = !list || gvd_group_write(jobs, list, err, sizeof err) == 0;
        /* The waiters registered so far: their transitions were in this round
         * (or in none: a request that changed nothing waits for nothing). */
        gvd_group_waiter *w = g->waiters;
        g->waiters = NULL;
        g->tail = &g->waiters;
        gvd_group_round *r = ok ? malloc(sizeof *r) : NULL;
        if (!r) {
            gvd_group_finish(jobs, list, w, false, ok ? "out of memory" : err);
            continue;
        }
        *r = (gvd_group_round){g, list, w, NULL};
        for (gvd_job *job = list; job; job = job->group_next)
            job->group_inflight = true;
        *g->rounds_tail = r;
        g->rounds_tail = &r->next;
        if (gvd_store_sync(jobs->store, gvd_group_synced, r) != 0)
            gvd_group_synced(r, false, "out of memory");
    }
    gvd_store_flush(jobs->store); /* PostgreSQL: send the tick's batch */
    g->committing = false;
    gvd_group_disarm_if_idle(g);
}

/* Unlink job from the list at *head; true if it was there. */
static bool gvd_group_unlink(gvd_job **head, gvd_job *job)
{
    for (gvd_job **p = head; *p; p = &(*p)->group_next)
        if (*p == job) {
            *p = job->group_next;
            job->group_next = NULL;
            return true;
        }
    return false;
}

void gvd_group_forget(gvd_job *job)
{
    gvd_group *g = job->jobs->group;
    if (!g || !job->group_pending)
        return;
    bool found = gvd_group_unlink(&g->first, job);
    for (gvd_group_round *r = g->rounds; r && !found; r = r->next)
        found = gvd_group_unlink(&r->list, job);
    job->group_pending = job->group_inflight = job->group_again = false;
}

void gvd_jobs_on_store_lost(gvd_jobs *jobs, void (*fn)(void *ud, const char *err), void *ud)
{
    jobs->on_store_lost = fn;
    jobs->on_store_lost_ud = ud;
}

static void gvd_group_dirty(void *ud)
{
    gvd_group_arm(((gvd_jobs *)ud)->group);
}

static void gvd_group_lost(void *ud, const char *err)
{
    gvd_jobs *jobs = ud;
    gvd_log(GVD_LOG_ERROR, "store.lost", "error=%s", gvd_log_quote(err, (char[300]){0}, 300));
    if (jobs->on_store_lost)
        jobs->on_store_lost(jobs->on_store_lost_ud, err);
}

int gvd_group_new(gvd_jobs *jobs)
{
    gvd_group *g = calloc(1, sizeof *g);
    if (!g)
        return -1;
    g->jobs = jobs;
    g->tail = &g->waiters;
    g->rounds_tail = &g->rounds;
    if (uv_check_init(jobs->loop, &g->check) != 0 || uv_prepare_init(jobs->loop, &g->prepare) != 0)
        abort(); /* cannot fail on Unix */
    g->check.data = g->prepare.data = g;
    /* They run while something is staged; the loop lives for other reasons. */
    uv_unref((uv_handle_t *)&g->check);
    uv_unref((uv_handle_t *)&g->prepare);
    g->open_handles = 2;
    jobs->group = g;
    gvd_store_set_hooks(jobs->store, gvd_group_dirty, gvd_group_lost, jobs);
    return 0;
}

static void gvd_group_closed(uv_handle_t *h)
{
    gvd_group *g = h->data;
    if (--g->open_handles == 0)
        free(g);
}

/* At shutdown, before the last flush: what is staged is committed (and its
 * waiters answered) like at the end of any tick.  A round still in flight
 * (PostgreSQL did not answer in time: see main.c) is answered as refused. */
void gvd_group_free(gvd_jobs *jobs)
{
    gvd_group *g = jobs->group;
    if (!g)
        return;
    gvd_jobs_group_commit(jobs);
    /* Rounds still in flight are answered now (the jobs and waiters go with
     * the model); the store still holds each round and calls back once its
     * batch is answered or the store closes: the round, cut loose, is freed
     * then. */
    while (g->rounds) {
        gvd_group_round *r = g->rounds;
        g->rounds = r->next;
        for (gvd_job *job = r->list; job; job = job->group_next)
            job->group_inflight = job->group_again = false;
        gvd_group_finish(jobs, r->list, r->waiters, false, "galvanid stopped before the database answered");
        r->g = NULL;
        r->list = NULL;
        r->waiters = NULL;
        r->next = NULL;
    }
    g->rounds_tail = &g->rounds;
    gvd_store_set_hooks(jobs->store, NULL, NULL, NULL);
    jobs->group = NULL;
    uv_close((uv_handle_t *)&g->check, gvd_group_closed);
    uv_close((uv_handle_t *)&g->prepare, gvd_group_closed);
}
