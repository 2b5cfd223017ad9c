/*
 * control.c — pause, resume and cancel for a job another node runs.
 *
 * Any node accepts any request.  A transition of a job this node owns is
 * the model's, as on one node.  For a job another node owns, the request
 * travels on the galvani_ctl channel:
 *
 *   A -> C   "req <C> <A> <n> <verb> <job>"
 *   C -> A   "ans <A> <n> <status> <code> <message>"
 *
 * C applies the transition as if it had been asked over HTTP (the same
 * model call, in a group window) and answers once its commit is durable,
 * with the HTTP status it would have given (200, or 409 and the refusal's
 * words).  A then reads the job's row — so that its answer shows the state
 * C wrote, not the mirror's view a notification later — and answers its
 * client.  No answer within GVD_CTL_TIMEOUT_MS: 504, saying C did not
 * answer (the transition may still happen: the row will tell).  Payloads
 * carry ids and words, never rows.
 *
 * A queued job nobody owns is claimed by the node that got the request
 * (only if still unclaimed), and then is that node's to change.
 */
#include "cluster_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../store/pg/pgstore.h"
#include "../util/log.h"

#define GVD_CTL_TIMEOUT_MS 10000

struct gvd_ctl_req {
    gvd_cluster *c;
    uint64_t n;              /* this node's request number */
    int64_t job_id;
    char verb[16];
    gvd_cluster_done_fn done;
    void *ud;
    uv_timer_t timer;
    bool answered;
    bool resend;             /* the claim lost the race: read the row, then ask its owner */
    int refs;                /* its timer (until closed), and each query or commit waiter holding it */
    int status;
    char code[48];
    char message[400];
    struct gvd_ctl_req *next;
};

/* "hold" (a pipeline on another node holds its step): a queued step waits
 * in this node's queue, one that started meanwhile pauses; "release" lets
 * a held one start. */
static int gvd_ctl_hold(gvd_job *job, gvd_error *err)
{
    if (gvd_job_status(job) == GVD_RUNNING)
        return gvd_job_pause(job, err);
    gvd_job_set_held(job, true);
    return 0;
}

static int gvd_ctl_release(gvd_job *job, gvd_error *err)
{
    (void)err;
    gvd_job_set_held(job, false);
    return 0;
}

/* "claim" (a params change of a queued job nobody owns, api/relay.c):
 * nothing to change — the claim that precedes it is the point; answered by
 * the owner when another node won it, so the asker learns who. */
static int gvd_ctl_claim(gvd_job *job, gvd_error *err)
{
    (void)job;
    (void)err;
    return 0;
}

static int (*gvd_ctl_fn(const char *verb))(gvd_job *, gvd_error *)
{
    if (strcmp(verb, "claim") == 0)
        return gvd_ctl_claim;
    if (strcmp(verb, "hold") == 0)
        return gvd_ctl_hold;
    if (strcmp(verb, "release") == 0)
        return gvd_ctl_release;
    if (strcmp(verb, "pause") == 0)
        return gvd_job_pause;
    if (strcmp(verb, "resume") == 0)
        return gvd_job_resume;
    if (strcmp(verb, "cancel") == 0)
        return gvd_job_cancel;
    return NULL;
}

/* A request lives until its timer is closed and no query or commit waiter
 * still holds it: those answer even after it was answered (a timeout, the
 * end of galvanid) and must find it. */
static void gvd_ctl_unref(gvd_ctl_req *r)
{
    if (--r->refs == 0)
        free(r);
}

static int gvd_ctl_query(gvd_ctl_req *r, const char *sql, int n, const char *const *p, gvd_pg_result_fn fn)
{
    r->refs++;
    if (gvd_pg_query(r->c->pg, sql, n, p, fn, r) == 0)
        return 0;
    r->refs--;
    return -1;
}

static void gvd_ctl_timer_closed(uv_handle_t *h)
{
    gvd_ctl_req *r = h->data;
    gvd_cluster *c = r->c;
    gvd_ctl_unref(r);
    if (--c->open_handles == 0 && c->freeing)
        gvd_cluster_release(c);
}

static void gvd_ctl_unlink(gvd_ctl_req *r)
{
    for (gvd_ctl_req **p = &r->c->ctl; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            return;
        }
}

/* Tell the requester (once) and let the request go. */
static void gvd_ctl_finish(gvd_ctl_req *r, int status, const char *code, const char *message)
{
    if (r->answered)
        return;
    r->answered = true;
    gvd_ctl_unlink(r);
    uv_timer_stop(&r->timer);
    if (r->done)
        r->done(r->ud, status, code, message);
    uv_close((uv_handle_t *)&r->timer, gvd_ctl_timer_closed);
}

static void gvd_ctl_timeout(uv_timer_t *t)
{
    gvd_ctl_req *r = t->data;
    char msg[400];
    const char *node = "its node";
    gvd_job *job = r->c->jobs ? gvd_jobs_get(r->c->jobs, r->job_id) : NULL;
    if (job && gvd_job_node(job))
        node = gvd_job_node(job);
    snprintf(msg, sizeof msg,
             "job %lld runs on node %s, which did not answer the %s within %d s (it may still apply it: the job's "
             "state will say)",
             (long long)r->job_id, node, r->verb, GVD_CTL_TIMEOUT_MS / 1000);
    gvd_ctl_finish(r, 504, "node_timeout", msg);
}

static void gvd_ctl_send(gvd_ctl_req *r, const char *owner);
static void gvd_ctl_apply_local(gvd_ctl_req *r);

/* The answer came: read the row, so that the answer shows what the owner
 * wrote, then answer. */
static void gvd_ctl_on_row(void *ud, const PGresult *res, const char *err)
{
    gvd_ctl_req *r = ud;
    gvd_cluster *c = r->c;
    if (r->answered) {
        gvd_ctl_unref(r);
        return;
    }
    if (!err && res && c->jobs && !c->freeing)
        for (int i = 0; i < PQntuples(res); i++) {
            gvd_job_row row;
            gvd_pg_job_row_read(res, i, &row);
            (void)gvd_jobs_apply_row(c->jobs, &row);
        }
    if (r->resend && c->jobs && !c->freeing) {
        r->resend = false;
        gvd_job *job = gvd_jobs_get(c->jobs, r->job_id);
        if (!job)
            gvd_ctl_finish(r, 404, "not_found", "the job was deleted meanwhile");
        else if (gvd_job_acts(job))
            gvd_ctl_apply_local(r);
        else
            gvd_ctl_send(r, gvd_job_node(job) ? gvd_job_node(job) : "-");
        gvd_ctl_unref(r);
        return;
    }
    gvd_ctl_finish(r, r->status, r->code, r->message);
    gvd_ctl_unref(r);
}

static void gvd_ctl_read_row(gvd_ctl_req *r)
{
    char sql[1024], id[24];
    snprintf(sql, sizeof sql, "SELECT %s FROM jobs WHERE id = $1", gvd_pg_job_columns);
    snprintf(id, sizeof id, "%lld", (long long)r->job_id);
    const char *p[] = {id};
    if (gvd_ctl_query(r, sql, 1, p, gvd_ctl_on_row) != 0)
        gvd_ctl_finish(r, r->status, r->code, r->message);
}

/* ---- the requesting side --------------------------------------------------- */

static void gvd_ctl_send(gvd_ctl_req *r, const char *owner)
{
    gvd_cluster *c = r->c;
    char payload[600];
    snprintf(payload, sizeof payload, "req %s %s %llu %s %lld", owner, c->node_id, (unsigned long long)r->n,
             r->verb, (long long)r->job_id);
    const char *p[] = {payload};
    if (gvd_pg_query(c->pg, "SELECT pg_notify('galvani_ctl', $1)", 1, p, NULL, NULL) != 0)
        gvd_ctl_finish(r, 503, "cluster_unavailable", "cannot reach the database to forward the request");
}

/* The claim of an unowned queued job, made to change it here. */
static void gvd_ctl_on_claim(void *ud, const PGresult *res, const char *err)
{
    gvd_ctl_req *r = ud;
    gvd_cluster *c = r->c;
    if (r->answered || c->freeing || !c->jobs) {
        gvd_ctl_finish(r, 503, "shutting_down", "the server is shutting down");
        gvd_ctl_unref(r);
        return;
    }
    if (!err && res && PQntuples(res) == 1) {
        gvd_jobs_claimed(c->jobs, r->job_id);
        gvd_ctl_apply_local(r);
        gvd_jobs_wake(c->jobs);
    } else {
        /* Someone else took it meanwhile: read its row, then ask its owner. */
        r->resend = true;
        gvd_ctl_read_row(r);
    }
    gvd_ctl_unref(r);
}

int gvd_cluster_forward(gvd_cluster *c, int64_t job_id, const char *verb, gvd_cluster_done_fn done, void *ud)
{
    if (!gvd_ctl_fn(verb) || !c->jobs)
        return -1;
    gvd_ctl_req *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->c = c;
    r->n = ++c->ctl_seq;
    r->job_id = job_id;
    snprintf(r->verb, sizeof r->verb, "%s", verb);
    r->done = done;
    r->ud = ud;
    r->refs = 1; /* the timer's */
    (void)uv_timer_init(c->loop, &r->timer);
    r->timer.data = r;
    c->open_handles++;
    r->next = c->ctl;
    c->ctl = r;
    (void)uv_timer_start(&r->timer, gvd_ctl_timeout, GVD_CTL_TIMEOUT_MS, 0);
    gvd_job *job = gvd_jobs_get(c->jobs, job_id);
    const char *owner = job ? gvd_job_node(job) : NULL;
    if (job && !owner) {
        /* nobody's: take it, then it is ours to change */
        char sql[] = "WITH u AS (UPDATE jobs SET node = $1, epoch = $2 WHERE id = $3 AND node IS NULL AND "
                     "status = 'queued' RETURNING id) SELECT id, pg_notify('galvani_jobs', $1 || ' ' || id) FROM u";
        char epoch[24], id[24];
        snprintf(epoch, sizeof epoch, "%lld", (long long)c->epoch);
        snprintf(id, sizeof id, "%lld", (long long)job_id);
        const char *p[] = {c->node_id, epoch, id};
        if (gvd_ctl_query(r, sql, 3, p, gvd_ctl_on_claim) != 0)
            gvd_ctl_finish(r, 503, "cluster_unavailable", "cannot reach the database to claim the job");
    } else {
        gvd_ctl_send(r, owner ? owner : "-");
    }
    return 0;
}

/* ---- the owning side --------------------------------------------------------- */

static void gvd_ctl_err(gvd_error *err, int http, const char *code, const char *fmt, ...)
{
    va_list ap;
    err->http = http;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

typedef struct gvd_ctl_serve {
    gvd_cluster *c;
    char from[256];
    char n[32];
    int64_t job_id;
    int status;
    char code[48];
    char message[400];
} gvd_ctl_serve;

static void gvd_ctl_reply(gvd_cluster *c, const char *to, const char *n, int status, const char *code,
                          const char *message)
{
    char payload[1400];
    snprintf(payload, sizeof payload, "ans %s %s %d %s %s", to, n, status, code, message);
    const char *p[] = {payload};
    (void)gvd_pg_query(c->pg, "SELECT pg_notify('galvani_ctl', $1)", 1, p, NULL, NULL);
}

static void gvd_ctl_served(void *ud, bool ok, const char *error)
{
    gvd_ctl_serve *s = ud;
    if (!s->c->freeing) {
        if (ok)
            gvd_ctl_reply(s->c, s->from, s->n, 200, "ok", "");
        else
            gvd_ctl_reply(s->c, s->from, s->n, 503, "store_unavailable", error);
    }
    free(s);
}

/* Apply verb to job here; *status etc. say the synchronous refusal, or
 * 0 when it was accepted and fn(ud) follows once durable. */
static int gvd_ctl_apply(gvd_cluster *c, int64_t job_id, const char *verb, gvd_committed_fn fn, void *ud,
                         gvd_error *err)
{
    gvd_job *job = gvd_jobs_get(c->jobs, job_id);
    if (!job) {
        gvd_ctl_err(err, 404, "not_found", "no job %lld", (long long)job_id);
        return -1;
    }
    if (!gvd_job_acts(job)) {
        gvd_ctl_err(err, 409, "moved", "job %lld is no longer on node %s (now: %s): retry", (long long)job_id,
                    c->node_id, gvd_job_node(job) ? gvd_job_node(job) : "queued");
        return -1;
    }
    gvd_jobs_group_begin(c->jobs);
    int rc = gvd_ctl_fn(verb)(job, err);
    gvd_jobs_group_end(c->jobs);
    if (rc != 0)
        return -1;
    if (gvd_jobs_after_commit(c->jobs, fn, ud, true) != 0) {
        gvd_ctl_err(err, 503, "out_of_memory", "out of memory");
        return -1;
    }
    return 0;
}

static void gvd_ctl_local_done(void *ud, bool ok, const char *error)
{
    gvd_ctl_req *r = ud;
    if (ok)
        gvd_ctl_finish(r, 200, "ok", "");
    else
        gvd_ctl_finish(r, 503, "store_unavailable", error);
    gvd_ctl_unref(r); /* the commit waiter's */
}

static void gvd_ctl_apply_local(gvd_ctl_req *r)
{
    gvd_error err = {0};
    r->refs++; /* held by the commit waiter, if the transition is accepted */
    if (gvd_ctl_apply(r->c, r->job_id, r->verb, gvd_ctl_local_done, r, &err) != 0) {
        r->refs--;
        gvd_ctl_finish(r, err.http, err.code, err.message);
    }
}

static void gvd_ctl_on_request(gvd_cluster *c, const char *from, const char *n, const char *verb, int64_t job_id)
{
    gvd_error err = {0};
    gvd_ctl_serve *s = gvd_ctl_fn(verb) && c->jobs ? calloc(1, sizeof *s) : NULL;
    if (!s) {
        gvd_ctl_reply(c, from, n, 400, "bad_request", "unknown request");
        return;
    }
    s->c = c;
    snprintf(s->from, sizeof s->from, "%s", from);
    snprintf(s->n, sizeof s->n, "%s", n);
    s->job_id = job_id;
    if (gvd_ctl_apply(c, job_id, verb, gvd_ctl_served, s, &err) != 0) {
        gvd_ctl_reply(c, from, n, err.http, err.code, err.message);
        free(s);
        return;
    }
    gvd_log(GVD_LOG_DEBUG, "cluster.ctl_served", "job=%lld verb=%s from=%s", (long long)job_id, verb, from);
}

/* ---- the channel -------------------------------------------------------------- */

void gvd_cluster_on_ctl(gvd_cluster *c, const char *payload)
{
    char kind[4], to[256], a[256], b[32], d[32];
    long long e = 0;
    int used = 0;
    if (sscanf(payload, "%3s %255s %n", kind, to, &used) < 2 || strcmp(to, c->node_id) != 0)
        return;
    const char *rest = payload + used;
    if (strcmp(kind, "req") == 0 && sscanf(rest, "%255s %31s %31s %lld", a, b, d, &e) == 4) {
        gvd_ctl_on_request(c, a, b, d, e);
        return;
    }
    int status = 0, off = 0;
    char code[48];
    if (strcmp(kind, "ans") != 0 || sscanf(rest, "%31s %d %47s %n", b, &status, code, &off) < 3)
        return;
    uint64_t n = strtoull(b, NULL, 10);
    for (gvd_ctl_req *r = c->ctl; r; r = r->next)
        if (r->n == n && !r->answered) {
            r->status = status;
            snprintf(r->code, sizeof r->code, "%s", code);
            snprintf(r->message, sizeof r->message, "%s", off ? rest + off : "");
            gvd_ctl_read_row(r);
            return;
        }
}

/* The model's own requests (a pipeline acting on its steps): nobody waits
 * for the answer, the row will say; a refusal is logged. */
static void gvd_ctl_quiet_done(void *ud, int status, const char *code, const char *message)
{
    int64_t *id = ud;
    if (status != 200)
        gvd_log(GVD_LOG_WARN, "cluster.ctl_refused", "job=%lld status=%d code=%s message=%s", (long long)*id,
                status, code, gvd_log_quote(message, (char[500]){0}, 500));
    free(id);
}

void gvd_cluster_forward_quiet(void *ud, int64_t job_id, const char *verb)
{
    int64_t *id = malloc(sizeof *id);
    if (!id)
        return;
    *id = job_id;
    if (gvd_cluster_forward(ud, job_id, verb, gvd_ctl_quiet_done, id) != 0) {
        gvd_log(GVD_LOG_WARN, "cluster.ctl_not_sent", "job=%lld verb=%s", (long long)job_id, verb);
        free(id);
    }
}

void gvd_cluster_ctl_abort(gvd_cluster *c)
{
    while (c->ctl)
        gvd_ctl_finish(c->ctl, 503, "shutting_down", "the server is shutting down");
}
