/*
 * sqlite.h — the SQLite back end of the store (the default: one embedded
 * file in WAL mode, one galvanid).  store.c dispatches to it; other layers
 * see store.h only.  Every function has the contract of its gvd_store_
 * namesake in store.h: a write is durable (committed, or part of the
 * caller's open batch) when the call returns.
 */
#ifndef GALVANI_DAEMON_STORE_SQLITE_H
#define GALVANI_DAEMON_STORE_SQLITE_H

#include "../store.h"

typedef struct gvd_sqlite gvd_sqlite;

gvd_sqlite *gvd_sqlite_open(const char *path, char *err, size_t errlen);
void gvd_sqlite_close(gvd_sqlite *st);
int gvd_sqlite_set_durable(gvd_sqlite *st, bool full, char *err, size_t errlen);
int gvd_sqlite_insert(gvd_sqlite *st, const gvd_job_row *row, int64_t *id,
                      char *err, size_t errlen);
int gvd_sqlite_update(gvd_sqlite *st, const gvd_job_row *row, char *err,
                      size_t errlen);
int gvd_sqlite_delete(gvd_sqlite *st, int64_t id, char *err, size_t errlen);
int gvd_sqlite_load(gvd_sqlite *st, gvd_store_row_fn fn, void *ud, char *err,
                    size_t errlen);
int gvd_sqlite_begin(gvd_sqlite *st, char *err, size_t errlen);
int gvd_sqlite_commit(gvd_sqlite *st, char *err, size_t errlen);
void gvd_sqlite_rollback(gvd_sqlite *st);
const char *gvd_sqlite_integrity(gvd_sqlite *st);
int gvd_sqlite_params_insert(gvd_sqlite *st, const gvd_params_row *row,
                             char *err, size_t errlen);
int gvd_sqlite_params_prune(gvd_sqlite *st, int64_t job_id, int64_t upto,
                            char *err, size_t errlen);
int gvd_sqlite_params_applied(gvd_sqlite *st, int64_t job_id, int64_t revision,
                              double applied_at, char *err, size_t errlen);
int gvd_sqlite_params_load(gvd_sqlite *st, gvd_store_params_fn fn, void *ud,
                           char *err, size_t errlen);
int gvd_sqlite_point_put(gvd_sqlite *st, const gvd_point_row *row, char *err,
                         size_t errlen);
int gvd_sqlite_points_trim(gvd_sqlite *st, int64_t job_id, const char *name,
                           int64_t from, char *err, size_t errlen);
int gvd_sqlite_points_load(gvd_sqlite *st, gvd_store_point_fn fn, void *ud,
                           char *err, size_t errlen);
int gvd_sqlite_event_insert(gvd_sqlite *st, const gvd_event_row *row,
                            int64_t *id, char *err, size_t errlen);
int gvd_sqlite_event_prune(gvd_sqlite *st, int64_t job_id, int64_t upto,
                           char *err, size_t errlen);
int gvd_sqlite_events_load(gvd_sqlite *st, gvd_store_event_fn fn, void *ud,
                           char *err, size_t errlen);
int gvd_sqlite_latch_put(gvd_sqlite *st, int64_t job_id, const char *rule,
                         bool latched, char *err, size_t errlen);
int gvd_sqlite_latches_load(gvd_sqlite *st, gvd_store_latch_fn fn, void *ud,
                            char *err, size_t errlen);
int gvd_sqlite_rule_insert(gvd_sqlite *st, const char *def_json,
                           double created_at, int64_t *id, char *err,
                           size_t errlen);
int gvd_sqlite_rule_delete(gvd_sqlite *st, int64_t id, const char *name,
                           char *err, size_t errlen);
int gvd_sqlite_rules_load(gvd_sqlite *st, gvd_store_rule_fn fn, void *ud,
                          char *err, size_t errlen);
int gvd_sqlite_pipeline_insert(gvd_sqlite *st, const gvd_pipeline_row *row,
                               int64_t *id, char *err, size_t errlen);
int gvd_sqlite_pipeline_update(gvd_sqlite *st, int64_t id,
                               const char *state_json, char *err,
                               size_t errlen);
int gvd_sqlite_pipeline_delete(gvd_sqlite *st, int64_t id, char *err,
                               size_t errlen);
int gvd_sqlite_pipelines_load(gvd_sqlite *st, gvd_store_pipeline_fn fn,
                              void *ud, char *err, size_t errlen);
void gvd_sqlite_health_get(gvd_sqlite *st, gvd_store_health *out);
int gvd_sqlite_probe(gvd_sqlite *st, char *err, size_t errlen);
int gvd_sqlite_set_busy_ms(gvd_sqlite *st, unsigned ms, char *err,
                           size_t errlen);
#endif
