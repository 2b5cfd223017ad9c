/*
 * test_store_durability.c — the store's batches (begin/commit), what a
 * process crash keeps, descriptors closed on exec, synchronous=FULL, the
 * integrity check, and the update rates quoted in docs/store.md (printed by
 * the last test, never asserted: timing depends on the machine).
 */
#include "store_test_util.h"

/* ---- batching, durability, integrity ---------------------------------- */

static void test_batch_is_one_transaction(void **state)
{
    fixture *fx = *state;
    gvd_store *st = open_ok(fx->db);
    gvd_job_row r = null_row();
    r.id = insert_ok(st, &r);

    sqlite3 *other = raw_open(fx->db);
    char err[512] = "";
    assert_int_equal(gvd_store_begin(st, err, sizeof err), 0);
    for (int i = 1; i <= 100; i++) {
        r.progress = i;
        update_ok(st, &r);
    }
    gvd_job_row extra = null_row();
    int64_t extra_id = insert_ok(st, &extra);
    assert_int_equal(extra_id, 2);

    /* Not nested, and invisible to another reader until commit. */
    assert_int_equal(gvd_store_begin(st, err, sizeof err), -1);
    assert_non_null(strstr(err, "already open"));
    assert_int_equal(raw_int(other, "SELECT count(*) FROM jobs"), 1);
    assert_int_equal(raw_int(other, "SELECT CAST(coalesce(progress, 0) AS INTEGER) FROM jobs WHERE id = 1"), 0);

    assert_int_equal(gvd_store_commit(st, err, sizeof err), 0);
    assert_int_equal(raw_int(other, "SELECT count(*) FROM jobs"), 2);
    assert_int_equal(raw_int(other, "SELECT CAST(progress AS INTEGER) FROM jobs WHERE id = 1"), 100);
    sqlite3_close(other);

    err[0] = '\0';
    assert_int_equal(gvd_store_commit(st, err, sizeof err), -1);
    assert_non_null(strstr(err, "no transaction"));

    /* A batch left open at close is rolled back, as a crash would. */
    assert_int_equal(gvd_store_begin(st, err, sizeof err), 0);
    r.progress = 555;
    update_ok(st, &r);
    gvd_store_close(st);
    st = open_ok(fx->db);
    collected c;
    load_all(st, &c);
    assert_true(c.rows[0].progress == 100.0);
    collected_free(&c);
    gvd_store_close(st);
}

/* The child commits one write, starts a batch it never commits, and is
 * killed: what survives is exactly the committed state. */
static void test_process_crash_keeps_committed(void **state)
{
    fixture *fx = *state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[512];
        gvd_store *st = gvd_store_open(fx->db, err, sizeof err);
        if (!st)
            _exit(10);
        gvd_job_row r = null_row();
        int64_t id = 0;
        if (gvd_store_insert(st, &r, &id, err, sizeof err) != 0)
            _exit(11);
        r.id = id;
        r.progress = 77;
        if (gvd_store_update(st, &r, err, sizeof err) != 0)
            _exit(12);
        if (gvd_store_begin(st, err, sizeof err) != 0)
            _exit(13);
        r.progress = 99;
        if (gvd_store_update(st, &r, err, sizeof err) != 0)
            _exit(14);
        raise(SIGKILL);
        _exit(15);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    /* The committed write is only in the -wal file (no checkpoint ran):
     * SQLite recovers it on the next open. */
    char wal[700];
    snprintf(wal, sizeof wal, "%s-wal", fx->db);
    assert_true(file_exists(wal));
    gvd_store *st = open_ok(fx->db);
    collected c;
    load_all(st, &c);
    assert_int_equal(c.n, 1);
    assert_true(c.rows[0].progress == 77.0);
    collected_free(&c);
    assert_string_equal(gvd_store_integrity(st), "ok");
    gvd_store_close(st);
}

/* The runner forks jobs: none of the store's descriptors may leak into
 * them. */
static void test_fds_are_close_on_exec(void **state)
{
    fixture *fx = *state;
    gvd_store *st = open_ok(fx->db);
    gvd_job_row r = null_row();
    insert_ok(st, &r); /* make sure the -wal and -shm files are open */
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char link[300], target[1024];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strncmp(target, fx->db, strlen(fx->db)) != 0)
            continue;
        int flags = fcntl(atoi(e->d_name), F_GETFD);
        assert_true(flags >= 0);
        if (!(flags & FD_CLOEXEC))
            fail_msg("%s (fd %s) is inherited by children", target, e->d_name);
        found++;
    }
    closedir(d);
    assert_true(found >= 3); /* db, -wal, -shm */
    gvd_store_close(st);
}

static void test_set_durable(void **state)
{
    fixture *fx = *state;
    gvd_store *st = open_ok(fx->db);
    char err[512] = "";
    assert_int_equal(gvd_store_set_durable(st, true, err, sizeof err), 0);
    gvd_job_row r = null_row();
    r.id = insert_ok(st, &r);
    r.progress = 5;
    update_ok(st, &r);
    assert_int_equal(gvd_store_set_durable(st, false, err, sizeof err), 0);
    assert_int_equal(gvd_store_set_durable(NULL, true, err, sizeof err), -1);
    /* SQLite refuses to change the level inside a transaction: an error,
     * not a silent no-op. */
    assert_int_equal(gvd_store_begin(st, err, sizeof err), 0);
    err[0] = '\0';
    assert_int_equal(gvd_store_set_durable(st, true, err, sizeof err), -1);
    assert_non_null(strstr(err, "inside a transaction"));
    assert_int_equal(gvd_store_commit(st, err, sizeof err), 0);
    gvd_store_close(st);
}

static void test_integrity(void **state)
{
    fixture *fx = *state;
    gvd_store *st = open_ok(fx->db);
    assert_string_equal(gvd_store_integrity(st), "ok");
    /* Enough rows for a multi-page table, then checkpointed by close. */
    char pad[1001];
    memset(pad, 'x', 1000);
    pad[1000] = '\0';
    for (int i = 0; i < 300; i++) {
        gvd_job_row r = null_row();
        r.message = pad;
        insert_ok(st, &r);
    }
    assert_string_equal(gvd_store_integrity(st), "ok");
    gvd_store_close(st);

    /* Smash one page in the middle of the table: the schema (page 1) still
     * reads, so the store opens, and the check must notice. */
    struct stat sb;
    assert_int_equal(stat(fx->db, &sb), 0);
    long pages = (long)sb.st_size / 4096;
    assert_true(pages > 50);
    int fd = open(fx->db, O_WRONLY);
    assert_true(fd >= 0);
    char junk[4096];
    memset(junk, 0xA5, sizeof junk);
    assert_int_equal(pwrite(fd, junk, sizeof junk, (off_t)(pages / 2) * 4096), (ssize_t)sizeof junk);
    close(fd);

    st = open_ok(fx->db);
    const char *res = gvd_store_integrity(st);
    assert_non_null(res);
    assert_string_not_equal(res, "ok");
    assert_non_null(strstr(res, "Page ")); /* SQLite names the bad page */
    assert_null(strchr(res, '\n'));         /* one line, for the log */
    gvd_store_close(st);
    assert_string_not_equal(gvd_store_integrity(NULL), "ok");
}

/* ---- performance (printed for docs/store.md, not asserted) ------------- */

typedef struct rate {
    int done;
    double per_s;
} rate;

/* Single-row updates for at most `budget` seconds or `max` updates; batched
 * = all of them inside one begin/commit (the commit is in the timing). */
static rate measure(gvd_store *st, gvd_job_row *r, bool batched, int max, double budget)
{
    char err[512];
    double t0 = now_s();
    if (batched)
        assert_int_equal(gvd_store_begin(st, err, sizeof err), 0);
    int n = 0;
    while (n < max && (n % 64 != 0 || now_s() - t0 < budget)) {
        r->progress = r->progress + 1;
        update_ok(st, r);
        n++;
    }
    if (batched)
        assert_int_equal(gvd_store_commit(st, err, sizeof err), 0);
    double dt = now_s() - t0;
    rate out = {n, n / (dt > 0 ? dt : 1e-9)};
    return out;
}

static void test_bench_update_rates(void **state)
{
    fixture *fx = *state;
    gvd_store *st = open_ok(fx->db);
    gvd_job_row r = full_row();
    r.progress = 0;
    r.id = insert_ok(st, &r);
    char err[512];
    printf("[ bench    ] single-row updates, %s (SQLite %s)\n", fx->dir, sqlite3_libversion());
    for (int full = 0; full <= 1; full++) {
        assert_int_equal(gvd_store_set_durable(st, full, err, sizeof err), 0);
        rate a = measure(st, &r, false, 200000, 0.5);
        rate b = measure(st, &r, true, 200000, 0.5);
        printf("[ bench    ] synchronous=%-6s autocommit: %9.0f updates/s (%d)   begin/commit: %9.0f updates/s (%d)\n",
               full ? "FULL" : "NORMAL", a.per_s, a.done, b.per_s, b.done);
    }
    /* Every update landed: the last value written is the stored one. */
    double last = r.progress;
    gvd_store_close(st);
    st = open_ok(fx->db);
    collected c;
    load_all(st, &c);
    assert_int_equal(c.n, 1);
    assert_true(c.rows[0].progress == last);
    assert_true(last >= 4);
    collected_free(&c);
    gvd_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
        T(test_batch_is_one_transaction),
        T(test_process_crash_keeps_committed),
        T(test_fds_are_close_on_exec),
        T(test_set_durable),
        T(test_integrity),
        T(test_bench_update_rates),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
