/*
 * test_spawner.c — supervisors from the fork server (runner/spawner.c,
 * shim/serve.c): a job runs under one just as under an exec'd galvani-shim
 * (its name and command line, its descriptors, its session, its parent),
 * and when the server is gone, or cannot be started, the runner starts
 * supervisors with posix_spawn again.  Real processes, the real
 * galvani-shim ($GALVANI_SHIM), a real libuv loop.
 */
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "runner/spawner.h"
#include "runner_test_util.h"
#include "shim/shim.h"

static const char *shim_bin(void)
{
    const char *p = getenv("GALVANI_SHIM");
    assert_non_null(p);
    return p;
}

static gvd_proc_stat stat_of(pid_t pid)
{
    gvd_proc_stat st;
    assert_int_equal(gvd_proc_stat_read(pid, &st), 0);
    return st;
}

/* /proc/PID/<name> into buf (NUL-terminated); its length. */
static size_t proc_read(pid_t pid, const char *name, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/%s", (long)pid, name);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    assert_true(n >= 0);
    buf[n] = '\0';
    return (size_t)n;
}

/* The descriptors a process holds, as "0 1 2 3 4 ..." and what 0 and 4 are. */
static void fds_of(pid_t pid, char *list, size_t cap, char *fd0, char *fd4)
{
    char path[64], line[16];
    list[0] = '\0';
    for (int fd = 0; fd < 64; fd++) {
        snprintf(path, sizeof path, "/proc/%ld/fd/%d", (long)pid, fd);
        char target[PATH_MAX];
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n < 0)
            continue;
        target[n] = '\0';
        snprintf(line, sizeof line, "%s%d", list[0] ? " " : "", fd);
        strncat(list, line, cap - strlen(list) - 1);
        if (fd == 0)
            snprintf(fd0, PATH_MAX, "%s", target);
        if (fd == 4)
            snprintf(fd4, PATH_MAX, "%s", target);
    }
}

static void reset(ctx *c)
{
    c->r.exits = c->r.nmsg = c->r.starts = 0;
    c->r.x = NULL;
}

/* One job under whichever supervisor the runner starts; what /proc says of
 * that supervisor while the job runs. */
typedef struct seen {
    char comm[64], cmdline[PATH_MAX], fds[256], fd0[PATH_MAX], fd4[PATH_MAX];
    size_t cmdline_len;
    gvd_proc_stat st;
    pid_t shim;
} seen;

static void run_one(ctx *c, gvd_spawner *sp, seen *s)
{
    char *const argv[] = {"/bin/sh", "-c", "echo ::progress 5; exec sleep 30", NULL};
    gvd_exec_opts o = process_opts(c, argv);
    o.spawner = sp;
    gvd_exec *x = spawn(c, &o);
    c->job_pid = gvd_exec_pid(x);
    wait_msgs(c, 1, T_WAIT_MS);
    assert_int_equal(c->r.msgs[0].kind, GVD_MSG_PROGRESS);
    s->shim = stat_of(c->job_pid).ppid;
    proc_read(s->shim, "comm", s->comm, sizeof s->comm);
    s->cmdline_len = proc_read(s->shim, "cmdline", s->cmdline, sizeof s->cmdline);
    s->st = stat_of(s->shim);
    fds_of(s->shim, s->fds, sizeof s->fds, s->fd0, s->fd4);
    assert_int_equal(kill(-c->job_pid, SIGKILL), 0);
    wait_exit(c, T_WAIT_MS);
    assert_int_equal(c->r.exit.term_signal, SIGKILL);
    c->job_pid = 0;
    reset(c);
}

static void test_a_forked_supervisor_is_an_execd_one(void **state)
{
    ctx *c = *state;
    gvd_spawner *sp = gvd_spawner_new();
    assert_non_null(sp);
    assert_int_equal(gvd_spawner_pid(sp), 0); /* started at the first job */
    seen forked, execd;
    run_one(c, sp, &forked);
    pid_t server = gvd_spawner_pid(sp);
    assert_true(server > 0 && gvd_spawner_usable(sp));
    run_one(c, NULL, &execd); /* posix_spawn of the same binary */

    /* its name, and "galvani-shim RUN_DIR" as its command line */
    assert_string_equal(forked.comm, "galvani-shim\n");
    assert_string_equal(forked.comm, execd.comm);
    assert_string_equal(forked.cmdline, "galvani-shim");
    assert_string_equal(forked.cmdline + strlen("galvani-shim") + 1, c->run);
    assert_string_equal(execd.cmdline + strlen("galvani-shim") + 1, c->run);
    /* the same descriptors: /dev/null on 0, the run dir's lock on 4, and
     * nothing of the server's (its socket) */
    assert_string_equal(forked.fds, execd.fds);
    assert_string_equal(forked.fd0, "/dev/null");
    char lock[PATH_MAX + 8];
    snprintf(lock, sizeof lock, "%s/lock", c->run);
    assert_string_equal(forked.fd4, lock);
    assert_string_equal(execd.fd4, lock);
    /* a session of its own, and nobody's child but init's (or a subreaper's):
     * neither ours nor the server's */
    assert_int_not_equal(forked.st.session, getsid(0));
    assert_int_not_equal(forked.st.ppid, getpid());
    assert_int_not_equal(forked.st.ppid, server);
    assert_int_equal(forked.st.ppid, execd.st.ppid);

    gvd_spawner_free(sp); /* the server ends with our end of its socket */
    gvd_proc_stat st;
    assert_int_equal(gvd_proc_stat_read(server, &st), -ESRCH);
}

static void test_without_a_server_supervisors_are_execd(void **state)
{
    ctx *c = *state;
    gvd_spawner *sp = gvd_spawner_new();
    seen s;
    run_one(c, sp, &s);
    pid_t server = gvd_spawner_pid(sp);
    /* The server dies: the next start notices, gives up on it, and starts
     * the supervisor with posix_spawn; the job runs all the same. */
    assert_int_equal(kill(server, SIGKILL), 0);
    run_one(c, sp, &s);
    assert_string_equal(s.comm, "galvani-shim\n");
    assert_false(gvd_spawner_usable(sp));
    gvd_proc_stat st;
    assert_int_equal(gvd_proc_stat_read(server, &st), -ESRCH); /* reaped */
    gvd_spawner_free(sp);

    /* A server that cannot be started: refused at once, and never again. */
    sp = gvd_spawner_new();
    assert_int_equal(gvd_spawner_spawn(sp, "/nonexistent/galvani-shim", c->run, 0, 0), -ESRCH);
    assert_false(gvd_spawner_usable(sp));
    assert_int_equal(gvd_spawner_spawn(sp, shim_bin(), c->run, 0, 0), -ESRCH);
    gvd_spawner_free(sp);
    gvd_spawner_free(NULL);
}

/* The server checks what it is sent: a request without the two
 * descriptors is refused (-EINVAL) and the server goes on serving. */
static void test_the_server_refuses_a_bad_request(void **state)
{
    ctx *c = *state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(sv[1], SHIM_SERVE_FD);
        char *argv[] = {(char *)shim_bin(), "--serve", NULL};
        execv(argv[0], argv);
        _exit(127);
    }
    close(sv[1]);
    shim_serve_req rq = {.version = SHIM_SERVE_VERSION};
    char msg[sizeof rq + 8];
    memcpy(msg, &rq, sizeof rq);
    strcpy(msg + sizeof rq, "/x");
    assert_int_equal(send(sv[0], msg, sizeof rq + 3, 0), (ssize_t)(sizeof rq + 3));
    int64_t answer = 0;
    assert_int_equal(recv(sv[0], &answer, sizeof answer, 0), (ssize_t)sizeof answer);
    assert_int_equal(answer, -EINVAL);
    rq.version = 99; /* and a version it does not speak, descriptors or not */
    memcpy(msg, &rq, sizeof rq);
    assert_int_equal(send(sv[0], msg, sizeof rq + 3, 0), (ssize_t)(sizeof rq + 3));
    assert_int_equal(recv(sv[0], &answer, sizeof answer, 0), (ssize_t)sizeof answer);
    assert_true(answer == -EINVAL || answer == -EPROTO);
    close(sv[0]); /* EOF: it exits */
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    (void)c;
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_a_forked_supervisor_is_an_execd_one),
        T(test_without_a_server_supervisors_are_execd),
        T(test_the_server_refuses_a_bad_request),
    };
    return cmocka_run_group_tests(tests, runner_group_setup, NULL);
#undef T
}
