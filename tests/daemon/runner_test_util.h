/*
 * runner_test_util.h — shared fixtures of the runner tests (test_runner.c,
 * test_runner_control.c): real processes on a real libuv loop.
 *
 * Every test gets a fresh loop and a temp dir (setup) and must leave nothing
 * behind (teardown): the loop has to close with no handle left, and the
 * process's open file descriptors must be exactly those it had before the
 * test.  Process jobs run under galvani-shim ($GALVANI_SHIM, set by CTest),
 * whose run dir is <temp dir>/run; a job a test left running is killed in
 * teardown (a freed handle only detaches from its supervisor).  Waiting is always bounded: run_until() runs the loop until a
 * condition holds or a deadline passes, and the assertions say which.
 * Fixture scripts live in tests/daemon/fixtures/ (found next to this file)
 * and are run with /bin/sh, so their mode bits do not matter.
 *
 * Everything is `static inline` so that a test file not using a helper does
 * not trip -Wunused-function.
 */
#ifndef GALVANI_RUNNER_TEST_UTIL_H
#define GALVANI_RUNNER_TEST_UTIL_H

/* realpath() is XSI. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "runner/exec.h"
#include "runner/proc.h"

#define MAX_MSGS 4096

/* How long a test waits for something that must happen (an exit, a message,
 * a file) before it fails.  Generous: it only ends a test that is stuck, and
 * a busy (CI) machine under ASan may be many times slower than an idle one.
 * run_for() windows, in which something must NOT happen, are short. */
#define T_WAIT_MS 30000

/* ---- per-test state ----------------------------------------------------- */

typedef struct rec {
    gvd_msg *msgs;
    int nmsg;
    int exits;
    int msgs_at_exit;
    gvd_exit exit;
    uint64_t exit_at; /* uv_hrtime() at on_exit */
    gvd_exec *x;
    bool keep_on_exit; /* default: free the handle from inside on_exit */
    int starts;        /* on_start calls */
    char start_error[512]; /* what a failed start said ("" if it started) */
} rec;

typedef struct ctx {
    uv_loop_t loop;
    char dir[PATH_MAX];
    int fds_before;
    pid_t stray; /* a process outside the job's group to kill in teardown */
    pid_t job_pid; /* the last spawned job (its group is killed in teardown) */
    char run[PATH_MAX]; /* the job's run dir */
    rec r;
} ctx;



static inline int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the DIR's own fd */
}

static inline void on_message(void *ud, const gvd_msg *m)
{
    rec *r = ud;
    assert_int_equal(r->exits, 0); /* nothing after on_exit */
    if (r->nmsg < MAX_MSGS)
        r->msgs[r->nmsg++] = *m;
}

static inline void on_exit_cb(void *ud, const gvd_exit *e)
{
    rec *r = ud;
    r->exits++;
    r->exit = *e;
    r->msgs_at_exit = r->nmsg;
    r->exit_at = uv_hrtime();
    if (!r->keep_on_exit) {
        gvd_exec_free(r->x); /* from inside the callback: must be safe */
        r->x = NULL;
    }
}

static inline void on_start_cb(void *ud, const char *error)
{
    rec *r = ud;
    assert_int_equal(r->starts, 0); /* once, first */
    assert_int_equal(r->nmsg, 0);
    assert_int_equal(r->exits, 0);
    r->starts++;
    snprintf(r->start_error, sizeof r->start_error, "%s", error ? error : "");
    if (error) {
        gvd_exec_free(r->x); /* from inside the callback, as the model does */
        r->x = NULL;
    }
}

static const gvd_exec_events events = {on_message, on_exit_cb, on_start_cb};

/* The temp dir holds plain files and at most one level of directories
 * (a run dir left by a failed test). */
static inline void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    char path[PATH_MAX + 256];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        assert_int_equal(lstat(path, &sb), 0);
        if (S_ISDIR(sb.st_mode))
            assert_int_equal(gvd_exec_remove_run_dir(path), 0);
        else
            assert_int_equal(unlink(path), 0);
    }
    closedir(d);
    assert_int_equal(rmdir(dir), 0);
}

static inline int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->r.msgs = calloc(MAX_MSGS, sizeof *c->r.msgs);
    assert_non_null(c->r.msgs);
    c->fds_before = count_fds();
    assert_int_equal(uv_loop_init(&c->loop), 0);
    snprintf(c->dir, sizeof c->dir, "/tmp/gvd-runner-XXXXXX");
    assert_non_null(mkdtemp(c->dir));
    assert_true(snprintf(c->run, sizeof c->run, "%.200s/run", c->dir) < (int)sizeof c->run);
    *state = c;
    return 0;
}

static inline void loop_stop_cb(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static inline int teardown(void **state)
{
    ctx *c = *state;
    if (c->r.x)
        gvd_exec_free(c->r.x);
    if (c->stray > 1)
        (void)kill(c->stray, SIGKILL); /* even if the test failed half-way */
    if (c->job_pid > 1)
        (void)kill(-c->job_pid, SIGKILL); /* a job left running (or ended: ESRCH) */
    /* Its supervisor then records the exit and goes, releasing the run
     * dir's lock (bounded wait). */
    for (int i = 0; i < T_WAIT_MS / 10 && gvd_exec_remove_run_dir(c->run) == -EBUSY; i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    /* Let every handle close (a freed live process is SIGKILLed and must be
     * reaped first).  The unreferenced watchdog only matters if something
     * never closes: then uv_loop_close below fails the test. */
    uv_timer_t dog;
    assert_int_equal(uv_timer_init(&c->loop, &dog), 0);
    assert_int_equal(uv_timer_start(&dog, loop_stop_cb, T_WAIT_MS, 0), 0);
    uv_unref((uv_handle_t *)&dog);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&dog, NULL);
    uv_run(&c->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&c->loop), 0);
    assert_int_equal(count_fds(), c->fds_before);
    remove_dir(c->dir);
    free(c->r.msgs);
    free(c);
    return 0;
}

/* ---- helpers ------------------------------------------------------------ */

typedef bool (*pred_fn)(ctx *c, void *arg);

typedef struct waiter {
    ctx *c;
    pred_fn pred;
    void *arg;
    bool met;
    uint64_t deadline;
} waiter;

static inline void poll_cb(uv_timer_t *t)
{
    waiter *w = t->data;
    if (w->pred(w->c, w->arg)) {
        w->met = true;
        uv_stop(t->loop);
    } else if (uv_now(t->loop) >= w->deadline) {
        uv_stop(t->loop);
    }
}

/* Run the loop until pred holds (true) or timeout_ms passed (false). */
static inline bool run_until(ctx *c, pred_fn pred, void *arg, unsigned timeout_ms)
{
    if (pred(c, arg))
        return true;
    uv_update_time(&c->loop);
    waiter w = {c, pred, arg, false, uv_now(&c->loop) + timeout_ms};
    uv_timer_t t;
    assert_int_equal(uv_timer_init(&c->loop, &t), 0);
    t.data = &w;
    assert_int_equal(uv_timer_start(&t, poll_cb, 2, 2), 0);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&c->loop, UV_RUN_NOWAIT);
    return w.met;
}

static inline bool never(ctx *c, void *arg)
{
    (void)c, (void)arg;
    return false;
}

/* Run the loop for ms milliseconds. */
static inline void run_for(ctx *c, unsigned ms)
{
    (void)run_until(c, never, NULL, ms);
}

static inline bool exited(ctx *c, void *arg)
{
    (void)arg;
    return c->r.exits > 0;
}

static inline bool has_msgs(ctx *c, void *arg)
{
    return c->r.nmsg >= *(int *)arg;
}

static inline void wait_exit(ctx *c, unsigned timeout_ms)
{
    assert_true(run_until(c, exited, NULL, timeout_ms));
    assert_int_equal(c->r.exits, 1);
}

static inline void wait_msgs(ctx *c, int n, unsigned timeout_ms)
{
    assert_true(run_until(c, has_msgs, &n, timeout_ms));
}

/* The index of the first message at or after `from` with this kind and
 * text, or -1. */
static inline int find_msg(ctx *c, int from, gvd_msg_kind kind, const char *text)
{
    for (int i = from; i < c->r.nmsg; i++)
        if (c->r.msgs[i].kind == kind && (!text || strcmp(c->r.msgs[i].text, text) == 0))
            return i;
    return -1;
}

typedef struct msg_wait {
    gvd_msg_kind kind;
    const char *text;
    int from;
} msg_wait;

static inline bool has_msg(ctx *c, void *arg)
{
    msg_wait *m = arg;
    return find_msg(c, m->from, m->kind, m->text) >= 0;
}

/* Run until a message (kind, text) arrives at index >= from; its index. */
static inline int wait_msg(ctx *c, int from, gvd_msg_kind kind, const char *text, unsigned timeout_ms)
{
    msg_wait m = {kind, text, from};
    assert_true(run_until(c, has_msg, &m, timeout_ms));
    return find_msg(c, from, kind, text);
}

/* tests/daemon/fixtures/<name>: this header's own directory comes from
 * __FILE__, which CMake makes absolute. */
static inline const char *fixture(const char *name)
{
    static char path[4][PATH_MAX];
    static int next;
    char *p = path[next++ % 4];
    const char *here = __FILE__, *slash = strrchr(here, '/');
    int n = slash ? snprintf(p, PATH_MAX, "%.*s/fixtures/%s", (int)(slash - here), here, name)
                  : snprintf(p, PATH_MAX, "fixtures/%s", name);
    assert_true(n > 0 && n < PATH_MAX);
    return p;
}

static inline const char *tmp_path(ctx *c, const char *name)
{
    static char path[4][PATH_MAX];
    static int next;
    char *p = path[next++ % 4];
    int n = snprintf(p, PATH_MAX, "%s/%s", c->dir, name);
    assert_true(n > 0 && n < PATH_MAX);
    return p;
}

static inline gvd_exec_opts process_opts(ctx *c, char *const *argv)
{
    static char *const env[] = {"PATH=/usr/bin:/bin", NULL};
    gvd_exec_opts o;
    memset(&o, 0, sizeof o);
    o.kind = GVD_EXEC_PROCESS;
    o.argv = argv;
    o.env = env;
    o.log_path = tmp_path(c, "job.log");
    o.log_limit = 1 << 20;
    o.job_id = 7;
    o.pause_mode = GVD_PAUSE_STOP;
    o.run_dir = c->run;
    return o;
}

static inline bool started(ctx *c, void *arg)
{
    (void)arg;
    return c->r.starts > 0;
}

/* Spawn and wait for the supervisor's answer (gvd_exec_spawn does not). */
static inline gvd_exec *spawn(ctx *c, const gvd_exec_opts *o)
{
    char err[256] = "";
    c->r.starts = 0;
    c->r.x = gvd_exec_spawn(&c->loop, o, &events, &c->r, err, sizeof err);
    if (!c->r.x)
        fail_msg("spawn failed: %s", err);
    /* A quick job's exit may come in the same read as the answer: the
     * handle outlives this wait whatever the test asked for, and an exit
     * seen meanwhile is freed by teardown. */
    bool keep = c->r.keep_on_exit;
    c->r.keep_on_exit = true;
    if (o->kind == GVD_EXEC_DEMO)
        return c->r.x; /* starts at once, no on_start */
    assert_true(gvd_exec_starting(c->r.x));
    assert_int_equal(gvd_exec_pid(c->r.x), 0);
    assert_true(run_until(c, started, NULL, T_WAIT_MS));
    c->r.keep_on_exit = keep;
    if (c->r.start_error[0])
        fail_msg("spawn failed: %s", c->r.start_error);
    gvd_exec *x = c->r.x;
    c->job_pid = gvd_exec_pid(x);
    if (c->r.exits > 0 && !keep) {
        /* What on_exit would have done.  The memory stays until the loop
         * runs again (exec_int.h), so the caller may still read the pid. */
        gvd_exec_free(x);
        c->r.x = NULL;
    }
    return x;
}

/* Whole file into a NUL-terminated malloc'd buffer (*len bytes). */
static inline char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static inline off_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

static inline bool file_exists(ctx *c, void *arg)
{
    (void)c;
    return file_size(arg) > 0;
}

static inline pid_t read_pid_file(ctx *c, const char *path)
{
    assert_true(run_until(c, file_exists, (void *)path, T_WAIT_MS));
    /* The shell writes "pid\n" with one write; wait for the newline. */
    for (int i = 0; i < 100; i++) {
        char *s = slurp(path, NULL);
        assert_non_null(s);
        bool whole = strchr(s, '\n') != NULL;
        long v = strtol(s, NULL, 10);
        free(s);
        if (whole && v > 1)
            return (pid_t)v;
        run_for(c, 5);
    }
    fail_msg("no pid in %s", path);
    return -1;
}

/* Dead: no such process, or a zombie waiting for a reaper we do not own
 * (orphans are reparented to pid 1, which may be slow to reap). */
static inline bool pid_dead(pid_t pid)
{
    gvd_proc_stat st;
    int rc = gvd_proc_stat_read(pid, &st);
    return rc == -ESRCH || (rc == 0 && (st.state == 'Z' || st.state == 'X'));
}

static inline bool pid_dead_pred(ctx *c, void *arg)
{
    (void)c;
    return pid_dead(*(pid_t *)arg);
}

static inline char proc_state(pid_t pid)
{
    gvd_proc_stat st;
    return gvd_proc_stat_read(pid, &st) == 0 ? st.state : '?';
}

/* Is the whole process group `pgid` stopped?  Every member must be 'T' —
 * except that a parent blocked in vfork() shows 'D' while its vfork child
 * (stopped before it could exec) is 'T': dash forks external commands with
 * vfork, so a SIGSTOP to the group lands there about one time in seven, and
 * the group is just as stopped.  Needs at least one 'T'. */
static inline bool group_stopped(ctx *c, void *arg)
{
    (void)c;
    pid_t pgid = *(pid_t *)arg;
    DIR *d = opendir("/proc");
    assert_non_null(d);
    int members = 0, stopped = 0, other = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0)
            continue;
        gvd_proc_stat st;
        if (gvd_proc_stat_read((pid_t)pid, &st) != 0 || st.pgrp != pgid || st.state == 'Z')
            continue;
        members++;
        if (st.state == 'T')
            stopped++;
        else if (st.state != 'D')
            other++;
    }
    closedir(d);
    return members > 0 && stopped > 0 && other == 0;
}

static inline bool file_grew(ctx *c, void *arg)
{
    (void)c;
    const char **a = arg;
    return file_size(a[0]) > (off_t)(intptr_t)a[1];
}

/* arg: {path, text}: the file contains text. */
static inline bool file_contains(ctx *c, void *arg)
{
    (void)c;
    const char **a = arg;
    char *s = slurp(a[0], NULL);
    bool found = s && strstr(s, a[1]);
    free(s);
    return found;
}

static inline double ms_since(uint64_t t0)
{
    return (double)(uv_hrtime() - t0) / 1e6;
}

/* Group setup: libuv creates process-wide descriptors (its signal lock
 * pipe) the first time a loop is made and a child is spawned; do that once
 * here so the per-test fd counts compare like with like.  SIGPIPE is ignored
 * as galvanid does (a write to a job that closed its control fd must be an
 * EPIPE error, not the end of the process). */
static inline void warmup_exit(uv_process_t *p, int64_t status, int sig)
{
    (void)status, (void)sig;
    uv_close((uv_handle_t *)p, NULL);
}

static inline int runner_group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_process_t proc;
    char *argv[] = {"/bin/true", NULL};
    uv_process_options_t po;
    memset(&po, 0, sizeof po);
    po.file = argv[0];
    po.args = argv;
    po.exit_cb = warmup_exit;
    if (uv_loop_init(&loop) != 0 || uv_spawn(&loop, &proc, &po) != 0)
        return -1;
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : -1;
}


#endif
