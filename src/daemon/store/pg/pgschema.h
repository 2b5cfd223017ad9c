/*
 * pgschema.h — galvanid's schema on PostgreSQL and its migrations (issue 18).
 *
 * The same tables as the SQLite store (store.c's migrations: jobs, params
 * history, metric points, rule events and latches, global rules,
 * pipelines), in PostgreSQL's types, numbered the same way: migration N
 * brings a database from version N-1 to N, recorded in galvani_schema.
 * Several nodes may start at once on one database: the migration runs in
 * one transaction under a transaction-scoped advisory lock, so exactly one
 * node migrates and the others find the work done.
 *
 * Asynchronous, on a gvd_pg (pgconn.h): the loop never waits.
 */
#ifndef GALVANI_DAEMON_STORE_PGSCHEMA_H
#define GALVANI_DAEMON_STORE_PGSCHEMA_H

#include "pgconn.h"

/* The newest schema version this build knows. */
int gvd_pg_schema_version(void);

/* Done: the database is at `version` (err NULL), or err says why not (the
 * transaction was rolled back: nothing changed). */
typedef void (*gvd_pg_migrated_fn)(void *ud, int version, const char *err);

/* Bring the database to gvd_pg_schema_version().  0 (fn will be called
 * once), or -1 when the queries could not be queued (fn is not called).  A
 * database newer than this build is refused (err), never touched. */
int gvd_pg_migrate(gvd_pg *pg, gvd_pg_migrated_fn fn, void *ud);

#endif
