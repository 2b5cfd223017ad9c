/*
 * shimlink.c — the blocking, bounded parts of talking to a job's supervisor
 * (galvani-shim): launching it, reconnecting to it after a restart, and
 * reading its run dir.
 *
 * Launching does not wait for the shim's answer: gvd__shim_launch prepares
 * the run dir, posix_spawns the shim and hands back the connection and the
 * encoded spec; process.c writes the spec and reads the answer ("hello PID
 * TICKS ..." or "failed STAGE ERRNO") on the loop, so a spawn never stalls
 * the requests and commits around it.  The words of a refusal ("no such
 * command: foo", "permission denied"...) are built here
 * (gvd__shim_start_error) from the same stage and errno as always.
 *
 * The run dir (docs/guarantees.md) is created here, 0700, with a `lock`
 * file we flock() and hand to the shim as fd 4: the lock then lives exactly
 * as long as the shim, so a later daemon that can take it knows no shim is
 * there.  The shim is started by its fork server (spawner.c: a fork of
 * `galvani-shim --serve`, no exec) or, without one, with posix_spawn of
 * galvani-shim; either
 * way in a new session (so a signal to galvanid's process group never
 * reaches it), and it forks once itself: the short-lived first process is
 * reaped right here (or by the fork server), and galvanid never has a
 * long-lived child to wait for.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../util/log.h"
#include "exec_int.h"
#include "proc.h"
#include "spawner.h"

extern char **environ;

static int64_t gvd_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the run dir ---------------------------------------------------------- */

static int gvd_run_path(char *out, size_t n, const char *dir, const char *name)
{
    return snprintf(out, n, "%s/%s", dir, name) < (int)n ? 0 : -ENAMETOOLONG;
}

/* 1: no shim holds the lock (or there is no lock file), 0: one does. */
static int gvd_run_lock_free(const char *dir)
{
    char path[PATH_MAX];
    if (gvd_run_path(path, sizeof path, dir, "lock") != 0)
        return 1;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return 1;
    int rc = flock(fd, LOCK_EX | LOCK_NB);
    close(fd); /* also drops our lock if we got it */
    return rc == 0 ? 1 : 0;
}

static bool gvd_run_has(const char *dir, const char *name)
{
    char path[PATH_MAX];
    return gvd_run_path(path, sizeof path, dir, name) == 0 && access(path, F_OK) == 0;
}

gvd_run_state gvd__run_probe(const char *run_dir)
{
    if (!gvd_run_lock_free(run_dir))
        return GVD_RUN_LIVE;
    if (gvd_run_has(run_dir, "exit"))
        return GVD_RUN_EXITED;
    return gvd_run_has(run_dir, "started") ? GVD_RUN_LOST : GVD_RUN_NONE;
}

int gvd_exec_remove_run_dir(const char *run_dir)
{
    return gvd__run_dir_rm(run_dir, false);
}

int gvd__run_dir_rm(const char *run_dir, bool force)
{
    if (!force && !gvd_run_lock_free(run_dir))
        return -EBUSY;
    DIR *d = opendir(run_dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) != 0 && errno != ENOENT)
            rc = -errno;
    }
    closedir(d);
    if (rmdir(run_dir) != 0 && errno != ENOENT && rc == 0)
        rc = -errno;
    return rc;
}

int gvd__run_read(const char *run_dir, const char *name, gvd_buf *b)
{
    char path[PATH_MAX];
    if (gvd_run_path(path, sizeof path, run_dir, name) != 0)
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[8192];
    ssize_t n;
    int rc = 0;
    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || gvd_buf_add(b, buf, (size_t)n) != 0) {
            rc = n < 0 ? -errno : -ENOMEM;
            break;
        }
    }
    close(fd);
    return rc;
}

int gvd__run_read_pid(const char *run_dir, pid_t *pid, uint64_t *start_ticks)
{
    gvd_buf b = {0};
    int rc = -ENOENT;
    if (gvd__run_read(run_dir, "pid", &b) == 0 && gvd_buf_add(&b, "", 1) == 0) {
        long p;
        unsigned long long t;
        if (sscanf(b.p, "%ld %llu", &p, &t) == 2 && p > 1) {
            *pid = (pid_t)p;
            *start_ticks = t;
            rc = 0;
        }
    }
    gvd_buf_free(&b);
    return rc;
}

/* A shim that did not answer in time, or answered nonsense, may still be
 * starting the job, and the caller is about to report that the job did not
 * start: make that true.  posix_spawn made the first process a session and
 * group leader and the forked shim stays in its group, so kill(-group)
 * reaches it (the group id cannot be reused while the shim lives); once its
 * lock is free (the kernel releases it with the dead process's fds), a job
 * it had forked is in the pid file — killed if its start time matches. */
void gvd__shim_abort(pid_t shim_group, const char *run_dir)
{
    (void)kill(-shim_group, SIGKILL);
    for (int i = 0; i < 200 && !gvd_run_lock_free(run_dir); i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL); /* 1 ms, 200 ms at most */
    pid_t pid;
    uint64_t ticks;
    if (gvd__run_read_pid(run_dir, &pid, &ticks) == 0)
        (void)gvd_exec_kill_stale(pid, ticks);
}

/* ---- lines over a blocking-with-deadline socket ---------------------------- */

static int gvd_wait_fd(int fd, short ev, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - gvd_mono_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {fd, ev, 0};
        int rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -errno;
    }
}

/* One line, byte by byte: whatever follows it stays in the socket for the
 * libuv reader. */
static int gvd_read_line(int fd, char *buf, size_t cap, int64_t deadline)
{
    size_t n = 0;
    for (;;) {
        int rc = gvd_wait_fd(fd, POLLIN, deadline);
        if (rc != 0)
            return rc;
        char c;
        ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0)
            return r == 0 ? -EPIPE : -errno;
        if (c == '\n') {
            buf[n] = '\0';
            return (int)n;
        }
        if (n + 1 >= cap)
            return -EPROTO;
        buf[n++] = c;
    }
}

int gvd__hello_parse(char *line, size_t len, gvd_hello *h)
{
    (void)len;
    long pid;
    unsigned long long ticks, q;
    char state[16];
    if (sscanf(line, "hello %ld %llu %15s %llu", &pid, &ticks, state, &q) != 4 || pid <= 1)
        return -EPROTO;
    h->pid = (pid_t)pid;
    h->ticks = ticks;
    h->paused = strcmp(state, "paused") == 0;
    h->exited = strcmp(state, "exited") == 0;
    h->ctl_queued = q;
    return 0;
}

/* ---- spawning -------------------------------------------------------------- */

static int gvd_shim_path(const gvd_exec_opts *o, char *out, size_t n, char *err, size_t errlen)
{
    const char *p = o->shim_path ? o->shim_path : getenv("GALVANI_SHIM");
    if (p && *p) {
        snprintf(out, n, "%s", p);
    } else {
        char self[PATH_MAX];
        ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
        if (len <= 0) {
            gvd__set_err(err, errlen, "cannot locate galvani-shim: /proc/self/exe: %s (use --shim)",
                         strerror(errno));
            return -1;
        }
        self[len] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        if (snprintf(out, n, "%.*s/galvani-shim", (int)(n - sizeof "/galvani-shim"), self) >= (int)n) {
            gvd__set_err(err, errlen, "cannot locate galvani-shim: path too long (use --shim)");
            return -1;
        }
    }
    if (access(out, X_OK) != 0) {
        gvd__set_err(err, errlen, "cannot run the job supervisor %s: %s (set --shim or GALVANI_SHIM)", out,
                     strerror(errno));
        return -1;
    }
    return 0;
}

void gvd__shim_start_error(char *err, size_t errlen, const char *cmd, const char *log_path, const char *stage, int e)
{
    if (strcmp(stage, "log") == 0) {
        gvd__set_err(err, errlen, "cannot open log file %s: %s", log_path, strerror(e));
    } else if (strcmp(stage, "exec") == 0 && e == ENOENT) {
        if (!strchr(cmd, '/'))
            gvd__set_err(err, errlen, "no such command: %s (not found in PATH)", cmd);
        else if (access(cmd, F_OK) != 0)
            gvd__set_err(err, errlen, "no such file: %s", cmd);
        else
            gvd__set_err(err, errlen, "cannot execute %s: its interpreter or loader was not found", cmd);
    } else if (strcmp(stage, "exec") == 0 && e == EACCES) {
        gvd__set_err(err, errlen, "permission denied: cannot execute %s", cmd);
    } else {
        gvd__set_err(err, errlen, "cannot start %s: %s", cmd, strerror(e));
    }
}

static int gvd_spec_encode(const gvd_exec_opts *o, gvd_buf *b)
{
    int rc = 0;
    for (char *const *a = o->argv; *a && rc == 0; a++)
        rc = gvd_wire_put(b, "arg", *a, strlen(*a));
    for (char *const *e = o->env; e && *e && rc == 0; e++)
        rc = gvd_wire_put(b, "env", *e, strlen(*e));
    if (rc == 0 && o->cwd)
        rc = gvd_wire_put(b, "cwd", o->cwd, strlen(o->cwd));
    if (rc == 0 && o->log_path)
        rc = gvd_wire_put(b, "log", o->log_path, strlen(o->log_path));
    if (rc == 0)
        rc = gvd_wire_put(b, "dir", o->run_dir, strlen(o->run_dir));
    if (rc == 0)
        rc = gvd_buf_addf(b, "limit %llu\njob %lld\nattempt %lld\nmode %s\ngo\n", (unsigned long long)o->log_limit,
                          (long long)o->job_id, (long long)o->attempt,
                          o->pause_mode == GVD_PAUSE_COOPERATIVE ? "cooperative" : "stop");
    return rc;
}

/* The fork server failed after taking our request: a supervisor it forked
 * may hold our end of the connection (and a copy of the lock).  Give the
 * next one a new connection; the stray reads EOF on its spec, starts
 * nothing and exits, and its copy of the lock goes with it.  0 or -1. */
static int gvd_shim_fresh_conn(int sv[2], int hi[2])
{
    close(sv[0]);
    close(sv[1]);
    close(hi[0]);
    sv[0] = sv[1] = hi[0] = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    hi[0] = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
    return hi[0] < 0 ? -1 : 0;
}

/* mkdir the run dir; a stale one (no live shim) is cleared first. */
static int gvd_run_dir_make(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) == 0)
        return 0;
    int e = errno;
    if (e == EEXIST) {
        int rc = gvd_exec_remove_run_dir(dir);
        if (rc == -EBUSY) {
            gvd__set_err(err, errlen, "a supervisor still runs in %s", dir);
            return -1;
        }
        if (rc == 0 && mkdir(dir, 0700) == 0)
            return 0;
        e = rc ? -rc : errno;
    }
    gvd__set_err(err, errlen, "cannot create the run directory %s: %s", dir, strerror(e));
    return -1;
}

int gvd__shim_launch(const gvd_exec_opts *o, int *fd_out, pid_t *shim_out, gvd_buf *spec, char *err, size_t errlen)
{
    char shim[PATH_MAX], lockp[PATH_MAX];
    if (!o->run_dir) {
        gvd__set_err(err, errlen, "internal error: no run directory for the job");
        return -1;
    }
    if (gvd_shim_path(o, shim, sizeof shim, err, errlen) != 0)
        return -1;
    struct sockaddr_un sa;
    if (strlen(o->run_dir) + sizeof "/sock" > sizeof sa.sun_path) {
        gvd__set_err(err, errlen, "run directory path too long for a unix socket (%zu bytes, at most %zu): %s",
                      strlen(o->run_dir), sizeof sa.sun_path - sizeof "/sock", o->run_dir);
        return -1;
    }
    if (gvd_run_dir_make(o->run_dir, err, errlen) != 0)
        return -1;
    snprintf(lockp, sizeof lockp, "%s/lock", o->run_dir);
    int sv[2] = {-1, -1}, hi[2] = {-1, -1}, lock = -1, rc = -1;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    bool fa_ok = false, at_ok = false;
    lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) != 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        gvd__set_err(err, errlen, "cannot prepare the job supervisor: %s", strerror(errno));
        goto out;
    }
    /* Above 10 so that the dup2s onto 3 and 4 cannot clobber each other. */
    hi[0] = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
    hi[1] = fcntl(lock, F_DUPFD_CLOEXEC, 10);
    if (hi[0] < 0 || hi[1] < 0 || gvd_spec_encode(o, spec) != 0) {
        gvd__set_err(err, errlen, "cannot prepare the job supervisor: %s", strerror(errno ? errno : ENOMEM));
        goto out;
    }
    pid_t pid = gvd_spawner_usable(o->spawner) ? gvd_spawner_spawn(o->spawner, shim, o->run_dir, hi[0], hi[1]) : -ESRCH;
    if (pid > 0)
        goto started;
    if (pid != -ESRCH)
        gvd_log(GVD_LOG_WARN, "spawner.fork", "dir=%s error=%s; starting the supervisor with posix_spawn", o->run_dir,
                strerror(-pid));
    if (pid == -ECONNABORTED && gvd_shim_fresh_conn(sv, hi) != 0) {
        gvd__set_err(err, errlen, "cannot prepare the job supervisor: %s", strerror(errno));
        goto out;
    }
    fa_ok = posix_spawn_file_actions_init(&fa) == 0;
    at_ok = posix_spawnattr_init(&at) == 0;
    sigset_t none;
    sigemptyset(&none);
    /* closefrom(5) after the dup2s: ours are all close-on-exec already
     * (libuv, SQLite and ours use CLOEXEC), but galvanid may have inherited
     * open descriptors from whoever started it; the shim gets none of them.
     * (It used to be a walk of /proc/self/fd per spawn: with ten thousand
     * connections open, that walk cost more than the spawn.) */
    if (!fa_ok || !at_ok || posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) != 0 ||
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0) != 0 ||
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, hi[0], 3) != 0 || posix_spawn_file_actions_adddup2(&fa, hi[1], 4) != 0 ||
        posix_spawn_file_actions_addclosefrom_np(&fa, 5) != 0 ||
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK) != 0 ||
        posix_spawnattr_setsigmask(&at, &none) != 0) {
        gvd__set_err(err, errlen, "cannot prepare the job supervisor");
        goto out;
    }
    char *argv[] = {"galvani-shim", (char *)o->run_dir, NULL};
    int e = posix_spawn(&pid, shim, &fa, &at, argv, environ);
    if (e != 0) {
        gvd__set_err(err, errlen, "cannot start the job supervisor %s: %s", shim, strerror(e));
        goto out;
    }
started:
    /* The first process forks the real shim and exits at once; process.c
     * reaps it when the answer comes (gvd__shim_reap; the spawner reaps its
     * own). */
    *shim_out = pid;
    *fd_out = sv[0];
    sv[0] = -1;
    rc = 0;
out:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (at_ok)
        posix_spawnattr_destroy(&at);
    int *fds[] = {&sv[0], &sv[1], &hi[0], &hi[1], &lock}; /* the shim's copy holds the lock now */
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
        if (*fds[i] >= 0)
            close(*fds[i]);
    if (rc != 0) {
        gvd_buf_free(spec);
        (void)gvd__run_dir_rm(o->run_dir, false);
    }
    return rc;
}

void gvd__shim_reap(pid_t first)
{
    /* It exits right after its fork, before the real shim even reads the
     * spec: by the time there is an answer (or a kill) it is gone, and this
     * does not wait. */
    int ws;
    while (waitpid(first, &ws, 0) < 0 && errno == EINTR) {
    }
}

int gvd__shim_connect(const char *run_dir, int *fd_out, gvd_hello *hello)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s/sock", run_dir) >= (int)sizeof sa.sun_path)
        return -ENAMETOOLONG;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        rc = -errno;
    char line[256];
    int n = rc == 0 ? gvd_read_line(fd, line, sizeof line, gvd_mono_ms() + GVD_SHIM_REPLY_MS) : rc;
    if (n >= 0)
        rc = gvd__hello_parse(line, (size_t)n, hello);
    else
        rc = n;
    if (rc != 0) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}
