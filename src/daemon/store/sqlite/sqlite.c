/*
 * store.c — see store.h.  Opening, schema migrations, durability settings,
 * batching and the integrity check.  The per-row statements (insert, update,
 * delete, load) live in rows.c; both share store_int.h.
 *
 * One connection, used from the loop thread only: SQLite is opened with
 * SQLITE_OPEN_NOMUTEX, so no SQLite mutex is taken on any call.  Every
 * statement the daemon runs in steady state is prepared once here and reset
 * after each use, so a progress tick costs a bind + step, never a parse.
 *
 * docs/store.md explains the schema, the migrations and what "committed"
 * means on a process crash and on a power loss.
 */
#include "sqlite_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../obs/obs.h"
#include "../../util/log.h"

/* PRAGMA application_id of a galvanid database ("gvdb" in ASCII), so that
 * `--db` pointed at some other program's SQLite file is refused instead of
 * being "migrated" (i.e. given a jobs table) behind its owner's back. */
#define GVD_STORE_APP_ID 1735812194 /* 0x67766462 */
#define GVD_STR_(x) #x
#define GVD_STR(x) GVD_STR_(x)

/* ---- migrations ------------------------------------------------------ */

/* Migration N brings a database from user_version N-1 to N.  Append new
 * migrations; never edit one that has shipped (databases in the field have
 * already run it).  Each runs in its own transaction together with the
 * user_version bump, so a crash mid-migration leaves the previous version. */
static const char *const gvd_migrations[] = {
    /* 1: the jobs table.  STRICT makes SQLite enforce the column types (a
     * text in `pid` is an error, not silently stored).  AUTOINCREMENT keeps
     * the highest id ever used in sqlite_sequence, so a deleted job's id is
     * never handed out again — clients may have it in their history.  REAL
     * columns stay nullable: SQLite stores a NaN as NULL (loaded back as 0).
     * The CHECK constraints are named so that a violation reads
     * "CHECK constraint failed: status_valid". */
    "CREATE TABLE jobs ("
    "  id              INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name            TEXT,"
    "  kind            TEXT    NOT NULL CONSTRAINT kind_valid CHECK (kind IN ('process', 'demo')),"
    "  status          TEXT    NOT NULL CONSTRAINT status_valid CHECK (status IN ('queued', 'running', "
    "'paused', 'succeeded', 'failed', 'cancelled')),"
    "  priority        INTEGER NOT NULL DEFAULT 0,"
    "  spec_json       TEXT,"
    "  params_json     TEXT,"
    "  metrics_json    TEXT,"
    "  progress        REAL,"
    "  progress_total  REAL,"
    "  message         TEXT,"
    "  error           TEXT,"
    "  pid             INTEGER NOT NULL DEFAULT 0,"
    "  pid_start_ticks INTEGER NOT NULL DEFAULT 0," /* uint64 stored bit for bit */
    "  exit_status     INTEGER NOT NULL DEFAULT 0,"
    "  term_signal     INTEGER NOT NULL DEFAULT 0,"
    "  has_exit        INTEGER NOT NULL DEFAULT 0 CONSTRAINT has_exit_bool CHECK (has_exit IN (0, 1)),"
    "  attempts        INTEGER NOT NULL DEFAULT 0,"
    "  created_at      REAL,"
    "  started_at      REAL,"
    "  finished_at     REAL,"
    "  updated_at      REAL"
    ") STRICT;"
    "CREATE INDEX jobs_status ON jobs (status);"
    "CREATE INDEX jobs_created_at ON jobs (created_at);"
    "PRAGMA application_id = " GVD_STR(GVD_STORE_APP_ID) ";",
    /* 2: the params history (one row per accepted PATCH, docs/api.md) and the
     * metric history (one row per kept point of each ::metric series,
     * downsampled by the model: model/series.c).  Both go with their job:
     * ON DELETE CASCADE (foreign_keys is on for every connection).  The
     * primary keys lead with job_id, which is also what the cascade needs
     * to find a job's rows without a scan.  No new column in jobs: the
     * job's params_revision / params_applied are derived from its history
     * rows at load. */
    "CREATE TABLE params_history ("
    "  job_id      INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
    "  revision    INTEGER NOT NULL CONSTRAINT revision_positive CHECK (revision > 0),"
    "  patch_json  TEXT    NOT NULL,"
    "  who         TEXT    NOT NULL,"
    "  at          REAL    NOT NULL,"
    "  applied_at  REAL," /* NULL until the job acknowledged this revision (or a later one) */
    "  PRIMARY KEY (job_id, revision)"
    ") STRICT;"
    "CREATE TABLE metric_points ("
    "  job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
    "  name    TEXT    NOT NULL,"
    "  idx     INTEGER NOT NULL," /* position in the series, 0 = oldest */
    "  t_ms    REAL    NOT NULL,"
    "  value   REAL    NOT NULL,"
    "  weight  INTEGER NOT NULL DEFAULT 1," /* how many reported points this one stands for */
    "  PRIMARY KEY (job_id, name, idx)"
    ") STRICT;",
    /* 3: reactive rules (docs/api.md, "Rules").  rule_events: one row per
     * firing of a rule on a job (what made it true, what the action did).
     * rule_latches: per job and rule, whether its condition was true when
     * last seen, so a restart does not fire again a rule whose condition
     * was already true (it fires once per false-to-true transition).  Both
     * go with their job. */
    "CREATE TABLE rule_events ("
    "  id          INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  job_id      INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
    "  rule        TEXT    NOT NULL,"
    "  when_text   TEXT    NOT NULL,"
    "  action      TEXT    NOT NULL,"
    "  values_json TEXT    NOT NULL,"
    "  outcome     TEXT    NOT NULL,"
    "  at          REAL    NOT NULL"
    ") STRICT;"
    "CREATE INDEX rule_events_job ON rule_events (job_id, id);"
    "CREATE TABLE rule_latches ("
    "  job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
    "  rule    TEXT    NOT NULL,"
    "  latched INTEGER NOT NULL CONSTRAINT latched_bool CHECK (latched IN (0, 1)),"
    "  PRIMARY KEY (job_id, rule)"
    ") STRICT;"
    /* Global rules (POST /rules): the rule as accepted, without its id.
     * AUTOINCREMENT: a deleted rule's id (and so its name "global-<id>",
     * which its events keep) is never handed out again. */
    "CREATE TABLE rules ("
    "  id          INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  def_json    TEXT    NOT NULL,"
    "  created_at  REAL    NOT NULL"
    ") STRICT;",
    /* 4: pipelines (docs/api.md, "Pipelines").  def_json: the definition as
     * accepted (steps with their job specs, needs, weights, rules);
     * state_json: what requests and rules changed since (paused, cancelled,
     * each step's generation, rule latches and events).  A step's jobs are
     * ordinary rows of `jobs` whose spec names the pipeline, the step and
     * the generation, so creating a step's job is one insert: after a
     * crash the step finds its job and never runs twice.  AUTOINCREMENT:
     * a deleted pipeline's id is never reused (its jobs' specs name it). */
    "CREATE TABLE pipelines ("
    "  id          INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name        TEXT    NOT NULL,"
    "  def_json    TEXT    NOT NULL,"
    "  state_json  TEXT    NOT NULL,"
    "  created_at  REAL    NOT NULL"
    ") STRICT;",
};

#define GVD_STORE_VERSION ((int)(sizeof gvd_migrations / sizeof gvd_migrations[0]))

int gvd_sqlite_schema_version(void)
{
    return GVD_STORE_VERSION;
}

/* ---- errors ------------------------------------------------------------ */

void gvd_sqlite_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The message must be read right after the failing call: the next SQLite
 * call on the connection replaces it.  The extended code tells apart, say,
 * SQLITE_IOERR_FSYNC from SQLITE_IOERR_WRITE, which the text does not. */
void gvd_sqlite_sqlerr(gvd_sqlite *st, char *err, size_t errlen, const char *op)
{
    st->last_code = sqlite3_errcode(st->db);
    gvd_sqlite_errf(err, errlen, "store %s: %s (sqlite code %d)", op, sqlite3_errmsg(st->db),
                   sqlite3_extended_errcode(st->db));
}

/* ---- small helpers ------------------------------------------------------ */

/* Runs a statement that yields one text value (a PRAGMA) and copies it. */
static int gvd_query_text(gvd_sqlite *st, const char *sql, char *out, size_t outlen, char *err, size_t errlen,
                          const char *op)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        gvd_sqlite_sqlerr(st, err, errlen, op);
        return -1;
    }
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        gvd_sqlite_sqlerr(st, err, errlen, op);
        (void)sqlite3_finalize(stmt); /* its code repeats the step's, handled above */
        return -1;
    }
    const unsigned char *text = rc == SQLITE_ROW ? sqlite3_column_text(stmt, 0) : NULL;
    snprintf(out, outlen, "%s", text ? (const char *)text : "");
    (void)sqlite3_finalize(stmt); /* the step succeeded: nothing to report */
    return 0;
}

static int gvd_query_int(gvd_sqlite *st, const char *sql, int64_t *out, char *err, size_t errlen, const char *op)
{
    char buf[32];
    if (gvd_query_text(st, sql, buf, sizeof buf, err, errlen, op) != 0)
        return -1;
    *out = strtoll(buf, NULL, 10);
    return 0;
}

static int gvd_exec(gvd_sqlite *st, const char *sql, char *err, size_t errlen, const char *op)
{
    if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        gvd_sqlite_sqlerr(st, err, errlen, op);
        return -1;
    }
    return 0;
}

/* Rolls back whatever transaction is open (after a failed migration or
 * commit).  SQLite may already have rolled back by itself (e.g. on
 * SQLITE_FULL), hence the autocommit check. */
static void gvd_rollback_quietly(gvd_sqlite *st)
{
    if (!sqlite3_get_autocommit(st->db))
        (void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- opening ------------------------------------------------------------ */

/* Says why `path` cannot be a database file before SQLite tries, which gives
 * far better messages than SQLite's "unable to open database file", and
 * creates a missing file with mode 0600: the jobs' specs (argv, env) are in
 * there and may hold secrets.  SQLite gives the -wal and -shm files the
 * permissions of the database file, so they are private too.  An existing
 * file keeps whatever mode its owner chose. */
static int gvd_prepare_file(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) {
            gvd_sqlite_errf(err, errlen, "store open: '%s' is a directory, not a database file", path);
            return -1;
        }
        return 0;
    }
    if (errno != ENOENT) {
        gvd_sqlite_errf(err, errlen, "store open: cannot access '%s': %s", path, strerror(errno));
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno == EEXIST) /* someone else created it meanwhile: fine */
        return 0;
    int saved = errno;
    /* Name the directory when that is what is missing. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    if (saved == ENOENT || saved == ENOTDIR) {
        if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            gvd_sqlite_errf(err, errlen, "store open: cannot create '%s': directory '%s' does not exist", path, dir);
            return -1;
        }
    }
    gvd_sqlite_errf(err, errlen, "store open: cannot create '%s': %s", path, strerror(saved));
    return -1;
}

/* Refuses files that are not galvanid databases, and databases written by a
 * newer galvanid (their schema may mean things this build does not know). */
static int gvd_check_owner(gvd_sqlite *st, int64_t version, char *err, size_t errlen)
{
    int64_t app_id = 0;
    if (gvd_query_int(st, "PRAGMA application_id", &app_id, err, errlen, "open") != 0)
        return -1;
    if (version == 0) {
        int64_t objects = 0;
        if (gvd_query_int(st, "SELECT count(*) FROM sqlite_schema", &objects, err, errlen, "open") != 0)
            return -1;
        if ((app_id != 0 && app_id != GVD_STORE_APP_ID) || objects != 0) {
            gvd_sqlite_errf(err, errlen,
                           "store open: '%s' is an SQLite database of another program (%lld schema objects, "
                           "application_id %lld, no galvanid schema); refusing to modify it",
                           st->path, (long long)objects, (long long)app_id);
            return -1;
        }
        return 0;
    }
    if (app_id != GVD_STORE_APP_ID) {
        gvd_sqlite_errf(err, errlen,
                       "store open: '%s' is not a galvanid database (application_id %lld, user_version %lld)",
                       st->path, (long long)app_id, (long long)version);
        return -1;
    }
    if (version > GVD_STORE_VERSION) {
        gvd_sqlite_errf(err, errlen,
                       "store open: '%s' was created by a newer galvanid (schema version %lld; this build knows "
                       "up to %d); refusing to open it",
                       st->path, (long long)version, GVD_STORE_VERSION);
        return -1;
    }
    return 0;
}

static int gvd_migrate(gvd_sqlite *st, char *err, size_t errlen)
{
    int64_t version = 0;
    if (gvd_query_int(st, "PRAGMA user_version", &version, err, errlen, "open") != 0)
        return -1;
    if (gvd_check_owner(st, version, err, errlen) != 0)
        return -1;
    for (int to = (int)version + 1; to <= GVD_STORE_VERSION; to++) {
        /* IMMEDIATE takes the write lock first, then the version is read
         * again: if another process migrated meanwhile, skip. */
        if (gvd_exec(st, "BEGIN IMMEDIATE", err, errlen, "migrate") != 0)
            return -1;
        int64_t now = 0;
        if (gvd_query_int(st, "PRAGMA user_version", &now, err, errlen, "migrate") != 0)
            goto fail;
        if (now >= to) {
            if (gvd_exec(st, "COMMIT", err, errlen, "migrate") != 0)
                goto fail;
            continue;
        }
        char what[64];
        snprintf(what, sizeof what, "migration %d", to);
        if (gvd_exec(st, gvd_migrations[to - 1], err, errlen, what) != 0)
            goto fail;
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d", to);
        if (gvd_exec(st, bump, err, errlen, what) != 0 || gvd_exec(st, "COMMIT", err, errlen, what) != 0)
            goto fail;
        gvd_log(GVD_LOG_INFO, "store.migrated", "to=%d", to);
    }
    return 0;
fail:
    gvd_rollback_quietly(st);
    return -1;
}

int gvd_sqlite_prepare(gvd_sqlite *st, sqlite3_stmt **out, const char *sql, const char *what, char *err,
                      size_t errlen)
{
    /* PERSISTENT: these live as long as the connection, so SQLite keeps them
     * out of its short-lived lookaside memory. */
    if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK) {
        gvd_sqlite_sqlerr(st, err, errlen, what);
        return -1;
    }
    return 0;
}

gvd_sqlite *gvd_sqlite_open(const char *path, char *err, size_t errlen)
{
    if (!path || !*path) {
        gvd_sqlite_errf(err, errlen, "store open: no database path given");
        return NULL;
    }
    gvd_sqlite *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        gvd_sqlite_errf(err, errlen, "store open: out of memory");
        return NULL;
    }
    /* ":memory:" is accepted for tests of other layers: it has no WAL (its
     * journal mode is "memory") and nothing survives close. */
    st->memory = strcmp(path, ":memory:") == 0;
    if (!st->memory && gvd_prepare_file(path, err, errlen) != 0)
        goto fail;

    gvd_sqlite_faults_hook(); /* the test-only fault-injecting VFS, if asked for */
    int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        if (!st->db) {
            gvd_sqlite_errf(err, errlen, "store open: '%s': out of memory", path);
        } else {
            int sys = sqlite3_system_errno(st->db);
            gvd_sqlite_errf(err, errlen, "store open: cannot open '%s': %s%s%s", path, sqlite3_errmsg(st->db),
                           sys ? ": " : "", sys ? strerror(sys) : "");
        }
        goto fail;
    }
    (void)sqlite3_extended_result_codes(st->db, 1); /* cannot fail on an open handle */
    /* How long a write waits for a lock another connection holds (say an
     * operator's sqlite3 shell) before failing with SQLITE_BUSY: see
     * faults.c for why it is short and drops to 0 during a fault. */
    if (gvd_sqlite_faults_init(st, err, errlen) != 0)
        goto fail;

    /* The first statement reads the file header: a file that is not an
     * SQLite database fails here, before anything is written to it. */
    char mode[16];
    if (gvd_query_text(st, "PRAGMA journal_mode = WAL", mode, sizeof mode, err, errlen, "open") != 0) {
        if (st->last_code == SQLITE_NOTADB)
            gvd_sqlite_errf(err, errlen,
                           "store open: '%s' is not an SQLite database (file is not a database); refusing to "
                           "touch it",
                           path);
        goto fail;
    }
    /* WAL needs shared memory between the processes using the file; some
     * network filesystems cannot do it and SQLite then keeps the old mode.
     * The durability reasoning in docs/store.md assumes WAL, so refuse. */
    const char *want = st->memory ? "memory" : "wal";
    if (strcmp(mode, want) != 0) {
        gvd_sqlite_errf(err, errlen,
                       "store open: '%s': cannot use WAL journaling (journal_mode stayed '%s'); is the file on "
                       "a filesystem without shared-memory support?",
                       path, mode);
        goto fail;
    }
    if (gvd_exec(st, "PRAGMA synchronous = NORMAL", err, errlen, "open") != 0 ||
        gvd_exec(st, "PRAGMA foreign_keys = ON", err, errlen, "open") != 0)
        goto fail;
    if (gvd_migrate(st, err, errlen) != 0)
        goto fail;

    if (gvd_sqlite_prepare_rows(st, err, errlen) != 0 || gvd_sqlite_prepare_history(st, err, errlen) != 0 ||
        gvd_sqlite_prepare_rules(st, err, errlen) != 0 || gvd_sqlite_prepare_pipelines(st, err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->begin, "BEGIN IMMEDIATE", "begin", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->commit, "COMMIT", "commit", err, errlen) != 0 ||
        gvd_sqlite_prepare(st, &st->rollback, "ROLLBACK", "rollback", err, errlen) != 0)
        goto fail;
    return st;
fail:
    gvd_sqlite_close(st);
    return NULL;
}

void gvd_sqlite_close(gvd_sqlite *st)
{
    if (!st)
        return;
    if (st->db && !sqlite3_get_autocommit(st->db)) {
        /* An unfinished batch is discarded, exactly as a crash would. */
        gvd_log(GVD_LOG_WARN, "store.close_rollback", "reason=\"transaction still open at close\"");
        gvd_rollback_quietly(st);
    }
    sqlite3_stmt **stmts[] = {&st->insert,      &st->update,       &st->del,          &st->load,
                              &st->begin,       &st->commit,       &st->rollback,     &st->hist_insert,
                              &st->hist_applied, &st->hist_prune,  &st->hist_load,   &st->point_put,    &st->point_trim,
                              &st->point_load,  &st->event_insert, &st->event_prune, &st->event_load,
                              &st->latch_put,   &st->latch_load,   &st->latch_forget, &st->rule_insert,
                              &st->rule_delete, &st->rule_load,   &st->pl_insert,    &st->pl_update,
                              &st->pl_delete,   &st->pl_load};
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        /* NULL is a no-op; the code only repeats the statement's last
         * error, which was reported when it happened. */
        (void)sqlite3_finalize(*stmts[i]);
        *stmts[i] = NULL;
    }
    if (st->db) {
        /* Every statement of ours is finalized above, so SQLITE_BUSY here
         * means a statement leaked somewhere: log it, as the connection then
         * stays allocated. */
        int rc = sqlite3_close(st->db);
        if (rc != SQLITE_OK)
            gvd_log(GVD_LOG_ERROR, "store.close_failed", "code=%d", rc);
    }
    free(st->path);
    free(st);
}

int gvd_sqlite_set_durable(gvd_sqlite *st, bool full, char *err, size_t errlen)
{
    if (!st) {
        gvd_sqlite_errf(err, errlen, "store set_durable: store is not open");
        return -1;
    }
    if (gvd_exec(st, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL", err, errlen,
                 "set_durable") != 0)
        return -1;
    /* A PRAGMA SQLite does not accept is silently ignored: read it back. */
    int64_t level = 0;
    if (gvd_query_int(st, "PRAGMA synchronous", &level, err, errlen, "set_durable") != 0)
        return -1;
    if (level != (full ? 2 : 1)) {
        gvd_sqlite_errf(err, errlen, "store set_durable: synchronous is %lld, wanted %d", (long long)level,
                       full ? 2 : 1);
        return -1;
    }
    return 0;
}

/* ---- batching ------------------------------------------------------------ */

/* Runs one of the cached transaction statements. */
static int gvd_step_once(gvd_sqlite *st, sqlite3_stmt *stmt, char *err, size_t errlen, const char *op)
{
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        gvd_sqlite_sqlerr(st, err, errlen, op);
    (void)sqlite3_reset(stmt); /* repeats rc, handled above */
    return rc == SQLITE_DONE ? 0 : -1;
}

int gvd_sqlite_begin(gvd_sqlite *st, char *err, size_t errlen)
{
    if (!st) {
        gvd_sqlite_errf(err, errlen, "store begin: store is not open");
        return -1;
    }
    if (!sqlite3_get_autocommit(st->db)) {
        gvd_sqlite_errf(err, errlen, "store begin: a transaction is already open (batches do not nest)");
        return -1;
    }
    /* IMMEDIATE: take the write lock now, so a concurrent reader can never
     * make a later write in the batch fail half-way with SQLITE_BUSY. */
    if (gvd_step_once(st, st->begin, err, errlen, "begin") != 0) {
        gvd_sqlite_write_failed(st, err);
        return -1;
    }
    return 0;
}

int gvd_sqlite_commit(gvd_sqlite *st, char *err, size_t errlen)
{
    if (!st) {
        gvd_sqlite_errf(err, errlen, "store commit: store is not open");
        return -1;
    }
    if (sqlite3_get_autocommit(st->db)) {
        gvd_sqlite_errf(err, errlen, "store commit: no transaction is open");
        return -1;
    }
    uint64_t started = gvd_obs_clock_ns();
    if (gvd_step_once(st, st->commit, err, errlen, "commit") == 0) {
        gvd_sqlite_write_ok(st, started);
        return 0;
    }
    gvd_sqlite_write_failed(st, err);
    /* Leaving a failed transaction open would make every later begin fail;
     * roll it back and say so, so the caller knows to write again. */
    size_t used = err ? strlen(err) : 0;
    gvd_rollback_quietly(st);
    if (err && used + 1 < errlen)
        snprintf(err + used, errlen - used, "; the batch was rolled back");
    return -1;
}

void gvd_sqlite_rollback(gvd_sqlite *st)
{
    if (st && st->db)
        gvd_rollback_quietly(st);
}

/* ---- integrity ------------------------------------------------------------ */

const char *gvd_sqlite_integrity(gvd_sqlite *st)
{
    if (!st)
        return "store is not open";
    char err[sizeof st->integrity];
    /* integrity_check(1): stop at the first problem, that is all we report. */
    if (gvd_query_text(st, "PRAGMA integrity_check(1)", st->integrity, sizeof st->integrity, err, sizeof err,
                       "integrity") != 0) {
        memcpy(st->integrity, err, sizeof st->integrity);
        return st->integrity;
    }
    if (strcmp(st->integrity, "ok") == 0)
        return "ok";
    /* SQLite's first report spans lines ("*** in database main ***\nPage
     * 53: ..."): keep it one line for the log. */
    for (char *p = st->integrity; *p; p++)
        if (*p == '\n')
            *p = ' ';
    return st->integrity;
}
