/*
 * pgconn.h — one PostgreSQL connection driven by the libuv loop (issue 18:
 * galvanid nodes on one PostgreSQL; the loop never waits on the network).
 *
 *   gvd_pg *pg = gvd_pg_new(loop, "postgresql://galvani@127.0.0.1:5432/db", &ev, ud, err, sizeof err);
 *   gvd_pg_query(pg, "INSERT INTO t VALUES ($1)", 1, (const char *[]){"42"}, done, ctx);
 *   gvd_pg_query(pg, "LISTEN galvani", 0, NULL, NULL, NULL);
 *
 * libpq's asynchronous API on a uv_poll of the connection's socket:
 * connecting is PQconnectStart + PQconnectPoll as the socket becomes ready;
 * then the connection is in pipeline mode, so queries are sent as they
 * come, without waiting for the previous answer, and the answers come back
 * in order to their callbacks.  Each query is followed by its own sync
 * point: a failed query aborts nothing but itself.  Notifications (LISTEN)
 * go to ev->notify as they arrive.  Writes that the socket cannot take at
 * once are flushed when it becomes writable.
 *
 * Nothing here blocks: every libpq call used is non-blocking once
 * PQsetnonblocking is set, and the only waits are the loop's.
 *
 * Ownership: the caller owns the gvd_pg (gvd_pg_free; its handle closes on
 * the loop).  A callback's PGresult is libpq's and is cleared after the
 * callback returns; copy what you keep.  Queries still pending when the
 * connection fails or is freed get their callback with res NULL and the
 * reason.  Everything runs on the loop thread.
 */
#ifndef GALVANI_DAEMON_STORE_PGCONN_H
#define GALVANI_DAEMON_STORE_PGCONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct gvd_pg gvd_pg;

/* One query's answer: res (PGRES_TUPLES_OK / PGRES_COMMAND_OK) on success,
 * or res NULL (or an error result) and err saying why. */
typedef void (*gvd_pg_result_fn)(void *ud, const PGresult *res, const char *err);

typedef struct gvd_pg_events {
    /* the connection is up (after gvd_pg_new's connect), or it failed or
     * was lost (err); may be NULL */
    void (*state)(void *ud, bool up, const char *err);
    /* a NOTIFY on a channel this connection LISTENs to; may be NULL */
    void (*notify)(void *ud, const char *channel, const char *payload);
} gvd_pg_events;

/* Start connecting to `conninfo` (a URI or key=value string).  NULL with
 * err when it cannot even start (out of memory, a malformed conninfo);
 * a refused connection is reported through ev->state and pending queries. */
gvd_pg *gvd_pg_new(uv_loop_t *loop, const char *conninfo, const gvd_pg_events *ev, void *ud, char *err,
                   size_t errlen);
/* Queue a query with text parameters (NULL = SQL NULL).  It is sent at once
 * when connected, else when the connection is up.  `fn` may be NULL.  0, or
 * -1 when out of memory or the connection is gone (fn is not called). */
int gvd_pg_query(gvd_pg *pg, const char *sql, int nparams, const char *const *params, gvd_pg_result_fn fn,
                 void *ud);
/* Queries sent or waiting whose answers have not come back. */
size_t gvd_pg_pending(const gvd_pg *pg);
bool gvd_pg_up(const gvd_pg *pg);
/* Pending callbacks get res NULL ("connection closed"); the handle closes
 * on the loop. */
void gvd_pg_free(gvd_pg *pg);

#endif
