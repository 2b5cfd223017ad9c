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
 * thread.
 *
 * A process job is owned by a per-job supervisor, galvani-shim (src/daemon/
 * shim/), not by galvanid: the shim holds the job's pipes, control fd and log
 * file and keeps its exit status, so the job outlives galvanid (even kill -9)
 * and a restarted galvanid re-adopts it with gvd_exec_adopt.  The handle is
 * galvanid's connection to that shim, through the job's run dir
 * (opts->run_dir: lock, sock, started, pid, exit; docs/guarantees.md).
 */
#ifndef GALVANI_DAEMON_EXEC_H
#define GALVANI_DAEMON_EXEC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "proc.h"
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
    int64_t attempt;        /* process: 1, 2, ...; a retry's log starts with a marker line */
    gvd_pause_mode pause_mode;
    /* process: the job's run dir (created here, 0700; its parent must
     * exist), and the supervisor binary (NULL: $GALVANI_SHIM, else
     * galvani-shim next to the running executable). */
    const char *run_dir;
    const char *shim_path;
    /* process: the fork server that starts supervisors without an exec
     * (spawner.h; borrowed).  NULL, or gone: posix_spawn of shim_path. */
    struct gvd_spawner *spawner;
    unsigned demo_step_ms;  /* demo: ms per 1 % step (default 100) */
    double demo_start;      /* demo: progress to resume from (0..100) */
} gvd_exec_opts;

/* How a job ended. */
typedef struct gvd_exit {
    int64_t exit_status; /* exit code, or -1 if killed by a signal */
    int term_signal;     /* signal that killed it, 0 if it exited */
    bool cancelled;      /* it ended because gvd_exec_cancel asked it to */
    bool lost;           /* its supervisor died without recording the exit: the
                            job's group was killed (if still there); the true
                            outcome is unknown */
} gvd_exit;

typedef struct gvd_exec_events {
    /* A protocol message from the job (control fd or a "::" stdout line). */
    void (*on_message)(void *ud, const gvd_msg *msg);
    /* The job is gone (process reaped, demo finished/cancelled).  The handle
     * stays valid until gvd_exec_free; no callback comes after this one. */
    void (*on_exit)(void *ud, const gvd_exit *exit);
    /* A process job's supervisor answered (gvd_exec_spawn does not wait
     * for it): error NULL, the job runs and gvd_exec_pid is its pid; else
     * it did not start, for that reason ("no such command: foo (not found
     * in PATH)", ...), nothing is left behind and no other callback
     * follows: free the handle.  Comes first, before any message. */
    void (*on_start)(void *ud, const char *error);
} gvd_exec_events;

/* Start a job.  Returns NULL and writes a message to err if it cannot even
 * try (an empty command, a cwd that is no directory, no supervisor binary,
 * no run dir); nothing is left behind then.  Otherwise a process job is
 * starting: its supervisor is launched and the loop goes on; on_start says
 * how it went (gvd_exec_starting is true until then, and pause, resume,
 * cancel and send answer -EAGAIN).  The demo starts at once.  `ev` and `ud`
 * must outlive the handle. */
gvd_exec *gvd_exec_spawn(uv_loop_t *loop, const gvd_exec_opts *opts, const gvd_exec_events *ev, void *ud,
                         char *err, size_t errlen);

/* Re-adopt a process job from its run dir after a daemon restart.
 *   - a live supervisor: reconnects; messages the shim queued meanwhile
 *     arrive first; pause / resume / cancel / send work again;
 *   - a supervisor that ended with the job: its exit record is replayed
 *     (the undelivered messages, then on_exit with the true status);
 *   - a supervisor that died without a record: the job's group is killed if
 *     pid + start_ticks still match, then on_exit with lost = true.
 * Callbacks come from the loop, never from inside this call.  Returns NULL
 * with *never_started = true when the run dir shows the job never started
 * (no run dir, or no "started" marker): the run dir is removed then and the
 * job may safely run again.  Any other NULL comes with a message in err. */
typedef struct gvd_exec_adopt_opts {
    const char *run_dir;
    int64_t job_id;
    gvd_pause_mode pause_mode;
    pid_t pid;            /* as recorded at spawn (the store), used only when */
    uint64_t start_ticks; /* the shim died and left no pid file */
} gvd_exec_adopt_opts;
gvd_exec *gvd_exec_adopt(uv_loop_t *loop, const gvd_exec_adopt_opts *opts, const gvd_exec_events *ev, void *ud,
                         bool *never_started, char *err, size_t errlen);
/* A process job whose supervisor has not answered yet (see on_start). */
bool gvd_exec_starting(const gvd_exec *x);
/* The supervisor's view right after spawn / adopt: is the job paused? */
bool gvd_exec_paused(const gvd_exec *x);
/* Remove a run dir no job uses any more (stale after a crash), unless a
 * live supervisor still holds it: 0, -EBUSY or -errno. */
int gvd_exec_remove_run_dir(const char *run_dir);

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

/* Release the handle.  After on_exit it also tells the supervisor the exit
 * is consumed and removes the run dir — so call it only once the outcome is
 * durable.  Before on_exit it only detaches: the job keeps running under its
 * supervisor (gvd_exec_adopt finds it again).  Handles close asynchronously
 * on the loop.  (gvd_exec_kill_stale is in proc.h.) */
void gvd_exec_free(gvd_exec *x);
/* Release the handle without consuming the exit: the run dir and its exit
 * record stay for the next start (used when the outcome could not be
 * stored).  Before on_exit it is the same as gvd_exec_free. */
void gvd_exec_detach(gvd_exec *x);
/* Kill a live job now (SIGKILL to its group, if pid + start time still
 * match) and wait, bounded (3 s, blocking), for its supervisor to record the
 * exit and go; then release the handle as gvd_exec_detach does (the record
 * stays: the next start reports the job as killed).  For embedders and tests
 * that must not leave processes behind; galvanid itself detaches. */
void gvd_exec_kill(gvd_exec *x);

#endif
