/*
 * store_int.h — the store's private structure, shared by store.c (opening,
 * migrations, batching, integrity) and rows.c (the job rows).  Not part of
 * the contract: other layers include store.h only.
 */
#ifndef GALVANI_DAEMON_STORE_INT_H
#define GALVANI_DAEMON_STORE_INT_H

#include <sqlite3.h>

#include "store.h"

struct gvd_store {
    sqlite3 *db;
    char *path;  /* as given, for messages */
    bool memory; /* ":memory:": no WAL, nothing survives close */
    bool loading; /* inside gvd_store_load: its statement is busy */
    int last_code; /* primary result code of the last error gvd_store_sqlerr reported */
    /* Prepared once at open, reset after each use, finalized at close. */
    sqlite3_stmt *insert, *update, *del, *load;
    sqlite3_stmt *begin, *commit, *rollback;
    char integrity[512]; /* gvd_store_integrity's answer when not "ok" */
};

/* The newest schema version this build knows (the number of migrations). */
int gvd_store_schema_version(void);

/* rows.c: prepare the row statements (called by gvd_store_open). */
int gvd_store_prepare_rows(gvd_store *st, char *err, size_t errlen);

/* Prepare a statement that lives until close; "store <what>: ..." on error. */
int gvd_store_prepare(gvd_store *st, sqlite3_stmt **out, const char *sql, const char *what, char *err,
                      size_t errlen);

/* Message helpers.  gvd_store_sqlerr formats "store <op>: <sqlite message>
 * (sqlite code N)" from the connection's last error. */
void gvd_store_errf(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void gvd_store_sqlerr(gvd_store *st, char *err, size_t errlen, const char *op);

#endif
