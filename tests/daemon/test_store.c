/*
 * test_store.c — the SQLite store (src/daemon/store/): opening, schema and
 * migrations, refusing what is not ours, and the job rows (insert, update,
 * delete, load) against real files in a fresh temporary directory.
 * test_store_durability.c covers batches, crashes, integrity and rates.
 */
#include "store_test_util.h"

/* ---- opening, schema, migrations -------------------------------------- */

static void test_open_creates_schema_in_wal(void **state)
{
    fixture *fx = *state;
    assert_false(file_exists(fx->db));
    gvd_store *st = open_ok(fx->db);

    /* A new file is private: job specs may carry secrets in env. */
    struct stat sb;
    assert_int_equal(stat(fx->db, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    /* Seen from a second connection, not through the store. */
    sqlite3 *db = raw_open(fx->db);
    char mode[32];
    raw_text(db, "PRAGMA journal_mode", mode, sizeof mode);
    assert_string_equal(mode, "wal");
    assert_int_equal(raw_int(db, "PRAGMA user_version"), gvd_sqlite_schema_version());
    assert_int_equal(gvd_sqlite_schema_version(), 4);
    assert_int_equal(raw_int(db, "PRAGMA application_id"), 0x67766462);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM pragma_table_info('jobs')"), 22);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name IN "
                                 "('jobs_status', 'jobs_created_at')"),
                     2);
    /* The CHECK constraints hold for writers other than the store too. */
    assert_int_not_equal(sqlite3_exec(db, "INSERT INTO jobs (kind, status) VALUES ('process', 'sleeping')", NULL,
                                      NULL, NULL),
                         SQLITE_OK);
    assert_int_not_equal(
        sqlite3_exec(db, "INSERT INTO jobs (kind, status) VALUES ('cron', 'queued')", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    /* While open, the -wal file has the database file's private mode too. */
    char wal[700];
    snprintf(wal, sizeof wal, "%s-wal", fx->db);
    gvd_job_row r = null_row();
    insert_ok(st, &r);
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    gvd_store_close(st);
    /* A clean close checkpoints and removes the companion files. */
    char shm[700];
    snprintf(shm, sizeof shm, "%s-shm", fx->db);
    assert_false(file_exists(wal));
    assert_false(file_exists(shm));
}

static void test_migration_idempotent(void **state)
{
    fixture *fx = *state;
    gvd_store *st = open_ok(fx->db);
    gvd_job_row r = full_row();
    int64_t id = insert_ok(st, &r);
    assert_int_equal(id, 1);
    gvd_store_close(st);

    /* Reopen twice, the second while the first is still open. */
    gvd_store *a = open_ok(fx->db);
    gvd_store *b = open_ok(fx->db);
    collected c;
    load_all(b, &c);
    assert_int_equal(c.n, 1);
    assert_row_eq(&c.rows[0], &r);
    collected_free(&c);
    gvd_store_close(b);
    gvd_store_close(a);

    sqlite3 *db = raw_open(fx->db);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), gvd_sqlite_schema_version());
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'jobs'"), 1);
    sqlite3_close(db);
}

static void test_newer_schema_refused(void **state)
{
    fixture *fx = *state;
    gvd_store_close(open_ok(fx->db));
    sqlite3 *db = raw_open(fx->db);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", gvd_sqlite_schema_version() + 1);
    raw_exec(db, sql);
    sqlite3_close(db);

    char err[512] = "";
    assert_null(gvd_store_open(fx->db, err, sizeof err));
    assert_non_null(strstr(err, "created by a newer galvanid"));
    assert_non_null(strstr(err, fx->db));

    /* Refused without touching it. */
    db = raw_open(fx->db);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), gvd_sqlite_schema_version() + 1);
    sqlite3_close(db);
}

static void test_garbage_file_refused(void **state)
{
    fixture *fx = *state;
    char text[8192];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = "this is not a database\n"[i % 23];
    const char *small = "hello";
    const struct {
        const char *data;
        size_t len;
    } cases[] = {{text, sizeof text}, {small, strlen(small)}};

    for (size_t k = 0; k < 2; k++) {
        write_file(fx->db, cases[k].data, cases[k].len);
        char err[512] = "";
        assert_null(gvd_store_open(fx->db, err, sizeof err));
        assert_non_null(strstr(err, "is not an SQLite database"));
        assert_non_null(strstr(err, fx->db));
        /* Untouched: same bytes, no WAL created next to it. */
        size_t len = 0;
        char *back = read_file(fx->db, &len);
        assert_int_equal(len, cases[k].len);
        assert_memory_equal(back, cases[k].data, len);
        free(back);
        char wal[700];
        snprintf(wal, sizeof wal, "%s-wal", fx->db);
        assert_false(file_exists(wal));
    }
}

static void test_foreign_database_refused(void **state)
{
    fixture *fx = *state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx->db, &db), SQLITE_OK);
    raw_exec(db, "CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT)");
    sqlite3_close(db);

    char err[512] = "";
    assert_null(gvd_store_open(fx->db, err, sizeof err));
    assert_non_null(strstr(err, "another program"));
    db = raw_open(fx->db);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'jobs'"), 0);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), 0);
    sqlite3_close(db);

    /* Also refused: versioned, but with another program's application_id. */
    db = raw_open(fx->db);
    raw_exec(db, "PRAGMA user_version = 1; PRAGMA application_id = 42");
    sqlite3_close(db);
    assert_null(gvd_store_open(fx->db, err, sizeof err));
    assert_non_null(strstr(err, "not a galvanid database"));
}

static void test_bad_paths_refused(void **state)
{
    fixture *fx = *state;
    char path[800], missing[700], err[512];

    snprintf(missing, sizeof missing, "%s/no/such", fx->dir);
    snprintf(path, sizeof path, "%s/jobs.db", missing);
    err[0] = '\0';
    assert_null(gvd_store_open(path, err, sizeof err));
    assert_non_null(strstr(err, "does not exist"));
    assert_non_null(strstr(err, missing));
    assert_false(file_exists(missing));

    /* A directory where the file should be. */
    err[0] = '\0';
    assert_null(gvd_store_open(fx->dir, err, sizeof err));
    assert_non_null(strstr(err, "is a directory"));

    err[0] = '\0';
    assert_null(gvd_store_open("", err, sizeof err));
    assert_non_null(strstr(err, "no database path"));
    assert_null(gvd_store_open(NULL, err, sizeof err));
    /* A NULL or empty err buffer is tolerated. */
    assert_null(gvd_store_open(path, NULL, 0));
}

static void test_memory_database(void **state)
{
    (void)state;
    gvd_store *st = open_ok(":memory:");
    gvd_job_row r = full_row();
    assert_int_equal(insert_ok(st, &r), 1);
    collected c;
    load_all(st, &c);
    assert_int_equal(c.n, 1);
    assert_row_eq(&c.rows[0], &r);
    collected_free(&c);
    assert_string_equal(gvd_store_integrity(st), "ok");
    gvd_store_close(st);
}

/* ---- rows ------------------------------------------------------------- */

static void test_ids_increase_and_are_never_reused(void **state)
{
    fixture *fx = *state;
    gvd_store *st = open_ok(fx->db);
    gvd_job_row r = null_row();
    assert_int_equal(insert_ok(st, &r), 1);
    assert_int_equal(insert_ok(st, &r), 2);
    assert_int_equal(insert_ok(st, &r), 3);
    char err[512];
    assert_int_equal(gvd_store_delete(st, 3, err, sizeof err), 0);
    assert_int_equal(insert_ok(st, &r), 4); /* not 3 again */
    for (int64_t id = 1; id <= 4; id++)
        if (id != 3)
            assert_int_equal(gvd_store_delete(st, id, err, sizeof err), 0);
    collected c;
    load_all(st, &c);
    assert_int_equal(c.n, 0);
    gvd_store_close(st);

    /* Even with the table empty and the file reopened. */
    st = open_ok(fx->db);
    assert_int_equal(insert_ok(st, &r), 5);
    gvd_store_close(st);
}

static void test_roundtrip_every_field(void **state)
{
    fixture *fx = *state;
    gvd_store *st = open_ok(fx->db);
    gvd_job_row full = full_row();
    full.id = 999; /* ignored by insert */
    gvd_job_row nulls = null_row();
    gvd_job_row empty = null_row();
    empty.name = "";
    empty.message = "";
    empty.spec_json = "{}";
    empty.has_exit = true; /* exit status 0 is a real exit */
    empty.exit_status = 0;
    gvd_job_row odd = null_row();
    odd.progress = NAN; /* documented: stored as NULL, loads as 0 */
    odd.progress_total = INFINITY;
    odd.exit_status = -1;
    odd.priority = INT64_MIN;
    odd.attempts = INT64_MAX;
    odd.pid_start_ticks = UINT64_MAX;

    assert_int_equal(insert_ok(st, &full), 1);
    assert_int_equal(insert_ok(st, &nulls), 2);
    assert_int_equal(insert_ok(st, &empty), 3);
    assert_int_equal(insert_ok(st, &odd), 4);
    gvd_store_close(st);

    st = open_ok(fx->db); /* from the file, not a cache */
    collected c;
    load_all(st, &c);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.rows[0].id, 1);
    assert_row_eq(&c.rows[0], &full);
    assert_true(c.rows[0].has_exit);
    assert_int_equal(c.rows[1].id, 2);
    assert_row_eq(&c.rows[1], &nulls);
    assert_null(c.rows[1].name);
    assert_null(c.rows[1].spec_json);
    assert_null(c.rows[1].error);
    assert_false(c.rows[1].has_exit);
    assert_row_eq(&c.rows[2], &empty);
    assert_non_null(c.rows[2].name); /* "" stays "", not NULL */
    assert_string_equal(c.rows[2].name, "");
    assert_true(c.rows[2].has_exit);
    assert_true(c.rows[3].progress == 0.0);
    odd.progress = 0.0;
    assert_row_eq(&c.rows[3], &odd);
    collected_free(&c);
    gvd_store_close(st);
}

static void test_large_json_and_unicode(void **state)
{
    fixture *fx = *state;
    gvd_store *st = open_ok(fx->db);
    /* A 2 MiB spec: far beyond one page, so it lives in overflow pages. */
    size_t n = 2u << 20;
    char *big = malloc(n + 16);
    assert_non_null(big);
    size_t k = 0;
    k += (size_t)sprintf(big, "{\"blob\":\"");
    for (; k < n; k++)
        big[k] = (char)('a' + (k % 26));
    strcpy(big + k, "\"}");
    const char *uni = "{\"名前\":\"Ωmega\",\"emoji\":\"🧪🔥\",\"rtl\":\"שלום\",\"nul-free\":\"\\u0000\"}";

    gvd_job_row r = null_row();
    r.spec_json = big;
    r.params_json = uni;
    r.name = "测试 ✓";
    int64_t id = insert_ok(st, &r);
    collected c;
    load_all(st, &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.rows[0].id, id);
    assert_int_equal(strlen(c.rows[0].spec_json), strlen(big));
    assert_row_eq(&c.rows[0], &r);
    collected_free(&c);
    free(big);
    gvd_store_close(st);
}

static void test_update_and_delete(void **state)
{
    fixture *fx = *state;
    gvd_store *st = open_ok(fx->db);
    gvd_job_row r = null_row();
    r.id = insert_ok(st, &r);
    gvd_job_row keep = null_row();
    keep.name = "untouched";
    keep.id = insert_ok(st, &keep);

    /* Replace every column, including back to NULL where it was set
     * (but the spec: see below). */
    gvd_job_row u = full_row();
    u.id = r.id;
    update_ok(st, &u);
    collected c;
    load_all(st, &c);
    assert_int_equal(c.n, 2);
    assert_row_eq(&c.rows[0], &u);
    assert_row_eq(&c.rows[1], &keep);
    collected_free(&c);
    gvd_job_row back = null_row();
    back.id = r.id;
    update_ok(st, &back); /* same values twice still counts as "found" */
    update_ok(st, &back);
    load_all(st, &c);
    /* ... except the spec: a NULL spec_json keeps the stored one (specs
     * never change; store.h) */
    assert_string_equal(c.rows[0].spec_json, u.spec_json);
    back.spec_json = u.spec_json;
    assert_row_eq(&c.rows[0], &back);
    assert_null(c.rows[0].name);
    collected_free(&c);

    char err[512] = "";
    gvd_job_row ghost = null_row();
    ghost.id = 999;
    assert_int_equal(gvd_store_update(st, &ghost, err, sizeof err), -1);
    assert_non_null(strstr(err, "no job 999"));
    err[0] = '\0';
    assert_int_equal(gvd_store_delete(st, 999, err, sizeof err), -1);
    assert_non_null(strstr(err, "no job 999"));

    /* Constraint failures name the operation and the constraint, and leave
     * the row as it was. */
    gvd_job_row bad = null_row();
    bad.id = r.id;
    bad.status = "sleeping";
    assert_int_equal(gvd_store_update(st, &bad, err, sizeof err), -1);
    assert_non_null(strstr(err, "store update"));
    assert_non_null(strstr(err, "CHECK constraint failed: status_valid"));
    bad.status = NULL;
    assert_int_equal(gvd_store_update(st, &bad, err, sizeof err), -1);
    assert_non_null(strstr(err, "NOT NULL constraint failed: jobs.status"));
    int64_t id = -1;
    bad = null_row();
    bad.kind = "cron";
    assert_int_equal(gvd_store_insert(st, &bad, &id, err, sizeof err), -1);
    assert_non_null(strstr(err, "store insert: CHECK constraint failed: kind_valid"));
    assert_int_equal(id, -1);
    load_all(st, &c);
    assert_int_equal(c.n, 2);
    assert_row_eq(&c.rows[0], &back);
    collected_free(&c);

    assert_int_equal(gvd_store_delete(st, r.id, err, sizeof err), 0);
    load_all(st, &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.rows[0].id, keep.id);
    collected_free(&c);
    /* Deleting twice: the second finds nothing. */
    assert_int_equal(gvd_store_delete(st, r.id, err, sizeof err), -1);
    gvd_store_close(st);
}

static void test_load_order_and_early_stop(void **state)
{
    fixture *fx = *state;
    gvd_store *st = open_ok(fx->db);
    collected c;
    load_all(st, &c);
    assert_int_equal(c.calls, 0); /* empty store: no call, result 0 */

    for (int i = 0; i < 5; i++) {
        gvd_job_row r = null_row();
        r.priority = 10 - i; /* order is by id, whatever the priority */
        insert_ok(st, &r);
    }
    char err[512];
    assert_int_equal(gvd_store_delete(st, 2, err, sizeof err), 0);
    load_all(st, &c);
    assert_int_equal(c.calls, 4);
    const int64_t want[] = {1, 3, 4, 5};
    for (int i = 0; i < 4; i++)
        assert_int_equal(c.rows[i].id, want[i]);
    collected_free(&c);

    c.stop_at = 2;
    c.stop_value = 42;
    err[0] = '\0';
    assert_int_equal(gvd_store_load(st, collect_cb, &c, err, sizeof err), 42);
    assert_int_equal(c.calls, 2);
    assert_int_equal(c.rows[1].id, 3);
    assert_non_null(strstr(err, "stopped"));
    collected_free(&c);

    /* The statement was reset: a new load starts from the first row. */
    load_all(st, &c);
    assert_int_equal(c.calls, 4);
    assert_int_equal(c.rows[0].id, 1);
    collected_free(&c);
    gvd_store_close(st);
}

typedef struct recover_ctx {
    gvd_store *st;
    int calls;
    int nested_rc;
    char nested_err[512];
} recover_ctx;

/* What the model's restart recovery does: update the row it is handed. */
static int recover_cb(void *ud, const gvd_job_row *row)
{
    recover_ctx *rc = ud;
    rc->calls++;
    gvd_job_row r = *row;
    r.status = "failed";
    r.error = "daemon restarted";
    r.attempts = row->attempts + 1;
    char err[512];
    if (gvd_store_update(rc->st, &r, err, sizeof err) != 0)
        fail_msg("update inside load: %s", err);
    if (rc->calls == 1)
        rc->nested_rc = gvd_store_load(rc->st, recover_cb, rc, rc->nested_err, sizeof rc->nested_err);
    return 0;
}

static void test_write_during_load(void **state)
{
    fixture *fx = *state;
    gvd_store *st = open_ok(fx->db);
    for (int i = 0; i < 3; i++) {
        gvd_job_row r = null_row();
        r.status = "running";
        r.attempts = i;
        insert_ok(st, &r);
    }
    recover_ctx rc = {.st = st};
    char err[512] = "";
    assert_int_equal(gvd_store_load(st, recover_cb, &rc, err, sizeof err), 0);
    assert_int_equal(rc.calls, 3);
    assert_int_equal(rc.nested_rc, -1);
    assert_non_null(strstr(rc.nested_err, "not re-entrant"));

    collected c;
    load_all(st, &c);
    assert_int_equal(c.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(c.rows[i].status, "failed");
        assert_string_equal(c.rows[i].error, "daemon restarted");
        assert_int_equal(c.rows[i].attempts, i + 1);
    }
    collected_free(&c);
    gvd_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
        T(test_open_creates_schema_in_wal),
        T(test_migration_idempotent),
        T(test_newer_schema_refused),
        T(test_garbage_file_refused),
        T(test_foreign_database_refused),
        T(test_bad_paths_refused),
        T(test_memory_database),
        T(test_ids_increase_and_are_never_reused),
        T(test_roundtrip_every_field),
        T(test_large_json_and_unicode),
        T(test_update_and_delete),
        T(test_load_order_and_early_stop),
        T(test_write_during_load),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
