/*
 * jobs_test_util.h — a job model on a real libuv loop and a real SQLite
 * store in a temp dir, for test_store_faults.c and test_retention.c.
 *
 * Waits are bounded: run_while() gives up after a deadline and the caller
 * asserts on the outcome.  stderr can be captured (cap_begin / cap_end) to
 * count log lines.  Builds on store_test_util.h (temp dir, raw SQLite).
 */
#ifndef GALVANI_TEST_JOBS_UTIL_H
#define GALVANI_TEST_JOBS_UTIL_H

#include "store_test_util.h"

#include <uv.h>

#include "model/jobs.h"

typedef struct mfx {
    fixture fx; /* dir, db */
    char logs[700];
    char run[700];
    uv_loop_t loop;
    gvd_store *store;
    gvd_jobs *jobs;
    gvd_config cfg;
    size_t max_count; /* the most jobs the registry held at any change */
    int removals;
} mfx;

static inline void mfx_on_change(void *ud, gvd_job *job, bool removed)
{
    (void)job;
    mfx *m = ud;
    size_t n = gvd_jobs_count(m->jobs);
    if (n > m->max_count)
        m->max_count = n;
    if (removed)
        m->removals++;
}

static inline void mfx_open(mfx *m)
{
    m->store = open_ok(m->fx.db);
    gvd_error e = {0};
    m->jobs = gvd_jobs_new(&m->loop, m->store, &m->cfg, &e);
    if (!m->jobs)
        fail_msg("gvd_jobs_new: %s", e.message);
    gvd_jobs_on_change(m->jobs, mfx_on_change, m);
}

static inline void mfx_close(mfx *m)
{
    gvd_jobs_free(m->jobs);
    m->jobs = NULL;
    uv_run(&m->loop, UV_RUN_DEFAULT); /* let handles close */
    gvd_store_close(m->store);
    m->store = NULL;
}

/* A fixture with the given config (log_dir is filled in). */
static inline mfx *mfx_new(gvd_config cfg)
{
    mfx *m = calloc(1, sizeof *m);
    fixture *fx = NULL;
    void *st = NULL;
    if (!m || fx_setup(&st) != 0)
        fail_msg("fixture setup failed");
    fx = st;
    m->fx = *fx;
    free(fx);
    snprintf(m->logs, sizeof m->logs, "%s/logs", m->fx.dir);
    snprintf(m->run, sizeof m->run, "%s/run", m->fx.dir);
    if (uv_loop_init(&m->loop) != 0)
        fail_msg("uv_loop_init failed");
    m->cfg = cfg;
    m->cfg.log_dir = m->logs;
    m->cfg.run_dir = m->run;
    mfx_open(m);
    return m;
}

static inline void mfx_free(mfx *m)
{
    if (m->jobs)
        mfx_close(m);
    if (uv_loop_close(&m->loop) != 0)
        fail_msg("the loop still has handles");
    rm_tree(m->fx.dir);
    free(m);
}

/* uv_stop too: the timer may fire in the timers phase of a UV_RUN_ONCE
 * whose poll would then block with no timeout left (the loop clock was stale
 * after a blocking call); a stopped loop polls with timeout 0. */
static inline void mfx_deadline_cb(uv_timer_t *t)
{
    *(int *)t->data = 1;
    uv_stop(t->loop);
}

/* How long a test waits for something that must happen (a status, a
 * count) before it fails.  Generous: it only ends a test that is stuck, and
 * a busy (CI) machine under ASan may be many times slower than an idle one.
 * run_for() windows, in which something must NOT happen, are short. */
#define T_WAIT_MS 30000

/* Runs the loop while pred(ud) is true, at most ms.  Returns !pred at the
 * end (true: the condition was reached). */
static inline bool run_while(mfx *m, bool (*pred)(void *), void *ud, unsigned ms)
{
    int expired = 0;
    uv_timer_t t;
    uv_timer_init(&m->loop, &t);
    t.data = &expired;
    uv_timer_start(&t, mfx_deadline_cb, ms, 0);
    while (pred(ud) && !expired)
        uv_run(&m->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&m->loop, UV_RUN_NOWAIT);
    return !pred(ud);
}

static inline bool mfx_always(void *ud)
{
    (void)ud;
    return true;
}

static inline void run_for(mfx *m, unsigned ms)
{
    (void)run_while(m, mfx_always, NULL, ms);
}

typedef struct status_wait {
    gvd_job *job;
    gvd_status want;
} status_wait;

static inline bool status_differs(void *ud)
{
    status_wait *w = ud;
    return gvd_job_status(w->job) != w->want;
}

static inline void run_until_status(mfx *m, gvd_job *job, gvd_status want, unsigned ms)
{
    status_wait w = {job, want};
    if (!run_while(m, status_differs, &w, ms))
        fail_msg("job %lld is %s after %u ms, expected %s", (long long)gvd_job_id(job),
                 gvd_status_name(gvd_job_status(job)), ms, gvd_status_name(want));
}

static inline bool job_pid_unknown(void *ud)
{
    json_t *j = gvd_job_json(ud);
    json_int_t pid = json_integer_value(json_object_get(j, "pid"));
    json_decref(j);
    return pid <= 0;
}

/* A process job is "running" once that is committed; its pid is known once
 * its supervisor answered (the spawn does not wait for that). */
static inline void run_until_pid(mfx *m, gvd_job *job, unsigned ms)
{
    if (!run_while(m, job_pid_unknown, job, ms))
        fail_msg("job %lld has no pid after %u ms", (long long)gvd_job_id(job), ms);
}

/* Create from a JSON text; NULL + *err on refusal. */
static inline gvd_job *try_create(mfx *m, const char *json, gvd_error *err)
{
    json_error_t jerr;
    json_t *body = json_loads(json, 0, &jerr);
    if (!body)
        fail_msg("bad test JSON %s: %s", json, jerr.text);
    gvd_job *job = gvd_jobs_create(m->jobs, body, err);
    json_decref(body);
    return job;
}

static inline gvd_job *create_ok(mfx *m, const char *json)
{
    gvd_error err = {0};
    gvd_job *job = try_create(m, json, &err);
    if (!job)
        fail_msg("create %s: %d %s", json, err.http, err.message);
    return job;
}

/* The job's JSON as text (malloc'd), for before/after comparisons. */
static inline char *job_text(gvd_job *job)
{
    json_t *j = gvd_job_json(job);
    assert_non_null(j);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    assert_non_null(s);
    return s;
}

/* ---- stderr capture (the daemon's log) ------------------------------------ */

typedef struct capture {
    int saved;
    char path[700];
} capture;

static inline void cap_begin(capture *c, const char *dir)
{
    fflush(stderr);
    snprintf(c->path, sizeof c->path, "%s/stderr.log", dir);
    int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    c->saved = dup(2);
    assert_true(c->saved >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    close(fd);
}

/* Restores stderr and returns what was written (malloc'd); it is also
 * echoed, so a failing test still shows the log. */
static inline char *cap_end(capture *c)
{
    fflush(stderr);
    assert_int_equal(dup2(c->saved, 2), 2);
    close(c->saved);
    size_t len = 0;
    char *text = read_file(c->path, &len);
    assert_non_null(text);
    fputs(text, stderr);
    return text;
}

static inline int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

#endif
