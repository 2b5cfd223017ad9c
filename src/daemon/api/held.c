/*
 * held.c — answers that wait for the tick's commit (model/group.c).
 *
 * POST /jobs and the pause / resume / cancel routes run inside a group
 * window: their transitions join the loop tick's one transaction, and the
 * answer — built from the job as it is then — is sent once that transaction
 * is written: 201 / 200, or 503 naming the store's refusal, exactly the
 * answer a synchronous write would have given.  A new job that starts at
 * once is answered when its supervisor has (its pid, or why it failed), as
 * when spawning waited for that.  Any other request arriving
 * while transitions are staged is held whole and routed after the commit,
 * so that nothing (a GET, a stream's snapshot, a params change) ever sees a
 * state that is not durable yet.  Requests keep their order per connection:
 * HTTP/1 handles one at a time.
 *
 * On PostgreSQL the store's writes are durable only once their batch is
 * answered (store.h).  A route that is not batched starts only when nothing
 * is pending (gvd_held_route), so an answer it gives while the store has
 * unsynced writes follows writes of its own: gvd_held_defer keeps that
 * answer (status, headers, body) until the store says they are durable, or
 * replaces it with a 503 naming the failure.  On SQLite nothing is ever
 * unsynced and answers leave at once.
 *
 * The client may go away while its request waits: each record below
 * watches its request (gvd_req_watch, http.c) and is freed by the callback
 * that answers it, whether or not the client is still there.
 */
#include "api_int.h"

#include <stdlib.h>

#include "../obs/obs.h"

typedef enum gvd_held_kind { GVD_HELD_ROUTE, GVD_HELD_CREATED, GVD_HELD_TRANSITION } gvd_held_kind;

/* malloc'd by gvd_hold; freed by gvd_held_committed, or by gvd_held_started
 * when that waits for the new job's start (the model calls each once). */
typedef struct gvd_held {
    gvd_req_watch watch;    /* the held request */
    gvd_server *s;
    gvd_held_kind kind;
    int64_t job_id;
    const char *verb;       /* "paused", ...: the 503's words */
} gvd_held;

/* req: h's, taken from its watch. */
static void gvd_held_answer(gvd_held *h, h2o_req_t *req, bool ok, const char *error)
{
    gvd_server *s = h->s;
    gvd_job *job = s->jobs ? gvd_jobs_get(s->jobs, h->job_id) : NULL;
    if (!s->jobs) {
        gvd_http_error(req, 503, "shutting_down", "the server is shutting down");
    } else if (h->kind == GVD_HELD_ROUTE) {
        gvd_api_handle(s, req); /* routed now, answered (or held again) there */
        return;
    } else if (!job) {
        gvd_http_error(req, 404, "not_found", "no job %lld", (long long)h->job_id);
    } else if (h->kind == GVD_HELD_CREATED) {
        /* Inserted before it was held: created either way (a refused start
         * left it queued). */
        gvd_http_created(req, gvd_job_json(job), "jobs", h->job_id);
    } else if (ok) {
        gvd_http_json(req, 200, gvd_job_json(job), NULL);
    } else {
        gvd_error err = {0};
        char what[120];
        snprintf(what, sizeof what, "job %lld was not %s", (long long)h->job_id, h->verb);
        gvd_jobs_store_error(s->jobs, &err, what, error);
        gvd_http_error_from(req, &err);
    }
    gvd_api_answered(req);
}

static void gvd_held_started(void *ud)
{
    gvd_held *h = ud;
    h2o_req_t *req = gvd_req_watch_take(&h->watch);
    if (req)
        gvd_held_answer(h, req, true, "");
    free(h);
}

static void gvd_held_committed(void *ud, bool ok, const char *error)
{
    gvd_held *h = ud;
    gvd_job *job = !gvd_req_watch_gone(&h->watch) && h->kind == GVD_HELD_CREATED && h->s->jobs
                       ? gvd_jobs_get(h->s->jobs, h->job_id)
                       : NULL;
    /* A new job's answer shows it running with its pid, or failed with the
     * reason it could not start, as when the spawn was synchronous: it waits
     * (without holding up the loop) for its supervisor's answer. */
    if (job && gvd_job_starting(job) && gvd_jobs_after_start(h->s->jobs, job, gvd_held_started, h) == 0)
        return;
    h2o_req_t *req = gvd_req_watch_take(&h->watch);
    if (req)
        gvd_held_answer(h, req, ok, error);
    free(h);
}

/* Hold req until the tick's commit; false (nothing held) when out of memory. */
static bool gvd_hold(gvd_server *s, h2o_req_t *req, gvd_held_kind kind, int64_t job_id, const char *verb)
{
    gvd_held *h = malloc(sizeof *h);
    if (!h)
        return false;
    *h = (gvd_held){.s = s, .kind = kind, .job_id = job_id, .verb = verb};
    if (gvd_req_watch_start(&h->watch, req) != 0) {
        free(h);
        return false;
    }
    /* A transition's answer goes out before the spawns and signals the
     * commit allows (it only reads the job); a new job's after its spawn (it
     * then waits for the start); a held request is routed after them. */
    if (gvd_jobs_after_commit(s->jobs, gvd_held_committed, h, kind == GVD_HELD_TRANSITION) != 0) {
        gvd_req_watch_take(&h->watch); /* not held: the caller answers req */
        free(h);
        return false;
    }
    s->held_now = true;
    return true;
}

bool gvd_held_route(gvd_server *s, h2o_req_t *req)
{
    if (!gvd_jobs_group_pending(s->jobs))
        return false;
    if (gvd_hold(s, req, GVD_HELD_ROUTE, 0, NULL))
        return true;
    gvd_http_error(req, 503, "out_of_memory", "out of memory");
    return true;
}

static void gvd_held_job(gvd_server *s, h2o_req_t *req, gvd_held_kind kind, gvd_job *job, const char *verb)
{
    if (gvd_jobs_group_pending(s->jobs) && gvd_hold(s, req, kind, gvd_job_id(job), verb))
        return;
    /* Nothing staged: what it did is stored already (or it did nothing). */
    if (kind == GVD_HELD_CREATED)
        gvd_http_created(req, gvd_job_json(job), "jobs", gvd_job_id(job));
    else
        gvd_http_json(req, 200, gvd_job_json(job), NULL);
}

void gvd_held_created(gvd_server *s, h2o_req_t *req, gvd_job *job)
{
    gvd_held_job(s, req, GVD_HELD_CREATED, job, NULL);
}

void gvd_held_transition(gvd_server *s, h2o_req_t *req, gvd_job *job, const char *verb)
{
    gvd_held_job(s, req, GVD_HELD_TRANSITION, job, verb);
}

/* ---- answers that wait for an asynchronous store ------------------------- */

/* malloc'd by gvd_held_defer; freed by gvd_deferred_synced (the store calls
 * it once). */
typedef struct gvd_deferred {
    gvd_req_watch watch;       /* the request whose answer waits */
    h2o_iovec_t body;          /* in the request's pool */
} gvd_deferred;

static void gvd_deferred_synced(void *ud, bool ok, const char *err)
{
    gvd_deferred *d = ud;
    h2o_req_t *req = gvd_req_watch_take(&d->watch);
    if (req) {
        if (!ok) {
            req->res.headers = (h2o_headers_t){NULL, 0, 0};
            gvd_http_error(req, 503, "store_unavailable", "the change was not stored: %s", err);
        } else if (req->res.status == 204) {
            gvd_http_no_content(req);
        } else {
            h2o_send_inline(req, d->body.base, d->body.len);
        }
        gvd_api_answered(req);
    }
    free(d);
}

bool gvd_held_defer(h2o_req_t *req, h2o_iovec_t body)
{
    gvd_server *s = H2O_STRUCT_FROM_MEMBER(gvd_server, ctx, req->conn->ctx);
    if (!s->routing || !s->jobs || !gvd_store_unsynced(gvd_jobs_store(s->jobs)))
        return false;
    gvd_deferred *d = malloc(sizeof *d);
    if (!d || gvd_req_watch_start(&d->watch, req) != 0) {
        free(d);
        return false; /* out of memory: answer now rather than never */
    }
    d->body = h2o_strdup(&req->pool, body.base, body.len);
    if (gvd_store_sync(gvd_jobs_store(s->jobs), gvd_deferred_synced, d) != 0) {
        gvd_req_watch_take(&d->watch); /* not deferred: the caller answers req */
        free(d);
        return false;
    }
    s->held_now = true; /* gvd_deferred_synced counts and logs it */
    return true;
}

/* ---- transitions another node applies ------------------------------------ */

/* malloc'd by gvd_held_forward; freed by gvd_forwarded_done (s->forward calls
 * it once). */
typedef struct gvd_forwarded {
    gvd_req_watch watch;       /* the forwarded request */
    gvd_server *s;
    int64_t job_id;
} gvd_forwarded;

static void gvd_forwarded_done(void *ud, int status, const char *code, const char *message)
{
    gvd_forwarded *f = ud;
    h2o_req_t *req = gvd_req_watch_take(&f->watch);
    if (req) {
        gvd_job *job = f->s->jobs ? gvd_jobs_get(f->s->jobs, f->job_id) : NULL;
        if (status == 200 && job)
            gvd_http_json(req, 200, gvd_job_json(job), NULL);
        else if (status == 200)
            gvd_http_error(req, 404, "not_found", "no job %lld", (long long)f->job_id);
        else
            gvd_http_error(req, status, code, "%s", message);
        gvd_api_answered(req);
    }
    free(f);
}

void gvd_held_forward(gvd_server *s, h2o_req_t *req, gvd_job *job, const char *verb)
{
    gvd_forwarded *f = malloc(sizeof *f);
    if (!f || gvd_req_watch_start(&f->watch, req) != 0) {
        free(f);
        gvd_http_error(req, 503, "out_of_memory", "out of memory");
        return;
    }
    f->s = s;
    f->job_id = gvd_job_id(job);
    if (s->forward(s->forward_ud, gvd_job_id(job), verb, gvd_forwarded_done, f) != 0) {
        gvd_req_watch_take(&f->watch); /* not forwarded: answered here */
        free(f);
        gvd_http_error(req, 503, "cluster_unavailable", "cannot hand the request to the job's node");
        return;
    }
    s->held_now = true; /* answered by gvd_forwarded_done */
}
