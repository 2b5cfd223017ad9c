/*
 * server.h — galvanid's HTTP API (h2o 2.2.5 on the daemon's libuv loop).
 *
 * The server binds its own listener, serves the JSON API of docs/api.md and
 * /openapi.json, and owns the push hub (src/daemon/push/) behind /ws,
 * /ws/jobs and /events.  It talks to the jobs only through jobs.h.
 *
 *   gvd_server *s = gvd_server_new(loop, jobs, &opts, err, sizeof err);
 *   ... uv_run(loop) ...
 *   gvd_server_close(s);   // e.g. from the SIGTERM handler
 *   gvd_jobs_free(jobs);   // allowed right away: the server is done with them
 *   uv_run(loop, UV_RUN_DEFAULT);   // lets the connections and handles close
 *
 * gvd_server_new registers the push hub as the jobs' change listener
 * (gvd_jobs_on_change); gvd_server_close unregisters it.  Everything runs
 * on the loop thread.
 */
#ifndef GALVANI_DAEMON_SERVER_H
#define GALVANI_DAEMON_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "../model/jobs.h"
#include "../push/push.h"

typedef struct gvd_server gvd_server;

/* Zero fields take the default in brackets. */
typedef struct gvd_server_opts {
    const char *host;    /* address to bind: an IPv4/IPv6 literal or a name ["127.0.0.1"] */
    int port;            /* 0 = an ephemeral port (see gvd_server_port) */
    size_t max_body;     /* request body limit in bytes; larger bodies get 413 [1 MiB] */
    /* Web pages (origins) allowed to change state and open streams, besides
     * the server's own origin: a comma-separated list of exact origins
     * ("http://localhost:3000"), or "*" for any.  [none] (docs/api.md,
     * "Browsers, origins and DNS rebinding") */
    const char *allow_origins;
    gvd_push_opts push;  /* stream tuning (push.h) */

    /* Access (docs/security.md).  Bearer tokens: `token` may do everything,
     * `read_token` (needs `token`) only GET/HEAD and the streams.  NULL = no
     * authentication.  The strings are hashed in gvd_server_new and not
     * kept.  Binding a non-loopback address without a token fails unless
     * `insecure`. */
    const char *token;
    const char *read_token;
    bool insecure;

    /* Limits (docs/api.md, "Limits") */
    size_t max_connections;       /* open TCP connections, streams included [1024] */
    /* Connections one client (one IP address) may hold out of the regular
     * ones [max_connections / 4]; and how many of max_connections are kept
     * in reserve for anyone over a limit [8, at most max_connections / 8]:
     * a reserved connection serves one request, no stream, and is closed
     * GVD_RESERVE_LIFETIME_MS after it was accepted (docs/security.md,
     * "Connection limits"). */
    size_t max_connections_per_client;
    size_t reserved_connections;
    size_t max_header;            /* request line + headers in bytes; 431 beyond [32 KiB] */
    unsigned request_timeout_ms;  /* a request's headers must arrive within this, and an idle
                                     keep-alive connection is closed after it [10000] */

    /* GET /nodes: the nodes sharing the store ({"nodes": [...]}, a new
     * reference; NULL when out of memory).  NULL: this node alone. */
    json_t *(*nodes)(void *ud);
    void *nodes_ud;
    /* Pause / resume / cancel of a job another node runs (several nodes on
     * one PostgreSQL): hand it to that node; done(dud, status, code,
     * message) once with the outcome.  0, or -1 (nothing sent, done not
     * called).  NULL: one node (every job is this node's). */
    int (*forward)(void *ud, int64_t job_id, const char *verb,
                   void (*done)(void *dud, int status, const char *code, const char *message), void *dud);
    void *forward_ud;
    /* Where node `node` serves HTTP — or, `node` NULL, the node driving
     * pipeline `pipeline_id` — (api/relay.c relays there what only that
     * node can answer: a job's log, metrics, params record and events, a
     * params change; a pipeline's routes).  located(lud, node, address,
     * state, err) once: the node (NULL: no such node or pipeline), its
     * address (NULL if unknown) and state ("up", "left", "lost"), or err.
     * 0, or -1 (located not called).  NULL: one node. */
    int (*locate)(void *ud, const char *node, int64_t pipeline_id,
                  void (*located)(void *lud, const char *node, const char *address, const char *state,
                                  const char *err),
                  void *lud);
    void *locate_ud;
} gvd_server_opts;

/* Check a token's syntax (RFC 6750 b64token, 1..4096 characters); 0, or -1
 * with a message naming `what` (never the token). */
int gvd_token_check(const char *what, const char *tok, char *err, size_t errlen);

/* Read a token from the first line of `path` into out.  Refuses a file that
 * group or others may access.  0, or -1 with a message in err. */
int gvd_token_read_file(const char *path, char *out, size_t outlen, char *err, size_t errlen);

/* Is listening on `host` allowed with these access settings?  A
 * non-loopback address needs a token (`has_token`) or `insecure`: anyone
 * who can reach it could run commands as this user.  0, or -1 with the
 * reason in err (also when `host` does not resolve).  gvd_server_new checks
 * this itself; galvanid calls it first, before touching the database. */
int gvd_server_check_listen(const char *host, int port, bool has_token, bool insecure, char *err, size_t errlen);

/* Bind, listen and serve.  NULL with a message in err (e.g. "listen
 * 127.0.0.1:8000: address already in use") on failure; the handles it had
 * opened close when the loop next runs (as after gvd_jobs_free). */
gvd_server *gvd_server_new(uv_loop_t *loop, gvd_jobs *jobs, const gvd_server_opts *opts, char *err,
                           size_t errlen);

/* The bound port (the one chosen for port 0). */
int gvd_server_port(const gvd_server *s);

/* The push hub, for its statistics (gvd_push_stats_get). */
gvd_push *gvd_server_push(gvd_server *s);

/* Stop accepting, close WebSocket clients with 1001 "server shutting down",
 * end SSE streams, close the keep-alive connections, then free everything.
 * Returns at once; the server never calls into the jobs after this returns
 * (requests still arriving get 503), and its memory is released as the loop
 * runs (about a loop iteration, at most ~1 s for clients that do not
 * answer).  Run the loop until it returns, as after uv_close. */
void gvd_server_close(gvd_server *s);

#endif
