/*
 * store.h — durable job state, in an embedded SQLite file (WAL, the
 * default) or in PostgreSQL (several nodes on one database, issue 18).
 *
 * The job model calls the store from its persistence effect: an insert when a
 * job is accepted, an update on every transition (one transaction per loop
 * tick: model/group.c), and, for progress ticks, a coalesced write-behind.
 * On start, gvd_store_load replays every job.
 *
 * Two back ends behind one contract (store.c dispatches):
 *   sqlite/   SQLite: a write is durable when the call returns.
 *   pg/       PostgreSQL: a write is queued in the tick's batch and durable
 *             once the batch's COMMIT is answered (gvd_store_sync); the
 *             loop never waits on the network (pg/pgstore.h).
 * Code that must know when a write is durable — the answers of the HTTP API
 * — asks gvd_store_sync, which is immediate on SQLite.
 *
 * Schema changes are numbered migrations (sqlite/sqlite.c: PRAGMA
 * user_version; pg/pgschema.c: a galvani_schema table).  All calls run on
 * the loop thread; errors come back as -1 with a message.
 */
#ifndef GALVANI_DAEMON_STORE_H
#define GALVANI_DAEMON_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct gvd_store gvd_store;

/* One job as stored.  Strings are NUL-terminated; NULL means SQL NULL.  The
 * *_json fields are JSON texts (spec: the accepted job spec, params, metrics:
 * an object of name -> latest value).  Times are UNIX seconds (double). */
typedef struct gvd_job_row {
    int64_t id;             /* assigned by gvd_store_insert */
    const char *name;
    const char *kind;       /* "process" | "demo" */
    const char *status;     /* "queued" | "running" | "paused" | "succeeded" | "failed" | "cancelled" */
    int64_t priority;
    const char *spec_json;
    const char *params_json;
    const char *metrics_json;
    double progress, progress_total;
    const char *message;    /* last ::status text */
    const char *error;      /* why it failed, if it did */
    int64_t pid;            /* 0 when not running */
    uint64_t pid_start_ticks;
    int64_t exit_status;    /* meaningful when has_exit */
    int64_t term_signal;
    bool has_exit;
    int64_t attempts;
    double created_at, started_at, finished_at, updated_at; /* 0 = not yet */
    /* PostgreSQL only (several nodes, cluster/): the node that owns the job
     * (NULL: queued and claimable by any node) and that node's epoch when
     * it took it.  The SQLite back end neither stores nor returns them. */
    const char *node;
    int64_t epoch;
} gvd_job_row;

/* Open (creating if needed) and migrate the SQLite file at `path`.  NULL +
 * message on failure. */
gvd_store *gvd_store_open(const char *path, char *err, size_t errlen);
/* Open the store `url` names: "sqlite:PATH" or a plain PATH (SQLite, as
 * gvd_store_open), or "postgres://..." / "postgresql://..." (a libpq URI:
 * connects, migrates and reads every table, running `loop` until done: for
 * start-up, before anything else is on the loop).  NULL + message. */
gvd_store *gvd_store_open_url(uv_loop_t *loop, const char *url, char *err, size_t errlen);
void gvd_store_close(gvd_store *st);

/* "sqlite" or "postgres". */
const char *gvd_store_kind(const gvd_store *st);
/* Several nodes on one PostgreSQL (cluster/): this node's id and epoch;
 * its batches then announce the jobs they write.  0 (a no-op on SQLite),
 * or -1 when out of memory. */
int gvd_store_set_node(gvd_store *st, const char *node, int64_t epoch);

/* ---- durability of queued writes (PostgreSQL; immediate on SQLite) -------- */

typedef void (*gvd_store_synced_fn)(void *ud, bool ok, const char *err);
/* Are writes durable only later, once synced (PostgreSQL)?  false on
 * SQLite: a write is durable when its call returns. */
bool gvd_store_deferred(const gvd_store *st);
/* Whether some write made so far is not known durable yet. */
bool gvd_store_unsynced(const gvd_store *st);
/* fn(ud, ok, err) once every write made so far is durable (ok) or known
 * lost (ok false, err); at once (ok) when nothing is unsynced.  0, or -1
 * when out of memory (fn not called). */
int gvd_store_sync(gvd_store *st, gvd_store_synced_fn fn, void *ud);
/* Send what is queued (the end of a loop tick).  A no-op on SQLite. */
void gvd_store_flush(gvd_store *st);
/* dirty(ud): a write was queued while nothing was (someone must call
 * gvd_store_flush at the end of this tick).  lost(ud, err): the store can no
 * longer tell what the database holds (a PostgreSQL batch failed or its
 * connection dropped): galvanid stops.  Never called on SQLite. */
void gvd_store_set_hooks(gvd_store *st, void (*dirty)(void *ud), void (*lost)(void *ud, const char *err), void *ud);

/* synchronous = FULL instead of the WAL default NORMAL (see docs). */
int gvd_store_set_durable(gvd_store *st, bool full, char *err, size_t errlen);

/* Insert; writes the new id to *id (row->id is ignored). */
int gvd_store_insert(gvd_store *st, const gvd_job_row *row, int64_t *id, char *err, size_t errlen);
/* Replace every column of job row->id, except that a NULL spec_json keeps
 * the stored one (a spec never changes after the insert, and rewriting up to
 * a few hundred KiB on every status change would be waste).  -1 if there is
 * no such job. */
int gvd_store_update(gvd_store *st, const gvd_job_row *row, char *err, size_t errlen);
int gvd_store_delete(gvd_store *st, int64_t id, char *err, size_t errlen);

/* Call fn for every job in id order.  The row's strings are valid during the
 * call only.  Stops and returns fn's value if it is non-zero. */
typedef int (*gvd_store_row_fn)(void *ud, const gvd_job_row *row);
int gvd_store_load(gvd_store *st, gvd_store_row_fn fn, void *ud, char *err, size_t errlen);

/* Group several writes into one transaction (progress write-behind). */
int gvd_store_begin(gvd_store *st, char *err, size_t errlen);
int gvd_store_commit(gvd_store *st, char *err, size_t errlen);
/* Abandon the open batch (nothing of it is stored); a no-op without one. */
void gvd_store_rollback(gvd_store *st);

/* "ok" or the first problem PRAGMA integrity_check reports (static or owned
 * by the store until the next call). */
const char *gvd_store_integrity(gvd_store *st);

/* ---- params and metric history (history.c) --------------------------------
 *
 * Written by the model inside its batches (a params change in the same
 * transaction as the job row; points and "applied" marks by the progress
 * write-behind), read back once at start.  A job's rows go with it: delete
 * cascades.  Strings are bound without a copy: they need to live during the
 * call only. */

/* One accepted PATCH /jobs/{id}/params. */
typedef struct gvd_params_row {
    int64_t job_id;
    int64_t revision;       /* 1, 2, ... per job */
    const char *patch_json; /* the patch as sent (a JSON object) */
    const char *who;        /* "token", "local", ... (docs/api.md) */
    double at;              /* UNIX seconds */
    double applied_at;      /* 0 = not acknowledged (NULL in SQL) */
} gvd_params_row;

int gvd_store_params_insert(gvd_store *st, const gvd_params_row *row, char *err, size_t errlen);
/* Delete the job's history rows up to revision `upto` (the oldest ones,
 * when the job keeps too many). */
int gvd_store_params_prune(gvd_store *st, int64_t job_id, int64_t upto, char *err, size_t errlen);
/* Set applied_at of revision `revision` of the job (no-op if it has none). */
int gvd_store_params_applied(gvd_store *st, int64_t job_id, int64_t revision, double applied_at, char *err,
                             size_t errlen);
/* Every row, by job then revision. */
typedef int (*gvd_store_params_fn)(void *ud, const gvd_params_row *row);
int gvd_store_params_load(gvd_store *st, gvd_store_params_fn fn, void *ud, char *err, size_t errlen);

/* One kept point of a metric series; idx 0 is the oldest. */
typedef struct gvd_point_row {
    int64_t job_id;
    const char *name;
    int64_t idx;
    double t_ms, value;
    int64_t weight;         /* reported points merged into this one (>= 1) */
} gvd_point_row;

/* Insert or replace the point at (job, name, idx): writing a series again
 * after a failed commit is harmless. */
int gvd_store_point_put(gvd_store *st, const gvd_point_row *row, char *err, size_t errlen);
/* Delete the job's points of `name` from index `from` on (a series that
 * shrank when it was downsampled). */
int gvd_store_points_trim(gvd_store *st, int64_t job_id, const char *name, int64_t from, char *err,
                          size_t errlen);
/* Every point, by job, name, idx. */
typedef int (*gvd_store_point_fn)(void *ud, const gvd_point_row *row);
int gvd_store_points_load(gvd_store *st, gvd_store_point_fn fn, void *ud, char *err, size_t errlen);

/* ---- rule firings and latches (history.c; migration 3) --------------------
 *
 * Written by the rules engine (rules/rules.c) outside any batch, each firing
 * with its latch in one transaction; read back once at start. */

typedef struct gvd_event_row {
    int64_t id;              /* assigned by gvd_store_event_insert */
    int64_t job_id;
    const char *rule;        /* the rule's name ("rule-1", "global-3", ...) */
    const char *when;        /* its condition, as written */
    const char *action;      /* "pause", "cancel", "resume", "notify" */
    const char *values_json; /* what made it true: {"metrics.x": 0.95, ...} */
    const char *outcome;     /* what the action did, in words */
    double at;               /* UNIX seconds */
} gvd_event_row;

int gvd_store_event_insert(gvd_store *st, const gvd_event_row *row, int64_t *id, char *err, size_t errlen);
/* Delete the job's events with id <= upto (the oldest, when it keeps too many). */
int gvd_store_event_prune(gvd_store *st, int64_t job_id, int64_t upto, char *err, size_t errlen);
typedef int (*gvd_store_event_fn)(void *ud, const gvd_event_row *row);
int gvd_store_events_load(gvd_store *st, gvd_store_event_fn fn, void *ud, char *err, size_t errlen); /* by job, id */
/* Whether the condition of `rule` on the job was true when last seen. */
int gvd_store_latch_put(gvd_store *st, int64_t job_id, const char *rule, bool latched, char *err, size_t errlen);
typedef int (*gvd_store_latch_fn)(void *ud, int64_t job_id, const char *rule, bool latched);
int gvd_store_latches_load(gvd_store *st, gvd_store_latch_fn fn, void *ud, char *err, size_t errlen);

/* Global rules (POST /rules): def_json is the rule without its id. */
int gvd_store_rule_insert(gvd_store *st, const char *def_json, double created_at, int64_t *id, char *err,
                          size_t errlen);
/* Delete the rule and the latches of its name on every job. */
int gvd_store_rule_delete(gvd_store *st, int64_t id, const char *name, char *err, size_t errlen);
typedef int (*gvd_store_rule_fn)(void *ud, int64_t id, const char *def_json, double created_at);
int gvd_store_rules_load(gvd_store *st, gvd_store_rule_fn fn, void *ud, char *err, size_t errlen); /* by id */

/* ---- pipelines (pipelines.c; migration 4) ----------------------------------
 *
 * One row per pipeline: its definition (never changes) and its state (a
 * JSON object rewritten whole on each change: small, and one statement is
 * atomic).  Step jobs live in `jobs`. */
typedef struct gvd_pipeline_row {
    int64_t id;             /* assigned by gvd_store_pipeline_insert */
    const char *name;
    const char *def_json;
    const char *state_json;
    double created_at;
} gvd_pipeline_row;
int gvd_store_pipeline_insert(gvd_store *st, const gvd_pipeline_row *row, int64_t *id, char *err, size_t errlen);
/* Replace the state of pipeline `id`; -1 if there is no such pipeline. */
int gvd_store_pipeline_update(gvd_store *st, int64_t id, const char *state_json, char *err, size_t errlen);
int gvd_store_pipeline_delete(gvd_store *st, int64_t id, char *err, size_t errlen);
typedef int (*gvd_store_pipeline_fn)(void *ud, const gvd_pipeline_row *row);
int gvd_store_pipelines_load(gvd_store *st, gvd_store_pipeline_fn fn, void *ud, char *err, size_t errlen); /* by id */

/* ---- faults (faults.c) ----------------------------------------------------
 *
 * A write that fails because of the environment — disk full (SQLITE_FULL),
 * the write lock held by another process past the busy timeout
 * (SQLITE_BUSY / SQLITE_LOCKED), an I/O error (SQLITE_IOERR_*), a read-only
 * or vanished file — puts the store in the "unavailable" state until a
 * write succeeds again.  The store logs the first failure of each fault
 * (store.unavailable) and the recovery (store.recovered), never each write.
 * While unavailable, writes are still tried (the first that works ends the
 * fault) but do not wait for a lock: the loop thread would stall on every
 * request.  Other failures (a constraint, "no job N") are the caller's bug
 * and do not change the state. */

typedef enum gvd_store_fault {
    GVD_STORE_OK = 0,
    GVD_STORE_DISK_FULL,
    GVD_STORE_LOCKED,
    GVD_STORE_IO_ERROR,
    GVD_STORE_READ_ONLY
} gvd_store_fault;

typedef struct gvd_store_health {
    gvd_store_fault fault;     /* GVD_STORE_OK when writes work */
    const char *cause;         /* "disk full", "database is locked", "I/O error", "read-only"; NULL if ok */
    double since;              /* UNIX seconds the fault began; 0 if ok */
    uint64_t failed_writes;    /* failures during this fault */
    const char *error;         /* the last failure's full message (owned by the store); "" if ok */
} gvd_store_health;

void gvd_store_health_get(gvd_store *st, gvd_store_health *out);
/* Shorthand: no fault is in force. */
bool gvd_store_available(gvd_store *st);
/* The words for a fault ("disk full", ...), NULL for GVD_STORE_OK. */
const char *gvd_store_fault_cause(gvd_store_fault fault);

/* A tiny real write (rewrites the header's user_version in its own
 * transaction) that tells whether the store takes writes again; used by the
 * model's retry timer when it has nothing else to write.  0 if it did. */
int gvd_store_probe(gvd_store *st, char *err, size_t errlen);

/* The busy timeout used while the store is healthy (ms); the default is
 * GVD_STORE_BUSY_MS_DEFAULT.  0 = fail at once on a lock. */
#define GVD_STORE_BUSY_MS_DEFAULT 1000
int gvd_store_set_busy_ms(gvd_store *st, unsigned ms, char *err, size_t errlen);

#endif
