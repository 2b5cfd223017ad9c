/*
 * test_shim.c — what the per-job supervisor (galvani-shim) adds: a job
 * outlives its handle in galvanid, and gvd_exec_adopt takes it back in every
 * state a restarted daemon can find it in — running with messages queued
 * meanwhile, paused, ended (its exit record), cancelled half-way, its shim
 * killed (lost), or never started.  Real processes, real shims
 * ($GALVANI_SHIM), a real loop; fixtures shared with the runner tests.
 */
#include <sys/file.h>

#include "runner_test_util.h"

/* Take the job back; the handle becomes c->r.x. */
static gvd_exec *adopt(ctx *c, gvd_pause_mode mode, pid_t pid, uint64_t ticks)
{
    bool never = true;
    char err[256] = "";
    gvd_exec_adopt_opts ao = {
        .run_dir = c->run, .job_id = 7, .pause_mode = mode, .pid = pid, .start_ticks = ticks};
    c->r.x = gvd_exec_adopt(&c->loop, &ao, &events, &c->r, &never, err, sizeof err);
    if (!c->r.x)
        fail_msg("adopt failed: %s (never started: %d)", err, never);
    assert_false(never);
    return c->r.x;
}

static void detach(ctx *c)
{
    gvd_exec_free(c->r.x);
    c->r.x = NULL;
}

/* No supervisor holds the run dir's lock any more. */
static bool shim_gone(ctx *c, void *arg)
{
    (void)arg;
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/lock", c->run);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool free_ = flock(fd, LOCK_EX | LOCK_NB) == 0;
    close(fd);
    return free_;
}

static pid_t ppid_of(pid_t pid)
{
    gvd_proc_stat st;
    assert_int_equal(gvd_proc_stat_read(pid, &st), 0);
    return st.ppid;
}

/* The job ends while nobody is connected: the shim writes the exit record
 * (messages not yet delivered + the exit) and goes; adopting replays it. */
static void test_exit_record_replayed(void **state)
{
    ctx *c = *state;
    char *const argv[] = {"/bin/sh", "-c", "sleep 0.2; echo ::progress 42; echo ::status bye; exit 5", NULL};
    gvd_exec_opts o = process_opts(c, argv);
    gvd_exec *x = spawn(c, &o);
    pid_t pid = gvd_exec_pid(x);
    detach(c);
    assert_true(run_until(c, shim_gone, NULL, T_WAIT_MS));
    assert_true(pid_dead(pid));
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/exit", c->run);
    char *record = slurp(path, NULL);
    assert_non_null(record);
    assert_string_equal(record, "out ::progress 42\nout ::status bye\nexit 5 0 0\n");
    free(record);

    adopt(c, GVD_PAUSE_STOP, 0, 0);
    assert_int_equal(c->r.exits, 0); /* from the loop, not from adopt */
    wait_exit(c, T_WAIT_MS);
    assert_int_equal(c->r.nmsg, 2);
    assert_true(c->r.msgs[0].kind == GVD_MSG_PROGRESS && c->r.msgs[0].current == 42);
    assert_string_equal(c->r.msgs[1].text, "bye");
    assert_int_equal(c->r.exit.exit_status, 5);
    assert_int_equal(c->r.exit.term_signal, 0);
    assert_false(c->r.exit.cancelled);
    assert_false(c->r.exit.lost);
    assert_int_equal(access(c->run, F_OK), -1); /* consumed: gone */
}

/* Create an empty file: opens a gate a job script waits for. */
static void touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
}

/* Lines written while no daemon was connected are queued and arrive, in
 * order, on the next connection. */
static void test_queue_replayed_on_reconnect(void **state)
{
    ctx *c = *state;
    /* The rest is written once the test has detached (the file "gate"), and
     * the test waits until the job has written it (its log): while away for
     * certain, not "0.3 s after the first line, the test will have
     * detached". */
    char script[PATH_MAX + 256];
    snprintf(script, sizeof script,
             "echo ::progress 1; while [ ! -e %s ]; do sleep 0.01; done; for i in 2 3 4 5; do echo ::progress $i; "
             "done; echo ::status written-while-away; exec sleep 1000",
             tmp_path(c, "gate"));
    char *const argv[] = {"/bin/sh", "-c", script, NULL};
    gvd_exec_opts o = process_opts(c, argv);
    spawn(c, &o);
    wait_msgs(c, 1, T_WAIT_MS);
    detach(c);
    touch(tmp_path(c, "gate"));
    const void *written[] = {tmp_path(c, "job.log"), "::status written-while-away\n"};
    assert_true(run_until(c, file_contains, written, T_WAIT_MS));
    run_for(c, 50); /* (nothing may arrive: nobody is connected) */
    assert_int_equal(c->r.nmsg, 1);
    gvd_exec *x = adopt(c, GVD_PAUSE_STOP, 0, 0);
    wait_msgs(c, 6, T_WAIT_MS);
    for (int i = 1; i < 5; i++)
        assert_true(c->r.msgs[i].kind == GVD_MSG_PROGRESS && c->r.msgs[i].current == i + 1);
    assert_string_equal(c->r.msgs[5].text, "written-while-away");
    assert_int_equal(gvd_exec_cancel(x, 1000), 0);
    wait_exit(c, T_WAIT_MS);
    assert_int_equal(c->r.exit.term_signal, SIGTERM);
}

static bool got_metric_3000(ctx *c, void *arg)
{
    (void)arg;
    return c->r.nmsg > 0 && c->r.msgs[c->r.nmsg - 1].kind == GVD_MSG_METRIC &&
           c->r.msgs[c->r.nmsg - 1].value == 3000;
}

/* Past SHIM_QUEUE_MAX (256 KiB) the oldest queued lines go, but the latest
 * progress and status among them are kept: the daemon learns the latest
 * state, and memory stays bounded. */
static void test_queue_bounded_keeps_latest_state(void **state)
{
    ctx *c = *state;
    /* The job writes once the test has detached (the file "gate"), not
     * "0.2 s after it started", which a busy machine can outlast. */
    char script[PATH_MAX + 256];
    snprintf(script, sizeof script,
             "while [ ! -e %s ]; do sleep 0.01; done; echo ::progress 7; echo ::status before-flood; "
             "m=$(printf '%%0200d' 0 | tr 0 m); seq 1 3000 | sed \"s/^/::metric $m /\"; "
             "exec sleep 1000",
             tmp_path(c, "gate"));
    char *const argv[] = {"/bin/sh", "-c", script, NULL};
    gvd_exec_opts o = process_opts(c, argv);
    spawn(c, &o);
    detach(c);
    touch(tmp_path(c, "gate"));
    const void *grow[] = {tmp_path(c, "job.log"), (void *)(intptr_t)(3000 * 210)};
    assert_true(run_until(c, file_grew, grow, T_WAIT_MS));
    run_for(c, 200);
    gvd_exec *x = adopt(c, GVD_PAUSE_STOP, 0, 0);
    /* until the newest line (metric 3000) is in, not "300 ms after the first" */
    assert_true(run_until(c, got_metric_3000, NULL, T_WAIT_MS));
    assert_int_equal(c->r.msgs[0].kind, GVD_MSG_PROGRESS); /* kept aside, sent first */
    assert_true(c->r.msgs[0].current == 7);
    assert_string_equal(c->r.msgs[1].text, "before-flood");
    gvd_msg *end = &c->r.msgs[c->r.nmsg - 1];
    assert_int_equal(end->kind, GVD_MSG_METRIC);
    assert_true(end->value == 3000);
    assert_int_equal(strlen(end->text), 200);
    /* ~225 bytes a queued line: about 1,160 of the 3,000 fit in 256 KiB. */
    assert_true(c->r.nmsg - 2 < 1200 && c->r.nmsg - 2 > 1000);
    assert_true(end[-1].value == 2999);
    assert_true(c->r.msgs[2].value == 3000 - (c->r.nmsg - 2) + 1); /* the newest ones, in order */
    assert_int_equal(gvd_exec_cancel(x, 0), 0);
    wait_exit(c, T_WAIT_MS);
}

/* A paused job stays paused while detached, and adopt says so. */
static void test_paused_state_survives(void **state)
{
    ctx *c = *state;
    const char *counter = tmp_path(c, "counter");
    char *const argv[] = {"/bin/sh", (char *)fixture("counter.sh"), (char *)counter, NULL};
    gvd_exec_opts o = process_opts(c, argv);
    gvd_exec *x = spawn(c, &o);
    pid_t pid = gvd_exec_pid(x);
    (void)wait_msg(c, 0, GVD_MSG_STATUS, "ready", T_WAIT_MS);
    assert_int_equal(gvd_exec_pause(x), 0);
    assert_true(run_until(c, group_stopped, &pid, T_WAIT_MS));
    detach(c);
    run_for(c, 100);
    assert_true(group_stopped(c, &pid));
    x = adopt(c, GVD_PAUSE_STOP, 0, 0);
    assert_true(gvd_exec_paused(x));
    off_t size = file_size(counter);
    assert_int_equal(gvd_exec_resume(x), 0);
    const void *grow[] = {counter, (void *)(intptr_t)size};
    assert_true(run_until(c, file_grew, grow, T_WAIT_MS));
    assert_false(gvd_exec_paused(x));
    assert_int_equal(gvd_exec_cancel(x, 1000), 0);
    wait_exit(c, T_WAIT_MS);
}

/* A cancel's escalation lives in the shim: it completes (SIGTERM ignored,
 * SIGKILL at the grace) with nobody connected, and the record says so. */
static void test_cancel_completes_without_daemon(void **state)
{
    ctx *c = *state;
    char *const argv[] = {"/bin/sh", (char *)fixture("stubborn.sh"), NULL};
    gvd_exec_opts o = process_opts(c, argv);
    gvd_exec *x = spawn(c, &o);
    pid_t pid = gvd_exec_pid(x);
    (void)wait_msg(c, 0, GVD_MSG_STATUS, "ready", T_WAIT_MS);
    assert_int_equal(gvd_exec_cancel(x, 300), 0);
    detach(c);
    assert_true(run_until(c, pid_dead_pred, &pid, T_WAIT_MS));
    assert_true(run_until(c, shim_gone, NULL, T_WAIT_MS));
    adopt(c, GVD_PAUSE_STOP, 0, 0);
    wait_exit(c, T_WAIT_MS);
    assert_int_equal(c->r.exit.term_signal, SIGKILL);
    assert_true(c->r.exit.cancelled);
    assert_false(c->r.exit.lost);
}

/* The supervisor itself is killed: its connection ends without an exit.
 * The job's group is killed (pid + start time checked) and the exit is
 * reported as lost — and the same when adopting a run dir whose shim died
 * while no daemon was there. */
static void test_supervisor_killed(void **state)
{
    ctx *c = *state;
    char *const argv[] = {"/bin/sh", (char *)fixture("tree.sh"), (char *)tmp_path(c, "pid"), NULL};
    gvd_exec_opts o = process_opts(c, argv);
    gvd_exec *x = spawn(c, &o);
    pid_t pid = gvd_exec_pid(x);
    pid_t grandchild = read_pid_file(c, tmp_path(c, "pid"));
    pid_t shim = ppid_of(pid);
    assert_true(shim > 1 && shim != getpid());
    assert_int_equal(kill(shim, SIGKILL), 0);
    wait_exit(c, T_WAIT_MS);
    assert_true(c->r.exit.lost);
    assert_int_equal(c->r.exit.exit_status, -1);
    assert_true(run_until(c, pid_dead_pred, &pid, T_WAIT_MS));
    assert_true(run_until(c, pid_dead_pred, &grandchild, T_WAIT_MS));
    assert_int_equal(access(c->run, F_OK), -1);

    /* Detached first, then the shim dies: adopt finds started + pid, no
     * record, no lock holder. */
    c->r.nmsg = c->r.exits = 0;
    c->r.exit = (gvd_exit){0};
    char *const sleeper[] = {"/bin/sleep", "1000", NULL};
    o = process_opts(c, sleeper);
    x = spawn(c, &o);
    pid = gvd_exec_pid(x);
    uint64_t ticks = gvd_exec_start_ticks(x);
    shim = ppid_of(pid);
    detach(c);
    assert_int_equal(kill(shim, SIGKILL), 0);
    assert_true(run_until(c, shim_gone, NULL, T_WAIT_MS));
    assert_false(pid_dead(pid)); /* orphaned, still running */
    adopt(c, GVD_PAUSE_STOP, pid, ticks);
    wait_exit(c, T_WAIT_MS);
    assert_true(c->r.exit.lost);
    assert_true(run_until(c, pid_dead_pred, &pid, T_WAIT_MS));
}

/* No run dir, or one without the "started" marker: the job never ran, and
 * adopt says so (the model may then run it). */
static void test_never_started(void **state)
{
    ctx *c = *state;
    bool never = false;
    char err[128] = "";
    gvd_exec_adopt_opts ao = {.run_dir = c->run, .job_id = 7};
    assert_null(gvd_exec_adopt(&c->loop, &ao, &events, &c->r, &never, err, sizeof err));
    assert_true(never);
    assert_int_equal(mkdir(c->run, 0700), 0);
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/lock", c->run);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    never = false;
    assert_null(gvd_exec_adopt(&c->loop, &ao, &events, &c->r, &never, err, sizeof err));
    assert_true(never);
    assert_int_equal(access(c->run, F_OK), -1); /* and it was cleared */
    uv_run(&c->loop, UV_RUN_NOWAIT);
}

/* The run dir's socket must fit sun_path: a clear error, not a truncation. */
static void test_run_dir_too_long(void **state)
{
    ctx *c = *state;
    char *const argv[] = {"/bin/true", NULL};
    gvd_exec_opts o = process_opts(c, argv);
    char longdir[200];
    memset(longdir, 'r', sizeof longdir - 1);
    longdir[0] = '/';
    longdir[sizeof longdir - 1] = '\0';
    o.run_dir = longdir;
    char err[512] = "";
    assert_null(gvd_exec_spawn(&c->loop, &o, &events, &c->r, err, sizeof err));
    char want[512];
    snprintf(want, sizeof want, "run directory path too long for a unix socket (199 bytes, at most 102): %s", longdir);
    assert_string_equal(err, want);
    uv_run(&c->loop, UV_RUN_NOWAIT);
    o = process_opts(c, argv);
    o.shim_path = "/nonexistent/galvani-shim";
    assert_null(gvd_exec_spawn(&c->loop, &o, &events, &c->r, err, sizeof err));
    assert_string_equal(err, "cannot run the job supervisor /nonexistent/galvani-shim: No such file or directory "
                             "(set --shim or GALVANI_SHIM)");
    uv_run(&c->loop, UV_RUN_NOWAIT);
}

/* A supervisor that answers nonsense (or nothing) may still be starting the
 * job: spawn kills it and whatever its group started before it reports that
 * the job did not start, and leaves no run dir. */
static void test_bad_supervisor_is_killed(void **state)
{
    ctx *c = *state;
    char *const argv[] = {"/bin/true", NULL};
    gvd_exec_opts o = process_opts(c, argv);
    o.shim_path = fixture("fake_shim.sh");
    char err[512] = "";
    c->r.x = gvd_exec_spawn(&c->loop, &o, &events, &c->r, err, sizeof err);
    assert_non_null(c->r.x); /* the answer is read on the loop */
    assert_true(run_until(c, started, NULL, T_WAIT_MS));
    assert_null(c->r.x);
    assert_string_equal(c->r.start_error,
                        "the job supervisor answered nonsense (it was killed, with anything it started)");
    char fake[PATH_MAX + 8];
    assert_true(snprintf(fake, sizeof fake, "%s.fake", c->run) < (int)sizeof fake);
    pid_t left = read_pid_file(c, fake);
    assert_true(left > 1);
    assert_true(run_until(c, pid_dead_pred, &left, T_WAIT_MS));
    assert_int_equal(access(c->run, F_OK), -1);
    assert_int_equal(unlink(fake), 0);
    uv_run(&c->loop, UV_RUN_NOWAIT);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_exit_record_replayed),
        T(test_queue_replayed_on_reconnect),
        T(test_queue_bounded_keeps_latest_state),
        T(test_paused_state_survives),
        T(test_cancel_completes_without_daemon),
        T(test_supervisor_killed),
        T(test_never_started),
        T(test_run_dir_too_long),
        T(test_bad_supervisor_is_killed),
    };
    return cmocka_run_group_tests(tests, runner_group_setup, NULL);
#undef T
}
