/*
 * pgstore.h — the PostgreSQL back end of the store (issue 18: several
 * galvanid nodes on one PostgreSQL).  store.c dispatches to it when the
 * store URL is postgres://… or postgresql://…; other layers never include
 * this file: they see store.h only.
 *
 * The idea: SQLite answers a write before the call returns; PostgreSQL is
 * across a socket, and the loop must never wait on it.  So a write here
 * checks its arguments, renders its statement and parameters, and appends
 * them to the *batch* of the current loop tick; nothing is sent yet.  At the
 * end of the tick the model calls gvd_pgstore_flush, which sends the whole
 * batch as one transaction on the connection's pipeline (BEGIN, the
 * statements, COMMIT), and the batch's waiters (gvd_pgstore_sync) are
 * called when COMMIT is answered — or when it failed, with the reason.  One
 * batch is in flight at a time; writes made meanwhile go to the next batch,
 * sent when the one in flight is answered.  The answers the HTTP API gives
 * wait for the batch that holds their writes, so a 2xx still means durable.
 *
 * What a synchronous caller needs at once comes from memory:
 *   - new ids (jobs, rule events, global rules, pipelines) are taken from
 *     blocks reserved ahead of time from the tables' identity sequences
 *     (SELECT nextval(...) FROM generate_series(1, N)), refilled in the
 *     background when a block runs low, so an insert never waits;
 *   - gvd_pgstore_begin / _commit / _rollback mark and cut the batch: the
 *     statements a caller's "transaction" queued are dropped by rollback,
 *     and the tick's batch is one transaction anyway;
 *   - loading (gvd_pgstore_load and the other *_load) reads answers
 *     fetched once, at open, while gvd_pgstore_open runs the loop.
 * A failed batch means this node no longer knows what the database holds:
 * the store turns unavailable (health: the error) and calls the `lost`
 * hook; galvanid then stops (its jobs keep running under their
 * supervisors) so that its next start reloads the truth.
 *
 * Ownership: gvd_pgstore_open returns a store the caller frees with
 * gvd_pgstore_close (which drops the unsent batch, answers waiters with
 * "store closed", and closes the connection on the loop).  Strings passed
 * to writes are copied into the batch.  Every call runs on the loop thread.
 */
#ifndef GALVANI_DAEMON_STORE_PGSTORE_H
#define GALVANI_DAEMON_STORE_PGSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>
#include <uv.h>

#include "../store.h"

typedef struct gvd_pgstore gvd_pgstore;

/* Connect to `conninfo`, migrate (pgschema.c) and read every table, running
 * `loop` until done or `timeout_ms` passed (start-up only: nothing else is on
 * the loop yet).  NULL with err ("cannot connect to ...: <libpq's words>",
 * "schema: ...") on failure. */
gvd_pgstore *gvd_pgstore_open(uv_loop_t *loop, const char *conninfo, unsigned timeout_ms, char *err,
                              size_t errlen);
void gvd_pgstore_close(gvd_pgstore *st);

/* Every function below has the contract of its gvd_store_ namesake in
 * store.h, with the differences this file's opening explains: writes return
 * 0 once queued (-1 with err only for a bad argument, no store, out of
 * memory, no reserved id left, or an unavailable store). */
int gvd_pgstore_insert(gvd_pgstore *st, const gvd_job_row *row, int64_t *id, char *err, size_t errlen);
int gvd_pgstore_update(gvd_pgstore *st, const gvd_job_row *row, char *err, size_t errlen);
int gvd_pgstore_delete(gvd_pgstore *st, int64_t id, char *err, size_t errlen);
int gvd_pgstore_load(gvd_pgstore *st, gvd_store_row_fn fn, void *ud, char *err, size_t errlen);
int gvd_pgstore_begin(gvd_pgstore *st, char *err, size_t errlen);
int gvd_pgstore_commit(gvd_pgstore *st, char *err, size_t errlen);
void gvd_pgstore_rollback(gvd_pgstore *st);

int gvd_pgstore_params_insert(gvd_pgstore *st, const gvd_params_row *row, char *err, size_t errlen);
int gvd_pgstore_params_prune(gvd_pgstore *st, int64_t job_id, int64_t upto, char *err, size_t errlen);
int gvd_pgstore_params_applied(gvd_pgstore *st, int64_t job_id, int64_t revision, double applied_at, char *err,
                               size_t errlen);
int gvd_pgstore_params_load(gvd_pgstore *st, gvd_store_params_fn fn, void *ud, char *err, size_t errlen);
int gvd_pgstore_point_put(gvd_pgstore *st, const gvd_point_row *row, char *err, size_t errlen);
int gvd_pgstore_points_trim(gvd_pgstore *st, int64_t job_id, const char *name, int64_t from, char *err,
                            size_t errlen);
int gvd_pgstore_points_load(gvd_pgstore *st, gvd_store_point_fn fn, void *ud, char *err, size_t errlen);

int gvd_pgstore_event_insert(gvd_pgstore *st, const gvd_event_row *row, int64_t *id, char *err, size_t errlen);
int gvd_pgstore_event_prune(gvd_pgstore *st, int64_t job_id, int64_t upto, char *err, size_t errlen);
int gvd_pgstore_events_load(gvd_pgstore *st, gvd_store_event_fn fn, void *ud, char *err, size_t errlen);
int gvd_pgstore_latch_put(gvd_pgstore *st, int64_t job_id, const char *rule, bool latched, char *err,
                          size_t errlen);
int gvd_pgstore_latches_load(gvd_pgstore *st, gvd_store_latch_fn fn, void *ud, char *err, size_t errlen);
int gvd_pgstore_rule_insert(gvd_pgstore *st, const char *def_json, double created_at, int64_t *id, char *err,
                            size_t errlen);
int gvd_pgstore_rule_delete(gvd_pgstore *st, int64_t id, const char *name, char *err, size_t errlen);
int gvd_pgstore_rules_load(gvd_pgstore *st, gvd_store_rule_fn fn, void *ud, char *err, size_t errlen);

int gvd_pgstore_pipeline_insert(gvd_pgstore *st, const gvd_pipeline_row *row, int64_t *id, char *err,
                                size_t errlen);
int gvd_pgstore_pipeline_update(gvd_pgstore *st, int64_t id, const char *state_json, char *err, size_t errlen);
int gvd_pgstore_pipeline_delete(gvd_pgstore *st, int64_t id, char *err, size_t errlen);
int gvd_pgstore_pipelines_load(gvd_pgstore *st, gvd_store_pipeline_fn fn, void *ud, char *err, size_t errlen);

/* Health: GVD_STORE_OK, or GVD_STORE_IO_ERROR with cause "database
 * connection lost" / the failed batch's error, from the first failure on
 * (it does not recover: see `lost`). */
void gvd_pgstore_health_get(gvd_pgstore *st, gvd_store_health *out);
/* "ok" when the connection is up and the store available, else why not. */
const char *gvd_pgstore_integrity(gvd_pgstore *st);

/* ---- the batch (see the opening) ---------------------------------------- */

/* Writes queued and not yet answered (buffered or in flight). */
bool gvd_pgstore_unsynced(const gvd_pgstore *st);
/* fn(ud, ok, err) once every write queued so far is committed (ok), or the
 * batch holding one of them failed (ok false, err).  Called at once (ok)
 * when nothing is unsynced.  0, or -1 when out of memory (fn not called). */
int gvd_pgstore_sync(gvd_pgstore *st, gvd_store_synced_fn fn, void *ud);
/* Send the buffered batch now, or as soon as the one in flight is
 * answered.  A no-op when nothing is buffered. */
void gvd_pgstore_flush(gvd_pgstore *st);
/* dirty(ud): a write entered an empty buffer (someone must flush at the end
 * of this tick).  lost(ud, err): a batch failed or the connection dropped:
 * the store is unavailable from now on.  Either may be NULL. */
void gvd_pgstore_set_hooks(gvd_pgstore *st, void (*dirty)(void *ud), void (*lost)(void *ud, const char *err),
                           void *ud);

/* ---- several nodes (cluster/cluster.h) ------------------------------------ */

/* This node's id and epoch: from now on each batch ends with NOTIFY
 * galvani_jobs "<node> <ids>" naming the jobs it wrote, and a job row this
 * node owns is written with its epoch.  0, or -1 when out of memory. */
int gvd_pgstore_set_node(gvd_pgstore *st, const char *node, int64_t epoch);
/* The columns of a job row as gvd_pg_job_row_read reads them (for a
 * SELECT <columns> FROM jobs ...), and reading row i of such an answer
 * (the strings are the answer's: valid while it is). */
extern const char gvd_pg_job_columns[];
void gvd_pg_job_row_read(const PGresult *r, int i, gvd_job_row *row);

#endif
