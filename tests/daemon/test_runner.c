/*
 * test_runner.c — the runner's process backend (spawn, output, protocol,
 * environment, failures, /proc, stale kills) and the demo backend, on real
 * processes and a real libuv loop.  Pause / cancel / cooperative control are
 * in test_runner_control.c; the shared fixtures in runner_test_util.h.
 */
#include "runner_test_util.h"

/* ---- output, messages, exit --------------------------------------------- */

static void test_stdout_protocol_and_exit_status(void **state)
{
    ctx *c = *state;
    char *const argv[] = {"/bin/sh", (char *)fixture("progress.sh"), NULL};
    gvd_exec_opts o = process_opts(c, argv);
    gvd_exec *x = spawn(c, &o);

    /* (Its pid, group, session and start time: test_kill_stale_checks_start_time,
     * on a job that cannot end before /proc is read — this one may, and its
     * supervisor reaps it at once.) */
    assert_true(gvd_exec_pid(x) > 1);

    wait_exit(c, T_WAIT_MS);
    assert_int_equal(c->r.exit.exit_status, 3);
    assert_int_equal(c->r.exit.term_signal, 0);
    assert_false(c->r.exit.cancelled);
    assert_false(c->r.exit.lost);
    assert_int_equal(access(c->run, F_OK), -1); /* consumed: the run dir is gone */

    /* Every message, in order, all before on_exit. */
    assert_int_equal(c->r.nmsg, 5);
    assert_int_equal(c->r.msgs_at_exit, 5);
    gvd_msg *m = c->r.msgs;
    assert_int_equal(m[0].kind, GVD_MSG_PROGRESS);
    assert_true(m[0].current == 10 && m[0].total == 100 && !m[0].has_total);
    assert_int_equal(m[1].kind, GVD_MSG_STATUS);
    assert_string_equal(m[1].text, "compiling things");
    assert_int_equal(m[2].kind, GVD_MSG_INVALID);
    assert_string_equal(m[2].reason, "unknown message type (expected progress, status, metric or ack)");
    assert_string_equal(m[2].text, "::bogus line");
    assert_int_equal(m[3].kind, GVD_MSG_METRIC);
    assert_string_equal(m[3].text, "loss");
    assert_true(m[3].value == 0.31);
    assert_int_equal(m[4].kind, GVD_MSG_PROGRESS);
    assert_true(m[4].current == 20 && m[4].total == 40 && m[4].has_total);

    /* The log has stdout verbatim and the stderr line (a whole line, so it
     * sits between two stdout lines). */
    char *log = slurp(tmp_path(c, "job.log"), NULL);
    assert_non_null(log);
    char *err = strstr(log, "oops on stderr\n");
    assert_non_null(err);
    memmove(err, err + 15, strlen(err + 15) + 1);
    assert_string_equal(log, "hello from the job\n::progress 10\n::status compiling things\n::bogus line\n"
                             "::metric loss 0.31\n::progress 20/40\n");
    free(log);
    struct stat sb;
    assert_int_equal(stat(tmp_path(c, "job.log"), &sb), 0);
    mode_t mask = umask(0);
    umask(mask);
    assert_int_equal(sb.st_mode & 0777, 0600 & ~mask); /* as private as the database (issue 15) */
}

static void test_control_fd_messages(void **state)
{
    ctx *c = *state;
    char *const argv[] = {"/bin/sh", (char *)fixture("control.sh"), NULL};
    gvd_exec_opts o = process_opts(c, argv);
    spawn(c, &o);
    wait_exit(c, T_WAIT_MS);
    assert_int_equal(c->r.exit.exit_status, 0);
    assert_int_equal(c->r.nmsg, 4);
    gvd_msg *m = c->r.msgs;
    assert_int_equal(m[0].kind, GVD_MSG_PROGRESS);
    assert_true(m[0].current == 5 && m[0].total == 10 && m[0].has_total);
    assert_int_equal(m[1].kind, GVD_MSG_STATUS);
    assert_string_equal(m[1].text, "via control");
    assert_int_equal(m[2].kind, GVD_MSG_METRIC);
    assert_string_equal(m[2].text, "x");
    assert_true(m[2].value == 1.5);
    assert_int_equal(m[3].kind, GVD_MSG_PROGRESS);
    assert_true(m[3].current == 10 && m[3].total == 10);
    assert_int_equal(file_size(tmp_path(c, "job.log")), 0); /* nothing on stdout */
}

static void test_environment_is_exact(void **state)
{
    ctx *c = *state;
    char *const argv[] = {"/usr/bin/env", NULL};
    /* A job-provided GALVANI_JOB_ID is replaced by the real one. */
    char *const env[] = {"FOO=bar", "SPACED=a b", "GALVANI_JOB_ID=999", "EMPTY=", NULL};
    gvd_exec_opts o = process_opts(c, argv);
    o.env = env;
    o.job_id = 42;
    spawn(c, &o);
    wait_exit(c, T_WAIT_MS);
    assert_int_equal(c->r.exit.exit_status, 0);
    char *log = slurp(tmp_path(c, "job.log"), NULL);
    assert_non_null(log);
    assert_string_equal(log, "FOO=bar\nSPACED=a b\nEMPTY=\nGALVANI_CONTROL_FD=3\nGALVANI_JOB_ID=42\n");
    free(log);
}

static void test_environment_null_and_path_default(void **state)
{
    ctx *c = *state;
    /* No env at all: the job sees only galvani's two variables, and "env"
     * is still found (execvp's default search path). */
    char *const argv[] = {"env", NULL};
    gvd_exec_opts o = process_opts(c, argv);
    o.env = NULL;
    o.job_id = -5;
    spawn(c, &o);
    wait_exit(c, T_WAIT_MS);
    char *log = slurp(tmp_path(c, "job.log"), NULL);
    assert_non_null(log);
    assert_string_equal(log, "GALVANI_CONTROL_FD=3\nGALVANI_JOB_ID=-5\n");
    free(log);
}

/* The job gets /dev/null on stdin, our socket on fd 3, and no other
 * descriptor of ours — not even one the daemon inherited without
 * close-on-exec (like `leak` here). */
static void test_child_descriptors(void **state)
{
    ctx *c = *state;
    int leak = open("/dev/null", O_RDONLY);
    assert_true(leak > 3);
    char *const argv[] = {"/bin/sh", "-c",
                          "readlink /proc/$$/fd/0; cat; "
                          "case $(readlink /proc/$$/fd/3) in socket:*) echo socket3;; esac; "
                          "ls /proc/$$/fd",
                          NULL};
    gvd_exec_opts o = process_opts(c, argv);
    spawn(c, &o);
    wait_exit(c, T_WAIT_MS);
    assert_int_equal(c->r.exit.exit_status, 0);
    char *log = slurp(tmp_path(c, "job.log"), NULL);
    assert_non_null(log);
    assert_string_equal(log, "/dev/null\nsocket3\n0\n1\n2\n3\n");
    free(log);
    assert_int_equal(close(leak), 0);
}

static void test_cwd(void **state)
{
    ctx *c = *state;
    char *const argv[] = {"/bin/pwd", NULL};
    gvd_exec_opts o = process_opts(c, argv);
    o.cwd = c->dir;
    spawn(c, &o);
    wait_exit(c, T_WAIT_MS);
    char real[PATH_MAX], expect[PATH_MAX + 2];
    assert_non_null(realpath(c->dir, real));
    snprintf(expect, sizeof expect, "%s\n", real);
    char *log = slurp(tmp_path(c, "job.log"), NULL);
    assert_non_null(log);
    assert_string_equal(log, expect);
    free(log);
}

static void test_path_search_and_no_log(void **state)
{
    ctx *c = *state;
    char *const argv[] = {"sh", "-c", "echo ::progress 9", NULL};
    gvd_exec_opts o = process_opts(c, argv);
    o.log_path = NULL; /* output read and dropped; the protocol still works */
    spawn(c, &o);
    wait_exit(c, T_WAIT_MS);
    assert_int_equal(c->r.nmsg, 1);
    assert_true(c->r.msgs[0].current == 9);
    assert_int_equal(file_size(tmp_path(c, "job.log")), -1);
}

static void test_partial_and_overlong_lines(void **state)
{
    ctx *c = *state;
    char *const argv[] = {"/bin/sh", (char *)fixture("partial.sh"), NULL};
    gvd_exec_opts o = process_opts(c, argv);
    spawn(c, &o);
    wait_exit(c, T_WAIT_MS);
    /* "::prog" + "ress 42" is one message; the 10 kB status line is dropped
     * whole (not cut into a bogus status); the last line has no newline. */
    assert_int_equal(c->r.nmsg, 3);
    assert_int_equal(c->r.msgs[0].kind, GVD_MSG_PROGRESS);
    assert_true(c->r.msgs[0].current == 42);
    assert_true(c->r.msgs[1].current == 43);
    assert_true(c->r.msgs[2].current == 77);
    assert_int_equal(c->r.msgs_at_exit, 3);
    /* The dropped line is still in the log. */
    assert_int_equal(file_size(tmp_path(c, "job.log")), 14 + 9 + 10000 + 15 + 13);
}

/* ---- the log cap --------------------------------------------------------- */

static void test_log_cap(void **state)
{
    ctx *c = *state;
    char *const argv[] = {"/bin/sh", (char *)fixture("flood.sh"), NULL};
    gvd_exec_opts o = process_opts(c, argv);
    o.log_limit = 10240;
    spawn(c, &o);
    wait_exit(c, T_WAIT_MS);
    /* The job was never blocked: it wrote its 1 MiB and the line after. */
    assert_int_equal(c->r.exit.exit_status, 0);
    assert_int_equal(c->r.nmsg, 1);
    assert_true(c->r.msgs[0].current == 100);
    size_t len = 0;
    char *log = slurp(tmp_path(c, "job.log"), &len);
    assert_non_null(log);
    const char marker[] = "\n[galvani: log truncated]\n";
    assert_int_equal(len, 10240 + sizeof marker - 1);
    for (size_t i = 0; i < 10240; i++)
        if (log[i] != 'a')
            fail_msg("byte %zu is %d", i, log[i]);
    assert_string_equal(log + 10240, marker);
    free(log);
}

static void test_log_cap_counts_existing_content(void **state)
{
    ctx *c = *state;
    const char *path = tmp_path(c, "job.log");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 10234; i++)
        fputc('b', f);
    fputc('\n', f);
    assert_int_equal(fclose(f), 0);
    char *const argv[] = {"/bin/sh", "-c", "echo abcdefghij", NULL};
    gvd_exec_opts o = process_opts(c, argv);
    o.log_limit = 10240;
    spawn(c, &o);
    wait_exit(c, T_WAIT_MS);
    size_t len = 0;
    char *log = slurp(path, &len);
    assert_non_null(log);
    assert_string_equal(log + 10235, "abcde\n[galvani: log truncated]\n");
    assert_int_equal(len, 10235 + 5 + 26);
    free(log);
}

/* ---- failures ------------------------------------------------------------ */

/* Refused before the supervisor is launched (sync: NULL and err) or by
 * the supervisor (async: on_start with the message): the same words. */
static void expect_spawn_failure(ctx *c, gvd_exec_opts *o, const char *message)
{
    char err[512] = "untouched";
    c->r.starts = 0;
    c->r.x = gvd_exec_spawn(&c->loop, o, &events, &c->r, err, sizeof err);
    if (c->r.x) {
        assert_true(gvd_exec_starting(c->r.x));
        assert_true(run_until(c, started, NULL, T_WAIT_MS));
        assert_null(c->r.x); /* on_start freed it */
        snprintf(err, sizeof err, "%s", c->r.start_error);
    }
    assert_string_equal(err, message);
    /* Whatever uv_spawn initialised closes on the loop. */
    uv_run(&c->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_alive(&c->loop), 0);
    assert_int_equal(c->r.exits, 0);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_spawn_failures(void **state)
{
    ctx *c = *state;
    /* libuv opens one /dev/null per loop with its first stream (a reserve
     * for EMFILE), kept until the loop closes; a refused spawn now reads
     * the refusal on a stream, so make that fd exist before counting. */
    uv_pipe_t first;
    assert_int_equal(uv_pipe_init(&c->loop, &first, 0), 0);
    uv_close((uv_handle_t *)&first, NULL);
    uv_run(&c->loop, UV_RUN_NOWAIT);
    int fds = count_fds();
    char msg[PATH_MAX * 2];
    const char *log = tmp_path(c, "job.log");

    char *const missing[] = {"no-such-command-xyz", "arg", NULL};
    gvd_exec_opts o = process_opts(c, missing);
    expect_spawn_failure(c, &o, "no such command: no-such-command-xyz (not found in PATH)");
    assert_int_equal(file_size(log), -1); /* the log it created is removed again */
    assert_int_equal(access(c->run, F_OK), -1); /* and the run dir */

    char *const nofile[] = {"/nonexistent/bin/tool", NULL};
    o = process_opts(c, nofile);
    expect_spawn_failure(c, &o, "no such file: /nonexistent/bin/tool");

    char plain[PATH_MAX], badinterp[PATH_MAX];
    snprintf(plain, sizeof plain, "%s", tmp_path(c, "not-executable"));
    snprintf(badinterp, sizeof badinterp, "%s", tmp_path(c, "bad-interpreter"));
    write_file(plain, "#!/bin/sh\necho hi\n", 0644);
    char *const noexec[] = {plain, NULL};
    o = process_opts(c, noexec);
    snprintf(msg, sizeof msg, "permission denied: cannot execute %s", plain);
    expect_spawn_failure(c, &o, msg);

    write_file(badinterp, "#!/nonexistent/interpreter\n", 0755);
    char *const bad[] = {badinterp, NULL};
    o = process_opts(c, bad);
    snprintf(msg, sizeof msg, "cannot execute %s: its interpreter or loader was not found", badinterp);
    expect_spawn_failure(c, &o, msg);

    char *const ok[] = {"/bin/true", NULL};
    o = process_opts(c, ok);
    o.cwd = "/nonexistent-gvd-dir";
    expect_spawn_failure(c, &o, "cannot use directory /nonexistent-gvd-dir: No such file or directory");
    o.cwd = plain;
    snprintf(msg, sizeof msg, "not a directory: %s", plain);
    expect_spawn_failure(c, &o, msg);

    o = process_opts(c, ok);
    o.log_path = "/nonexistent-gvd-dir/x.log";
    expect_spawn_failure(c, &o, "cannot open log file /nonexistent-gvd-dir/x.log: No such file or directory");

    char *const empty[] = {NULL};
    o = process_opts(c, empty);
    expect_spawn_failure(c, &o, "empty command");
    o.argv = NULL;
    expect_spawn_failure(c, &o, "empty command");
    char *const blank[] = {"", NULL};
    o.argv = blank;
    expect_spawn_failure(c, &o, "empty command");

    /* A failing spawn with no room for a message does not crash. */
    o = process_opts(c, missing);
    o.cwd = "/nonexistent-gvd-dir";
    assert_null(gvd_exec_spawn(&c->loop, &o, &events, &c->r, NULL, 0));
    uv_run(&c->loop, UV_RUN_NOWAIT);

    assert_int_equal(count_fds(), fds);
}

/* ---- handle rules -------------------------------------------------------- */

static void test_send_rules_and_calls_after_exit(void **state)
{
    ctx *c = *state;
    c->r.keep_on_exit = true;
    char *const argv[] = {"/bin/sleep", "1000", NULL};
    gvd_exec_opts o = process_opts(c, argv);
    gvd_exec *x = spawn(c, &o);

    assert_int_equal(gvd_exec_send(x, "two\nlines"), -EINVAL);
    char *huge = malloc(70000);
    assert_non_null(huge);
    memset(huge, 'p', 69999);
    huge[69999] = '\0';
    assert_int_equal(gvd_exec_send(x, huge), -EMSGSIZE);
    /* sleep never reads fd 3: the socket buffer fills, then the queue, and
     * then sends are refused instead of growing memory. */
    huge[60000] = '\0';
    int rc = 0, sent = 0;
    for (int i = 0; i < 100 && rc == 0; i++) {
        rc = gvd_exec_send(x, huge);
        if (rc == 0)
            sent++;
        uv_run(&c->loop, UV_RUN_NOWAIT);
    }
    free(huge);
    assert_int_equal(rc, -ENOBUFS);
    assert_true(sent >= 4); /* at least the 256 KiB queue's worth */

    assert_int_equal(gvd_exec_cancel(x, 0), 0); /* no grace: SIGKILL now */
    assert_int_equal(gvd_exec_cancel(x, 0), 0); /* twice is fine */
    wait_exit(c, T_WAIT_MS);
    assert_int_equal(c->r.exit.exit_status, -1);
    assert_int_equal(c->r.exit.term_signal, SIGKILL);
    assert_true(c->r.exit.cancelled);

    assert_int_equal(gvd_exec_send(x, "resume"), -EPIPE);
    assert_int_equal(gvd_exec_pause(x), -ESRCH);
    assert_int_equal(gvd_exec_resume(x), -ESRCH);
    assert_int_equal(gvd_exec_cancel(x, 100), -ESRCH);
    assert_true(gvd_exec_pid(x) > 0); /* still answers until freed */
    run_for(c, 20);
    assert_int_equal(c->r.exits, 1);
}

/* Freeing a live job's handle only detaches galvanid from its supervisor:
 * the job keeps running, and gvd_exec_adopt takes it back — pid, start time,
 * pause and cancel included; once the exit is consumed the run dir goes. */
static void test_free_detaches_and_adopt_takes_over(void **state)
{
    ctx *c = *state;
    char *const argv[] = {"/bin/sh", (char *)fixture("tree.sh"), (char *)tmp_path(c, "pid"), NULL};
    gvd_exec_opts o = process_opts(c, argv);
    gvd_exec *x = spawn(c, &o);
    pid_t pid = gvd_exec_pid(x);
    uint64_t ticks = gvd_exec_start_ticks(x);
    pid_t grandchild = read_pid_file(c, tmp_path(c, "pid"));
    gvd_exec_free(x);
    c->r.x = NULL;
    run_for(c, 100);
    assert_false(pid_dead(pid));
    assert_false(pid_dead(grandchild));
    assert_int_equal(c->r.exits, 0); /* nothing is called back after free */

    bool never = true;
    char err[256] = "";
    gvd_exec_adopt_opts ao = {.run_dir = c->run, .job_id = 7, .pause_mode = GVD_PAUSE_STOP};
    x = c->r.x = gvd_exec_adopt(&c->loop, &ao, &events, &c->r, &never, err, sizeof err);
    if (!x)
        fail_msg("adopt failed: %s", err);
    assert_false(never);
    assert_int_equal(gvd_exec_pid(x), pid);
    assert_true(gvd_exec_start_ticks(x) == ticks);
    assert_false(gvd_exec_paused(x));
    assert_int_equal(gvd_exec_pause(x), 0);
    assert_true(run_until(c, group_stopped, &pid, T_WAIT_MS));
    assert_int_equal(gvd_exec_cancel(x, 2000), 0);
    wait_exit(c, T_WAIT_MS);
    assert_int_equal(c->r.exit.term_signal, SIGTERM);
    assert_true(c->r.exit.cancelled);
    assert_false(c->r.exit.lost);
    assert_true(run_until(c, pid_dead_pred, &grandchild, T_WAIT_MS));
    /* on_exit freed the handle: the exit is consumed, the run dir is gone. */
    assert_int_equal(access(c->run, F_OK), -1);
}

/* ---- /proc and stale processes ------------------------------------------- */

static void test_proc_stat_parse(void **state)
{
    (void)state;
    /* A command name with spaces, parentheses and fake fields. */
    const char *line = "4242 (x) S 1 (y) T 1 4242 4243 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 987654 12345 67\n";
    gvd_proc_stat st;
    assert_int_equal(gvd_proc_stat_parse(line, strlen(line), &st), 0);
    assert_int_equal(st.state, 'T');
    assert_int_equal(st.ppid, 1);
    assert_int_equal(st.pgrp, 4242);
    assert_int_equal(st.session, 4243);
    assert_true(st.start_ticks == 987654);

    const char *bad[] = {
        "",
        "4242 x S 1 2 3",                                              /* no ')' */
        "4242 (x) T 1 4242 4243 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0", /* field 22 missing */
        "4242 (x) T 1 4242 4243 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 9x8 1",
        "4242 (x) TT 1 4242 4243 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 98 1",
        "4242 (x)  T 1 4242 4243 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 98 1",
        "4242 (x) T 1 4242 4243 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 99999999999999999999999 1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(gvd_proc_stat_parse(bad[i], strlen(bad[i]), &st), -EINVAL);

    assert_int_equal(gvd_proc_stat_read(getpid(), &st), 0);
    assert_int_equal(st.ppid, getppid());
    assert_int_equal(gvd_proc_stat_read(0, &st), -EINVAL);
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
    size_t len = 0;
    char *data = slurp(from, &len);
    assert_non_null(data);
    FILE *f = fopen(to, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(to, mode), 0);
    free(data);
}

static void test_kill_stale_checks_start_time(void **state)
{
    ctx *c = *state;
    /* A process whose name looks like stat fields: "x) S 1 (y". */
    const char *odd = tmp_path(c, "x) S 1 (y");
    copy_file("/bin/sleep", odd, 0755);
    char *const argv[] = {(char *)odd, "1000", NULL};
    gvd_exec_opts o = process_opts(c, argv);
    gvd_exec *x = spawn(c, &o);
    pid_t pid = gvd_exec_pid(x);
    uint64_t ticks = gvd_exec_start_ticks(x);
    gvd_proc_stat st;
    assert_int_equal(gvd_proc_stat_read(pid, &st), 0);
    assert_true(st.start_ticks == ticks);
    assert_true(ticks > 0);
    /* The job leads its own session and process group. */
    assert_int_equal(st.pgrp, pid);
    assert_int_equal(st.session, pid);

    /* Another start time: not ours, left alone. */
    assert_int_equal(gvd_exec_kill_stale(pid, ticks + 1), 0);
    assert_int_equal(gvd_exec_kill_stale(pid, ticks - 1), 0);
    run_for(c, 50);
    assert_int_equal(c->r.exits, 0);
    assert_false(pid_dead(pid));

    /* The same one: killed, group and all. */
    assert_int_equal(gvd_exec_kill_stale(pid, ticks), 1);
    wait_exit(c, T_WAIT_MS);
    assert_int_equal(c->r.exit.term_signal, SIGKILL);
    assert_false(c->r.exit.cancelled);
    assert_int_equal(gvd_exec_kill_stale(pid, ticks), 0); /* gone now */

    assert_int_equal(gvd_exec_kill_stale(1, 0), -EINVAL);
    assert_int_equal(gvd_exec_kill_stale(0, 0), -EINVAL);
    assert_int_equal(gvd_exec_kill_stale(-5, 0), -EINVAL);
    /* Ourselves, with a wrong start time: untouched (we are still here). */
    assert_int_equal(gvd_proc_stat_read(getpid(), &st), 0);
    assert_int_equal(gvd_exec_kill_stale(getpid(), st.start_ticks + 1), 0);
}

/* ---- the demo backend ---------------------------------------------------- */

static gvd_exec *spawn_demo(ctx *c, unsigned step_ms, double start)
{
    gvd_exec_opts o;
    memset(&o, 0, sizeof o);
    o.kind = GVD_EXEC_DEMO;
    o.demo_step_ms = step_ms;
    o.demo_start = start;
    o.job_id = 1;
    return spawn(c, &o);
}

static void assert_demo_steps(ctx *c, int first, int last)
{
    assert_int_equal(c->r.nmsg, last - first + 1);
    for (int i = 0; i < c->r.nmsg; i++) {
        gvd_msg *m = &c->r.msgs[i];
        assert_int_equal(m->kind, GVD_MSG_PROGRESS);
        assert_true(m->current == first + i);
        assert_true(m->total == 100.0);
        assert_false(m->has_total);
    }
}

static void test_demo_runs_to_100(void **state)
{
    ctx *c = *state;
    gvd_exec *x = spawn_demo(c, 1, 0);
    assert_int_equal(gvd_exec_pid(x), 0);
    assert_true(gvd_exec_start_ticks(x) == 0);
    assert_int_equal(gvd_exec_send(x, "params {}"), -ENOTSUP);
    wait_exit(c, T_WAIT_MS);
    assert_demo_steps(c, 1, 100);
    assert_int_equal(c->r.exit.exit_status, 0);
    assert_int_equal(c->r.exit.term_signal, 0);
    assert_false(c->r.exit.cancelled);
}

static void test_demo_resumes_from_start(void **state)
{
    ctx *c = *state;
    spawn_demo(c, 1, 97);
    wait_exit(c, T_WAIT_MS);
    assert_demo_steps(c, 98, 100);
}

static void test_demo_at_100_exits(void **state)
{
    ctx *c = *state;
    spawn_demo(c, 1000, 100);
    assert_int_equal(c->r.exits, 0); /* not from inside spawn */
    wait_exit(c, T_WAIT_MS);
    assert_int_equal(c->r.nmsg, 0);
    assert_false(c->r.exit.cancelled);
}

static void test_demo_pause_resume(void **state)
{
    ctx *c = *state;
    gvd_exec *x = spawn_demo(c, 3, 0);
    wait_msgs(c, 10, T_WAIT_MS);
    assert_int_equal(gvd_exec_pause(x), 0);
    assert_int_equal(gvd_exec_pause(x), 0);
    int n = c->r.nmsg;
    run_for(c, 60); /* 20 steps' worth */
    assert_int_equal(c->r.nmsg, n);
    assert_int_equal(gvd_exec_resume(x), 0);
    assert_int_equal(gvd_exec_resume(x), 0);
    wait_exit(c, T_WAIT_MS);
    assert_demo_steps(c, 1, 100);
    assert_false(c->r.exit.cancelled);
}

static void test_demo_cancel(void **state)
{
    ctx *c = *state;
    gvd_exec *x = spawn_demo(c, 2, 0);
    wait_msgs(c, 5, T_WAIT_MS);
    assert_int_equal(gvd_exec_pause(x), 0);
    assert_int_equal(gvd_exec_cancel(x, 5000), 0);
    assert_int_equal(c->r.exits, 0); /* delivered from the loop, not from cancel */
    assert_int_equal(gvd_exec_pause(x), -EBUSY);
    int n = c->r.nmsg;
    wait_exit(c, T_WAIT_MS);
    assert_int_equal(c->r.nmsg, n);
    assert_int_equal(c->r.exit.exit_status, 0);
    assert_int_equal(c->r.exit.term_signal, 0);
    assert_true(c->r.exit.cancelled);
}

static void test_demo_free_while_running(void **state)
{
    ctx *c = *state;
    gvd_exec *x = spawn_demo(c, 1, 0);
    wait_msgs(c, 3, T_WAIT_MS);
    gvd_exec_free(x);
    c->r.x = NULL;
    int n = c->r.nmsg;
    run_for(c, 30);
    assert_int_equal(c->r.nmsg, n);
    assert_int_equal(c->r.exits, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_stdout_protocol_and_exit_status),
        T(test_control_fd_messages),
        T(test_environment_is_exact),
        T(test_environment_null_and_path_default),
        T(test_child_descriptors),
        T(test_cwd),
        T(test_path_search_and_no_log),
        T(test_partial_and_overlong_lines),
        T(test_log_cap),
        T(test_log_cap_counts_existing_content),
        T(test_spawn_failures),
        T(test_send_rules_and_calls_after_exit),
        T(test_free_detaches_and_adopt_takes_over),
        cmocka_unit_test(test_proc_stat_parse),
        T(test_kill_stale_checks_start_time),
        T(test_demo_runs_to_100),
        T(test_demo_resumes_from_start),
        T(test_demo_at_100_exits),
        T(test_demo_pause_resume),
        T(test_demo_cancel),
        T(test_demo_free_while_running),
    };
    return cmocka_run_group_tests(tests, runner_group_setup, NULL);
#undef T
}
