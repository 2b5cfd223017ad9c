/*
 * store.c — one store, two back ends: the dispatch behind store.h.
 *
 * A gvd_store holds exactly one back end: sqlite/ (the default, a file next
 * to galvanid) or pg/ (PostgreSQL, shared by several nodes).  Each function
 * of store.h checks that there is a store and passes the call on; the back
 * ends keep their own state, statements and fault handling.  Why a tagged
 * pair and not a table of function pointers: there are two back ends, known
 * at compile time, and a direct call keeps every signature checked by the
 * compiler (a table would cast each back end's own type to void *).
 *
 * What differs in kind, not only in SQL, is durability: SQLite's writes are
 * durable on return, PostgreSQL's when their batch is answered.  The
 * functions of the "durability" part below are therefore no-ops or
 * immediate on SQLite, so that the model and the API have one code path.
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pgstore.h"
#include "sqlite/sqlite.h"

struct gvd_store {
    gvd_sqlite *lite; /* exactly one of the two is set; owned */
    gvd_pgstore *pg;
};

/* How long opening a PostgreSQL store may take (connect, migrate, read). */
#define GVD_STORE_PG_OPEN_MS 30000

/* false, with "store <op>: store is not open", when there is no store. */
static bool gvd_store_ready(const gvd_store *st, const char *op, char *err, size_t errlen)
{
    if (st)
        return true;
    if (err && errlen)
        snprintf(err, errlen, "store %s: store is not open", op);
    return false;
}

static gvd_store *gvd_store_wrap(gvd_sqlite *lite, gvd_pgstore *pg, char *err, size_t errlen)
{
    if (!lite && !pg)
        return NULL;
    gvd_store *st = calloc(1, sizeof *st);
    if (!st) {
        gvd_sqlite_close(lite);
        gvd_pgstore_close(pg);
        snprintf(err, errlen, "store open: out of memory");
        return NULL;
    }
    st->lite = lite;
    st->pg = pg;
    return st;
}

gvd_store *gvd_store_open(const char *path, char *err, size_t errlen)
{
    return gvd_store_wrap(gvd_sqlite_open(path, err, errlen), NULL, err, errlen);
}

gvd_store *gvd_store_open_url(uv_loop_t *loop, const char *url, char *err, size_t errlen)
{
    if (!url || !*url) {
        snprintf(err, errlen, "store open: no store given");
        return NULL;
    }
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0)
        return gvd_store_wrap(NULL, gvd_pgstore_open(loop, url, GVD_STORE_PG_OPEN_MS, err, errlen), err, errlen);
    if (strncmp(url, "sqlite:", 7) == 0)
        url += 7;
    else if (strstr(url, "://")) {
        snprintf(err, errlen, "store open: unknown store '%.*s': use sqlite:PATH or postgres://...",
                 (int)(strstr(url, "://") - url + 3), url);
        return NULL;
    }
    return gvd_store_open(url, err, errlen);
}

void gvd_store_close(gvd_store *st)
{
    if (!st)
        return;
    gvd_sqlite_close(st->lite);
    gvd_pgstore_close(st->pg);
    free(st);
}

const char *gvd_store_kind(const gvd_store *st)
{
    return st && st->pg ? "postgres" : "sqlite";
}

int gvd_store_set_node(gvd_store *st, const char *node, int64_t epoch)
{
    return st && st->pg ? gvd_pgstore_set_node(st->pg, node, epoch) : 0;
}

const char *gvd_store_fault_cause(gvd_store_fault fault)
{
    switch (fault) {
    case GVD_STORE_DISK_FULL: return "disk full";
    case GVD_STORE_LOCKED: return "database is locked";
    case GVD_STORE_IO_ERROR: return "I/O error";
    case GVD_STORE_READ_ONLY: return "read-only";
    case GVD_STORE_OK: break;
    }
    return NULL;
}

/* ---- durability of queued writes ------------------------------------------ */

bool gvd_store_deferred(const gvd_store *st)
{
    return st && st->pg;
}

bool gvd_store_unsynced(const gvd_store *st)
{
    return st && st->pg && gvd_pgstore_unsynced(st->pg);
}

int gvd_store_sync(gvd_store *st, gvd_store_synced_fn fn, void *ud)
{
    if (st && st->pg)
        return gvd_pgstore_sync(st->pg, fn, ud);
    fn(ud, true, ""); /* SQLite: everything written is durable already */
    return 0;
}

void gvd_store_flush(gvd_store *st)
{
    if (st && st->pg)
        gvd_pgstore_flush(st->pg);
}

void gvd_store_set_hooks(gvd_store *st, void (*dirty)(void *ud), void (*lost)(void *ud, const char *err), void *ud)
{
    if (st && st->pg)
        gvd_pgstore_set_hooks(st->pg, dirty, lost, ud);
}

/* ---- the calls every back end answers ------------------------------------- */

int gvd_store_set_durable(gvd_store *st, bool full, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "set_durable", err, errlen))
        return -1;
    /* PostgreSQL: durability is the server's setting (synchronous_commit). */
    return st->pg ? 0 : gvd_sqlite_set_durable(st->lite, full, err, errlen);
}

int gvd_store_insert(gvd_store *st, const gvd_job_row *row, int64_t *id, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "insert", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_insert(st->pg, row, id, err, errlen) : gvd_sqlite_insert(st->lite, row, id, err, errlen);
}

int gvd_store_update(gvd_store *st, const gvd_job_row *row, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "update", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_update(st->pg, row, err, errlen) : gvd_sqlite_update(st->lite, row, err, errlen);
}

int gvd_store_delete(gvd_store *st, int64_t id, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "delete", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_delete(st->pg, id, err, errlen) : gvd_sqlite_delete(st->lite, id, err, errlen);
}

int gvd_store_load(gvd_store *st, gvd_store_row_fn fn, void *ud, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "load", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_load(st->pg, fn, ud, err, errlen) : gvd_sqlite_load(st->lite, fn, ud, err, errlen);
}

int gvd_store_begin(gvd_store *st, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "begin", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_begin(st->pg, err, errlen) : gvd_sqlite_begin(st->lite, err, errlen);
}

int gvd_store_commit(gvd_store *st, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "commit", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_commit(st->pg, err, errlen) : gvd_sqlite_commit(st->lite, err, errlen);
}

void gvd_store_rollback(gvd_store *st)
{
    if (st && st->pg)
        gvd_pgstore_rollback(st->pg);
    else if (st)
        gvd_sqlite_rollback(st->lite);
}

const char * gvd_store_integrity(gvd_store *st)
{
    if (!st)
        return "store is not open";
    return st->pg ? gvd_pgstore_integrity(st->pg) : gvd_sqlite_integrity(st->lite);
}

int gvd_store_params_insert(gvd_store *st, const gvd_params_row *row, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "params_insert", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_params_insert(st->pg, row, err, errlen) : gvd_sqlite_params_insert(st->lite, row, err, errlen);
}

int gvd_store_params_prune(gvd_store *st, int64_t job_id, int64_t upto, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "params_prune", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_params_prune(st->pg, job_id, upto, err, errlen) : gvd_sqlite_params_prune(st->lite, job_id, upto, err, errlen);
}

int gvd_store_params_applied(gvd_store *st, int64_t job_id, int64_t revision, double applied_at, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "params_applied", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_params_applied(st->pg, job_id, revision, applied_at, err, errlen) : gvd_sqlite_params_applied(st->lite, job_id, revision, applied_at, err, errlen);
}

int gvd_store_params_load(gvd_store *st, gvd_store_params_fn fn, void *ud, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "params_load", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_params_load(st->pg, fn, ud, err, errlen) : gvd_sqlite_params_load(st->lite, fn, ud, err, errlen);
}

int gvd_store_point_put(gvd_store *st, const gvd_point_row *row, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "point_put", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_point_put(st->pg, row, err, errlen) : gvd_sqlite_point_put(st->lite, row, err, errlen);
}

int gvd_store_points_trim(gvd_store *st, int64_t job_id, const char *name, int64_t from, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "points_trim", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_points_trim(st->pg, job_id, name, from, err, errlen) : gvd_sqlite_points_trim(st->lite, job_id, name, from, err, errlen);
}

int gvd_store_points_load(gvd_store *st, gvd_store_point_fn fn, void *ud, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "points_load", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_points_load(st->pg, fn, ud, err, errlen) : gvd_sqlite_points_load(st->lite, fn, ud, err, errlen);
}

int gvd_store_event_insert(gvd_store *st, const gvd_event_row *row, int64_t *id, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "event_insert", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_event_insert(st->pg, row, id, err, errlen) : gvd_sqlite_event_insert(st->lite, row, id, err, errlen);
}

int gvd_store_event_prune(gvd_store *st, int64_t job_id, int64_t upto, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "event_prune", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_event_prune(st->pg, job_id, upto, err, errlen) : gvd_sqlite_event_prune(st->lite, job_id, upto, err, errlen);
}

int gvd_store_events_load(gvd_store *st, gvd_store_event_fn fn, void *ud, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "events_load", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_events_load(st->pg, fn, ud, err, errlen) : gvd_sqlite_events_load(st->lite, fn, ud, err, errlen);
}

int gvd_store_latch_put(gvd_store *st, int64_t job_id, const char *rule, bool latched, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "latch_put", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_latch_put(st->pg, job_id, rule, latched, err, errlen) : gvd_sqlite_latch_put(st->lite, job_id, rule, latched, err, errlen);
}

int gvd_store_latches_load(gvd_store *st, gvd_store_latch_fn fn, void *ud, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "latches_load", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_latches_load(st->pg, fn, ud, err, errlen) : gvd_sqlite_latches_load(st->lite, fn, ud, err, errlen);
}

int gvd_store_rule_insert(gvd_store *st, const char *def_json, double created_at, int64_t *id, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "rule_insert", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_rule_insert(st->pg, def_json, created_at, id, err, errlen) : gvd_sqlite_rule_insert(st->lite, def_json, created_at, id, err, errlen);
}

int gvd_store_rule_delete(gvd_store *st, int64_t id, const char *name, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "rule_delete", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_rule_delete(st->pg, id, name, err, errlen) : gvd_sqlite_rule_delete(st->lite, id, name, err, errlen);
}

int gvd_store_rules_load(gvd_store *st, gvd_store_rule_fn fn, void *ud, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "rules_load", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_rules_load(st->pg, fn, ud, err, errlen) : gvd_sqlite_rules_load(st->lite, fn, ud, err, errlen);
}

int gvd_store_pipeline_insert(gvd_store *st, const gvd_pipeline_row *row, int64_t *id, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "pipeline_insert", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_pipeline_insert(st->pg, row, id, err, errlen) : gvd_sqlite_pipeline_insert(st->lite, row, id, err, errlen);
}

int gvd_store_pipeline_update(gvd_store *st, int64_t id, const char *state_json, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "pipeline_update", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_pipeline_update(st->pg, id, state_json, err, errlen) : gvd_sqlite_pipeline_update(st->lite, id, state_json, err, errlen);
}

int gvd_store_pipeline_delete(gvd_store *st, int64_t id, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "pipeline_delete", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_pipeline_delete(st->pg, id, err, errlen) : gvd_sqlite_pipeline_delete(st->lite, id, err, errlen);
}

int gvd_store_pipelines_load(gvd_store *st, gvd_store_pipeline_fn fn, void *ud, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "pipelines_load", err, errlen))
        return -1;
    return st->pg ? gvd_pgstore_pipelines_load(st->pg, fn, ud, err, errlen) : gvd_sqlite_pipelines_load(st->lite, fn, ud, err, errlen);
}

void gvd_store_health_get(gvd_store *st, gvd_store_health *out)
{
    if (!st)
        *out = (gvd_store_health){.error = ""};
    else if (st->pg)
        gvd_pgstore_health_get(st->pg, out);
    else
        gvd_sqlite_health_get(st->lite, out);
}

bool gvd_store_available(gvd_store *st)
{
    gvd_store_health h;
    if (!st)
        return false;
    gvd_store_health_get(st, &h);
    return h.fault == GVD_STORE_OK;
}

int gvd_store_probe(gvd_store *st, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "probe", err, errlen))
        return -1;
    /* PostgreSQL: a failed batch ends the node (pgstore.h), nothing to probe. */
    return st->pg ? (gvd_store_available(st) ? 0 : -1) : gvd_sqlite_probe(st->lite, err, errlen);
}

int gvd_store_set_busy_ms(gvd_store *st, unsigned ms, char *err, size_t errlen)
{
    if (!gvd_store_ready(st, "set_busy_ms", err, errlen))
        return -1;
    return st->pg ? 0 : gvd_sqlite_set_busy_ms(st->lite, ms, err, errlen); /* SQLite's lock wait */
}
