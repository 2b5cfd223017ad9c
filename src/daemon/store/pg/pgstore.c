/* clang-format off */
#pragma GCC diagnostic ignored "-Wunused-parameter"
/* pgstore.c — SCAFFOLD: replaced by the real back end (see pgstore.h). */
#include "pgstore.h"
#include <stdio.h>

gvd_pgstore *gvd_pgstore_open(uv_loop_t *loop, const char *conninfo, unsigned timeout_ms, char *err, size_t errlen)
{
    snprintf(err, errlen, "postgres store: not implemented yet"); return NULL;
}

void gvd_pgstore_close(gvd_pgstore *st)
{
    (void)st;
}

int gvd_pgstore_insert(gvd_pgstore *st, const gvd_job_row *row, int64_t *id, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_update(gvd_pgstore *st, const gvd_job_row *row, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_delete(gvd_pgstore *st, int64_t id, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_load(gvd_pgstore *st, gvd_store_row_fn fn, void *ud, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_begin(gvd_pgstore *st, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_commit(gvd_pgstore *st, char *err, size_t errlen)
{
    (void)st; return -1;
}

void gvd_pgstore_rollback(gvd_pgstore *st)
{
    (void)st;
}

int gvd_pgstore_params_insert(gvd_pgstore *st, const gvd_params_row *row, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_params_prune(gvd_pgstore *st, int64_t job_id, int64_t upto, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_params_applied(gvd_pgstore *st, int64_t job_id, int64_t revision, double applied_at, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_params_load(gvd_pgstore *st, gvd_store_params_fn fn, void *ud, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_point_put(gvd_pgstore *st, const gvd_point_row *row, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_points_trim(gvd_pgstore *st, int64_t job_id, const char *name, int64_t from, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_points_load(gvd_pgstore *st, gvd_store_point_fn fn, void *ud, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_event_insert(gvd_pgstore *st, const gvd_event_row *row, int64_t *id, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_event_prune(gvd_pgstore *st, int64_t job_id, int64_t upto, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_events_load(gvd_pgstore *st, gvd_store_event_fn fn, void *ud, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_latch_put(gvd_pgstore *st, int64_t job_id, const char *rule, bool latched, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_latches_load(gvd_pgstore *st, gvd_store_latch_fn fn, void *ud, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_rule_insert(gvd_pgstore *st, const char *def_json, double created_at, int64_t *id, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_rule_delete(gvd_pgstore *st, int64_t id, const char *name, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_rules_load(gvd_pgstore *st, gvd_store_rule_fn fn, void *ud, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_pipeline_insert(gvd_pgstore *st, const gvd_pipeline_row *row, int64_t *id, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_pipeline_update(gvd_pgstore *st, int64_t id, const char *state_json, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_pipeline_delete(gvd_pgstore *st, int64_t id, char *err, size_t errlen)
{
    (void)st; return -1;
}

int gvd_pgstore_pipelines_load(gvd_pgstore *st, gvd_store_pipeline_fn fn, void *ud, char *err, size_t errlen)
{
    (void)st; return -1;
}

void gvd_pgstore_health_get(gvd_pgstore *st, gvd_store_health *out)
{
    (void)st;
}

const char *gvd_pgstore_integrity(gvd_pgstore *st)
{
    (void)st; return "not implemented";
}

bool gvd_pgstore_unsynced(const gvd_pgstore *st)
{
    (void)st; return false;
}

int gvd_pgstore_sync(gvd_pgstore *st, gvd_store_synced_fn fn, void *ud)
{
    (void)st; return -1;
}

void gvd_pgstore_flush(gvd_pgstore *st)
{
    (void)st;
}

void gvd_pgstore_set_hooks(gvd_pgstore *st, void (*dirty)(void *ud), void (*lost)(void *ud, const char *err), void *ud)
{
    (void)st;
}
