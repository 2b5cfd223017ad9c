/*
 * api_int.h — the HTTP API's internals, shared by
 *   server.c   listener, h2o setup, connection tracking, shutdown, the filter
 *              that turns h2o's own error pages (413, 400) into JSON
 *   routes.c   the routing table and the handlers
 *   http.c     JSON responses, errors, query strings, request bodies, the
 *              watch on a request answered later
 *   logtail.c  GET /jobs/{id}/log streamed from the job's log file
 *   guard.c    who may talk to us: Host (DNS rebinding) and Origin checks
 *   auth.c     bearer tokens (full and read-only roles), redaction for logs
 *   openapi.c  the OpenAPI document compiled into the binary
 *   static.c   the dashboard (web/) compiled into the binary, served at /
 *   prom.c     GET /metrics: galvanid's own metrics for Prometheus (../obs/)
 *   relay.c    a job's requests only its node can answer, relayed there
 *              (several nodes on one PostgreSQL)
 */
#ifndef GALVANI_DAEMON_API_INT_H
#define GALVANI_DAEMON_API_INT_H

#include <h2o.h>
#include <stdarg.h>
#include <string.h>

#include "server.h"

typedef struct gvd_conn gvd_conn;
typedef struct gvd_peer gvd_peer;

#define GVD_PEER_BUCKETS 256
/* A reserved connection is shut down this long after it was accepted
 * (server.c): enough for /healthz or one operator's request. */
#define GVD_RESERVE_LIFETIME_MS 2000
/* A relayed request (relay.c) fails with 502 when the owner's node has
 * not answered within this (connect, or between two reads). */
#define GVD_RELAY_TIMEOUT_MS 10000

#define GVD_DIGEST_LEN 32 /* SHA-256 */

struct gvd_server {
    uv_loop_t *loop;
    gvd_jobs *jobs;          /* NULL once closing: handlers answer 503 */
    size_t max_body;
    double started_at;       /* wall clock, for /healthz uptime */
    bool loopback;           /* bound to a loopback address: only loopback Host names are served */
    char *host;              /* the address it was asked to bind, as given */
    char *allow_origins;     /* see gvd_server_opts; NULL = none */
    size_t max_header;       /* request line + headers; larger requests get 431 */
    size_t max_conns;        /* open connections; past it new ones get 503 and are closed */
    size_t max_per_peer;     /* regular connections one client address may hold */
    size_t reserve;          /* of max_conns, kept for clients over a limit (one short request each) */
    size_t nreserved;        /* reserved connections open */
    size_t nbad_framing;     /* connections whose request head was ambiguous (server.c) */
    gvd_peer *peers[GVD_PEER_BUCKETS]; /* client addresses holding regular connections */
    uint64_t refused;        /* connections refused for max_conns or max_per_peer */
    uint64_t refused_logged_at; /* loop ms of the last "refused" log line (one per second at most) */

    /* auth.c: SHA-256 digests of the tokens (the tokens are not kept) */
    bool auth, read_auth;
    unsigned char token_digest[GVD_DIGEST_LEN];
    unsigned char read_digest[GVD_DIGEST_LEN];

    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    bool ctx_ready;

    uv_tcp_t listener;
    gvd_conn *conns;         /* every accepted TCP connection, until h2o closes it */
    size_t nconns;

    gvd_push *push;
    bool held_now;           /* held.c: the request being routed waits for the tick's commit */
    bool routing;            /* inside gvd_api_handle's routing (held.c: gvd_held_defer) */
    json_t *(*nodes)(void *ud); /* GET /nodes (gvd_server_opts) */
    void *nodes_ud;
    int (*forward)(void *ud, int64_t job_id, const char *verb,
                   void (*done)(void *dud, int status, const char *code, const char *message), void *dud);
    void *forward_ud;
    int (*locate)(void *ud, const char *node, int64_t pipeline_id,
                  void (*located)(void *lud, const char *node, const char *address, const char *state,
                                  const char *err),
                  void *lud);
    void *locate_ud;

    /* shutdown: 1 streams closing, 2 connections being shut down, 3 freeing */
    int phase;
    uv_timer_t close_timer;
    int open_handles;
};

/* server.c: is the request on a reserved connection (one request, no
 * stream)? */
bool gvd_conn_reserved(gvd_server *s, h2o_req_t *req);
/* server.c: answer 400 (and close) and return true if the request's head
 * had Content-Length headers that disagree. */
bool gvd_conn_framing_bad(gvd_server *s, h2o_req_t *req);

/* server.c: turn the error page h2o itself writes (a 413, a proxy's 502)
 * into the API's JSON error: code (NULL: by status) and a prefix to h2o's
 * text (NULL: none, else in req's pool).  Returns the next slot. */
h2o_ostream_t **gvd_json_error_wrap(gvd_server *s, h2o_req_t *req, h2o_ostream_t **slot, const char *code,
                                    const char *prefix);

/* routes.c: answer one request (always returns 0: every path is ours). */
int gvd_api_handle(gvd_server *s, h2o_req_t *req);
/* routes.c: count and log a request once answered. */
void gvd_api_answered(h2o_req_t *req);

/* held.c: answers after the tick's commit (model/group.c).  _route holds a
 * whole request while transitions are staged (true: held, or answered 503
 * when out of memory); _created / _transition send the job (201 / 200) once
 * what the request staged is durable, or 503 if the store refused it. */
bool gvd_held_route(gvd_server *s, h2o_req_t *req);
void gvd_held_created(gvd_server *s, h2o_req_t *req, gvd_job *job);
void gvd_held_transition(gvd_server *s, h2o_req_t *req, gvd_job *job, const char *verb);
/* held.c: called by every answer (http.c) with its final status, headers
 * and body set: true when the answer was given while routing a request that
 * queued writes an asynchronous store has not yet made durable — it is then
 * sent (or replaced by a 503) once they are. */
bool gvd_held_defer(h2o_req_t *req, h2o_iovec_t body);
/* held.c: a transition of a job another node runs (verb "pause", "resume",
 * "cancel"): handed to that node (gvd_server_opts.forward), answered with
 * the job once it applied it, or with its refusal. */
void gvd_held_forward(gvd_server *s, h2o_req_t *req, gvd_job *job, const char *verb);

/* relay.c: a request only the node running `job` can answer (its log,
 * metrics, params record, events; a params change when `write`).  true:
 * taken — relayed to that node, or answered (an error, a claim's outcome)
 * — and nothing more to do; false: this node answers it (its own job, one
 * node, or a read of a queued job nobody owns). */
bool gvd_relay(gvd_server *s, h2o_req_t *req, gvd_job *job, bool write);
/* relay.c: a request for pipeline `id`, which this node does not hold:
 * relayed to the node driving it (404 if none).  true: taken; false: one
 * node (answer 404 here). */
bool gvd_relay_pipeline(gvd_server *s, h2o_req_t *req, int64_t id);
/* relay.c: the response filter of relayed requests (counted once answered;
 * h2o's own 502/504 as JSON), registered by server.c on the API's path. */
void gvd_relay_filter_register(gvd_server *s, h2o_pathconf_t *path);

/* guard.c: DNS-rebinding and cross-origin checks.  0 if the request may
 * proceed, -1 after answering 403. */
int gvd_guard(gvd_server *s, h2o_req_t *req, bool changes_state);

/* auth.c.  Digest the tokens of `o` into s (checking their syntax); 0, or
 * -1 with a message. */
int gvd_auth_init(gvd_server *s, const gvd_server_opts *o, char *err, size_t errlen);
/* Is `path` an API route (the ones a token protects)? */
bool gvd_auth_required(h2o_iovec_t path);
/* 0 if the request may proceed, -1 after answering 401 (no / wrong token) or
 * 403 (a read-only token on a request that changes state). */
int gvd_auth_check(gvd_server *s, h2o_req_t *req, bool changes_state);
/* The request carries the read-only token (and so must not see secrets:
 * a job's env values).  Only meaningful once gvd_auth_check let it in. */
bool gvd_auth_read_only(const gvd_server *s, h2o_req_t *req);
/* Who is asking, for the params history: "token" when a token is required
 * (only the full token may change params), "local" when galvanid runs
 * without one (whoever can reach its port).  Tokens have no names. */
const char *gvd_auth_who(const gvd_server *s, h2o_req_t *req);
/* `path` (with its query) for a log line: token=... values replaced. */
const char *gvd_auth_redact(h2o_iovec_t path, char *buf, size_t size);

/* http.c: a request answered later — after the tick's commit, a store's
 * sync, another node's answer — whose client may go away meanwhile.  h2o
 * then disposes of the request and its pool at once, while the record
 * waiting to answer it (malloc'd, owned by whoever will call it back)
 * outlives them: the record must learn that the request is gone and never
 * touch it again.  So the record embeds a watch, and a slot allocated in
 * the request's pool points to the watch: when h2o clears the pool, the
 * slot's dispose callback clears the watch's request.
 *
 * Ownership: the watch is part of its record (whoever frees the record
 * frees it); the slot is the pool's (freed with the request).  Call
 * gvd_req_watch_start once, then gvd_req_watch_take once before the record
 * is freed (the slot must not point at freed memory); in between, the
 * record must not be freed or moved.  Nothing to close otherwise. */
typedef struct gvd_req_watch {
    h2o_req_t *req;              /* NULL once h2o disposed of it, or taken */
    struct gvd_req_watch **slot; /* in req's pool, pointing here until taken */
} gvd_req_watch;
/* Watch `req`: 0, or -1 when out of memory (nothing watched, nothing to
 * take). */
int gvd_req_watch_start(gvd_req_watch *w, h2o_req_t *req);
/* Did h2o dispose of the request (its client went away)?  Still watched. */
bool gvd_req_watch_gone(const gvd_req_watch *w);
/* Stop watching: the request, to answer now, or NULL if h2o disposed of it
 * (nothing to answer).  A second take returns NULL. */
h2o_req_t *gvd_req_watch_take(gvd_req_watch *w);

/* http.c */
const char *gvd_http_reason(int status);
/* Send `body` (copied) as the response: status, Content-Type `type`,
 * Cache-Control: no-store. */
void gvd_http_send(h2o_req_t *req, int status, const char *type, h2o_iovec_t body);
/* Send `body` (consumed) as compact JSON + "\n".  `location` may be NULL. */
void gvd_http_json(h2o_req_t *req, int status, json_t *body, const char *location);
/* 200 with {"<key>": [item(ctx, 0) .. item(ctx, n - 1)], <the members of
 * `rest`>} (item's results and rest, an object, are consumed), serialized
 * one item at a time so that a long listing never holds every item's JSON
 * tree at once.  503 when out of memory. */
void gvd_http_json_list(h2o_req_t *req, const char *key, json_t *(*item)(void *ctx, size_t i), void *ctx, size_t n,
                        json_t *rest);
/* {"error":{"code":code,"message":...}} */
void gvd_http_error(h2o_req_t *req, int status, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
void gvd_http_error_from(h2o_req_t *req, const gvd_error *err);
/* The JSON error body for a status/code/message, as a pool string. */
h2o_iovec_t gvd_http_error_body(h2o_mem_pool_t *pool, const char *code, const char *message);
/* Answer 431 and return true if the request line and headers exceed
 * s->max_header. */
bool gvd_http_headers_too_large(gvd_server *s, h2o_req_t *req);
/* 200/... with a ready JSON text of n bytes (copied into the request's
 * pool); NULL text answers 503 out_of_memory. */
void gvd_http_text(h2o_req_t *req, int status, const char *text, size_t n);
/* 201 Created with `body` (taken over) and Location: /<collection>/<id>. */
void gvd_http_created(h2o_req_t *req, json_t *body, const char *collection, int64_t id);
/* 204 No Content. */
void gvd_http_no_content(h2o_req_t *req);
/* Is the request's method `m`?  HEAD counts as GET. */
bool gvd_http_method_is(h2o_req_t *req, const char *m);
/* 405 with "Allow: <allow>" (plus HEAD where GET is allowed). */
void gvd_http_method_not_allowed(h2o_req_t *req, const char *allow);

/* rules_api.c: /rules and /rules/{id}. */
void gvd_on_rules(gvd_server *s, h2o_req_t *req, h2o_iovec_t path);
/* pipelines_api.c: /pipelines and everything under it. */
void gvd_on_pipelines(gvd_server *s, h2o_req_t *req, h2o_iovec_t path);

/* Listing routes (GET /jobs, GET /pipelines): ?limit= default and maximum. */
#define GVD_LIST_DEFAULT_LIMIT 100
#define GVD_LIST_MAX_LIMIT 1000

/* Is `v` (a method, a path, a segment) exactly the string `s`? */
static inline bool gvd_iov_is(h2o_iovec_t v, const char *s)
{
    return h2o_memis(v.base, v.len, s, strlen(s));
}

/* Query strings: the decoded value of each parameter, checked against the
 * names a route knows (an unknown name is a 400 naming it). */
typedef struct gvd_query {
    const char *names[6];
    const char *values[6]; /* NULL = absent; decoded, in the request pool */
} gvd_query;
/* `names` is a NULL-terminated list.  0, or -1 after answering 400. */
int gvd_query_parse(h2o_req_t *req, const char *const *names, gvd_query *q);
const char *gvd_query_get(const gvd_query *q, const char *name);
/* ?limit= (0..GVD_LIST_MAX_LIMIT, default GVD_LIST_DEFAULT_LIMIT) and
 * ?offset= (default 0) of a listing route.  0, or -1 after answering 400. */
int gvd_query_paging(h2o_req_t *req, const gvd_query *q, int64_t *limit, int64_t *offset);
/* The decoded value of query parameter `name` (the last one), in the
 * request pool; NULL if absent or malformed.  gvd_query_parse accepts
 * "token" everywhere: auth.c reads it. */
const char *gvd_query_value(h2o_req_t *req, const char *name);
/* Is the raw (percent-encoded) query key key[0..n) `name` once decoded? */
bool gvd_query_key_is(const char *key, size_t n, const char *name);
/* A non-negative decimal integer <= max, or -1. */
int64_t gvd_parse_uint(const char *s, int64_t max);

/* The request body as a JSON object (415 unless Content-Type is JSON, 400
 * for an empty body, invalid JSON with line/column, or a non-object).
 * Returns the object, or NULL after answering. */
json_t *gvd_http_json_body(h2o_req_t *req, const char *what);

/* logtail.c: stream bytes [start, end) of `path` (text/plain): the last
 * `tail` bytes (tail >= 0), or from byte `offset` (offset >= 0; past the end
 * is an empty body: `galvani logs -f` polls this way), or all of it. */
void gvd_logtail_send(h2o_req_t *req, const char *path, int64_t tail, int64_t offset);

/* static.c: if `path` is one of the dashboard's files, answer (200, 304,
 * or 405) and return true; false otherwise, without answering. */
bool gvd_static_serve(h2o_req_t *req, h2o_iovec_t path);
/* Is `path` one of the dashboard's files? */
bool gvd_static_has(h2o_iovec_t path);

/* prom.c: GET /metrics (the route and method are checked). */
void gvd_on_prom(gvd_server *s, h2o_req_t *req);

/* openapi.c */
extern const char gvd_openapi_json[];
size_t gvd_openapi_json_len(void);

#endif
