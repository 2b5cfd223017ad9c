/*
 * spawner.c — see spawner.h for why, shim/serve.c for the server and the
 * wire (shim.h).  galvanid waits for each answer (the server's fork of a
 * small process: well under a millisecond), as it waited for posix_spawn
 * before; one request at a time, galvanid being one thread.
 */
#define _GNU_SOURCE
#include "spawner.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../shim/shim.h"
#include "../util/log.h"

extern char **environ;

/* How long galvanid waits for an answer before giving up on the server. */
#define GVD_SPAWNER_REPLY_MS 1000

struct gvd_spawner {
    int sock;    /* our end; -1 before the server is started and after it failed */
    pid_t pid;   /* the server (our child until reaped); 0 before */
    bool failed; /* no server from now on */
};

gvd_spawner *gvd_spawner_new(void)
{
    gvd_spawner *sp = calloc(1, sizeof *sp);
    if (sp)
        sp->sock = -1;
    return sp;
}

/* Reap the server: SIGKILL if it has not exited within a second. */
static void gvd_spawner_reap(gvd_spawner *sp)
{
    for (int i = 0; i < 100; i++) {
        pid_t r = waitpid(sp->pid, NULL, WNOHANG);
        if (r == sp->pid || (r < 0 && errno != EINTR))
            return;
        usleep(10000);
    }
    (void)kill(sp->pid, SIGKILL);
    while (waitpid(sp->pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

/* No server from now on: say why once, and end the one there may be. */
static pid_t gvd_spawner_fail(gvd_spawner *sp, const char *why)
{
    gvd_log(GVD_LOG_WARN, "spawner.failed", "pid=%ld why=%s; supervisors are started with posix_spawn from now on",
            (long)sp->pid, why);
    sp->failed = true;
    if (sp->sock >= 0) {
        close(sp->sock);
        sp->sock = -1;
    }
    if (sp->pid > 0) {
        (void)kill(sp->pid, SIGKILL);
        gvd_spawner_reap(sp);
    }
    return -ESRCH;
}

/* `galvani-shim --serve PAD`, our socket's other end on its fd 3, in a
 * session of its own (a Ctrl-C meant for galvanid's terminal does not end
 * it: galvanid closing its end does).  0 or -1 (failed set). */
static int gvd_spawner_launch(gvd_spawner *sp, const char *shim_bin)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return gvd_spawner_fail(sp, strerror(errno)), -1;
    char pad[SHIM_SERVE_TITLE_PAD + 1];
    memset(pad, ' ', SHIM_SERVE_TITLE_PAD);
    pad[SHIM_SERVE_TITLE_PAD] = '\0';
    char *argv[] = {"galvani-shim", "--serve", pad, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    bool fa_ok = posix_spawn_file_actions_init(&fa) == 0, at_ok = posix_spawnattr_init(&at) == 0;
    sigset_t none;
    sigemptyset(&none);
    int e = EINVAL;
    if (fa_ok && at_ok && posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) == 0 &&
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0) == 0 &&
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0) == 0 &&
        posix_spawn_file_actions_adddup2(&fa, sv[1], SHIM_SERVE_FD) == 0 &&
        posix_spawn_file_actions_addclosefrom_np(&fa, SHIM_SERVE_FD + 1) == 0 &&
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK) == 0 &&
        posix_spawnattr_setsigmask(&at, &none) == 0)
        e = posix_spawn(&sp->pid, shim_bin, &fa, &at, argv, environ);
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (at_ok)
        posix_spawnattr_destroy(&at);
    close(sv[1]);
    if (e != 0) {
        close(sv[0]);
        sp->pid = 0;
        return gvd_spawner_fail(sp, strerror(e)), -1;
    }
    sp->sock = sv[0];
    gvd_log(GVD_LOG_DEBUG, "spawner.started", "pid=%ld shim=%s", (long)sp->pid, shim_bin);
    return 0;
}

pid_t gvd_spawner_spawn(gvd_spawner *sp, const char *shim_bin, const char *run_dir, int conn_fd, int lock_fd)
{
    if (!sp || sp->failed)
        return -ESRCH;
    size_t dl = strlen(run_dir);
    if (dl >= PATH_MAX)
        return -ENAMETOOLONG;
    if (sp->sock < 0 && gvd_spawner_launch(sp, shim_bin) != 0)
        return -ESRCH;
    shim_serve_req rq = {.version = SHIM_SERVE_VERSION};
    struct iovec iov[2] = {{&rq, sizeof rq}, {(void *)run_dir, dl + 1}};
    union {
        char b[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(2 * sizeof(int));
    int fds[2] = {conn_fd, lock_fd};
    memcpy(CMSG_DATA(c), fds, sizeof fds);
    ssize_t w;
    do
        w = sendmsg(sp->sock, &m, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)(sizeof rq + dl + 1))
        return gvd_spawner_fail(sp, w < 0 ? strerror(errno) : "a short send");
    struct pollfd p = {sp->sock, POLLIN, 0};
    int r;
    do
        r = poll(&p, 1, GVD_SPAWNER_REPLY_MS);
    while (r < 0 && errno == EINTR);
    int64_t answer = 0;
    ssize_t n = r == 1 ? recv(sp->sock, &answer, sizeof answer, 0) : -1;
    /* The request went out: a supervisor may exist now whatever we heard. */
    if (n != (ssize_t)sizeof answer) {
        (void)gvd_spawner_fail(sp, r == 0 ? "no answer within a second" : "its connection was lost");
        return -ECONNABORTED;
    }
    if (answer == 0 || answer < -4095 || answer > INT_MAX) {
        (void)gvd_spawner_fail(sp, "a nonsense answer");
        return -ECONNABORTED;
    }
    return (pid_t)answer;
}

bool gvd_spawner_usable(const gvd_spawner *sp)
{
    return sp && !sp->failed;
}

pid_t gvd_spawner_pid(const gvd_spawner *sp)
{
    return sp ? sp->pid : -1;
}

void gvd_spawner_free(gvd_spawner *sp)
{
    if (!sp)
        return;
    if (sp->sock >= 0) {
        close(sp->sock);
        gvd_spawner_reap(sp);
    }
    free(sp);
}
