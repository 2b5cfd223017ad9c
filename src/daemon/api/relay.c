/*
 * relay.c — a job's requests that only its node can answer, relayed there.
 *
 * In a cluster (several galvanid nodes on one PostgreSQL, ../cluster/) every
 * node mirrors every job's row: that is all lists, streams, GET /jobs/{id}
 * and the transitions need.  A few answers live only with the node that
 * runs the job: its log (a file on that node's disk), its metric series,
 * its params record and event list (kept by that node's model), and a
 * params change (its supervisor hands it to the process).  Such a request
 * reaching another node is relayed: this node reads the owner's address
 * from the nodes table and h2o's proxy sends it the request — method,
 * path and query, body, Authorization — and streams its answer back as it
 * is.  One mechanism for every such route, and the owner answers with the
 * same code that would have answered it directly.
 *
 * The relayed request says x-galvani-relayed-to: a node that no longer
 * owns the job when it arrives (the job moved meanwhile) answers 409
 * rather than relay it again.  Its Origin header is dropped: this node
 * checked it (guard.c), and the owner, seeing its own address as Host,
 * would take a page served by this node for a cross-origin one.  Nodes of
 * a cluster are expected to share their tokens (docs/cluster.md).
 *
 * A params change of a queued job nobody owns is claimed here first (the
 * "claim" request of cluster/control.c) and then applied here — or relayed
 * to the node that won the claim.  Reads of such a job are answered here:
 * nothing ran yet.
 *
 * Pipelines: a pipeline is driven by the node that created it, and only
 * that node holds it (pipeline/control.c).  A request for a pipeline this
 * node does not hold looks its driver up (the pipeline's row names it) and
 * is relayed there the same way; 404 if there is no such pipeline.
 *
 * Failures are JSON like every other error: the owner is not up (503
 * node_unavailable, naming its state), the database did not answer (503
 * cluster_unavailable), the owner did not answer (h2o's 502, turned into
 * 502 node_unreachable by the filter below, which also counts relayed
 * requests once answered: they leave routes.c unanswered).
 *
 * Lifetimes: while the owner's address is looked up or the claim is out,
 * the client may go away: the malloc'd pending record (gvd_relay_pending)
 * watches the request (gvd_req_watch, http.c), and the lookup's or the
 * claim's callback frees it.  Once handed to the proxy, the request is
 * h2o's; the relay's details ride in its pool.
 */
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>

#include "../util/log.h"

#define GVD_RELAY_HEADER "x-galvani-relayed-to"

/* What the proxy carries: h2o's overrides first, so that the filter finds
 * the rest from req->overrides (nothing else here sets overrides). */
typedef struct gvd_relay_to {
    h2o_req_overrides_t super;
    const char *what;    /* "job 12", "pipeline 3": in the request's pool */
    const char *node;    /* in the request's pool */
    const char *address; /* in the request's pool */
} gvd_relay_to;

/* malloc'd by gvd_relay_pending_new; freed by gvd_relay_located or
 * gvd_relay_claimed (s->locate or s->forward calls it once), or by
 * gvd_relay_started when neither could be asked. */
typedef struct gvd_relay_pending {
    gvd_req_watch watch;               /* the request to relay */
    gvd_server *s;
    int64_t job_id;                    /* a claim's job */
    char what[40];                     /* "job 12", "pipeline 3" */
    char node[200];                    /* the job's node ("" while looked up) */
} gvd_relay_pending;

typedef struct gvd_relay_filter {
    h2o_filter_t super;
    gvd_server *srv;
} gvd_relay_filter;

static gvd_relay_pending *gvd_relay_pending_new(gvd_server *s, h2o_req_t *req, const char *kind, int64_t id,
                                                const char *node)
{
    gvd_relay_pending *p = malloc(sizeof *p);
    if (!p || gvd_req_watch_start(&p->watch, req) != 0) {
        free(p);
        return NULL;
    }
    p->s = s;
    p->job_id = id;
    snprintf(p->what, sizeof p->what, "%s %lld", kind, (long long)id);
    snprintf(p->node, sizeof p->node, "%s", node ? node : "");
    return p;
}

static void gvd_relay_fail(h2o_req_t *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void gvd_relay_fail(h2o_req_t *req, int status, const char *code, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gvd_http_error(req, status, code, "%s", msg);
    gvd_api_answered(req);
}

/* Hand the request to h2o's proxy, for `address` ("HOST:PORT"). */
static void gvd_relay_send(h2o_req_t *req, const char *what, const char *node, const char *address)
{
    gvd_relay_to *to = h2o_mem_alloc_pool(&req->pool, sizeof *to);
    memset(to, 0, sizeof *to);
    to->what = h2o_strdup(&req->pool, what, SIZE_MAX).base;
    to->node = h2o_strdup(&req->pool, node, SIZE_MAX).base;
    to->address = h2o_strdup(&req->pool, address, SIZE_MAX).base;
    ssize_t i;
    while ((i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1)) >= 0)
        h2o_delete_header(&req->headers, i);
    h2o_add_header_by_str(&req->pool, &req->headers, H2O_STRLIT(GVD_RELAY_HEADER), 0, NULL, to->node,
                          strlen(to->node));
    gvd_log(GVD_LOG_DEBUG, "relay.sent", "what=\"%s\" node=%s address=%s", what, node, address);
    h2o_reprocess_request(req, req->method, &H2O_URL_SCHEME_HTTP, h2o_iovec_init(to->address, strlen(to->address)),
                          req->path, &to->super, 0);
}

static void gvd_relay_located(void *ud, const char *node, const char *address, const char *state, const char *err)
{
    gvd_relay_pending *p = ud;
    h2o_req_t *req = gvd_req_watch_take(&p->watch);
    bool pipeline = p->node[0] == '\0'; /* looked up by pipeline */
    if (!req) {
        /* the client went away */
    } else if (err) {
        gvd_relay_fail(req, 503, "cluster_unavailable", "cannot read where %s is served: %s", p->what, err);
    } else if (!node && pipeline) {
        gvd_relay_fail(req, 404, "not_found", "no %s", p->what);
    } else if (!state) {
        gvd_relay_fail(req, 503, "node_unavailable", "%s is on node %s, which the cluster does not know", p->what,
                       node ? node : p->node);
    } else if (strcmp(state, "up") != 0 || !address || !*address) {
        gvd_relay_fail(req, 503, "node_unavailable", "%s is on node %s, which is %s: only that node can answer this",
                       p->what, node, strcmp(state, "up") != 0 ? state : "up but has no address yet");
    } else if (pipeline && h2o_find_header_by_str(&req->headers, H2O_STRLIT(GVD_RELAY_HEADER), -1) >= 0) {
        gvd_relay_fail(req, 409, "on_another_node", "%s is on node %s, not this one: send the request again",
                       p->what, node);
    } else {
        gvd_relay_send(req, p->what, node, address);
    }
    free(p);
}

/* The claim of a queued job nobody owned is out (cluster/control.c): now
 * the job is this node's (answer here), another's (relay), or gone. */
static void gvd_relay_claimed(void *ud, int status, const char *code, const char *message)
{
    gvd_relay_pending *p = ud;
    h2o_req_t *req = gvd_req_watch_take(&p->watch);
    gvd_server *s = p->s;
    gvd_job *job = req && s->jobs ? gvd_jobs_get(s->jobs, p->job_id) : NULL;
    if (!req) {
        /* the client went away */
    } else if (!s->jobs) {
        gvd_relay_fail(req, 503, "shutting_down", "the server is shutting down");
    } else if (status != 200) {
        gvd_relay_fail(req, status, code, "%s", message);
    } else if (!job) {
        gvd_relay_fail(req, 404, "not_found", "no job %lld", (long long)p->job_id);
    } else if (!gvd_job_node(job)) {
        /* requeued by a lost node's reaper in between: rare; say so */
        gvd_relay_fail(req, 409, "not_claimed", "%s was queued again while it was claimed: send it again",
                       p->what);
    } else {
        gvd_api_handle(s, req); /* routed again: answered here, or relayed to the node that won */
    }
    free(p);
}

/* The lookup or claim for `p` was asked (rc 0: answered later, counted by
 * gvd_relay_fail, the filter or the new routing), or could not be (rc -1,
 * or no record: out of memory): 503 now. */
static void gvd_relay_started(gvd_server *s, h2o_req_t *req, gvd_relay_pending *p, int rc)
{
    if (rc == 0) {
        s->held_now = true;
        return;
    }
    if (!p) {
        gvd_http_error(req, 503, "out_of_memory", "out of memory");
        return;
    }
    gvd_req_watch_take(&p->watch); /* not asked: answered here */
    free(p);
    gvd_http_error(req, 503, "cluster_unavailable", "cannot reach the cluster's database");
}

bool gvd_relay(gvd_server *s, h2o_req_t *req, gvd_job *job, bool write)
{
    if (!s->locate || gvd_job_acts(job))
        return false;
    const char *node = gvd_job_node(job);
    if (!node && (!write || gvd_job_status(job) != GVD_QUEUED))
        return false; /* on no node: answered here (a finished one refuses a change itself) */
    ssize_t h = h2o_find_header_by_str(&req->headers, H2O_STRLIT(GVD_RELAY_HEADER), -1);
    if (h >= 0) {
        /* relayed here because the sender's mirror said this node: not (or
         * no longer) so — never relay twice */
        gvd_http_error(req, 409, "on_another_node",
                       "job %lld moved to %s%s while the request was relayed to this node: send it again",
                       (long long)gvd_job_id(job), node ? "node " : "", node ? node : "the queue");
        return true;
    }
    gvd_relay_pending *p = gvd_relay_pending_new(s, req, "job", gvd_job_id(job), node ? node : "-");
    int rc = !p     ? -1
             : node ? s->locate(s->locate_ud, node, 0, gvd_relay_located, p)
             : s->forward ? s->forward(s->forward_ud, gvd_job_id(job), "claim", gvd_relay_claimed, p)
                          : -1;
    gvd_relay_started(s, req, p, rc);
    return true;
}

bool gvd_relay_pipeline(gvd_server *s, h2o_req_t *req, int64_t id)
{
    if (!s->locate)
        return false;
    gvd_relay_pending *p = gvd_relay_pending_new(s, req, "pipeline", id, NULL);
    gvd_relay_started(s, req, p, p ? s->locate(s->locate_ud, NULL, id, gvd_relay_located, p) : -1);
    return true;
}

/* ---- the answer ------------------------------------------------------------- */

static void gvd_relay_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    if (req->overrides) {
        gvd_relay_to *to = (gvd_relay_to *)req->overrides;
        gvd_api_answered(req);
        ssize_t i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
        bool json = i >= 0 && h2o_memis(req->res.headers.entries[i].value.base, req->res.headers.entries[i].value.len,
                                        H2O_STRLIT("application/json"));
        if (req->res.status >= 500 && !json) {
            /* h2o's proxy could not get an answer (connect refused, timeout) */
            gvd_log(GVD_LOG_WARN, "relay.failed", "what=\"%s\" node=%s address=%s status=%d", to->what, to->node,
                    to->address, req->res.status);
            char prefix[512];
            int n = snprintf(prefix, sizeof prefix, "%s is on node %s (%s), which did not answer: ", to->what,
                             to->node, to->address);
            h2o_iovec_t copy = h2o_strdup(&req->pool, prefix, n > 0 ? (size_t)n : 0);
            req->res.status = 502;
            slot = gvd_json_error_wrap(((gvd_relay_filter *)self)->srv, req, slot, "node_unreachable", copy.base);
        }
    }
    h2o_setup_next_ostream(req, slot);
}

void gvd_relay_filter_register(gvd_server *s, h2o_pathconf_t *path)
{
    gvd_relay_filter *f = (gvd_relay_filter *)h2o_create_filter(path, sizeof *f);
    f->super.on_setup_ostream = gvd_relay_setup_ostream;
    f->srv = s;
}
