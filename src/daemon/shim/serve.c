/*
 * serve.c — `galvani-shim --serve`: the supervisors' fork server.
 *
 * Why: starting a supervisor used to be an exec of galvani-shim per job,
 * and an exec's dynamic loader probes the CPU's caches with a few dozen
 * `cpuid` instructions before main() runs — each one a trap to the
 * hypervisor on a virtual machine.  Measured while creating jobs on the
 * benchmark machine, that probing was a quarter of the core, more than
 * galvanid's own work per job (docs/benchmarks.md, target 6).  galvanid
 * (runner/spawner.c) therefore execs this program once, with one end of a
 * SOCK_SEQPACKET socketpair on fd 3, and asks it for each supervisor; it
 * forks, and the child calls shim_main() — what an exec would have run —
 * after making itself the process an exec would have made:
 *
 *   fds     /dev/null on 0-2, the job's socketpair end on 3, the run dir's
 *           locked lock file on 4, nothing else (the server's own socket
 *           included);
 *   session a new one; an empty signal mask (handlers are the server's
 *           defaults already: it installs none);
 *   name    "galvani-shim RUN_DIR" written over the server's argv strings,
 *           which galvanid pads for that (see SHIM_SERVE_TITLE).
 *
 * The server is this small program, not a fork of galvanid: forking a
 * process with galvanid's libraries mapped costs as much in page tables as
 * the exec it replaces (measured: no gain), and would carry galvanid's
 * memory into every supervisor.  Its environment and limits are
 * galvanid's at the first job, as an exec'd shim's were.
 *
 * Request: a shim_serve_req, the run dir (NUL-terminated), SCM_RIGHTS
 * [conn, lock].  Answer: int64_t, the child's pid or -errno — sent once
 * the child has set itself up (a close-on-exec pipe says when, or why
 * not), so a pid galvanid gets is a supervisor already in its session.  The child
 * forks the real supervisor and exits at once (shim_main), so the server
 * reaps it (between requests, and at least once a second) and supervisors
 * are init's children, as before.  The server exits when galvanid closes
 * its end or dies (EOF; PR_SET_PDEATHSIG as well).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim.h"

/* The server's argv strings, when they are one block (as the kernel lays
 * them out): the area each child rewrites into its own command line. */
static size_t shim_serve_argv_area(int argc, char **argv, char **start)
{
    if (argc < 1 || !argv[0])
        return 0;
    char *end = argv[0];
    for (int i = 0; i < argc; i++) {
        if (argv[i] != end)
            return 0;
        end = argv[i] + strlen(argv[i]) + 1;
    }
    *start = argv[0];
    return (size_t)(end - argv[0]);
}

/* "galvani-shim\0RUN_DIR\0\0...": what `ps` showed of an exec'd shim. */
static void shim_serve_title(char *area, size_t len, const char *run_dir)
{
    if (!area || len < sizeof "galvani-shim")
        return;
    memset(area, 0, len);
    memcpy(area, "galvani-shim", sizeof "galvani-shim");
    size_t off = sizeof "galvani-shim";
    if (off + 1 < len)
        snprintf(area + off, len - off - 1, "%s", run_dir);
}

/* Close every descriptor from `lowest` up but `keep`.  close_range where
 * the kernel has it (5.9+) and the sandbox allows it (older container
 * seccomp profiles answer EPERM), else a walk of /proc/self/fd, as
 * glibc's posix_spawn does for the exec path.  0 or -1. */
static int shim_serve_close_from(int lowest, int keep)
{
    if ((keep < lowest || close_range((unsigned)lowest, (unsigned)keep - 1, 0) == 0) &&
        close_range((unsigned)(keep < lowest ? lowest : keep + 1), ~0u, 0) == 0)
        return 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end == '\0' && end != e->d_name && fd >= lowest && fd != keep && fd != dirfd(d))
            (void)close((int)fd);
    }
    closedir(d);
    return 0;
}

/* A failed set-up: tell the server why (it answers -errno to galvanid,
 * which then starts the supervisor with posix_spawn). */
static void shim_serve_failed(int status)
{
    int e = errno ? errno : EIO;
    (void)!write(status, &e, sizeof e);
    _exit(127);
}

/* The child: the process an exec of galvani-shim would have been, then
 * the supervisor itself.  `status` is the write end of a close-on-exec
 * pipe to the server: an errno if the set-up fails, its closing (EOF) once
 * the child is ready — so the server answers only then, and a supervisor
 * galvanid is told about is already in its own session.  Never returns. */
static void shim_serve_child(int conn, int lock, int status, const char *run_dir, char *title, size_t title_len)
{
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    (void)signal(SIGCHLD, SIG_DFL);
    status = fcntl(status, F_DUPFD_CLOEXEC, 10);
    if (status < 0)
        _exit(127);
    int hc = fcntl(conn, F_DUPFD, 10), hl = fcntl(lock, F_DUPFD, 10);
    int null = open("/dev/null", O_RDWR);
    if (setsid() < 0 || hc < 0 || hl < 0 || null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
        dup2(null, 2) < 0 || dup2(hc, 3) < 0 || dup2(hl, 4) < 0 || shim_serve_close_from(5, status) != 0)
        shim_serve_failed(status);
    close(status); /* ready */
    shim_serve_title(title, title_len, run_dir);
    char *argv[] = {"galvani-shim", (char *)run_dir, NULL};
    _exit(shim_main(2, argv));
}

/* Fork a supervisor; answer once it is set up.  Its pid, or -errno. */
static int64_t shim_serve_fork(int conn, int lock, const char *run_dir, char *title, size_t title_len)
{
    int st[2];
    if (pipe2(st, O_CLOEXEC) != 0)
        return -errno;
    pid_t pid = fork();
    if (pid == 0) {
        close(st[0]);
        shim_serve_child(conn, lock, st[1], run_dir, title, title_len);
    }
    int fork_errno = errno;
    close(st[1]);
    int64_t answer = pid;
    if (pid < 0) {
        answer = -fork_errno;
    } else {
        int e = 0;
        ssize_t n;
        do
            n = read(st[0], &e, sizeof e);
        while (n < 0 && errno == EINTR);
        if (n != 0) { /* an errno, or a broken pipe: not started */
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
            }
            answer = n == (ssize_t)sizeof e && e > 0 ? -e : -EIO;
        }
    }
    close(st[0]);
    return answer;
}

/* One request: fork a supervisor.  Its pid, or -errno. */
static int64_t shim_serve_one(char *buf, ssize_t n, struct msghdr *m, char *title, size_t title_len)
{
    int fds[2] = {-1, -1}, nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (nfds < 2)
                fds[nfds++] = fd;
            else
                close(fd);
        }
    }
    shim_serve_req rq;
    int64_t answer;
    if (nfds != 2 || (m->msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n <= sizeof rq) {
        answer = -EINVAL;
    } else if (memcpy(&rq, buf, sizeof rq), rq.version != SHIM_SERVE_VERSION) {
        answer = -EPROTO;
    } else {
        buf[n] = '\0';
        answer = shim_serve_fork(fds[0], fds[1], buf + sizeof rq, title, title_len);
    }
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    return answer;
}

int shim_serve(int argc, char **argv)
{
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    (void)signal(SIGPIPE, SIG_IGN); /* galvanid gone: an error code, then EOF */
    char *title = NULL;
    size_t title_len = shim_serve_argv_area(argc, argv, &title);
    for (;;) {
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
        struct pollfd p = {SHIM_SERVE_FD, POLLIN, 0};
        int r = poll(&p, 1, 1000);
        if (r < 0 && errno != EINTR)
            return 1;
        if (r <= 0)
            continue;
        char buf[sizeof(shim_serve_req) + PATH_MAX + 1];
        union {
            char b[CMSG_SPACE(2 * sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {buf, sizeof buf - 1};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
        ssize_t n = recvmsg(SHIM_SERVE_FD, &m, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0; /* galvanid closed its end, or is gone */
        int64_t answer = shim_serve_one(buf, n, &m, title, title_len);
        if (send(SHIM_SERVE_FD, &answer, sizeof answer, MSG_NOSIGNAL) != (ssize_t)sizeof answer)
            return 0;
    }
}
