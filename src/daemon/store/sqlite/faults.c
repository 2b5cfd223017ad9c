/*
 * faults.c — the store's availability state (store.h, "faults").
 *
 * Every write in store.c / rows.c reports its outcome here.  A failure whose
 * SQLite code says "the environment refused" (disk full, locked, I/O error,
 * read-only, cannot open) starts a fault; the first write that commits ends
 * it.  Both edges are logged once, with the cause in words, so an operator
 * reads "store.unavailable cause=\"disk full\"" and later "store.recovered"
 * rather than one error line per progress tick.
 *
 * While a fault is on, the busy timeout drops to 0: with the normal timeout
 * every write (each HTTP request, each retry) would block the loop thread for
 * the whole wait, freezing reads and streams too.  The model's retry timer
 * keeps trying with backoff, so a lock that goes away is noticed without it.
 */
#include "sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../obs/obs.h"
#include "../../util/log.h"
#include "faultvfs.h"

static double gvd_sqlite_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Which SQLite result codes are the environment's doing.  SQLITE_CANTOPEN
 * during a write means a journal or WAL file could not be created (the
 * directory became unwritable, or vanished): treated as an I/O error. */
static gvd_store_fault gvd_classify(int code)
{
    switch (code & 0xff) {
    case SQLITE_FULL: return GVD_STORE_DISK_FULL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return GVD_STORE_LOCKED;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_NOLFS: return GVD_STORE_IO_ERROR;
    case SQLITE_READONLY: return GVD_STORE_READ_ONLY;
    default: return GVD_STORE_OK;
    }
}

static void gvd_set_busy(gvd_sqlite *st, unsigned ms)
{
    /* Cannot fail on an open connection (it only installs a handler). */
    (void)sqlite3_busy_timeout(st->db, (int)ms);
}

void gvd_sqlite_write_failed(gvd_sqlite *st, const char *err)
{
    gvd_obs_store_write_failed();
    gvd_store_fault f = gvd_classify(st->last_code);
    if (f == GVD_STORE_OK)
        return;
    snprintf(st->fault_error, sizeof st->fault_error, "%s", err ? err : "");
    st->failed_writes++;
    if (st->fault == f)
        return; /* logged when it began */
    char q[600];
    if (st->fault == GVD_STORE_OK) {
        st->fault_since = gvd_sqlite_now();
        st->failed_writes = 1;
        gvd_set_busy(st, 0);
    }
    gvd_log(GVD_LOG_ERROR, "store.unavailable", "cause=\"%s\" was=\"%s\" db=%s error=%s", gvd_store_fault_cause(f),
            st->fault == GVD_STORE_OK ? "ok" : gvd_store_fault_cause(st->fault), st->path,
            gvd_log_quote(st->fault_error, q, sizeof q));
    gvd_obs_store_fault(f); /* one per store.unavailable line */
    st->fault = f;
}

void gvd_sqlite_write_ok(gvd_sqlite *st, uint64_t started_ns)
{
    /* Inside a batch nothing is committed yet: only the commit counts. */
    if (!sqlite3_get_autocommit(st->db))
        return;
    gvd_obs_store_committed(started_ns);
    if (st->fault == GVD_STORE_OK)
        return;
    double down = gvd_sqlite_now() - st->fault_since;
    gvd_log(GVD_LOG_WARN, "store.recovered", "cause=\"%s\" down_ms=%.0f failed_writes=%llu",
            gvd_store_fault_cause(st->fault), down * 1000.0, (unsigned long long)st->failed_writes);
    st->fault = GVD_STORE_OK;
    st->fault_since = 0;
    st->failed_writes = 0;
    st->fault_error[0] = '\0';
    gvd_set_busy(st, st->busy_ms);
}

void gvd_sqlite_health_get(gvd_sqlite *st, gvd_store_health *out)
{
    memset(out, 0, sizeof *out);
    out->error = "";
    if (!st)
        return;
    out->fault = st->fault;
    out->cause = gvd_store_fault_cause(st->fault);
    out->since = st->fault_since;
    out->failed_writes = st->failed_writes;
    out->error = st->fault_error;
}

int gvd_sqlite_set_busy_ms(gvd_sqlite *st, unsigned ms, char *err, size_t errlen)
{
    if (!st) {
        gvd_sqlite_errf(err, errlen, "store set_busy_ms: store is not open");
        return -1;
    }
    st->busy_ms = ms;
    if (st->fault == GVD_STORE_OK)
        gvd_set_busy(st, ms);
    return 0;
}

int gvd_sqlite_probe(gvd_sqlite *st, char *err, size_t errlen)
{
    if (!st) {
        gvd_sqlite_errf(err, errlen, "store probe: store is not open");
        return -1;
    }
    if (gvd_sqlite_begin(st, err, errlen) != 0)
        return -1;
    /* Setting user_version to its own value still dirties page 1, so the
     * commit appends a real frame to the WAL: a full disk or a failing
     * device shows here, not only a lock. */
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", gvd_sqlite_schema_version());
    if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        gvd_sqlite_sqlerr(st, err, errlen, "probe");
        gvd_sqlite_write_failed(st, err);
        if (!sqlite3_get_autocommit(st->db))
            (void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return gvd_sqlite_commit(st, err, errlen);
}

void gvd_sqlite_faults_hook(void)
{
    static int done;
    const char *ctl = getenv("GALVANID_TEST_FAULTS");
    if (done || !ctl || !*ctl)
        return;
    done = 1;
    int rc = gvd_faultvfs_install(ctl);
    if (rc != SQLITE_OK)
        gvd_log(GVD_LOG_ERROR, "store.fault_injection", "enabled=0 control=%s code=%d", ctl, rc);
    else
        gvd_log(GVD_LOG_WARN, "store.fault_injection", "enabled=1 control=%s", ctl);
}

int gvd_sqlite_faults_init(gvd_sqlite *st, char *err, size_t errlen)
{
    st->busy_ms = GVD_STORE_BUSY_MS_DEFAULT;
    if (sqlite3_busy_timeout(st->db, (int)st->busy_ms) != SQLITE_OK) {
        gvd_sqlite_sqlerr(st, err, errlen, "open");
        return -1;
    }
    return 0;
}
