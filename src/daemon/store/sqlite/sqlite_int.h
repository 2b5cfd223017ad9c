/*
 * sqlite_int.h — the SQLite back end's private structure, shared by
 * sqlite.c (opening, migrations, batching, integrity), rows.c (the job
 * rows), history.c, pipelines.c and faults.c.  Not part of the contract:
 * store.c includes sqlite.h only.
 */
#ifndef GALVANI_DAEMON_STORE_SQLITE_INT_H
#define GALVANI_DAEMON_STORE_SQLITE_INT_H

#include <sqlite3.h>

#include "sqlite.h"

struct gvd_sqlite {
    sqlite3 *db;
    char *path;  /* as given, for messages */
    bool memory; /* ":memory:": no WAL, nothing survives close */
    bool loading; /* inside gvd_sqlite_load: its statement is busy */
    int last_code; /* primary result code of the last error gvd_sqlite_sqlerr reported */
    /* Prepared once at open, reset after each use, finalized at close. */
    sqlite3_stmt *insert, *update, *del, *load;
    sqlite3_stmt *begin, *commit, *rollback;
    /* history.c: params history and metric points */
    sqlite3_stmt *hist_insert, *hist_applied, *hist_prune, *hist_load;
    sqlite3_stmt *point_put, *point_trim, *point_load;
    /* history.c: rule firings and latches */
    sqlite3_stmt *event_insert, *event_prune, *event_load, *latch_put, *latch_load, *latch_forget;
    sqlite3_stmt *rule_insert, *rule_delete, *rule_load; /* global rules */
    sqlite3_stmt *pl_insert, *pl_update, *pl_delete, *pl_load; /* pipelines.c */
    char integrity[512]; /* gvd_sqlite_integrity's answer when not "ok" */
    /* faults.c: the availability state (see store.h, "faults") */
    gvd_store_fault fault;
    double fault_since;
    uint64_t failed_writes;
    unsigned busy_ms;          /* busy timeout while healthy */
    char fault_error[512];
};

/* The newest schema version this build knows (the number of migrations). */
int gvd_sqlite_schema_version(void);

/* rows.c: prepare the row statements (called by gvd_sqlite_open). */
int gvd_sqlite_prepare_rows(gvd_sqlite *st, char *err, size_t errlen);

/* history.c: prepare the params-history and metric-point statements. */
int gvd_sqlite_prepare_history(gvd_sqlite *st, char *err, size_t errlen);

/* history.c: prepare the rule-event and latch statements. */
int gvd_sqlite_prepare_rules(gvd_sqlite *st, char *err, size_t errlen);

/* pipelines.c: prepare the pipeline statements. */
int gvd_sqlite_prepare_pipelines(gvd_sqlite *st, char *err, size_t errlen);

/* Statement helpers shared by history.c and pipelines.c.
 * gvd_sqlite_write steps a bound write statement once: 0, or -1 with the
 * message (and the fault state updated); `bound` is the OR of the bind
 * calls' codes.  gvd_sqlite_opened: false (with err) for a NULL store.
 * gvd_sqlite_walk steps a load statement, `cb` turning each row into the
 * caller's callback (ctx holds it and its argument).  gvd_sqlite_text: a
 * column's text, "" for NULL. */
int gvd_sqlite_write(gvd_sqlite *st, sqlite3_stmt *stmt, int bound, const char *op, char *err, size_t errlen);
bool gvd_sqlite_opened(gvd_sqlite *st, char *err, size_t errlen, const char *op);
typedef int (*gvd_row_cb)(sqlite3_stmt *stmt, void *ctx);
int gvd_sqlite_walk(gvd_sqlite *st, sqlite3_stmt *stmt, gvd_row_cb cb, void *ctx, const char *op, char *err,
                   size_t errlen);
const char *gvd_sqlite_text(sqlite3_stmt *s, int col);

/* Prepare a statement that lives until close; "store <what>: ..." on error. */
int gvd_sqlite_prepare(gvd_sqlite *st, sqlite3_stmt **out, const char *sql, const char *what, char *err,
                      size_t errlen);

/* Message helpers.  gvd_sqlite_sqlerr formats "store <op>: <sqlite message>
 * (sqlite code N)" from the connection's last error. */
void gvd_sqlite_errf(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void gvd_sqlite_sqlerr(gvd_sqlite *st, char *err, size_t errlen, const char *op);

/* faults.c: every write reports its outcome.  _failed classifies the code
 * gvd_sqlite_sqlerr just recorded (err: its message); _ok ends a fault once
 * nothing is left uncommitted, and times the commit when the write was one
 * (`started_ns`: gvd_obs_clock_ns() taken before the step).  gvd_sqlite_faults_init applies the busy
 * timeout at open and installs the fault-injecting VFS when the test hook
 * GALVANID_TEST_FAULTS is set (before the connection is opened). */
void gvd_sqlite_write_failed(gvd_sqlite *st, const char *err);
void gvd_sqlite_write_ok(gvd_sqlite *st, uint64_t started_ns);
void gvd_sqlite_faults_hook(void);
int gvd_sqlite_faults_init(gvd_sqlite *st, char *err, size_t errlen);

#endif
