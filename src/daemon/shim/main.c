/*
 * main.c — galvani-shim start-up: detach, read the spec from galvanid, start
 * the job, answer, then hand over to the poll loop (loop.c).  See shim.h for
 * the whole picture and docs/protocol.md ("The supervisor") for the lines.
 *
 * The order of the files in the run dir is what makes a daemon crash at any
 * point recoverable without ever running a job twice (docs/guarantees.md):
 *   lock     created and flock()ed by galvanid before it starts us, held by
 *            our fd 4 for as long as we live;
 *   sock     our listening socket, made before the job exists;
 *   started  created just BEFORE the fork: if it is missing the job has
 *            certainly not run, and a restarted daemon may queue it again;
 *   pid      "PID TICKS" just after the fork (tmp + rename);
 *   exit     the exit record (loop.c).
 */
/* pipe2, signalfd's headers and fork-related bits are Linux/GNU. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner/proc.h"
#include "shim.h"

extern char **environ;

int64_t shim_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void shim_close(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

int shim_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Write dir/name atomically: dir/name.tmp, then rename. */
int shim_write_file(const char *dir, const char *name, const char *data, size_t n)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name) >= (int)sizeof tmp ||
        snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = shim_write_all(fd, data, n);
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        (void)unlink(tmp);
    return rc;
}

/* ---- the spec ------------------------------------------------------------ */

static int shim_push(char ***vec, size_t *n, char *s)
{
    char **v = realloc(*vec, (*n + 2) * sizeof *v);
    if (!v)
        return -ENOMEM;
    v[(*n)++] = s;
    v[*n] = NULL;
    *vec = v;
    return 0;
}

typedef struct spec_ctx {
    shim *s;
    bool go, bad;
} spec_ctx;

static bool shim_spec_line(void *ud, char *line, size_t len)
{
    spec_ctx *sc = ud;
    shim *s = sc->s;
    char *rest;
    size_t rl;
    size_t wl = gvd_wire_word(line, len, &rest, &rl);
    long n = gvd_wire_unescape(rest, rl);
    char *v = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!v) {
        sc->bad = true;
        return false;
    }
    memcpy(v, rest, (size_t)n);
    v[n] = '\0';
    int rc = 0;
    if (gvd_wire_is(line, wl, "arg"))
        rc = shim_push(&s->argv, &s->argc, v), v = rc ? v : NULL;
    else if (gvd_wire_is(line, wl, "env"))
        rc = shim_push(&s->env, &s->envc, v), v = rc ? v : NULL;
    else if (gvd_wire_is(line, wl, "cwd"))
        free(s->cwd), s->cwd = v, v = NULL;
    else if (gvd_wire_is(line, wl, "log"))
        free(s->log_path), s->log_path = v, v = NULL;
    else if (gvd_wire_is(line, wl, "dir"))
        free(s->dir), s->dir = v, v = NULL;
    else if (gvd_wire_is(line, wl, "limit"))
        s->log_limit = strtoull(v, NULL, 10);
    else if (gvd_wire_is(line, wl, "job"))
        s->job_id = strtoll(v, NULL, 10);
    else if (gvd_wire_is(line, wl, "attempt"))
        s->attempt = strtoll(v, NULL, 10);
    else if (gvd_wire_is(line, wl, "mode"))
        s->coop = strcmp(v, "cooperative") == 0;
    else if (gvd_wire_is(line, wl, "go"))
        sc->go = true;
    else
        rc = -EINVAL;
    free(v);
    if (rc != 0)
        sc->bad = true;
    return !sc->go && !sc->bad;
}

/* Read the spec from the daemon (blocking, bounded).  0 once "go" came. */
static int shim_read_spec(shim *s)
{
    spec_ctx sc = {s, false, false};
    int64_t deadline = shim_now_ms() + SHIM_SPEC_MS;
    char buf[8192];
    while (!sc.go && !sc.bad) {
        int64_t left = deadline - shim_now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {s->conn, POLLIN, 0};
        int pr = poll(&p, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return pr < 0 ? -errno : -ETIMEDOUT;
        ssize_t r = read(s->conn, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -EPIPE; /* the daemon went away before "go": nothing starts */
        (void)gvd_lines_feed(&s->conn_lines, buf, (size_t)r, shim_spec_line, &sc);
    }
    if (sc.bad || !s->argv || !s->dir)
        return -EINVAL;
    return 0;
}

/* ---- starting the job ---------------------------------------------------- */

static int shim_listen(shim *s)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s/sock", s->dir) >= (int)sizeof sa.sun_path)
        return -ENAMETOOLONG;
    (void)unlink(sa.sun_path);
    s->lst = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s->lst < 0)
        return -errno;
    if (bind(s->lst, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(s->lst, 4) != 0)
        return -errno;
    return 0;
}

static void shim_child(shim *s, int out_w, int err_w, int ctl_c, int errpipe, const sigset_t *old)
{
    /* In the child: become the job.  Only async-signal-safe calls. */
    int e = 0;
    signal(SIGPIPE, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    sigprocmask(SIG_SETMASK, old, NULL);
    if (setsid() < 0)
        e = errno;
    int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (!e && (nul < 0 || dup2(nul, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0 || dup2(ctl_c, 3) < 0))
        e = errno;
    if (!e && s->cwd && chdir(s->cwd) != 0)
        e = errno;
    if (!e) {
        environ = s->env;
        execvp(s->argv[0], s->argv);
        e = errno;
    }
    ssize_t w = write(errpipe, &e, sizeof e);
    (void)w;
    _exit(127);
}

/* opts->env minus our variables, plus ours (as process.c did). */
static int shim_build_env(shim *s)
{
    char **out = NULL;
    size_t n = 0;
    for (size_t i = 0; i < s->envc; i++) {
        if (strncmp(s->env[i], "GALVANI_CONTROL_FD=", 19) == 0 || strncmp(s->env[i], "GALVANI_JOB_ID=", 15) == 0) {
            free(s->env[i]);
            continue;
        }
        if (shim_push(&out, &n, s->env[i]) != 0)
            return -ENOMEM;
    }
    char id[48];
    snprintf(id, sizeof id, "GALVANI_JOB_ID=%lld", s->job_id);
    char *a = strdup("GALVANI_CONTROL_FD=3"), *b = strdup(id);
    if (!a || !b || shim_push(&out, &n, a) != 0 || shim_push(&out, &n, b) != 0) {
        free(a);
        free(b);
        return -ENOMEM;
    }
    free(s->env);
    s->env = out;
    s->envc = n;
    return 0;
}

/* Start the job.  On failure: *stage names what failed, -errno. */
static int shim_start(shim *s, const char **stage)
{
    *stage = "setup";
    int rc = shim_build_env(s);
    if (rc != 0)
        return rc;
    bool log_created = false;
    if (s->log_path) {
        *stage = "log";
        /* 0600, like the database: a job's output is as private as its spec */
        s->log_fd = open(s->log_path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (s->log_fd >= 0)
            log_created = true;
        else if (errno == EEXIST)
            s->log_fd = open(s->log_path, O_WRONLY | O_APPEND | O_CLOEXEC);
        struct stat sb;
        if (s->log_fd < 0 || fstat(s->log_fd, &sb) != 0)
            return -errno;
        s->log_size = (uint64_t)sb.st_size;
        shim_log_attempt(s);
    }
    *stage = "setup";
    int po[2] = {-1, -1}, pe[2] = {-1, -1}, sv[2] = {-1, -1}, ep[2] = {-1, -1};
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    if ((rc = shim_listen(s)) != 0)
        goto fail;
    if (sigprocmask(SIG_BLOCK, &chld, &old) != 0 || (s->sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
        pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0 || pipe2(ep, O_CLOEXEC) != 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        rc = -errno;
        goto fail;
    }
    char marker[PATH_MAX];
    snprintf(marker, sizeof marker, "%s/started", s->dir);
    int mfd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (mfd < 0) {
        rc = -errno;
        goto fail;
    }
    close(mfd);
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        (void)unlink(marker);
        goto fail;
    }
    if (pid == 0)
        shim_child(s, po[1], pe[1], sv[1], ep[1], &old);
    s->pid = pid;
    gvd_proc_stat st;
    if (gvd_proc_stat_read(pid, &st) == 0)
        s->ticks = st.start_ticks;
    shim_close(&po[1]);
    shim_close(&pe[1]);
    shim_close(&sv[1]);
    shim_close(&ep[1]);
    int e = 0;
    ssize_t r;
    do
        r = read(ep[0], &e, sizeof e);
    while (r < 0 && errno == EINTR);
    shim_close(&ep[0]);
    if (r == (ssize_t)sizeof e) {
        /* exec failed: the job never ran; leave no trace of it */
        *stage = "exec";
        int ws;
        (void)waitpid(pid, &ws, 0);
        s->pid = 0;
        (void)unlink(marker);
        rc = -e;
        goto fail;
    }
    char pidline[64];
    int pl = snprintf(pidline, sizeof pidline, "%ld %llu\n", (long)pid, (unsigned long long)s->ticks);
    (void)shim_write_file(s->dir, "pid", pidline, (size_t)pl);
    s->out = po[0];
    s->err = pe[0];
    s->ctl = sv[0];
    int fds[] = {s->out, s->err, s->ctl};
    for (int i = 0; i < 3; i++)
        (void)fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    return 0;
fail:
    shim_close(&po[0]), shim_close(&po[1]), shim_close(&pe[0]), shim_close(&pe[1]);
    shim_close(&sv[0]), shim_close(&sv[1]), shim_close(&ep[0]), shim_close(&ep[1]);
    shim_close(&s->log_fd);
    if (log_created)
        (void)unlink(s->log_path);
    return rc;
}

static void shim_free(shim *s)
{
    for (size_t i = 0; i < s->argc; i++)
        free(s->argv[i]);
    for (size_t i = 0; i < s->envc; i++)
        free(s->env[i]);
    free(s->argv);
    free(s->env);
    free(s->cwd);
    free(s->log_path);
    free(s->dir);
    free(s->conn_buf);
    free(s->keep_progress);
    free(s->keep_status);
    gvd_buf_free(&s->pre);
    gvd_buf_free(&s->q);
    gvd_buf_free(&s->ctlq);
    int *fds[] = {&s->conn, &s->lst, &s->sfd, &s->out, &s->err, &s->ctl, &s->log_fd};
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
        shim_close(fds[i]);
}

int shim_main(int argc, char **argv)
{
    (void)argc, (void)argv; /* argv[1] is the run dir, for `ps` only */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    /* Fork once and let the parent go: galvanid reaps it at once, and we
     * are nobody's child but init's from here on. */
    pid_t p = fork();
    if (p < 0)
        return 1;
    if (p > 0)
        _exit(0);

    static shim s;
    s.conn = 3;
    s.lst = s.sfd = s.out = s.err = s.ctl = s.log_fd = -1;
    s.kill_at = s.drain_at = s.ack_at = -1;
    s.log_ends_nl = true;
    (void)fcntl(3, F_SETFD, FD_CLOEXEC);
    (void)fcntl(4, F_SETFD, FD_CLOEXEC); /* the lock: ours alone, never the job's */
    s.conn_buf = malloc(SHIM_CMD_MAX + 1); /* + 1: room for a NUL after a full line */
    if (!s.conn_buf)
        return 1;
    gvd_lines_init(&s.conn_lines, s.conn_buf, SHIM_CMD_MAX);
    gvd_lines_init(&s.out_lines, s.out_buf, sizeof s.out_buf);
    gvd_lines_init(&s.ctl_lines, s.ctl_buf, sizeof s.ctl_buf);

    if (shim_read_spec(&s) != 0) {
        shim_free(&s);
        return 1;
    }
    const char *stage;
    int rc = shim_start(&s, &stage);
    char line[128];
    int n = rc == 0 ? snprintf(line, sizeof line, "hello %ld %llu running 0\n", (long)s.pid,
                               (unsigned long long)s.ticks)
                    : snprintf(line, sizeof line, "failed %s %d\n", stage, -rc);
    if (rc != 0) {
        /* Gone before we say so: the daemon removes the run dir at once. */
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/sock", s.dir);
        (void)unlink(path);
    }
    /* Blocking for this one line: the daemon is waiting for it. */
    (void)send(s.conn, line, (size_t)n, MSG_NOSIGNAL);
    if (rc != 0) {
        shim_free(&s);
        return 1;
    }
    (void)fcntl(s.conn, F_SETFL, fcntl(s.conn, F_GETFL) | O_NONBLOCK);
    rc = shim_run(&s);
    shim_free(&s);
    close(4);
    return rc;
}
