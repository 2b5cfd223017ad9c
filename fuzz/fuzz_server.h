/*
 * fuzz_server.h — the real galvanid HTTP server inside a fuzz target, and a
 * client that plays one input to it over a real loopback TCP connection.
 *
 * fz_server_get() creates, once per process, what galvanid runs: a store in
 * a fresh directory under /dev/shm (fast; removed at exit), the job model and
 * the HTTP server (h2o, push hub) on an ephemeral loopback port, all on this
 * thread's libuv loop — twice: FZ_OPEN without authentication (galvanid's
 * default on loopback) and FZ_AUTH with a full token (FZ_TOKEN) and a
 * read-only one (FZ_READ_TOKEN), so the token checks are fuzzed too.
 * fz_exchange() connects, writes the input in pieces (running the loop
 * between pieces, so the server parses partial requests and partial
 * frames), half-closes, and runs the loop until the server has closed the
 * connection, collecting what it answered.  A stream that would
 * never end by itself (SSE, a WebSocket, a log tail) is cut by the client
 * once the server has been silent for a while; a connection the server still
 * holds FZ_DEADLINE_MS after that is a finding (abort).  After each input
 * every job is cancelled and deleted (fz_reset_jobs), so state does not
 * accumulate over millions of runs and each input starts alike.  With
 * FZ_DEBUG set in the environment, each exchange prints how long it took and
 * how it ended (for tuning the timeouts below).
 *
 * No program may ever start: a fuzzer that learns to POST a job spec would
 * otherwise run arbitrary commands.  fz_forbid_exec() installs a seccomp
 * filter that makes execve/execveat fail with EPERM for this process and
 * every child it forks, so the runner's spawn fails and the job is marked
 * failed — a real error path of the daemon, not a stub.  fork and threads
 * stay allowed (LeakSanitizer needs a clone of its own to check for leaks).
 * A side effect: a sanitizer cannot start llvm-symbolizer, so crash reports
 * carry raw addresses; symbolize them afterwards (docs/fuzzing.md).
 */
#ifndef GALVANI_FUZZ_SERVER_H
#define GALVANI_FUZZ_SERVER_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <galvani/signals.h>

#include "api/api_int.h"
#include "api/server.h"
#include "fuzz_common.h"
#include "model/jobs.h"
#include "store/store.h"
#include "util/log.h"

#define FZ_IDLE_MS 10        /* server silent this long after the input: the client hangs up */
#define FZ_STREAM_MS 40      /* ... or talking this long after it (SSE keep-alives, pings) */
/* The server must have closed the connection by then.  Generous: it only
 * has to catch a connection the server never lets go, and an input of
 * 80 KB sent in 1-byte pieces under ASan on a busy machine takes seconds. */
#define FZ_DEADLINE_MS 30000
#define FZ_OUT_MAX (1u << 20) /* bytes of the answer kept for the checks */

/* ---- no processes ---------------------------------------------------------- */

static inline void fz_forbid_exec(void)
{
#define FZ_DENY(nr, errno_)                                                   \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1),                          \
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((errno_) & SECCOMP_RET_DATA))
    struct sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        FZ_DENY(__NR_execve, EPERM),
        FZ_DENY(__NR_execveat, EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
#undef FZ_DENY
    struct sock_fprog fprog = {(unsigned short)(sizeof prog / sizeof prog[0]), prog};
    FUZZ_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
    FUZZ_CHECK(syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) == 0);
    /* Prove it: exec must now fail. */
    char *const argv[] = {"/bin/true", NULL};
    FUZZ_CHECK(execv(argv[0], argv) == -1 && errno == EPERM);
}

/* ---- the server ---------------------------------------------------------- */

typedef struct fz_server {
    uv_loop_t loop;
    char dir[64];
    gvd_store *store;
    gvd_jobs *jobs;
    gvd_server *server;
    int port;
} fz_server;

typedef enum fz_which { FZ_OPEN = 0, FZ_AUTH = 1 } fz_which;
#define FZ_TOKEN "fuzz-token"
#define FZ_READ_TOKEN "fuzz-read"

static fz_server *fz_the_server[2];

static inline int fz_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void fz_server_cleanup(void)
{
    /* The process ends here (libFuzzer calls exit): only the files matter. */
    for (int i = 0; i < 2; i++)
        if (fz_the_server[i])
            nftw(fz_the_server[i]->dir, fz_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline fz_server *fz_server_get(fz_which which)
{
    if (fz_the_server[which])
        return fz_the_server[which];
    if (!fz_the_server[!which]) {
        signal(SIGPIPE, SIG_IGN); /* as galvanid does: a client gone is an error code */
        gvd_log_set_level(GVD_LOG_ERROR);
        fz_forbid_exec();
        atexit(fz_server_cleanup);
    }

    fz_server *f = calloc(1, sizeof *f);
    FUZZ_CHECK(f != NULL);
    fuzz_make_tmpdir(f->dir, sizeof f->dir);
    FUZZ_CHECK(uv_loop_init(&f->loop) == 0);
    char path[128], logs[128], err[256];
    snprintf(path, sizeof path, "%s/galvani.db", f->dir);
    snprintf(logs, sizeof logs, "%s/logs", f->dir);
    f->store = gvd_store_open(path, err, sizeof err);
    if (!f->store)
        fprintf(stderr, "fuzz: store: %s\n", err);
    FUZZ_CHECK(f->store != NULL);
    gvd_config cfg = {.max_running = 2, .cancel_grace_ms = 100, .log_dir = logs, .demo_step_ms = 20};
    gvd_error e = {0};
    f->jobs = gvd_jobs_new(&f->loop, f->store, &cfg, &e);
    if (!f->jobs)
        fprintf(stderr, "fuzz: jobs: %s\n", e.message);
    FUZZ_CHECK(f->jobs != NULL);
    /* Short intervals so that streams talk (and notice a client gone)
     * within one input. */
    gvd_server_opts opts = {.host = "127.0.0.1", .max_body = 65536,
                            .push = {.flush_ms = 1, .ping_ms = 1000, .keepalive_ms = 5}};
    if (which == FZ_AUTH) {
        opts.token = FZ_TOKEN;
        opts.read_token = FZ_READ_TOKEN;
    }
    f->server = gvd_server_new(&f->loop, f->jobs, &opts, err, sizeof err);
    if (!f->server)
        fprintf(stderr, "fuzz: server: %s\n", err);
    FUZZ_CHECK(f->server != NULL);
    f->port = gvd_server_port(f->server);
    fz_the_server[which] = f;
    return f;
}

/* Cancel and delete every job, so that the next input starts from an empty
 * registry (and memory stays flat over millions of inputs). */
static inline void fz_reset_jobs(fz_server *f)
{
    /* A job that has to wait for something (a demo timer to stop, a
     * process being reaped) gets the loop and a little time between rounds,
     * up to a deadline (wall time, generous: a busy machine is slow, not
     * wrong). */
    uint64_t deadline = uv_hrtime() + (uint64_t)FZ_DEADLINE_MS * 1000000u;
    while (uv_hrtime() < deadline) {
        gvd_job *jobs[64];
        size_t total = 0;
        size_t n = gvd_jobs_list(f->jobs, 0, 0, 64, jobs, &total);
        if (n == 0)
            return;
        bool busy = false;
        for (size_t i = 0; i < n; i++) {
            gvd_error err = {0};
            if (!gvd_status_finished(gvd_job_status(jobs[i])))
                (void)gvd_job_cancel(jobs[i], &err);
            if (gvd_jobs_delete(f->jobs, jobs[i], &err) != 0)
                busy = true; /* e.g. a demo job whose timer still has to stop */
        }
        if (busy) {
            struct timespec pause = {0, 1000 * 1000};
            nanosleep(&pause, NULL);
            uv_run(&f->loop, UV_RUN_NOWAIT);
        }
    }
    FUZZ_CHECK(!"jobs could not be deleted after cancelling them");
}

/* ---- one exchange -------------------------------------------------------- */

typedef struct fz_exchange_state {
    fz_server *f;
    int fd;             /* -1 once the client closed its end */
    uv_poll_t poll;
    uv_timer_t timer;
    const uint8_t *data;
    size_t size, sent, piece_end;
    size_t hold;        /* sending stops here until the answer's headers arrived */
    fuzz_rng rng;
    bool half_closed, eof;
    uint64_t half_closed_at;
    bool reset;         /* the server's close came as a reset (ECONNRESET) */
    uint64_t last_activity;
    char *out;
    size_t out_len;
} fz_exchange_state;

static inline void fz_hang_up(fz_exchange_state *x)
{
    if (x->fd < 0)
        return;
    uv_poll_stop(&x->poll);
    close(x->fd);
    x->fd = -1;
}

static inline void fz_on_poll(uv_poll_t *p, int status, int events)
{
    fz_exchange_state *x = p->data;
    (void)status;
    if (x->fd < 0)
        return;
    if (events & UV_READABLE) {
        char buf[65536];
        for (;;) {
            ssize_t n = recv(x->fd, buf, sizeof buf, 0);
            if (n > 0) {
                size_t keep = x->out_len + (size_t)n <= FZ_OUT_MAX ? (size_t)n : FZ_OUT_MAX - x->out_len;
                memcpy(x->out + x->out_len, buf, keep);
                x->out_len += keep;
                x->last_activity = uv_now(&x->f->loop);
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                /* The server closed the connection, or reset it: closing a
                 * socket with unread input sends RST, and the kernel then
                 * drops whatever we had not read yet. */
                x->reset = n < 0;
                x->eof = true;
                fz_hang_up(x);
                return;
            }
            if (errno == EAGAIN)
                break;
        }
    }
    /* A WebSocket client waits for the 101 before it sends frames
     * (RFC 6455 4.1). */
    if (x->hold && x->sent == x->hold && memmem(x->out, x->out_len, "\r\n\r\n", 4))
        x->hold = 0;
    bool may_send = x->sent < x->size && !(x->hold && x->sent == x->hold);
    if ((events & UV_WRITABLE) && may_send) {
        if (x->piece_end <= x->sent)
            x->piece_end = x->sent + fuzz_chunk(&x->rng, x->size - x->sent);
        if (x->hold > x->sent && x->piece_end > x->hold)
            x->piece_end = x->hold;
        ssize_t n = send(x->fd, x->data + x->sent, x->piece_end - x->sent, MSG_NOSIGNAL);
        if (n > 0) {
            x->sent += (size_t)n;
            x->last_activity = uv_now(&x->f->loop);
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            x->sent = x->size; /* the server is gone: stop sending */
        }
    }
    if (x->sent == x->size && !x->half_closed) {
        x->half_closed = true;
        x->half_closed_at = uv_now(&x->f->loop);
        shutdown(x->fd, SHUT_WR);
    }
    may_send = x->sent < x->size && !(x->hold && x->sent == x->hold);
    if (x->fd >= 0)
        uv_poll_start(&x->poll, UV_READABLE | (may_send ? UV_WRITABLE : 0), fz_on_poll);
}

static inline void fz_on_timer(uv_timer_t *t)
{
    fz_exchange_state *x = t->data;
    /* A stream that would go on forever, or a server that stopped reading
     * what is left of the input (it answered already: 413, a WebSocket
     * client that does not read its pongs...). */
    uint64_t now = uv_now(&x->f->loop), idle = now - x->last_activity;
    /* A WebSocket client does not hang up before it has the answer to its
     * upgrade: neither while it waits for the 101, however long the server
     * takes, nor while it is still sending the request.  The second case
     * was a harness bug (fuzz_ws failed "reset || ... 101" on a busy
     * machine): "idle" is wall time, and a fuzzing process descheduled for
     * 30 ms between two pieces of the request found the timer due before
     * its socket, hung up mid-request, and the server rightly closed a
     * connection whose request never ended without answering.  The
     * deadline in fz_exchange still catches a server that never answers. */
    if (x->hold)
        return;
    if (x->fd >= 0 && ((x->half_closed && (idle >= FZ_IDLE_MS || now - x->half_closed_at >= FZ_STREAM_MS)) ||
                       idle >= 3 * FZ_IDLE_MS))
        fz_hang_up(x);
}

/* Play `data` to the server as one connection's bytes; the answer goes to
 * *out (malloc'd, the caller frees; at most FZ_OUT_MAX bytes kept), *reset
 * says whether it ended with a reset (then its tail may be missing).  With
 * `hold` > 0, the bytes from `hold` on are sent only once the answer's
 * headers arrived (a WebSocket client waits for the 101).  The
 * input is sent in pieces whose sizes come from `seed`; between pieces the
 * loop runs, so the server sees partial requests and frames. */
static inline void fz_exchange(fz_server *f, const uint8_t *data, size_t size, size_t hold, uint8_t seed,
                               char **out, size_t *out_len, bool *reset)
{
    fz_exchange_state x = {.f = f, .data = data, .size = size, .hold = hold, .rng = fuzz_rng_init(seed)};
    x.out = malloc(FZ_OUT_MAX);
    FUZZ_CHECK(x.out != NULL);
    x.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(x.fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    /* Out of local ports (TIME_WAIT from earlier inputs, or other programs on
     * the machine) is the client's problem, not the server's: wait and
     * retry.  Anything else (refused: the server stopped listening) is a
     * finding. */
    int rc, tries = 0;
    while ((rc = connect(x.fd, (struct sockaddr *)&sa, sizeof sa)) != 0 &&
           (errno == EADDRNOTAVAIL || errno == EAGAIN || errno == EINTR) && tries++ < 200) {
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    if (rc != 0)
        fprintf(stderr, "fuzz: connect to the server: %s\n", strerror(errno));
    FUZZ_CHECK(rc == 0);
    int one = 1;
    setsockopt(x.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    FUZZ_CHECK(fcntl(x.fd, F_SETFL, fcntl(x.fd, F_GETFL) | O_NONBLOCK) == 0);

    uv_update_time(&f->loop);
    x.last_activity = uv_now(&f->loop);
    uint64_t started = x.last_activity;
    FUZZ_CHECK(uv_poll_init(&f->loop, &x.poll, x.fd) == 0);
    x.poll.data = &x;
    FUZZ_CHECK(uv_poll_start(&x.poll, UV_READABLE | UV_WRITABLE, fz_on_poll) == 0);
    FUZZ_CHECK(uv_timer_init(&f->loop, &x.timer) == 0);
    x.timer.data = &x;
    FUZZ_CHECK(uv_timer_start(&x.timer, fz_on_timer, FZ_IDLE_MS / 2, FZ_IDLE_MS / 2) == 0);

    /* Until the server has let go of the connection (it counts its own). */
    while (x.fd >= 0 || f->server->nconns > 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
        if (uv_now(&f->loop) - started > FZ_DEADLINE_MS + FZ_IDLE_MS * 4) {
            fprintf(stderr, "fuzz: the server still holds the connection %d ms after the client went away\n",
                    FZ_DEADLINE_MS);
            abort();
        }
    }
    if (getenv("FZ_DEBUG"))
        fprintf(stderr, "fuzz: exchange of %zu bytes (%zu sent%s): %llu ms, %zu bytes back, %s\n", size, x.sent,
                hold ? (x.hold ? ", still holding for the answer" : ", answer arrived") : "",
                (unsigned long long)(uv_now(&f->loop) - started), x.out_len,
                x.eof ? (x.reset ? "reset by the server" : "closed by the server") : "client hung up");
    uv_close((uv_handle_t *)&x.poll, NULL);
    uv_close((uv_handle_t *)&x.timer, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    *out = x.out;
    *out_len = x.out_len;
    *reset = x.reset;
}

#endif
