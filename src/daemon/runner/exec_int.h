/*
 * exec_int.h — the runner's private structure, shared by exec.c (the public
 * entry points and the handle lifetime), process.c + shimlink.c (process
 * jobs, through their supervisor) and demo.c.
 *
 * Lifetime rule, the one thing to understand before editing these files:
 * every libuv handle embedded in a gvd_exec is counted in `handles` while it
 * is initialised and not yet closed.  gvd_exec_free only marks the struct
 * `freed` and starts closing handles; the memory is released by the close
 * callback that brings `handles` to zero.  The demo timer (or, for a process,
 * the `tick` timer) stays open until gvd_exec_free, so `handles` is never zero
 * before it: freeing is always asynchronous, which is what makes calling
 * gvd_exec_free from inside on_exit / on_message safe — the code that made
 * the callback still holds a valid pointer when the callback returns, and it
 * checks `freed` before doing anything else.
 */
#ifndef GALVANI_DAEMON_EXEC_INT_H
#define GALVANI_DAEMON_EXEC_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "exec.h"
#include "wire.h"

#define GVD_SEND_MAX 65536         /* longest line gvd_exec_send accepts */
#define GVD_SEND_QUEUE_MAX 262144  /* bytes on their way to the job's control fd, at most */
#define GVD_WIRE_MAX (2 * 4096 + 64) /* longest line from the shim (an escaped job line) */
#define GVD_INVALID_REPORTS 100    /* malformed lines passed on per job; later ones are dropped */
#define GVD_SHIM_REPLY_MS 10000    /* how long spawn / adopt wait for the shim's answer */

struct gvd_exec {
    uv_loop_t *loop;
    gvd_exec_kind kind;
    const gvd_exec_events *ev;
    void *ud;
    int64_t job_id;
    gvd_pause_mode pause_mode;

    unsigned handles;      /* see the lifetime rule above */
    bool freed;            /* gvd_exec_free called: no more callbacks */
    bool finished;         /* on_exit delivered */
    bool paused;
    bool cancel_requested;
    unsigned invalid_reports;
    gvd_exit exit;

    /* process: the connection to the job's supervisor (process.c) */
    uv_pipe_t conn;
    bool conn_open;        /* handle initialised and uv_close not yet called */
    uv_timer_t tick;       /* delivers a replayed exit record from the loop */
    bool tick_open;
    gvd_lines lines;       /* splits what the shim sends */
    char *line_buf;        /* GVD_WIRE_MAX + 1 (room for a NUL after a line) */
    char *run_dir;
    gvd_buf replay;        /* an exit record to deliver (adopt of a finished job) */
    bool reaped;           /* the exit line arrived (or the shim is gone) */
    bool keep_record;      /* gvd_exec_detach: leave the run dir for a restart */
    pid_t pid;
    uint64_t start_ticks;
    uint64_t ctl_pending;  /* bytes sent for the job's control fd, not yet written to it */
    char rbuf[16384];
    /* the supervisor handshake (process.c): from gvd_exec_spawn until the
     * shim's first line, which on_start reports */
    bool starting;
    pid_t shim_first;      /* the shim's first process (its group), reaped at the answer */
    char *start_cmd;       /* argv[0] and the log path, for the words of a refusal */
    char *start_log;
    uint64_t start_ns;     /* gvd_obs_clock_ns() at the spawn */

    /* demo */
    uv_timer_t demo_timer;
    bool demo_timer_open;
    double progress;
    unsigned step_ms;
    uint64_t demo_due_ns;   /* demo.c: uv_hrtime() at which the next step is due */
};

/* The shim's first line: "hello PID TICKS STATE CTLQ". */
typedef struct gvd_hello {
    pid_t pid;
    uint64_t ticks;
    bool paused, exited;
    uint64_t ctl_queued;
} gvd_hello;

/* exec.c */
void gvd__exec_close(gvd_exec *x, uv_handle_t *h);
void gvd__exec_message(gvd_exec *x, const gvd_msg *msg);
void gvd__exec_finish(gvd_exec *x);
void gvd__set_err(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* process.c */
gvd_exec *gvd__process_spawn(uv_loop_t *loop, const gvd_exec_opts *opts, const gvd_exec_events *ev, void *ud,
                             char *err, size_t errlen);
gvd_exec *gvd__process_adopt(uv_loop_t *loop, const gvd_exec_adopt_opts *opts, const gvd_exec_events *ev,
                             void *ud, bool *never_started, char *err, size_t errlen);
int gvd__process_pause(gvd_exec *x);
int gvd__process_resume(gvd_exec *x);
int gvd__process_cancel(gvd_exec *x, unsigned grace_ms);
int gvd__process_send(gvd_exec *x, const char *line);
void gvd__process_free(gvd_exec *x);
void gvd__process_kill(gvd_exec *x);

/* shimlink.c: the blocking, bounded parts of talking to a shim (launch,
 * reconnect) and the run dir.  _launch makes the run dir and its lock,
 * encodes the spec into *spec and starts the shim: *fd is the connection,
 * *shim_first its first process, to reap with gvd__shim_reap once it
 * answered; -1 with err (and nothing left behind) if it could not. */
int gvd__shim_launch(const gvd_exec_opts *opts, int *fd, pid_t *shim_first, gvd_buf *spec, char *err,
                     size_t errlen);
void gvd__shim_reap(pid_t shim_first);
/* Kill a shim that did not answer, or answered nonsense, and any job it
 * had forked (bounded wait, 200 ms at most). */
void gvd__shim_abort(pid_t shim_group, const char *run_dir);
/* The message for the shim's "failed STAGE ERRNO". */
void gvd__shim_start_error(char *err, size_t errlen, const char *cmd, const char *log_path, const char *stage,
                           int e);
typedef enum gvd_run_state {
    GVD_RUN_NONE = 0, /* no run dir, or no "started" marker: the job never ran */
    GVD_RUN_LIVE,     /* a supervisor holds the lock */
    GVD_RUN_EXITED,   /* no supervisor, an exit record */
    GVD_RUN_LOST      /* no supervisor, started, no exit record */
} gvd_run_state;
gvd_run_state gvd__run_probe(const char *run_dir);
/* Connect to a live shim and read its hello; -ECONNREFUSED etc. if it is
 * not (or no longer) there. */
int gvd__shim_connect(const char *run_dir, int *fd, gvd_hello *hello);
/* Remove a run dir; unless `force`, only if no shim holds its lock. */
int gvd__run_dir_rm(const char *run_dir, bool force);
/* Read run_dir/name whole into b. */
int gvd__run_read(const char *run_dir, const char *name, gvd_buf *b);
/* The job's "PID START_TICKS" from the run dir's pid file: 0, or -ENOENT if
 * there is none (yet) or it is unreadable. */
int gvd__run_read_pid(const char *run_dir, pid_t *pid, uint64_t *start_ticks);
int gvd__hello_parse(char *line, size_t len, gvd_hello *h);

/* demo.c */
gvd_exec *gvd__demo_spawn(uv_loop_t *loop, const gvd_exec_opts *opts, const gvd_exec_events *ev, void *ud,
                          char *err, size_t errlen);
int gvd__demo_pause(gvd_exec *x);
int gvd__demo_resume(gvd_exec *x);
int gvd__demo_cancel(gvd_exec *x);
void gvd__demo_free(gvd_exec *x);

#endif
