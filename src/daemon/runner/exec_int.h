/*
 * exec_int.h — the runner's private structure, shared by exec.c (the public
 * entry points and the handle lifetime), process.c and demo.c.
 *
 * Lifetime rule, the one thing to understand before editing these files:
 * every libuv handle embedded in a gvd_exec is counted in `handles` while it
 * is initialised and not yet closed.  gvd_exec_free only marks the struct
 * `freed` and starts closing handles; the memory is released by the close
 * callback that brings `handles` to zero.  The demo timer (or, for a process,
 * the two timers) stay open until gvd_exec_free, so `handles` is never zero
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

#define GVD_LINE_MAX 4096          /* longest protocol line kept; longer ones are dropped */
#define GVD_READ_BUF 16384         /* one read from a pipe */
#define GVD_SEND_MAX 65536         /* longest line gvd_exec_send accepts */
#define GVD_SEND_QUEUE_MAX 262144  /* bytes queued to the control fd, at most */
#define GVD_LEFTOVER_GRACE_MS 1000 /* after exit, SIGTERM -> SIGKILL for the rest of the group */
#define GVD_DRAIN_MS 1000          /* after that, how long to wait for output EOF */
#define GVD_INVALID_REPORTS 100    /* malformed lines passed on per job; later ones are dropped */

typedef enum gvd_stream_kind { GVD_STREAM_STDOUT = 0, GVD_STREAM_STDERR, GVD_STREAM_CONTROL } gvd_stream_kind;

/* Splits a byte stream into lines, bounded. */
typedef struct gvd_linebuf {
    size_t len;
    bool overflow; /* the current line outgrew buf: drop it up to its '\n' */
    char buf[GVD_LINE_MAX];
} gvd_linebuf;

typedef struct gvd_stream {
    uv_pipe_t pipe;
    struct gvd_exec *x;
    gvd_stream_kind kind;
    bool open;       /* handle initialised and uv_close not yet called */
    gvd_linebuf lines; /* stdout and control only */
} gvd_stream;

typedef enum gvd_cancel_stage {
    GVD_CANCEL_NONE = 0,
    GVD_CANCEL_ASKED, /* cooperative: "cancel" sent, SIGTERM next */
    GVD_CANCEL_TERM,  /* SIGTERM sent, SIGKILL next */
    GVD_CANCEL_KILL   /* SIGKILL sent */
} gvd_cancel_stage;

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

    /* process */
    uv_process_t proc;
    bool proc_open; /* proc handle not yet closed */
    bool reaped;    /* exit_cb ran */
    pid_t pid;
    uint64_t start_ticks;
    gvd_stream out, err, ctl;
    uv_timer_t kill_timer;  /* cancel escalation */
    uv_timer_t drain_timer; /* bound on waiting for output after exit */
    bool timers_open;
    gvd_cancel_stage cancel_stage;
    unsigned grace_ms;
    int log_fd; /* -1: no log */
    uint64_t log_size, log_limit;
    bool log_full;      /* truncated: marker written, output dropped */
    bool log_ends_nl;   /* last byte we wrote was '\n' (or nothing written) */
    char rbuf[GVD_READ_BUF];

    /* demo */
    uv_timer_t demo_timer;
    bool demo_timer_open;
    double progress;
    unsigned step_ms;
};

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
int gvd__process_pause(gvd_exec *x);
int gvd__process_resume(gvd_exec *x);
int gvd__process_cancel(gvd_exec *x, unsigned grace_ms);
int gvd__process_send(gvd_exec *x, const char *line);
void gvd__process_free(gvd_exec *x);

/* demo.c */
gvd_exec *gvd__demo_spawn(uv_loop_t *loop, const gvd_exec_opts *opts, const gvd_exec_events *ev, void *ud,
                          char *err, size_t errlen);
int gvd__demo_pause(gvd_exec *x);
int gvd__demo_resume(gvd_exec *x);
int gvd__demo_cancel(gvd_exec *x);
void gvd__demo_free(gvd_exec *x);

#endif
