/*
 * test_runner_control.c — controlling real jobs: pause really stops the
 * process group (and resume continues it), cancel kills a whole process
 * tree with SIGTERM then SIGKILL after the grace period, leftovers of a job
 * that exited are cleaned up, cooperative jobs get their commands on the
 * control fd and acknowledge them, and the protocol examples of
 * docs/protocol.md (shell, Python, C) work as documented.
 */
#include "runner_test_util.h"

/* Run until the STATUS message `text` arrives (from index 0). */
static void wait_status(ctx *c, const char *text)
{
    (void)wait_msg(c, 0, GVD_MSG_STATUS, text, T_WAIT_MS);
}

/* ---- stop mode ----------------------------------------------------------- */

static void test_pause_stops_and_resume_continues(void **state)
{
    ctx *c = *state;
    const char *counter = tmp_path(c, "counter");
    char *const argv[] = {"/bin/sh", (char *)fixture("counter.sh"), (char *)counter, NULL};
    gvd_exec_opts o = process_opts(c, argv);
    gvd_exec *x = spawn(c, &o);
    pid_t pid = gvd_exec_pid(x);
    wait_status(c, "ready");
    const void *grow0[] = {counter, (void *)(intptr_t)0};
    assert_true(run_until(c, file_grew, grow0, T_WAIT_MS));

    assert_int_equal(gvd_exec_pause(x), 0);
    assert_int_equal(gvd_exec_pause(x), 0); /* already paused: fine */
    assert_true(run_until(c, group_stopped, &pid, T_WAIT_MS));
    /* Stopped means stopped: the counter file does not grow. */
    run_for(c, 30);
    off_t size = file_size(counter);
    run_for(c, 250);
    assert_int_equal(file_size(counter), size);
    assert_true(group_stopped(c, &pid));
    assert_int_equal(c->r.exits, 0);

    assert_int_equal(gvd_exec_resume(x), 0);
    const void *grow[] = {counter, (void *)(intptr_t)size};
    assert_true(run_until(c, file_grew, grow, T_WAIT_MS));
    assert_false(group_stopped(c, &pid));

    assert_int_equal(gvd_exec_cancel(x, 2000), 0);
    wait_exit(c, T_WAIT_MS);
    assert_int_equal(c->r.exit.term_signal, SIGTERM);
    assert_int_equal(c->r.exit.exit_status, -1);
    assert_true(c->r.exit.cancelled);
}

static void test_cancel_while_paused(void **state)
{
    ctx *c = *state;
    char *const argv[] = {"/bin/sh", (char *)fixture("counter.sh"), (char *)tmp_path(c, "counter"), NULL};
    gvd_exec_opts o = process_opts(c, argv);
    gvd_exec *x = spawn(c, &o);
    pid_t pid = gvd_exec_pid(x);
    wait_status(c, "ready");
    assert_int_equal(gvd_exec_pause(x), 0);
    assert_true(run_until(c, group_stopped, &pid, T_WAIT_MS));
    assert_int_equal(gvd_exec_cancel(x, 5000), 0);
    assert_int_equal(gvd_exec_pause(x), -EBUSY);
    assert_int_equal(gvd_exec_resume(x), 0);
    wait_exit(c, T_WAIT_MS);
    /* SIGCONT let the stopped group act on SIGTERM: without it, SIGTERM
     * stays pending in a stopped process and SIGKILL ends it at the grace.
     * The signal says which, however slow the machine (no time bound). */
    assert_int_equal(c->r.exit.term_signal, SIGTERM);
    assert_true(c->r.exit.cancelled);
}

static void test_cancel_kills_the_tree(void **state)
{
    ctx *c = *state;
    const char *pidfile = tmp_path(c, "pid");
    char *const argv[] = {"/bin/sh", (char *)fixture("tree.sh"), (char *)pidfile, NULL};
    gvd_exec_opts o = process_opts(c, argv);
    gvd_exec *x = spawn(c, &o);
    pid_t pid = gvd_exec_pid(x);
    pid_t grandchild = read_pid_file(c, pidfile);
    wait_status(c, "ready");
    gvd_proc_stat st;
    assert_int_equal(gvd_proc_stat_read(grandchild, &st), 0);
    assert_int_equal(st.pgrp, pid); /* in the job's group */

    assert_int_equal(gvd_exec_cancel(x, 5000), 0);
    wait_exit(c, T_WAIT_MS);
    /* SIGTERM was enough: killed by it, not by SIGKILL after the grace */
    assert_int_equal(c->r.exit.exit_status, -1);
    assert_int_equal(c->r.exit.term_signal, SIGTERM);
    assert_true(c->r.exit.cancelled);
    assert_true(pid_dead(pid));
    assert_true(run_until(c, pid_dead_pred, &grandchild, T_WAIT_MS));
}

static void test_cancel_escalates_to_sigkill(void **state)
{
    ctx *c = *state;
    char *const argv[] = {"/bin/sh", (char *)fixture("stubborn.sh"), NULL};
    gvd_exec_opts o = process_opts(c, argv);
    gvd_exec *x = spawn(c, &o);
    wait_status(c, "ready");
    uv_update_time(&c->loop);
    uint64_t t0 = uv_hrtime();
    assert_int_equal(gvd_exec_cancel(x, 300), 0);
    wait_exit(c, T_WAIT_MS);
    /* SIGTERM was ignored (killed by SIGKILL, below), and SIGKILL came at
     * the grace, not before.  (Not "still alive half-way through the grace":
     * a loop that wakes late on a busy machine may find it already over.) */
    double ms = ms_since(t0);
    assert_true(ms >= 280);
    assert_int_equal(c->r.exit.exit_status, -1);
    assert_int_equal(c->r.exit.term_signal, SIGKILL);
    assert_true(c->r.exit.cancelled);
}

/* ---- leftovers of a job that exited on its own --------------------------- */

static void test_background_child_ended_with_the_job(void **state)
{
    ctx *c = *state;
    const char *pidfile = tmp_path(c, "pid");
    char *const argv[] = {"/bin/sh", (char *)fixture("background.sh"), (char *)pidfile, NULL};
    gvd_exec_opts o = process_opts(c, argv);
    spawn(c, &o);
    wait_exit(c, T_WAIT_MS);
    /* The child held stdout; it got SIGTERM when the job exited, so the job
     * is over, completely (the child is gone too, below).  That the SIGTERM
     * comes at the job's exit and not after the leftovers' grace is shown
     * by test_exit_waits_for_the_last_output (a child that answers it) and
     * test_stubborn_background_child_killed (one that does not), without a
     * clock. */
    assert_int_equal(c->r.exit.exit_status, 0);
    assert_int_equal(c->r.exit.term_signal, 0);
    assert_false(c->r.exit.cancelled);
    assert_int_equal(c->r.nmsg, 1);
    pid_t child = read_pid_file(c, pidfile);
    assert_true(run_until(c, pid_dead_pred, &child, T_WAIT_MS));
}

static void test_stubborn_background_child_killed(void **state)
{
    ctx *c = *state;
    const char *pidfile = tmp_path(c, "pid");
    char *const argv[] = {"/bin/sh", (char *)fixture("background.sh"), (char *)pidfile, "stubborn", NULL};
    gvd_exec_opts o = process_opts(c, argv);
    spawn(c, &o);
    uint64_t t0 = uv_hrtime();
    wait_exit(c, T_WAIT_MS);
    /* It ignored SIGTERM: SIGKILL after the leftovers' grace (1 s), not
     * before (no upper bound: a busy machine is slow, not wrong). */
    double ms = ms_since(t0);
    assert_true(ms >= 900);
    assert_int_equal(c->r.exit.exit_status, 0);
    assert_false(c->r.exit.cancelled);
    pid_t child = read_pid_file(c, pidfile);
    assert_true(run_until(c, pid_dead_pred, &child, T_WAIT_MS));
}

/* on_exit waits for the output: a child that writes its last line after
 * the main process exited still gets it delivered first. */
static void test_exit_waits_for_the_last_output(void **state)
{
    ctx *c = *state;
    const char *pidfile = tmp_path(c, "pid");
    char *const argv[] = {"/bin/sh", (char *)fixture("background.sh"), (char *)pidfile, "graceful", NULL};
    gvd_exec_opts o = process_opts(c, argv);
    spawn(c, &o);
    wait_exit(c, T_WAIT_MS);
    assert_int_equal(c->r.exit.exit_status, 0);
    assert_int_equal(c->r.nmsg, 2);
    assert_int_equal(c->r.msgs_at_exit, 2);
    assert_true(c->r.msgs[0].current == 100);
    assert_string_equal(c->r.msgs[1].text, "child cleaned up");
    char *log = slurp(tmp_path(c, "job.log"), NULL);
    assert_non_null(log);
    /* (dash may also say "Terminated" about the child's own sleep.) */
    assert_int_equal(strncmp(log, "::progress 100\n", 15), 0);
    assert_non_null(strstr(log, "\n::status child cleaned up\n"));
    free(log);
}

static void test_escaped_child_does_not_hold_exit(void **state)
{
    ctx *c = *state;
    const char *pidfile = tmp_path(c, "pid");
    char *const argv[] = {"/bin/sh", (char *)fixture("escape.sh"), (char *)pidfile, NULL};
    gvd_exec_opts o = process_opts(c, argv);
    spawn(c, &o);
    uint64_t t0 = uv_hrtime();
    wait_exit(c, T_WAIT_MS);
    pid_t escaped = read_pid_file(c, pidfile);
    c->stray = escaped;
    /* It left the group (setsid) and still holds stdout: on_exit comes
     * after the bounded drain wait anyway, with the last message. */
    assert_false(pid_dead(escaped));
    double ms = ms_since(t0);
    assert_true(ms >= 900); /* after the bounded drain wait, and not held beyond it (wait_exit) */
    assert_int_equal(c->r.exit.exit_status, 0);
    assert_int_equal(c->r.nmsg, 1);
    assert_true(c->r.msgs[0].current == 100);
    assert_int_equal(kill(escaped, SIGKILL), 0);
    assert_true(run_until(c, pid_dead_pred, &escaped, T_WAIT_MS));
}

/* ---- cooperative mode ---------------------------------------------------- */

static void test_cooperative_commands_and_acks(void **state)
{
    ctx *c = *state;
    char *const argv[] = {"/bin/sh", (char *)fixture("coop.sh"), NULL};
    gvd_exec_opts o = process_opts(c, argv);
    o.pause_mode = GVD_PAUSE_COOPERATIVE;
    gvd_exec *x = spawn(c, &o);
    pid_t pid = gvd_exec_pid(x);
    wait_status(c, "ready");

    assert_int_equal(gvd_exec_pause(x), 0);
    int i = wait_msg(c, 0, GVD_MSG_ACK, "pause", T_WAIT_MS);
    run_for(c, 20);
    assert_false(group_stopped(c, &pid)); /* cooperative: no SIGSTOP */

    assert_int_equal(gvd_exec_resume(x), 0);
    i = wait_msg(c, i, GVD_MSG_ACK, "resume", T_WAIT_MS);

    assert_int_equal(gvd_exec_send(x, "params {\"lr\":0.1}"), 0);
    i = wait_msg(c, i, GVD_MSG_ACK, "params", T_WAIT_MS);
    (void)wait_msg(c, 0, GVD_MSG_STATUS, "params {\"lr\":0.1}", T_WAIT_MS);

    assert_int_equal(gvd_exec_cancel(x, 5000), 0);
    wait_exit(c, T_WAIT_MS);
    /* It acknowledged, cleaned up and exited by itself (status 0, no
     * signal), not by the SIGTERM fallback at 2.5 s. */
    assert_true(find_msg(c, i, GVD_MSG_ACK, "cancel") >= 0);
    assert_true(find_msg(c, 0, GVD_MSG_STATUS, "cleaned up") >= 0);
    assert_int_equal(c->r.exit.exit_status, 0);
    assert_int_equal(c->r.exit.term_signal, 0);
    assert_true(c->r.exit.cancelled);
}

static void test_cooperative_cancel_falls_back_to_signals(void **state)
{
    ctx *c = *state;
    /* counter.sh never reads its control fd. */
    char *const argv[] = {"/bin/sh", (char *)fixture("counter.sh"), (char *)tmp_path(c, "counter"), NULL};
    gvd_exec_opts o = process_opts(c, argv);
    o.pause_mode = GVD_PAUSE_COOPERATIVE;
    gvd_exec *x = spawn(c, &o);
    wait_status(c, "ready");
    uv_update_time(&c->loop);
    uint64_t t0 = uv_hrtime();
    assert_int_equal(gvd_exec_cancel(x, 600), 0);
    wait_exit(c, T_WAIT_MS);
    /* "cancel" ignored; SIGTERM at grace / 2 ended it (not before; and not
     * SIGKILL at the grace: the signal says so, without a clock). */
    double ms = ms_since(t0);
    assert_true(ms >= 280);
    assert_int_equal(c->r.exit.term_signal, SIGTERM);
    assert_true(c->r.exit.cancelled);
}

static void test_cooperative_stubborn_gets_sigkill(void **state)
{
    ctx *c = *state;
    char *const argv[] = {"/bin/sh", (char *)fixture("stubborn.sh"), NULL};
    gvd_exec_opts o = process_opts(c, argv);
    o.pause_mode = GVD_PAUSE_COOPERATIVE;
    gvd_exec *x = spawn(c, &o);
    wait_status(c, "ready");
    uv_update_time(&c->loop);
    uint64_t t0 = uv_hrtime();
    assert_int_equal(gvd_exec_cancel(x, 400), 0);
    wait_exit(c, T_WAIT_MS);
    double ms = ms_since(t0);
    assert_true(ms >= 380); /* SIGKILL at the grace, not before */
    assert_int_equal(c->r.exit.term_signal, SIGKILL);
}

/* ---- the documented examples --------------------------------------------- */

static void test_example_shell(void **state)
{
    ctx *c = *state;
    char *const argv[] = {"/bin/sh", (char *)fixture("example_job.sh"), "3", NULL};
    gvd_exec_opts o = process_opts(c, argv);
    spawn(c, &o);
    wait_exit(c, T_WAIT_MS);
    assert_int_equal(c->r.exit.exit_status, 0);
    assert_int_equal(c->r.nmsg, 6);
    gvd_msg *m = c->r.msgs;
    assert_string_equal(m[0].text, "downloading");
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(m[i].kind, GVD_MSG_PROGRESS);
        assert_true(m[i].current == i && m[i].total == 3);
    }
    assert_int_equal(m[4].kind, GVD_MSG_METRIC);
    assert_string_equal(m[4].text, "parts");
    assert_true(m[4].value == 3);
    assert_string_equal(m[5].text, "done");
    char *log = slurp(tmp_path(c, "job.log"), NULL);
    assert_non_null(log);
    assert_non_null(strstr(log, "fetching part 2\n"));
    free(log);
}

static int count_kind_from(ctx *c, int from, gvd_msg_kind kind)
{
    int n = 0;
    for (int i = from; i < c->r.nmsg; i++)
        n += c->r.msgs[i].kind == kind;
    return n;
}

/* The Python and C examples behave the same: a cooperative job with steps,
 * a metric, pause / resume / params / cancel. */
static void drive_cooperative_example(ctx *c, char *const *argv, const char *params)
{
    gvd_exec_opts o = process_opts(c, argv);
    o.pause_mode = GVD_PAUSE_COOPERATIVE;
    gvd_exec *x = spawn(c, &o);
    wait_status(c, "working");
    wait_msg(c, 0, GVD_MSG_METRIC, "items_per_s", T_WAIT_MS);
    int n = c->r.nmsg + 6;
    wait_msgs(c, n, T_WAIT_MS);

    assert_int_equal(gvd_exec_pause(x), 0);
    int i = wait_msg(c, 0, GVD_MSG_ACK, "pause", T_WAIT_MS);
    run_for(c, 150);
    assert_int_equal(count_kind_from(c, i, GVD_MSG_PROGRESS), 0); /* no work while paused */
    assert_true(find_msg(c, i, GVD_MSG_STATUS, "paused") >= 0);

    assert_int_equal(gvd_exec_resume(x), 0);
    i = wait_msg(c, i, GVD_MSG_ACK, "resume", T_WAIT_MS);
    wait_msg(c, i, GVD_MSG_PROGRESS, NULL, T_WAIT_MS);

    assert_int_equal(gvd_exec_send(x, params), 0);
    i = wait_msg(c, i, GVD_MSG_ACK, "params", T_WAIT_MS);

    assert_int_equal(gvd_exec_cancel(x, 5000), 0);
    wait_exit(c, T_WAIT_MS);
    assert_true(find_msg(c, i, GVD_MSG_ACK, "cancel") >= 0);
    assert_true(find_msg(c, i, GVD_MSG_STATUS, "cleaning up") >= 0);
    assert_int_equal(c->r.exit.exit_status, 0);
    assert_true(c->r.exit.cancelled);
    /* Progress was N/1000 throughout. */
    int p = find_msg(c, 0, GVD_MSG_PROGRESS, NULL);
    assert_true(p >= 0);
    assert_true(c->r.msgs[p].current == 1 && c->r.msgs[p].total == 1000 && c->r.msgs[p].has_total);
}

static void test_example_python(void **state)
{
    ctx *c = *state;
    if (access("/usr/bin/python3", X_OK) != 0)
        skip();
    char *const argv[] = {"/usr/bin/python3", (char *)fixture("example_job.py"), "1000", NULL};
    drive_cooperative_example(c, argv, "params {\"delay\": 0.005}");
}

/* examples/progress_job is built next to this test's directory:
 * <build>/tests/<this test> -> <build>/examples/progress_job. */
static void test_example_c(void **state)
{
    ctx *c = *state;
    char self[PATH_MAX], prog[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    assert_non_null(slash);
    *slash = '\0';
    snprintf(prog, sizeof prog, "%s/../examples/progress_job", self);
    if (access(prog, X_OK) != 0) {
        print_message("examples/progress_job not built (%s): skipped\n", prog);
        skip();
    }
    char *const argv[] = {prog, "1000", NULL};
    drive_cooperative_example(c, argv, "params {\"delay_ms\": 5}");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_pause_stops_and_resume_continues),
        T(test_cancel_while_paused),
        T(test_cancel_kills_the_tree),
        T(test_cancel_escalates_to_sigkill),
        T(test_background_child_ended_with_the_job),
        T(test_stubborn_background_child_killed),
        T(test_exit_waits_for_the_last_output),
        T(test_escaped_child_does_not_hold_exit),
        T(test_cooperative_commands_and_acks),
        T(test_cooperative_cancel_falls_back_to_signals),
        T(test_cooperative_stubborn_gets_sigkill),
        T(test_example_shell),
        T(test_example_python),
        T(test_example_c),
    };
    return cmocka_run_group_tests(tests, runner_group_setup, NULL);
#undef T
}
