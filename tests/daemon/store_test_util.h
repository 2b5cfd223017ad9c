/*
 * store_test_util.h — fixtures shared by the store's test programs
 * (test_store.c: opening, schema, rows; test_store_durability.c: batches,
 * crashes, integrity, update rates).
 *
 * Each test gets a fresh mkdtemp directory (under $TMPDIR, else /tmp) that
 * the teardown removes with everything in it.  A second, raw SQLite
 * connection (raw_*) checks what must not be taken on the store's word.
 * Everything is `static inline` so that a program not using a helper does
 * not trip -Wunused-function.
 */
#ifndef GALVANI_TEST_STORE_UTIL_H
#define GALVANI_TEST_STORE_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store.h"
#include "store/sqlite/sqlite_int.h" /* gvd_sqlite_schema_version */

/* ---- fixture: one temporary directory per test ------------------------- */

typedef struct fixture {
    char dir[512];
    char db[600];
} fixture;

static inline int fx_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(fx->dir, sizeof fx->dir, "%s/gvd-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    snprintf(fx->db, sizeof fx->db, "%s/jobs.db", fx->dir);
    *state = fx;
    return 0;
}

/* Removes the directory and whatever the test left in it (db, -wal, -shm,
 * sub-directories one level deep). */
static inline void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[1024];
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p)
            continue; /* never under our short temp dirs */
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static inline int fx_teardown(void **state)
{
    fixture *fx = *state;
    rm_tree(fx->dir);
    free(fx);
    return 0;
}

/* ---- helpers -------------------------------------------------------------- */

static inline gvd_store *open_ok(const char *path)
{
    char err[512] = "";
    gvd_store *st = gvd_store_open(path, err, sizeof err);
    if (!st)
        fail_msg("gvd_store_open(%s): %s", path, err);
    return st;
}

/* A row with every field set to a distinct, non-default value. */
static inline gvd_job_row full_row(void)
{
    gvd_job_row r = {
        .id = 0,
        .name = "build — ünïcødé ジョブ 🚀",
        .kind = "process",
        .status = "running",
        .priority = -7,
        .spec_json = "{\"argv\":[\"make\",\"-j2\"],\"env\":{\"A\":\"b\"}}",
        .params_json = "{\"lr\":0.001,\"note\":\"é\"}",
        .metrics_json = "{\"loss\":0.31}",
        .progress = 54.25,
        .progress_total = 200.5,
        .message = "compiling ✓",
        .error = "nothing yet",
        .pid = 4242,
        .pid_start_ticks = UINT64_MAX - 5, /* above INT64_MAX on purpose */
        .exit_status = 3,
        .term_signal = 9,
        .has_exit = true,
        .attempts = 2,
        .created_at = 1732554123.456789,
        .started_at = 1732554124.5,
        .finished_at = 1732554199.25,
        .updated_at = 1732554200.125,
    };
    return r;
}

/* A minimal row: every string NULL except the two NOT NULL columns. */
static inline gvd_job_row null_row(void)
{
    gvd_job_row r;
    memset(&r, 0, sizeof r);
    r.kind = "demo";
    r.status = "queued";
    return r;
}

/* Deep copies of loaded rows (load's strings die with the callback). */
typedef struct collected {
    gvd_job_row rows[64];
    int n;
    int calls;
    int stop_at;   /* return stop_value on this call (1-based), 0 = never */
    int stop_value;
} collected;

static inline char *dup_or_null(const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

static inline int collect_cb(void *ud, const gvd_job_row *row)
{
    collected *c = ud;
    c->calls++;
    assert_true(c->n < 64);
    gvd_job_row *r = &c->rows[c->n++];
    *r = *row;
    r->name = dup_or_null(row->name);
    r->kind = dup_or_null(row->kind);
    r->status = dup_or_null(row->status);
    r->spec_json = dup_or_null(row->spec_json);
    r->params_json = dup_or_null(row->params_json);
    r->metrics_json = dup_or_null(row->metrics_json);
    r->message = dup_or_null(row->message);
    r->error = dup_or_null(row->error);
    if (c->stop_at && c->calls == c->stop_at)
        return c->stop_value;
    return 0;
}

static inline void collected_free(collected *c)
{
    for (int i = 0; i < c->n; i++) {
        gvd_job_row *r = &c->rows[i];
        free((char *)r->name);
        free((char *)r->kind);
        free((char *)r->status);
        free((char *)r->spec_json);
        free((char *)r->params_json);
        free((char *)r->metrics_json);
        free((char *)r->message);
        free((char *)r->error);
    }
    memset(c, 0, sizeof *c);
}

static inline void load_all(gvd_store *st, collected *c)
{
    char err[512] = "";
    memset(c, 0, sizeof *c);
    int rc = gvd_store_load(st, collect_cb, c, err, sizeof err);
    if (rc != 0)
        fail_msg("load: %d %s", rc, err);
}

static inline void assert_str_eq_or_null(const char *a, const char *b)
{
    if (!a || !b) {
        assert_ptr_equal(a, b); /* both NULL */
        return;
    }
    assert_string_equal(a, b);
}

/* Exact equality of every field but id (doubles too: SQLite REAL is the
 * same IEEE double, so no rounding is allowed). */
static inline void assert_row_eq(const gvd_job_row *a, const gvd_job_row *b)
{
    assert_str_eq_or_null(a->name, b->name);
    assert_str_eq_or_null(a->kind, b->kind);
    assert_str_eq_or_null(a->status, b->status);
    assert_int_equal(a->priority, b->priority);
    assert_str_eq_or_null(a->spec_json, b->spec_json);
    assert_str_eq_or_null(a->params_json, b->params_json);
    assert_str_eq_or_null(a->metrics_json, b->metrics_json);
    assert_true(a->progress == b->progress);
    assert_true(a->progress_total == b->progress_total);
    assert_str_eq_or_null(a->message, b->message);
    assert_str_eq_or_null(a->error, b->error);
    assert_int_equal(a->pid, b->pid);
    assert_true(a->pid_start_ticks == b->pid_start_ticks);
    assert_int_equal(a->exit_status, b->exit_status);
    assert_int_equal(a->term_signal, b->term_signal);
    assert_int_equal(a->has_exit, b->has_exit);
    assert_int_equal(a->attempts, b->attempts);
    assert_true(a->created_at == b->created_at);
    assert_true(a->started_at == b->started_at);
    assert_true(a->finished_at == b->finished_at);
    assert_true(a->updated_at == b->updated_at);
}

static inline int64_t insert_ok(gvd_store *st, const gvd_job_row *row)
{
    char err[512] = "";
    int64_t id = -1;
    if (gvd_store_insert(st, row, &id, err, sizeof err) != 0)
        fail_msg("insert: %s", err);
    return id;
}

static inline void update_ok(gvd_store *st, const gvd_job_row *row)
{
    char err[512] = "";
    if (gvd_store_update(st, row, err, sizeof err) != 0)
        fail_msg("update: %s", err);
}

/* Raw second connection, for checks that must not go through the store. */
static inline sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_busy_timeout(db, 2000), SQLITE_OK);
    return db;
}

static inline void raw_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(stmt, 0);
    snprintf(out, outlen, "%s", t ? (const char *)t : "(null)");
    sqlite3_finalize(stmt);
}

static inline long long raw_int(sqlite3 *db, const char *sql)
{
    char buf[64];
    raw_text(db, sql, buf, sizeof buf);
    return strtoll(buf, NULL, 10);
}

static inline void raw_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        char copy[256];
        snprintf(copy, sizeof copy, "%s", msg ? msg : "?");
        sqlite3_free(msg);
        fail_msg("raw exec %s: %s", sql, copy);
    }
}

static inline bool file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static inline void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Reads the whole file into a malloc'd buffer. */
static inline char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
