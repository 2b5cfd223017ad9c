/*
 * test_store_faults.c — disk full, database locked and I/O errors, at the
 * store and through the job model, with the fault-injecting VFS
 * (store/sqlite/faultvfs.h) and, for the lock, a real second connection.
 *
 * What must hold (docs/store.md "Faults"): a write that cannot be made is
 * refused with 503 "store_unavailable" naming the cause and changes nothing
 * in memory; what the world did (a process exit) is kept and written later,
 * never run twice; progress is retried; the store recovers by itself; each
 * fault is logged once; PRAGMA integrity_check stays ok.
 */
#include "jobs_test_util.h"

#include <pthread.h>

#include "store/sqlite/faultvfs.h"

/* A raw connection on the plain unix VFS: it sees the file as it is, with
 * no injected fault. */
static sqlite3 *raw_unix(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, "unix"), SQLITE_OK);
    assert_int_equal(sqlite3_busy_timeout(db, 2000), SQLITE_OK);
    return db;
}

static void row_status(const char *db, int64_t id, char *out, size_t n)
{
    sqlite3 *raw = raw_unix(db);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT status FROM jobs WHERE id = %lld", (long long)id);
    raw_text(raw, sql, out, n);
    sqlite3_close(raw);
}

static int group_setup(void **state)
{
    (void)state;
    return gvd_faultvfs_install(NULL) == SQLITE_OK ? 0 : -1;
}

static int faults_teardown(void **state)
{
    gvd_faultvfs_set(GVD_FAULT_NONE);
    return fx_teardown(state);
}

/* ---- the store ------------------------------------------------------------ */

static void test_store_disk_full_logged_once_then_recovers(void **state)
{
    fixture *fx = *state;
    gvd_store *st = open_ok(fx->db);
    gvd_job_row row = full_row();
    row.id = insert_ok(st, &row);
    capture cap;
    cap_begin(&cap, fx->dir);
    gvd_faultvfs_set(GVD_FAULT_FULL);
    unsigned long hits = gvd_faultvfs_failures();
    char err[512];
    row.progress = 99;
    for (int i = 0; i < 5; i++)
        assert_int_equal(gvd_store_update(st, &row, err, sizeof err), -1);
    assert_true(gvd_faultvfs_failures() > hits);
    assert_non_null(strstr(err, "database or disk is full"));
    gvd_store_health h;
    gvd_store_health_get(st, &h);
    assert_int_equal(h.fault, GVD_STORE_DISK_FULL);
    assert_string_equal(h.cause, "disk full");
    assert_int_equal(h.failed_writes, 5);
    assert_true(h.since > 0);
    assert_false(gvd_store_available(st));
    int64_t id2 = 0;
    assert_int_equal(gvd_store_insert(st, &row, &id2, err, sizeof err), -1);
    assert_int_equal(gvd_store_probe(st, err, sizeof err), -1);
    gvd_faultvfs_set(GVD_FAULT_NONE);
    assert_int_equal(gvd_store_probe(st, err, sizeof err), 0);
    assert_true(gvd_store_available(st));
    char *log = cap_end(&cap);
    assert_int_equal(count_of(log, "store.unavailable"), 1);
    assert_non_null(strstr(log, "cause=\"disk full\""));
    assert_int_equal(count_of(log, "store.recovered"), 1);
    assert_non_null(strstr(log, "failed_writes=7"));
    free(log);
    gvd_store_health_get(st, &h);
    assert_int_equal(h.fault, GVD_STORE_OK);
    assert_null(h.cause);
    /* Nothing of the refused writes landed; the database is sound. */
    collected c;
    load_all(st, &c);
    assert_int_equal(c.n, 1);
    assert_true(c.rows[0].progress == 54.25);
    collected_free(&c);
    assert_string_equal(gvd_store_integrity(st), "ok");
    update_ok(st, &row);
    gvd_store_close(st);
}

static void test_store_fsync_error_is_an_io_error(void **state)
{
    fixture *fx = *state;
    gvd_store *st = open_ok(fx->db);
    char err[512];
    assert_int_equal(gvd_store_set_durable(st, true, err, sizeof err), 0);
    gvd_job_row row = full_row();
    row.id = insert_ok(st, &row);
    gvd_faultvfs_set(GVD_FAULT_SYNC); /* FULL syncs the WAL at every commit */
    row.attempts = 9;
    assert_int_equal(gvd_store_update(st, &row, err, sizeof err), -1);
    assert_non_null(strstr(err, "disk I/O error"));
    assert_non_null(strstr(err, "sqlite code 1034")); /* SQLITE_IOERR_FSYNC */
    gvd_store_health h;
    gvd_store_health_get(st, &h);
    assert_string_equal(h.cause, "I/O error");
    gvd_faultvfs_set(GVD_FAULT_IOERR);
    assert_int_equal(gvd_store_begin(st, err, sizeof err), 0); /* the lock needs no write */
    assert_int_equal(gvd_store_update(st, &row, err, sizeof err), 0);
    assert_int_equal(gvd_store_commit(st, err, sizeof err), -1);
    assert_non_null(strstr(err, "the batch was rolled back"));
    gvd_faultvfs_set(GVD_FAULT_NONE);
    assert_int_equal(gvd_store_probe(st, err, sizeof err), 0);
    /* An fsync that failed may or may not have reached the disk (SQLite
     * reports the commit as failed either way): the row is either version,
     * never a mix, and the file is consistent. */
    collected c;
    load_all(st, &c);
    assert_int_equal(c.n, 1);
    assert_true(c.rows[0].attempts == 2 || c.rows[0].attempts == 9);
    collected_free(&c);
    assert_string_equal(gvd_store_integrity(st), "ok");
    gvd_store_close(st);
}

/* The VFS's busy fault: the write lock "held elsewhere". */
static void test_store_busy_fault_is_database_locked(void **state)
{
    fixture *fx = *state;
    gvd_store *st = open_ok(fx->db);
    char err[512];
    assert_int_equal(gvd_store_set_busy_ms(st, 50, err, sizeof err), 0);
    gvd_job_row row = full_row();
    row.id = insert_ok(st, &row);
    gvd_faultvfs_set(GVD_FAULT_BUSY);
    assert_int_equal(gvd_store_update(st, &row, err, sizeof err), -1);
    assert_non_null(strstr(err, "database is locked"));
    gvd_store_health h;
    gvd_store_health_get(st, &h);
    assert_int_equal(h.fault, GVD_STORE_LOCKED);
    assert_string_equal(h.cause, "database is locked");
    gvd_faultvfs_set(GVD_FAULT_NONE);
    update_ok(st, &row); /* any write that works ends the fault */
    assert_true(gvd_store_available(st));
    gvd_store_close(st);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

typedef struct locker {
    const char *db;
    unsigned hold_ms;
    volatile int locked, released;
} locker;

static void *locker_main(void *arg)
{
    locker *l = arg;
    sqlite3 *raw = raw_unix(l->db);
    raw_exec(raw, "BEGIN IMMEDIATE");
    l->locked = 1;
    sleep_ms(l->hold_ms);
    raw_exec(raw, "COMMIT");
    l->released = 1;
    sqlite3_close(raw);
    return NULL;
}

/* Another process's brief write transaction (an operator's sqlite3 shell)
 * is waited out within the busy timeout: no error at all. */
static void test_store_brief_real_lock_is_waited_out(void **state)
{
    fixture *fx = *state;
    gvd_store *st = open_ok(fx->db);
    /* A busy timeout far longer than the lock: what is tested is that the
     * lock is waited out, not that this thread gets the CPU back within the
     * default timeout on a busy machine. */
    char err[512];
    assert_int_equal(gvd_store_set_busy_ms(st, T_WAIT_MS, err, sizeof err), 0);
    gvd_job_row row = full_row();
    row.id = insert_ok(st, &row);
    locker l = {.db = fx->db, .hold_ms = 150};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, locker_main, &l), 0);
    while (!l.locked)
        sleep_ms(1);
    row.attempts = 5;
    update_ok(st, &row); /* blocks until the other connection commits */
    assert_true(l.released);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(gvd_store_available(st));
    gvd_store_close(st);
}

/* A lock held past the busy timeout: refused as "database is locked";
 * while the fault lasts, writes fail at once instead of each waiting the
 * timeout out on the loop thread; released, the next write works. */
static void test_store_long_real_lock_refused_fast(void **state)
{
    fixture *fx = *state;
    gvd_store *st = open_ok(fx->db);
    char err[512];
    /* 2 s: a second wait would take at least that long, which a write that
     * fails at once does not reach even on a busy machine (comparing with
     * the first wait, 100 ms, did not hold there). */
    assert_int_equal(gvd_store_set_busy_ms(st, 2000, err, sizeof err), 0);
    gvd_job_row row = full_row();
    row.id = insert_ok(st, &row);
    sqlite3 *raw = raw_unix(fx->db);
    raw_exec(raw, "BEGIN IMMEDIATE");
    double t0 = now_s();
    assert_int_equal(gvd_store_update(st, &row, err, sizeof err), -1);
    double waited = now_s() - t0;
    assert_non_null(strstr(err, "database is locked"));
    assert_true(waited >= 1.9); /* the busy timeout was honoured */
    t0 = now_s();
    assert_int_equal(gvd_store_update(st, &row, err, sizeof err), -1);
    assert_true(now_s() - t0 < 1.9); /* no second wait */
    gvd_store_health h;
    gvd_store_health_get(st, &h);
    assert_string_equal(h.cause, "database is locked");
    assert_int_equal(h.failed_writes, 2);
    raw_exec(raw, "COMMIT");
    sqlite3_close(raw);
    assert_int_equal(gvd_store_probe(st, err, sizeof err), 0);
    assert_true(gvd_store_available(st));
    gvd_store_close(st);
}

/* ---- the job model ---------------------------------------------------------- */

static int model_setup(void **state, unsigned max_running)
{
    *state = mfx_new((gvd_config){.max_running = max_running, .cancel_grace_ms = 300, .progress_flush_ms = 20});
    return 0;
}

static int model1_setup(void **state) { return model_setup(state, 1); }
static int model2_setup(void **state) { return model_setup(state, 2); }

static int model_teardown(void **state)
{
    gvd_faultvfs_set(GVD_FAULT_NONE);
    mfx_free(*state);
    return 0;
}

/* The state letter of /proc/PID/stat: 'S' sleeping, 'T' stopped... */
/* (Not read_file: /proc files report a size of 0, so it read nothing and
 * every state was '?'.) */
static char proc_state(pid_t pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return '?';
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *paren = strrchr(text, ')');
    return paren && paren[1] && paren[2] ? paren[2] : '?';
}

static void expect_unavailable(const gvd_error *err, const char *cause)
{
    assert_int_equal(err->http, 503);
    assert_string_equal(err->code, "store_unavailable");
    if (!strstr(err->message, cause) || !strstr(err->message, "nothing was changed"))
        fail_msg("message '%s' does not name '%s'", err->message, cause);
}

static void test_create_refused_when_disk_full(void **state)
{
    mfx *m = *state;
    gvd_job *a = create_ok(m, "{\"command\": [\"true\"]}");
    gvd_faultvfs_set(GVD_FAULT_FULL);
    gvd_error err = {0};
    assert_null(try_create(m, "{\"command\": [\"true\"]}", &err));
    expect_unavailable(&err, "disk full");
    assert_int_equal(gvd_jobs_count(m->jobs), 1);
    json_t *s = gvd_jobs_store_json(m->jobs);
    assert_string_equal(json_string_value(json_object_get(s, "state")), "unavailable");
    assert_string_equal(json_string_value(json_object_get(s, "cause")), "disk full");
    json_decref(s);
    gvd_faultvfs_set(GVD_FAULT_NONE);
    gvd_job *b = create_ok(m, "{\"command\": [\"true\"]}");
    assert_int_equal(gvd_job_id(b), gvd_job_id(a) + 1); /* the refused insert used no id */
    run_until_status(m, b, GVD_SUCCEEDED, T_WAIT_MS);
}

/* Pause, resume, cancel and params refused: the job's JSON is byte for byte
 * what it was, and the process was not touched. */
static void test_transitions_refused_change_nothing(void **state)
{
    mfx *m = *state;
    gvd_job *job = create_ok(m, "{\"command\": [\"sleep\", \"3600\"], \"params\": {\"a\": 1}}");
    assert_int_equal(gvd_job_status(job), GVD_RUNNING);
    run_until_pid(m, job, T_WAIT_MS);
    json_t *j = gvd_job_json(job);
    pid_t pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
    json_decref(j);
    assert_true(pid > 0);
    char *before = job_text(job);
    gvd_error err = {0};

    gvd_faultvfs_set(GVD_FAULT_FULL);
    assert_int_equal(gvd_job_pause(job, &err), -1);
    expect_unavailable(&err, "disk full");
    assert_int_equal(gvd_job_cancel(job, &err), -1);
    expect_unavailable(&err, "disk full");
    json_t *patch = json_pack("{s:i}", "a", 2);
    assert_int_equal(gvd_job_set_params(job, patch, &err), -1);
    expect_unavailable(&err, "disk full");
    run_for(m, 400); /* past the cancel grace: a SIGTERM sent by mistake would show */
    char *after = job_text(job);
    assert_string_equal(after, before);
    free(after);
    assert_int_equal(kill(pid, 0), 0); /* not cancelled */
    assert_int_not_equal(proc_state(pid), 'T'); /* not stopped */

    /* Now paused for real, then a refused resume. */
    gvd_faultvfs_set(GVD_FAULT_NONE);
    assert_int_equal(gvd_job_pause(job, &err), 0);
    char *paused = job_text(job);
    gvd_faultvfs_set(GVD_FAULT_BUSY);
    assert_int_equal(gvd_job_resume(job, &err), -1);
    expect_unavailable(&err, "database is locked");
    after = job_text(job);
    assert_string_equal(after, paused);
    free(after);
    free(paused);

    gvd_faultvfs_set(GVD_FAULT_NONE);
    assert_int_equal(gvd_job_set_params(job, patch, &err), 0);
    json_decref(patch);
    assert_int_equal(gvd_job_cancel(job, &err), 0);
    run_until_status(m, job, GVD_CANCELLED, T_WAIT_MS);
    free(before);
}

/* ---- group commit (model/group.c) ---------------------------------------- */

typedef struct commit_seen {
    int calls;
    bool ok;
    char error[256];
} commit_seen;

static void on_committed(void *ud, bool ok, const char *error)
{
    commit_seen *c = ud;
    c->calls++;
    c->ok = ok;
    snprintf(c->error, sizeof c->error, "%s", error);
}

/* Transitions in a group window are accepted, not yet stored: until the
 * tick's commit the store still has the old status and the process is not
 * touched.  If the commit is refused, all of them are put back (the JSON
 * byte for byte as before, the processes never signalled) and the waiter
 * hears why; once the store works, the next group goes through and the
 * process follows only then. */
static void test_group_commit_refused_changes_nothing(void **state)
{
    mfx *m = *state;
    gvd_job *a = create_ok(m, "{\"command\": [\"sleep\", \"3600\"]}");
    gvd_job *b = create_ok(m, "{\"command\": [\"sleep\", \"3600\"]}");
    run_until_pid(m, a, T_WAIT_MS);
    run_until_pid(m, b, T_WAIT_MS);
    json_t *j = gvd_job_json(a);
    pid_t pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
    json_decref(j);
    char *before_a = job_text(a), *before_b = job_text(b);
    char st[32];

    gvd_error err = {0};
    commit_seen seen = {0};
    gvd_jobs_group_begin(m->jobs);
    assert_int_equal(gvd_job_pause(a, &err), 0);
    assert_int_equal(gvd_job_cancel(b, &err), 0);
    gvd_jobs_group_end(m->jobs);
    assert_true(gvd_jobs_group_pending(m->jobs));
    assert_int_equal(gvd_jobs_after_commit(m->jobs, on_committed, &seen, true), 0);
    row_status(m->fx.db, gvd_job_id(a), st, sizeof st);
    assert_string_equal(st, "running"); /* accepted, not stored */
    assert_int_not_equal(proc_state(pid), 'T');

    gvd_faultvfs_set(GVD_FAULT_FULL);
    run_for(m, 50); /* the end of the tick commits, and is refused */
    assert_int_equal(seen.calls, 1);
    assert_false(seen.ok);
    assert_non_null(strstr(seen.error, "full"));
    assert_false(gvd_jobs_group_pending(m->jobs));
    char *after_a = job_text(a), *after_b = job_text(b);
    assert_string_equal(after_a, before_a);
    assert_string_equal(after_b, before_b);
    free(after_a);
    free(after_b);
    run_for(m, 400); /* past the cancel grace: a SIGTERM sent by mistake would show */
    assert_int_equal(kill(pid, 0), 0);
    assert_int_not_equal(proc_state(pid), 'T');

    gvd_faultvfs_set(GVD_FAULT_NONE);
    seen = (commit_seen){0};
    gvd_jobs_group_begin(m->jobs);
    assert_int_equal(gvd_job_pause(a, &err), 0);
    gvd_jobs_group_end(m->jobs);
    assert_int_equal(gvd_jobs_after_commit(m->jobs, on_committed, &seen, true), 0);
    run_for(m, 50);
    assert_int_equal(seen.calls, 1);
    assert_true(seen.ok);
    row_status(m->fx.db, gvd_job_id(a), st, sizeof st);
    assert_string_equal(st, "paused");
    for (int i = 0; i < 200 && proc_state(pid) != 'T'; i++)
        run_for(m, 10);
    assert_int_equal(proc_state(pid), 'T'); /* stopped once stored */
    free(before_a);
    free(before_b);
    assert_int_equal(gvd_job_cancel(a, &err), 0);
    assert_int_equal(gvd_job_cancel(b, &err), 0);
    run_until_status(m, a, GVD_CANCELLED, T_WAIT_MS);
}

typedef struct stored_wait {
    mfx *m;
    int64_t id;
    const char *want;
} stored_wait;

static bool not_stored(void *ud)
{
    stored_wait *w = ud;
    char st[32];
    row_status(w->m->fx.db, w->id, st, sizeof st);
    return strcmp(st, w->want) != 0 || !gvd_store_available(w->m->store);
}

static int lines_in(const char *path)
{
    if (!file_exists(path))
        return 0;
    size_t len;
    char *text = read_file(path, &len);
    int n = count_of(text, "\n");
    free(text);
    return n;
}

/* The runner's exit -> succeeded while the disk is full: kept in memory
 * (not reverted to running, which would run it again), written when the
 * store recovers; the scheduler starts nothing meanwhile. */
static void test_exit_while_disk_full_is_kept_and_written_later(void **state)
{
    mfx *m = *state;
    char cmd[900], runs[800];
    snprintf(runs, sizeof runs, "%s/runs", m->fx.dir);
    snprintf(cmd, sizeof cmd, "{\"command\": [\"/bin/sh\", \"-c\", \"echo run >> %s; sleep 0.3\"]}", runs);
    gvd_job *a = create_ok(m, cmd);
    gvd_job *b = create_ok(m, "{\"command\": [\"true\"]}");
    assert_int_equal(gvd_job_status(a), GVD_RUNNING);
    assert_int_equal(gvd_job_status(b), GVD_QUEUED);
    capture cap;
    cap_begin(&cap, m->fx.dir);
    gvd_faultvfs_set(GVD_FAULT_FULL);
    run_until_status(m, a, GVD_SUCCEEDED, T_WAIT_MS);
    run_for(m, 300);
    assert_int_equal(gvd_job_status(a), GVD_SUCCEEDED);
    assert_int_equal(gvd_job_status(b), GVD_QUEUED); /* its start would need a write */
    char st[32];
    row_status(m->fx.db, gvd_job_id(a), st, sizeof st);
    assert_string_equal(st, "running"); /* the disk has not got it yet */
    json_t *s = gvd_jobs_store_json(m->jobs);
    assert_int_equal(json_integer_value(json_object_get(s, "pending_writes")), 1);
    json_decref(s);

    gvd_faultvfs_set(GVD_FAULT_NONE);
    double t0 = now_s();
    stored_wait w = {m, gvd_job_id(a), "succeeded"};
    assert_true(run_while(m, not_stored, &w, T_WAIT_MS));
    printf("# recovered %.0f ms after the fault cleared\n", (now_s() - t0) * 1000);
    run_until_status(m, b, GVD_SUCCEEDED, T_WAIT_MS);
    char *log = cap_end(&cap);
    assert_int_equal(count_of(log, "store.unavailable"), 1);
    assert_int_equal(count_of(log, "store.recovered"), 1);
    assert_int_equal(count_of(log, "store.write_failed"), 0); /* per-write lines are debug */
    free(log);
    assert_int_equal(lines_in(runs), 1); /* ran exactly once */
    assert_string_equal(gvd_store_integrity(m->store), "ok");
}

/* Stopped before the store recovered: the exit could not be written, which
 * the log says; the supervisor's exit record was kept, so the next start
 * still learns the true outcome, and nothing runs twice. */
static void test_exit_unsaved_at_shutdown_is_not_lost(void **state)
{
    mfx *m = *state;
    char cmd[900], runs[800];
    snprintf(runs, sizeof runs, "%s/runs", m->fx.dir);
    snprintf(cmd, sizeof cmd, "{\"command\": [\"/bin/sh\", \"-c\", \"echo run >> %s; exit 7\"]}", runs);
    gvd_job *job = create_ok(m, cmd);
    int64_t id = gvd_job_id(job);
    assert_int_equal(gvd_job_status(job), GVD_RUNNING);
    gvd_faultvfs_set(GVD_FAULT_FULL);
    run_until_status(m, job, GVD_FAILED, T_WAIT_MS);
    capture cap;
    cap_begin(&cap, m->fx.dir);
    mfx_close(m);
    char *log = cap_end(&cap);
    assert_non_null(strstr(log, "store.unsaved_at_exit jobs=1 cause=\"disk full\""));
    free(log);
    gvd_faultvfs_set(GVD_FAULT_NONE);
    char st[32];
    row_status(m->fx.db, id, st, sizeof st);
    assert_string_equal(st, "running");
    mfx_open(m);
    job = gvd_jobs_get(m->jobs, id);
    assert_non_null(job);
    run_until_status(m, job, GVD_FAILED, T_WAIT_MS);
    json_t *j = gvd_job_json(job);
    assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), 7);
    json_decref(j);
    run_for(m, 100);
    row_status(m->fx.db, id, st, sizeof st);
    assert_string_equal(st, "failed");
    assert_int_equal(lines_in(runs), 1);
}

/* The scheduler's queued -> running refused (the first write after the
 * fault began is the start of a retry): put back, no process, no loop; once
 * the store recovers the job starts. */
static void test_scheduler_start_refused_is_put_back(void **state)
{
    mfx *m = *state;
    char cmd[900], runs[800];
    snprintf(runs, sizeof runs, "%s/runs", m->fx.dir);
    snprintf(cmd, sizeof cmd,
             "{\"command\": [\"/bin/sh\", \"-c\", \"echo run >> %s; exit 3\"], \"max_retries\": 1, "
             "\"retry_backoff\": 0.4}",
             runs);
    gvd_job *job = create_ok(m, cmd);
    assert_int_equal(gvd_job_status(job), GVD_RUNNING);
    /* The first attempt fails; the retry waits 0.4 s in "queued". */
    run_until_status(m, job, GVD_QUEUED, T_WAIT_MS);
    assert_int_equal(lines_in(runs), 1);
    char *before = job_text(job);
    gvd_faultvfs_set(GVD_FAULT_FULL);
    run_for(m, 700); /* the backoff ends inside this */
    assert_int_equal(gvd_job_status(job), GVD_QUEUED);
    char *after = job_text(job);
    assert_string_equal(after, before); /* attempts, started_at, pid: as they were */
    free(after);
    free(before);
    assert_int_equal(lines_in(runs), 1);
    assert_false(gvd_store_available(m->store));
    gvd_faultvfs_set(GVD_FAULT_NONE);
    run_until_status(m, job, GVD_FAILED, T_WAIT_MS);
    json_t *j = gvd_job_json(job);
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), 3);
    json_decref(j);
    assert_int_equal(lines_in(runs), 2);
}

typedef struct progress_wait {
    mfx *m;
    int64_t id;
    double want;
} progress_wait;

static bool progress_not_stored(void *ud)
{
    progress_wait *w = ud;
    sqlite3 *raw = raw_unix(w->m->fx.db);
    char sql[96], buf[64];
    snprintf(sql, sizeof sql, "SELECT progress FROM jobs WHERE id = %lld", (long long)w->id);
    raw_text(raw, sql, buf, sizeof buf);
    sqlite3_close(raw);
    return strtod(buf, NULL) != w->want;
}

/* Progress ticks while the disk is full are kept and written once it is
 * not: the stored progress catches up with memory. */
static void test_progress_is_retried_not_dropped(void **state)
{
    mfx *m = *state;
    gvd_job *job = create_ok(m, "{\"kind\": \"demo\", \"demo_step_ms\": 5}");
    run_for(m, 60);
    gvd_faultvfs_set(GVD_FAULT_FULL);
    run_for(m, 150);
    gvd_error err = {0};
    assert_int_equal(gvd_job_pause(job, &err), -1);
    json_t *j = gvd_job_json(job);
    double refused_at = json_number_value(json_object_get(j, "current"));
    json_decref(j);
    run_for(m, 100);
    j = gvd_job_json(job);
    double cur = json_number_value(json_object_get(j, "current"));
    json_decref(j);
    assert_true(cur > refused_at); /* the demo was not paused: nothing changed */
    gvd_faultvfs_set(GVD_FAULT_NONE);
    assert_int_equal(gvd_job_pause(job, &err), 0); /* the first write after: it also ends the fault */
    j = gvd_job_json(job);
    progress_wait w = {m, gvd_job_id(job), json_number_value(json_object_get(j, "current"))};
    json_decref(j);
    assert_true(w.want >= cur);
    assert_true(run_while(m, progress_not_stored, &w, T_WAIT_MS));
    assert_int_equal(gvd_job_cancel(job, &err), 0);
}

static void test_delete_refused_keeps_the_job(void **state)
{
    mfx *m = *state;
    gvd_job *job = create_ok(m, "{\"command\": [\"true\"]}");
    run_until_status(m, job, GVD_SUCCEEDED, T_WAIT_MS);
    run_for(m, 50);
    gvd_faultvfs_set(GVD_FAULT_IOERR);
    gvd_error err = {0};
    assert_int_equal(gvd_jobs_delete(m->jobs, job, &err), -1);
    expect_unavailable(&err, "I/O error");
    assert_ptr_equal(gvd_jobs_get(m->jobs, gvd_job_id(job)), job);
    assert_true(file_exists(gvd_job_log_path(job)));
    gvd_faultvfs_set(GVD_FAULT_NONE);
    assert_int_equal(gvd_jobs_delete(m->jobs, job, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_disk_full_logged_once_then_recovers, fx_setup, faults_teardown),
        cmocka_unit_test_setup_teardown(test_store_fsync_error_is_an_io_error, fx_setup, faults_teardown),
        cmocka_unit_test_setup_teardown(test_store_busy_fault_is_database_locked, fx_setup, faults_teardown),
        cmocka_unit_test_setup_teardown(test_store_brief_real_lock_is_waited_out, fx_setup, faults_teardown),
        cmocka_unit_test_setup_teardown(test_store_long_real_lock_refused_fast, fx_setup, faults_teardown),
        cmocka_unit_test_setup_teardown(test_create_refused_when_disk_full, model2_setup, model_teardown),
        cmocka_unit_test_setup_teardown(test_transitions_refused_change_nothing, model2_setup, model_teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_refused_changes_nothing, model2_setup, model_teardown),
        cmocka_unit_test_setup_teardown(test_exit_while_disk_full_is_kept_and_written_later, model1_setup,
                                        model_teardown),
        cmocka_unit_test_setup_teardown(test_exit_unsaved_at_shutdown_is_not_lost, model2_setup, model_teardown),
        cmocka_unit_test_setup_teardown(test_scheduler_start_refused_is_put_back, model2_setup, model_teardown),
        cmocka_unit_test_setup_teardown(test_progress_is_retried_not_dropped, model2_setup, model_teardown),
        cmocka_unit_test_setup_teardown(test_delete_refused_keeps_the_job, model2_setup, model_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
