/*
 * shim.h — galvani-shim, the per-job supervisor (docs/protocol.md, "The
 * supervisor"; docs/guarantees.md).
 *
 * One shim runs one process job.  galvanid starts it (posix_spawn, new
 * session) with fd 3 = one end of a socketpair and fd 4 = the run dir's
 * lock file, already locked (flock): the lock lives exactly as long as the
 * shim, which is how a restarted daemon tells a live shim from a dead one.
 * The shim forks once at start and the parent exits, so the shim is never
 * galvanid's child for long: it is reparented to init and nothing of
 * galvanid's (its process group, its death) reaches it.
 *
 * It reads the job spec from fd 3, creates <run dir>/sock (a listening unix
 * socket for later daemons), marks <run dir>/started, forks the job exactly
 * as galvanid used to (own session, /dev/null on stdin, pipes on stdout and
 * stderr, the control socketpair on fd 3, the spec's env plus
 * GALVANI_CONTROL_FD / GALVANI_JOB_ID), writes <run dir>/pid and answers
 * "hello PID TICKS running 0" (or "failed STAGE ERRNO" with nothing left
 * running).  From then on it owns the pipes, the control fd and the log
 * file; it forwards protocol lines to whichever daemon is connected and
 * queues them (bounded) while none is.  When the job has ended it writes
 * <run dir>/exit (the undelivered lines and the exit line, tmp + rename),
 * sends the exit to a connected daemon and waits (bounded) for its "ack".
 *
 * Files: main.c (start-up, spec, spawning the job), loop.c (the poll loop:
 * output, commands, cancel escalation, the queue, the exit record),
 * serve.c (`galvani-shim --serve`: the fork server galvanid starts once and
 * asks for each supervisor, runner/spawner.c), galvani-shim.c (main).
 * Dependencies: libc and src/daemon/runner/{wire,proc}.c only.
 */
#ifndef GALVANI_SHIM_H
#define GALVANI_SHIM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "runner/wire.h"

#define SHIM_LINE_MAX 4096            /* protocol lines from the job (as GVD_LINE_MAX) */
#define SHIM_CMD_MAX (2 * 65536 + 64) /* one escaped command from the daemon */
#define SHIM_QUEUE_MAX (256 * 1024)   /* lines kept for the daemon, bytes */
#define SHIM_CTL_QUEUE_MAX (256 * 1024) /* bytes queued to the job's control fd */
#define SHIM_LEFTOVER_GRACE_MS 1000   /* after exit: SIGTERM -> SIGKILL for the rest of the group */
#define SHIM_DRAIN_MS 1000            /* then how long to wait for output EOF */
#define SHIM_ACK_MS 5000              /* how long a connected daemon has to ack the exit */
#define SHIM_SPEC_MS 10000            /* how long galvanid has to send the spec */

enum { SHIM_CANCEL_NONE = 0, SHIM_CANCEL_ASKED, SHIM_CANCEL_TERM, SHIM_CANCEL_KILL };

typedef struct shim {
    /* the spec (owned) */
    char **argv, **env;
    size_t argc, envc;
    char *cwd, *log_path, *dir;
    uint64_t log_limit;
    long long job_id;
    long long attempt; /* 1, 2, ...: from the second on, the log gets a marker line */
    bool coop; /* cooperative pause mode */

    /* descriptors, -1 when closed */
    int conn, lst, sfd, out, err, ctl, log_fd;
    uint64_t log_size;
    bool log_full, log_ends_nl;

    /* the job */
    pid_t pid;
    uint64_t ticks;
    bool reaped, paused, cancel_requested;
    int cancel_stage;
    unsigned grace_ms;
    int exit_status, term_signal;
    int64_t kill_at, drain_at, ack_at; /* monotonic ms, -1: none */
    bool exit_queued, done;

    /* to the daemon: `pre` (hello + kept lines) goes first, then q from q_off */
    gvd_buf pre, q;
    size_t q_off;
    bool dropped; /* lines were dropped from q: `keep` lines matter */
    char *keep_progress, *keep_status; /* latest dropped progress / status line (wire form) */
    /* to the job's control fd */
    gvd_buf ctlq;
    unsigned long long ctl_sent; /* bytes written to the job since the last "sent" */

    gvd_lines out_lines, ctl_lines, conn_lines;
    char out_buf[SHIM_LINE_MAX], ctl_buf[SHIM_LINE_MAX];
    char *conn_buf; /* SHIM_CMD_MAX + 1 */
} shim;

/* The fork server's wire (serve.c; galvanid's side: runner/spawner.c).
 * galvanid starts `galvani-shim --serve PAD` with its end of a
 * SOCK_SEQPACKET socketpair on SHIM_SERVE_FD; PAD (SHIM_SERVE_TITLE_PAD
 * spaces) is room for the children's "galvani-shim RUN_DIR" command lines.
 * One message per supervisor: shim_serve_req + the run dir (NUL included)
 * + SCM_RIGHTS [conn, lock]; the answer is an int64_t, the pid of the
 * supervisor's first process or -errno. */
#define SHIM_SERVE_FD 3
#define SHIM_SERVE_VERSION 1u
#define SHIM_SERVE_TITLE_PAD 160
typedef struct shim_serve_req {
    uint32_t version; /* SHIM_SERVE_VERSION */
    uint32_t reserved;
} shim_serve_req;
/* serve.c: the server's loop; returns when galvanid is gone. */
int shim_serve(int argc, char **argv);

/* main.c */
/* The supervisor's whole life, from galvani-shim's main() or from a child
 * of the fork server (serve.c), which sets the process up as an exec of
 * the binary would have.  Returns the first process's status: it forks the
 * supervisor and exits at once. */
int shim_main(int argc, char **argv);
int64_t shim_now_ms(void);
void shim_close(int *fd);
int shim_write_all(int fd, const char *p, size_t n);
int shim_write_file(const char *dir, const char *name, const char *data, size_t n);

/* loop.c */
void shim_queue(shim *s, const char *word, const char *data, size_t n);
void shim_warn(shim *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int shim_run(shim *s);
/* Append to the job's log (capped at log_limit, one truncation marker). */
void shim_log_append(shim *s, const char *data, size_t n);
/* A retry's first line in the log: "[galvani: attempt N started ISO-8601]"
 * (docs/protocol.md).  Nothing for the first attempt. */
void shim_log_attempt(shim *s);

#endif
