/*
 * test_jobs.c — the job model with its real neighbours: a real SQLite store
 * (in a temp dir), the real runner (demo tasks and real processes) and a real
 * libuv loop.  Every wait is bounded by a deadline timer.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "model/jobs.h"
#include "store/store.h"

typedef struct fixture {
    char dir[64];
    char db[128];
    char logs[128];
    uv_loop_t loop;
    gvd_store *store;
    gvd_jobs *jobs;
    gvd_config cfg;
    int changes, removals;
} fixture;

static void on_change(void *ud, gvd_job *job, bool removed)
{
    (void)job;
    fixture *f = ud;
    if (removed)
        f->removals++;
    else
        f->changes++;
}

static void open_jobs(fixture *f)
{
    char err[256];
    f->store = gvd_store_open(f->db, err, sizeof err);
    assert_non_null(f->store);
    gvd_error e = {0};
    f->jobs = gvd_jobs_new(&f->loop, f->store, &f->cfg, &e);
    if (!f->jobs)
        fail_msg("gvd_jobs_new: %s", e.message);
    gvd_jobs_on_change(f->jobs, on_change, f);
}

static void close_jobs(fixture *f)
{
    gvd_jobs_free(f->jobs);
    f->jobs = NULL;
    uv_run(&f->loop, UV_RUN_DEFAULT); /* let handles close */
    gvd_store_close(f->store);
    f->store = NULL;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gvd-jobs-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->db, sizeof f->db, "%s/galvani.db", f->dir);
    snprintf(f->logs, sizeof f->logs, "%s/logs", f->dir);
    uv_loop_init(&f->loop);
    f->cfg = (gvd_config){.max_running = 2, .cancel_grace_ms = 500, .log_dir = f->logs, .progress_flush_ms = 20};
    open_jobs(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->jobs)
        close_jobs(f);
    uv_loop_close(&f->loop);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* uv_stop too: a deadline that is already due when uv_run(UV_RUN_ONCE)
 * starts (the loop's clock is stale after a blocking call, such as a spawn
 * waiting for its supervisor) fires before the poll, which would then block
 * until the next I/O; with the loop stopped the poll does not wait. */
static void deadline_cb(uv_timer_t *t)
{
    *(int *)t->data = 1;
    uv_stop(t->loop);
}

/* Run the loop until the job reaches `want` or 30 s pass (a deadline for
 * a stuck test, generous for a busy machine). */
static void run_until(fixture *f, gvd_job *job, gvd_status want)
{
    int expired = 0;
    uv_timer_t deadline;
    uv_timer_init(&f->loop, &deadline);
    deadline.data = &expired;
    uv_timer_start(&deadline, deadline_cb, 30000, 0);
    while (gvd_job_status(job) != want && !expired)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (gvd_job_status(job) != want)
        fail_msg("job %lld is %s, expected %s", (long long)gvd_job_id(job), gvd_status_name(gvd_job_status(job)),
                 gvd_status_name(want));
}

static void run_for(fixture *f, unsigned ms)
{
    int expired = 0;
    uv_timer_t t;
    uv_timer_init(&f->loop, &t);
    t.data = &expired;
    uv_timer_start(&t, deadline_cb, ms, 0);
    while (!expired)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static gvd_job *create(fixture *f, const char *json)
{
    json_error_t jerr;
    json_t *body = json_loads(json, 0, &jerr);
    assert_non_null(body);
    gvd_error err = {0};
    gvd_job *job = gvd_jobs_create(f->jobs, body, &err);
    json_decref(body);
    if (!job)
        fail_msg("create %s: %d %s", json, err.http, err.message);
    return job;
}

static void expect_refused(fixture *f, const char *json, const char *needle)
{
    json_error_t jerr;
    json_t *body = json_loads(json, 0, &jerr);
    assert_non_null(body);
    gvd_error err = {0};
    gvd_job *job = gvd_jobs_create(f->jobs, body, &err);
    json_decref(body);
    assert_null(job);
    assert_int_equal(err.http, 400);
    if (!strstr(err.message, needle))
        fail_msg("error '%s' does not mention '%s'", err.message, needle);
}

static double job_number(gvd_job *job, const char *field)
{
    json_t *j = gvd_job_json(job);
    assert_non_null(j);
    double v = json_number_value(json_object_get(j, field));
    json_decref(j);
    return v;
}

static void test_spec_validation(void **state)
{
    fixture *f = *state;
    expect_refused(f, "{\"command\": [\"true\"], \"timout\": 5}", "timout");
    expect_refused(f, "{\"command\": \"true\"}", "command");
    expect_refused(f, "{\"command\": []}", "empty");
    expect_refused(f, "{\"command\": [\"true\", 3]}", "element 1");
    expect_refused(f, "{\"command\": [\"true\"], \"priority\": \"high\"}", "priority");
    expect_refused(f, "{\"command\": [\"true\"], \"timeout\": -1}", "timeout");
    expect_refused(f, "{\"command\": [\"true\"], \"env\": {\"A\": 1}}", "env");
    expect_refused(f, "{\"command\": [\"true\"], \"pause_mode\": \"freeze\"}", "pause_mode");
    expect_refused(f, "{\"kind\": \"demo\", \"command\": [\"true\"]}", "demo");
    expect_refused(f, "{}", "command");
    expect_refused(f, "[1, 2]", "object");
    size_t total = 99;
    gvd_job *out[4];
    assert_int_equal(gvd_jobs_list(f->jobs, 0, 0, 4, out, &total), 0);
    assert_int_equal(total, 0); /* nothing refused was stored */
}

static void test_demo_runs_to_completion_and_notifies(void **state)
{
    fixture *f = *state;
    gvd_job *job = create(f, "{\"kind\": \"demo\", \"demo_step_ms\": 1}");
    assert_int_equal(gvd_job_status(job), GVD_RUNNING); /* a slot was free */
    run_until(f, job, GVD_SUCCEEDED);
    assert_true(job_number(job, "progress") == 100.0);
    assert_true(f->changes >= 3);
    json_t *counts = gvd_jobs_counts_json(f->jobs);
    assert_int_equal(json_integer_value(json_object_get(counts, "succeeded")), 1);
    assert_int_equal(json_integer_value(json_object_get(counts, "total")), 1);
    json_decref(counts);
}

static void test_transitions_and_state_machine(void **state)
{
    fixture *f = *state;
    gvd_job *job = create(f, "{\"kind\": \"demo\", \"demo_step_ms\": 20}");
    gvd_error err = {0};
    assert_int_equal(gvd_job_resume(job, &err), -1);
    assert_int_equal(err.http, 409);
    run_for(f, 100);
    assert_int_equal(gvd_job_pause(job, &err), 0);
    assert_int_equal(gvd_job_status(job), GVD_PAUSED);
    double held = job_number(job, "progress");
    assert_true(held > 0);
    run_for(f, 150);
    assert_true(job_number(job, "progress") == held); /* paused really holds */
    assert_int_equal(gvd_job_pause(job, &err), -1);
    assert_int_equal(err.http, 409);
    assert_int_equal(gvd_job_resume(job, &err), 0);
    run_for(f, 100);
    assert_true(job_number(job, "progress") > held);
    assert_int_equal(gvd_job_cancel(job, &err), 0);
    run_until(f, job, GVD_CANCELLED);
    assert_int_equal(gvd_job_cancel(job, &err), -1);
    assert_int_equal(err.http, 409);
    assert_non_null(strstr(err.message, "cancelled"));
}

static void test_scheduler_respects_max_running_and_priority(void **state)
{
    fixture *f = *state; /* max_running = 2 */
    gvd_job *a = create(f, "{\"kind\": \"demo\", \"demo_step_ms\": 2}");
    gvd_job *b = create(f, "{\"kind\": \"demo\", \"demo_step_ms\": 2}");
    gvd_job *c = create(f, "{\"kind\": \"demo\", \"demo_step_ms\": 2}");
    gvd_job *d = create(f, "{\"kind\": \"demo\", \"demo_step_ms\": 2, \"priority\": 9}");
    assert_int_equal(gvd_job_status(a), GVD_RUNNING);
    assert_int_equal(gvd_job_status(b), GVD_RUNNING);
    assert_int_equal(gvd_job_status(c), GVD_QUEUED);
    assert_int_equal(gvd_job_status(d), GVD_QUEUED);
    gvd_error err = {0};
    assert_int_equal(gvd_job_cancel(a, &err), 0);
    /* the freed slot goes to the higher priority, though it came later */
    run_for(f, 5);
    assert_int_equal(gvd_job_status(d), GVD_RUNNING);
    assert_int_equal(gvd_job_status(c), GVD_QUEUED);
    run_until(f, c, GVD_SUCCEEDED);
    size_t total;
    gvd_job *out[8];
    size_t n = gvd_jobs_list(f->jobs, 1u << GVD_SUCCEEDED, 0, 8, out, &total);
    assert_int_equal(n, 3);
    assert_int_equal(total, 3);
    assert_int_equal(gvd_jobs_list(f->jobs, 0, 1, 2, out, &total), 2);
    assert_int_equal(total, 4);
    assert_ptr_equal(out[0], c); /* newest first, offset 1 skips d */
}

static void test_params_merge_and_delete(void **state)
{
    fixture *f = *state;
    gvd_job *job = create(f, "{\"kind\": \"demo\", \"demo_step_ms\": 50}");
    json_t *patch = json_pack("{s:f, s:i}", "lr", 0.5, "epochs", 3);
    gvd_error err = {0};
    assert_int_equal(gvd_job_set_params(job, patch, &err), 0);
    json_decref(patch);
    patch = json_pack("{s:n}", "epochs");
    assert_int_equal(gvd_job_set_params(job, patch, &err), 0);
    json_decref(patch);
    json_t *j = gvd_job_json(job);
    json_t *params = json_object_get(j, "params");
    assert_int_equal(json_object_size(params), 1);
    assert_true(json_real_value(json_object_get(params, "lr")) == 0.5);
    json_decref(j);
    assert_int_equal(gvd_jobs_delete(f->jobs, job, &err), -1);
    assert_int_equal(err.http, 409);
    assert_int_equal(gvd_job_cancel(job, &err), 0);
    run_until(f, job, GVD_CANCELLED);
    int64_t id = gvd_job_id(job);
    assert_int_equal(gvd_jobs_delete(f->jobs, job, &err), 0);
    assert_null(gvd_jobs_get(f->jobs, id));
    assert_int_equal(f->removals, 1);
}

static int64_t json_int_field(gvd_job *job, const char *name)
{
    json_t *j = gvd_job_json(job);
    int64_t v = json_integer_value(json_object_get(j, name));
    json_decref(j);
    return v;
}

/* galvanid's shutdown (leave_running): a process job keeps running under its
 * supervisor and the next start re-adopts it, same pid, still controllable;
 * the demo (in-process) resumes from its stored progress, not from 0. */
static void test_restart_readopts_jobs(void **state)
{
    fixture *f = *state;
    close_jobs(f);
    f->cfg.leave_running = true;
    open_jobs(f);
    gvd_job *done = create(f, "{\"kind\": \"demo\", \"demo_step_ms\": 1}");
    run_until(f, done, GVD_SUCCEEDED);
    gvd_job *orphan = create(f, "{\"command\": [\"/bin/sleep\", \"1000\"]}");
    gvd_job *demo = create(f, "{\"kind\": \"demo\", \"demo_step_ms\": 20}");
    run_for(f, 300);
    for (int i = 0; i < 1500 && json_int_field(orphan, "pid") <= 0; i++)
        run_for(f, 20); /* the supervisor's answer, read on the loop */
    assert_int_equal(gvd_job_status(orphan), GVD_RUNNING);
    int64_t done_id = gvd_job_id(done), orphan_id = gvd_job_id(orphan), demo_id = gvd_job_id(demo);
    pid_t pid = (pid_t)json_int_field(orphan, "pid");
    assert_true(pid > 0);
    close_jobs(f); /* writes the demo's progress */
    assert_int_equal(kill(pid, 0), 0); /* still running */
    open_jobs(f);
    gvd_job *a = gvd_jobs_get(f->jobs, done_id), *b = gvd_jobs_get(f->jobs, orphan_id);
    demo = gvd_jobs_get(f->jobs, demo_id);
    assert_int_equal(gvd_job_status(a), GVD_SUCCEEDED);
    assert_int_equal(gvd_job_status(b), GVD_RUNNING);
    assert_int_equal(json_int_field(b, "pid"), pid);
    assert_int_equal(json_int_field(b, "attempts"), 1);
    int64_t resumed_at = json_int_field(demo, "progress");
    assert_true(resumed_at >= 5);
    assert_int_equal(gvd_job_status(demo), GVD_RUNNING);
    gvd_error err = {0};
    assert_int_equal(gvd_job_cancel(b, &err), 0);
    run_until(f, b, GVD_CANCELLED);
    for (int i = 0; i < 1500 && json_int_field(b, "signal") == 0; i++)
        run_for(f, 20); /* the exit follows the (immediate) status; up to 30 s */
    assert_int_equal(json_int_field(b, "signal"), SIGTERM);
    run_until(f, demo, GVD_SUCCEEDED);
    gvd_job *next = create(f, "{\"kind\": \"demo\", \"demo_step_ms\": 1}");
    assert_true(gvd_job_id(next) > demo_id);
    run_until(f, next, GVD_SUCCEEDED);
}

/* Without leave_running (an embedder, the tests), freeing the registry
 * kills live jobs; their supervisors record it, and the next start reports
 * the true outcome: killed by SIGKILL. */
static void test_restart_after_kill_reports_true_exit(void **state)
{
    fixture *f = *state;
    gvd_job *orphan = create(f, "{\"command\": [\"/bin/sleep\", \"1000\"]}");
    /* The spawn's handshake is read on the loop: the job is running at once,
     * its pid known when the supervisor has answered (up to 30 s). */
    for (int i = 0; i < 1500 && json_int_field(orphan, "pid") <= 0; i++)
        run_for(f, 20);
    assert_int_equal(gvd_job_status(orphan), GVD_RUNNING);
    int64_t orphan_id = gvd_job_id(orphan);
    pid_t pid = (pid_t)json_int_field(orphan, "pid");
    assert_true(pid > 0);
    close_jobs(f);
    assert_int_equal(kill(pid, 0), -1);
    open_jobs(f);
    gvd_job *b = gvd_jobs_get(f->jobs, orphan_id);
    run_until(f, b, GVD_FAILED);
    assert_int_equal(json_int_field(b, "signal"), SIGKILL);
    json_t *j = gvd_job_json(b);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "killed by signal 9 (Killed)");
    json_decref(j);
}

static void test_process_exit_status_and_retries(void **state)
{
    fixture *f = *state;
    gvd_job *ok = create(f, "{\"command\": [\"/bin/sh\", \"-c\", \"echo '::progress 1/2'; exit 0\"]}");
    gvd_job *bad = create(f, "{\"command\": [\"/bin/sh\", \"-c\", \"exit 3\"], \"max_retries\": 2, "
                             "\"retry_backoff\": 0.01}");
    run_until(f, ok, GVD_SUCCEEDED);
    run_until(f, bad, GVD_FAILED);
    json_t *j = gvd_job_json(bad);
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), 3);
    json_decref(j);
    gvd_job *missing = create(f, "{\"command\": [\"/nonexistent/x\"]}");
    run_until(f, missing, GVD_FAILED);
}

/* ---- the start is asynchronous ------------------------------------------ */

static int64_t json_int_of(gvd_job *job, const char *key)
{
    json_t *j = gvd_job_json(job);
    int64_t v = json_integer_value(json_object_get(j, key));
    json_decref(j);
    return v;
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static char proc_state_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' ? paren[2] : 0;
}

static void run_until_pid(fixture *f, gvd_job *job)
{
    for (double end = mono_ms() + 30000; json_int_of(job, "pid") <= 0 && mono_ms() < end;)
        run_for(f, 5);
    assert_true(json_int_of(job, "pid") > 0);
}

/* With a supervisor that answers 1 s late: creating (and so starting) a
 * job returns at once, the job is running without a pid meanwhile, a pause
 * or a cancel asked for meanwhile is applied once the process exists, and a
 * command that cannot run still fails with the runner's words. */
static void test_start_does_not_block(void **state)
{
    fixture *f = *state;
    static char shim[4200];
    const char *here = __FILE__, *slash = strrchr(here, '/');
    snprintf(shim, sizeof shim, "%.*s/fixtures/slow_shim.sh", slash ? (int)(slash - here) : 1, slash ? here : ".");
    close_jobs(f);
    f->cfg.shim_path = shim;
    f->cfg.max_running = 8;
    open_jobs(f);

    double t0 = mono_ms();
    gvd_job *paused = create(f, "{\"command\": [\"sleep\", \"3600\"]}");
    gvd_job *cancelled = create(f, "{\"command\": [\"sleep\", \"3600\"]}");
    gvd_job *missing = create(f, "{\"command\": [\"/nonexistent/x\"]}");
    /* Three spawns: waiting for each supervisor would take 3 s; a loaded
     * machine may be slow to posix_spawn, never that slow. */
    assert_true(mono_ms() - t0 < 1500);
    assert_int_equal(gvd_job_status(paused), GVD_RUNNING);
    assert_int_equal(json_int_of(paused, "pid"), 0);

    gvd_error err = {0};
    assert_int_equal(gvd_job_pause(paused, &err), 0);
    assert_int_equal(gvd_job_cancel(cancelled, &err), 0);
    assert_int_equal(gvd_job_status(cancelled), GVD_CANCELLED);

    run_until(f, missing, GVD_FAILED);
    json_t *j = gvd_job_json(missing);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "no such file: /nonexistent/x");
    json_decref(j);

    run_until_pid(f, paused);
    pid_t pid = (pid_t)json_int_of(paused, "pid");
    for (double end = mono_ms() + 30000; proc_state_of(pid) != 'T' && mono_ms() < end;)
        run_for(f, 5);
    assert_int_equal(proc_state_of(pid), 'T'); /* stopped as soon as it ran */
    assert_int_equal(gvd_job_status(paused), GVD_PAUSED);

    /* The cancelled one started, was told to stop, and is gone. */
    run_until_pid(f, cancelled);
    pid_t cpid = (pid_t)json_int_of(cancelled, "pid");
    for (double end = mono_ms() + 30000; proc_state_of(cpid) != 0 && proc_state_of(cpid) != 'Z' && mono_ms() < end;)
        run_for(f, 5);
    assert_true(proc_state_of(cpid) == 0 || proc_state_of(cpid) == 'Z');
    assert_int_equal(gvd_job_status(cancelled), GVD_CANCELLED);
    assert_int_equal(gvd_job_cancel(paused, &err), 0);
    run_for(f, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_spec_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_demo_runs_to_completion_and_notifies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transitions_and_state_machine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scheduler_respects_max_running_and_priority, setup, teardown),
        cmocka_unit_test_setup_teardown(test_params_merge_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_readopts_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_after_kill_reports_true_exit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_process_exit_status_and_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_does_not_block, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
