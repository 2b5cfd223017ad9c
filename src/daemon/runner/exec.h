/*
 * exec.h — the runner: how galvanid executes a job and hears back from it.
 *
 * One narrow interface, two backends:
 *   - a process: a command line run without a shell (argv), or through
 *     /bin/sh -c when the spec asks for it, in its own session / process
 *     group, with stdout and stderr captured to a per-job log file (size
 *     capped), and a control channel (a socketpair end passed as an extra fd
 *     whose number is in $GALVANI_CONTROL_FD) for the progress protocol and
 *     cooperative control;
 *   - the built-in demo task (in-process): progress 0 -> 100, one step per
 *     `demo_step_ms`, the seed's job.
 *
 * The job model drives it with spawn / pause / resume / cancel / send and
 * learns what happens through gvd_exec_events callbacks, all on the loop
 * thread.  The reliability work later moves process ownership into a per-job
 * supervisor; only this interface's implementation changes then.
 */
#ifndef GALVANI_DAEMON_EXEC_H
#define GALVANI_DAEMON_EXEC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "protocol.h"

typedef struct gvd_exec gvd_exec;

typedef enum gvd_exec_kind { GVD_EXEC_PROCESS = 0, GVD_EXEC_DEMO = 1 } gvd_exec_kind;

typedef enum gvd_pause_mode {
    GVD_PAUSE_STOP = 0,       /* SIGSTOP / SIGCONT to the whole process group */
    GVD_PAUSE_COOPERATIVE = 1 /* "pause" / "resume" lines on the control fd */
} gvd_pause_mode;

typedef struct gvd_exec_opts {
    gvd_exec_kind kind;
    /* process: NULL-terminated argv (argv[0] searched in PATH); borrowed
     * for the duration of gvd_exec_spawn only. */
    char *const *argv;
    /* process: NULL-terminated "KEY=VALUE" list: the job's whole environment
     * apart from galvani's own variables (GALVANI_CONTROL_FD, GALVANI_JOB_ID),
     * which the runner adds.  Borrowed for the call. */
    char *const *env;
    const char *cwd;        /* NULL: the daemon's cwd */
    const char *log_path;   /* process: stdout+stderr go here (created/appended) */
    uint64_t log_limit;     /* bytes; past it, output is dropped and one marker
                               line "[galvani: log truncated]" is written */
    int64_t job_id;         /* exported as GALVANI_JOB_ID */
    gvd_pause_mode pause_mode;
    unsigned demo_step_ms;  /* demo: ms per 1 % step (default 100) */
    double demo_start;      /* demo: progress to resume from (0..100) */
} gvd_exec_opts;

/* How a job ended. */
typedef struct gvd_exit {
    int64_t exit_status; /* exit code, or -1 if killed by a signal */
    int term_signal;     /* signal that killed it, 0 if it exited */
    bool cancelled;      /* it ended because gvd_exec_cancel asked it to */
} gvd_exit;

typedef struct gvd_exec_events {
    /* A protocol message from the job (control fd or a "::" stdout line). */
    void (*on_message)(void *ud, const gvd_msg *msg);
    /* The job is gone (process reaped, demo finished/cancelled).  The handle
     * stays valid until gvd_exec_free; no callback comes after this one. */
    void (*on_exit)(void *ud, const gvd_exit *exit);
} gvd_exec_events;

/* Start a job.  Returns NULL and writes a message to err (e.g. "no such
 * command: foo") if it cannot start; nothing is left behind then.  `ev` and
 * `ud` must outlive the handle. */
gvd_exec *gvd_exec_spawn(uv_loop_t *loop, const gvd_exec_opts *opts, const gvd_exec_events *ev, void *ud,
                         char *err, size_t errlen);

/* Pause / resume according to the pause mode.  0 or -errno. */
int gvd_exec_pause(gvd_exec *x);
int gvd_exec_resume(gvd_exec *x);

/* Cancel: a cooperative job is sent "cancel"; a process group gets SIGTERM
 * (and SIGCONT if stopped); after grace_ms whatever is left of the group
 * gets SIGKILL, grandchildren included.  on_exit reports cancelled = true. */
int gvd_exec_cancel(gvd_exec *x, unsigned grace_ms);

/* Write one line to the job's control channel (cooperative mode), e.g.
 * "params {\"lr\":0.1}".  0 or -errno (-EPIPE if the job closed it). */
int gvd_exec_send(gvd_exec *x, const char *line);

pid_t gvd_exec_pid(const gvd_exec *x);          /* 0 for the demo */
/* Start time of the process in clock ticks since boot (field 22 of
 * /proc/PID/stat), so that a recycled pid is never mistaken for the job. */
uint64_t gvd_exec_start_ticks(const gvd_exec *x);

/* Release the handle.  If the job is still running it is killed first
 * (SIGKILL to the group).  Handles close asynchronously on the loop. */
void gvd_exec_free(gvd_exec *x);

/* Kill a leftover process group from a previous daemon life, only if
 * /proc/PID/stat still shows the same start time.  Returns 1 if killed, 0 if
 * no such process (or a different one now), -errno on error. */
int gvd_exec_kill_stale(pid_t pid, uint64_t start_ticks);

#endif
