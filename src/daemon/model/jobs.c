/*
 * jobs.c — the registry of jobs: creation, lookup, listing, deletion, the
 * transitions the API asks for, the scheduler, restart recovery and the
 * progress write-behind.
 *
 * The scheduler is an effect.  It reads the status of every "live" job (not
 * finished, or finished with its process still dying) and the live-list
 * revision, so it re-runs exactly when a slot may have freed or a job was
 * queued, and starts the best queued jobs (priority, then age) while fewer
 * than max_running occupy a slot.
 */
#include "model.h"


#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../pipeline/pipeline.h"
#include "../util/log.h"

static const char *const gvd_status_names[] = {"queued", "running", "paused", "succeeded", "failed", "cancelled"};

const char *gvd_status_name(gvd_status s)
{
    return (unsigned)s < GVD_NSTATUS ? gvd_status_names[s] : "unknown";
}

bool gvd_status_parse(const char *name, gvd_status *out)
{
    for (int i = 0; i < GVD_NSTATUS; i++) {
        if (name && strcmp(name, gvd_status_names[i]) == 0) {
            *out = (gvd_status)i;
            return true;
        }
    }
    return false;
}

/* ---- id map (open addressing, linear probing, backward-shift delete) --- */

static size_t gvd_slot(int64_t id, size_t cap)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (cap - 1);
}

int gvd_jobs_map_put(gvd_jobs *jobs, gvd_job *job)
{
    if ((jobs->map_used + 1) * 4 > jobs->map_cap * 3) {
        size_t cap = jobs->map_cap ? jobs->map_cap * 2 : 64;
        gvd_job **map = calloc(cap, sizeof *map);
        if (!map)
            return -1;
        for (size_t i = 0; i < jobs->map_cap; i++) {
            gvd_job *j = jobs->map[i];
            if (!j)
                continue;
            size_t s = gvd_slot(j->id, cap);
            while (map[s])
                s = (s + 1) & (cap - 1);
            map[s] = j;
        }
        free(jobs->map);
        jobs->map = map;
        jobs->map_cap = cap;
    }
    size_t s = gvd_slot(job->id, jobs->map_cap);
    while (jobs->map[s])
        s = (s + 1) & (jobs->map_cap - 1);
    jobs->map[s] = job;
    jobs->map_used++;
    return 0;
}

gvd_job *gvd_jobs_get(gvd_jobs *jobs, int64_t id)
{
    if (!jobs->map_cap)
        return NULL;
    for (size_t s = gvd_slot(id, jobs->map_cap);; s = (s + 1) & (jobs->map_cap - 1)) {
        if (!jobs->map[s])
            return NULL;
        if (jobs->map[s]->id == id)
            return jobs->map[s];
    }
}

static void gvd_map_remove(gvd_jobs *jobs, int64_t id)
{
    size_t mask = jobs->map_cap - 1, s = gvd_slot(id, jobs->map_cap);
    while (jobs->map[s] && jobs->map[s]->id != id)
        s = (s + 1) & mask;
    if (!jobs->map[s])
        return;
    jobs->map[s] = NULL;
    jobs->map_used--;
    /* Shift back the entries that probed past the hole. */
    for (size_t i = (s + 1) & mask; jobs->map[i]; i = (i + 1) & mask) {
        size_t home = gvd_slot(jobs->map[i]->id, jobs->map_cap);
        bool movable = (i > s) ? (home <= s || home > i) : (home <= s && home > i);
        if (movable) {
            jobs->map[s] = jobs->map[i];
            jobs->map[i] = NULL;
            s = i;
        }
    }
}

/* ---- lists ------------------------------------------------------------ */

static void gvd_bump(gv_signal *s)
{
    gv_signal_set_int(s, gv_value_to_int(gv_signal_peek(s)) + 1);
}

void gvd_jobs_live_add(gvd_jobs *jobs, gvd_job *job)
{
    if (job->in_live)
        return;
    job->in_live = true;
    job->live_next = NULL;
    job->live_prev = jobs->live_last;
    if (jobs->live_last)
        jobs->live_last->live_next = job;
    else
        jobs->live_first = job;
    jobs->live_last = job;
    gvd_bump(jobs->live_rev);
}

void gvd_jobs_live_remove(gvd_jobs *jobs, gvd_job *job)
{
    if (!job->in_live)
        return;
    job->in_live = false;
    if (job->live_prev)
        job->live_prev->live_next = job->live_next;
    else
        jobs->live_first = job->live_next;
    if (job->live_next)
        job->live_next->live_prev = job->live_prev;
    else
        jobs->live_last = job->live_prev;
    job->live_prev = job->live_next = NULL;
    gvd_bump(jobs->live_rev);
    gvd_retention_schedule(jobs); /* one more finished job */
}

void gvd_jobs_list_append(gvd_jobs *jobs, gvd_job *job)
{
    job->prev = jobs->last;
    job->next = NULL;
    if (jobs->last)
        jobs->last->next = job;
    else
        jobs->first = job;
    jobs->last = job;
    jobs->count++;
}

static void gvd_list_remove(gvd_jobs *jobs, gvd_job *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else
        jobs->first = job->next;
    if (job->next)
        job->next->prev = job->prev;
    else
        jobs->last = job->prev;
    jobs->count--;
}

void gvd_jobs_notify(gvd_jobs *jobs, gvd_job *job, bool removed)
{
    gvd_job_body_forget(job);
    if (jobs->on_change && !jobs->closing)
        jobs->on_change(jobs->on_change_ud, job, removed);
}

void gvd_jobs_on_change(gvd_jobs *jobs, gvd_job_change_fn fn, void *ud)
{
    jobs->on_change = fn;
    jobs->on_change_ud = ud;
}

/* ---- progress write-behind -------------------------------------------- */

bool gvd_jobs_flush(gvd_jobs *jobs)
{
    gvd_job *list = jobs->dirty_first;
    jobs->dirty_first = NULL;
    for (gvd_job *job = list; job; job = job->dirty_next)
        job->dirty_listed = false;
    char err[256];
    /* If the batch cannot even start (the store is locked, say), writing
     * each job on its own would fail the same way, once per job: skip. */
    bool txn = gvd_store_begin(jobs->store, err, sizeof err) == 0;
    size_t n = 0;
    for (gvd_job *job = list; txn && job; job = job->dirty_next) {
        if (job->dirty && gvd_job_persist_now(job) == 0)
            n++;
        /* Metric points and applied marks ride in the same transaction;
         * they count as written only once it commits. */
        job->history_written = job->history_dirty && gvd_params_write(job, err, sizeof err) == 0 &&
                               gvd_metrics_write(job, err, sizeof err) == 0 &&
                               gvd_rules_write(job, err, sizeof err) == 0;
    }
    bool committed = txn && gvd_store_commit(jobs->store, err, sizeof err) == 0;
    if (txn && !committed) {
        /* The store rolled the batch back: everything in it is unsaved.  A
         * fault is logged once by the store (store.unavailable). */
        gvd_log(gvd_store_available(jobs->store) ? GVD_LOG_ERROR : GVD_LOG_DEBUG, "store.commit_failed",
                "jobs=%zu error=%s", n, gvd_log_quote(err, (char[300]){0}, 300));
        for (gvd_job *job = list; job; job = job->dirty_next)
            job->dirty = true;
    }
    for (gvd_job *job = list; committed && job; job = job->dirty_next) {
        if (job->history_written) {
            gvd_params_committed(job);
            gvd_metrics_committed(job);
            gvd_rules_committed(job);
            job->history_dirty = false;
        }
    }
    bool all = true;
    for (gvd_job *job = list, *next; job; job = next) {
        next = job->dirty_next;
        job->dirty_next = NULL;
        job->history_written = false;
        if (!job->dirty && job->history_dirty) {
            all = false;
            gvd_jobs_mark_history(jobs, job);
        } else if (!job->dirty) {
            /* Written: a status a failed synchronous write left pending
             * (an exit while the disk was full) is stored now. */
            job->persisted_status = gvd_job_status_peek(job);
            job->persisted_params_rev = gv_value_to_int(gv_signal_peek(job->params_rev));
        } else {
            all = false;
            gvd_jobs_mark_dirty(jobs, job); /* try again at the next flush, or the fault retry */
        }
    }
    return all;
}

static void gvd_flush_cb(uv_timer_t *t)
{
    (void)gvd_jobs_flush(t->data);
}

/* List the job for the next flush (the row, its history, or both). */
static void gvd_jobs_list_dirty(gvd_jobs *jobs, gvd_job *job)
{
    if (!job->dirty_listed) {
        job->dirty_listed = true;
        job->dirty_next = jobs->dirty_first;
        jobs->dirty_first = job;
    }
    if (jobs->closing)
        return;
    if (!gvd_store_available(jobs->store)) /* the fault retry flushes, with backoff */
        gvd_faults_arm(jobs);
    else if (!uv_is_active((uv_handle_t *)&jobs->flush_timer))
        uv_timer_start(&jobs->flush_timer, gvd_flush_cb, jobs->cfg.progress_flush_ms, 0);
}

void gvd_jobs_mark_dirty(gvd_jobs *jobs, gvd_job *job)
{
    job->dirty = true;
    gvd_jobs_list_dirty(jobs, job);
}

void gvd_jobs_mark_history(gvd_jobs *jobs, gvd_job *job)
{
    job->history_dirty = true;
    gvd_jobs_list_dirty(jobs, job);
}

static void gvd_dirty_forget(gvd_jobs *jobs, gvd_job *job)
{
    if (job->dirty_listed) {
        for (gvd_job **p = &jobs->dirty_first; *p; p = &(*p)->dirty_next) {
            if (*p == job) {
                *p = job->dirty_next;
                break;
            }
        }
    }
    job->dirty_listed = false;
    job->dirty = false;
    job->history_dirty = false;
}

/* ---- waiting for a start ---------------------------------------------- */

typedef struct gvd_start_waiter {
    int64_t job_id;
    gvd_started_fn fn;
    void *ud;
    struct gvd_start_waiter *next;
} gvd_start_waiter;

bool gvd_job_starting(const gvd_job *job)
{
    return job->exec_state == GVD_EXEC_STARTING;
}

int gvd_jobs_after_start(gvd_jobs *jobs, gvd_job *job, gvd_started_fn fn, void *ud)
{
    gvd_start_waiter *w = malloc(sizeof *w);
    if (!w)
        return -1;
    *w = (gvd_start_waiter){job->id, fn, ud, jobs->start_waiters};
    jobs->start_waiters = w;
    return 0;
}

/* A few at a time (the creates of one tick): a list is enough. */
void gvd_jobs_started(gvd_jobs *jobs, gvd_job *job)
{
    for (gvd_start_waiter **p = &jobs->start_waiters; *p;) {
        gvd_start_waiter *w = *p;
        if (job && w->job_id != job->id) {
            p = &w->next;
            continue;
        }
        *p = w->next;
        w->fn(w->ud);
        free(w);
    }
}

void gvd_jobs_release_waiters(gvd_jobs *jobs)
{
    gvd_jobs_group_commit(jobs);
    gvd_jobs_started(jobs, NULL);
}

/* ---- the scheduler ---------------------------------------------------- */

static void gvd_scheduler_fx(void *ud)
{
    gvd_jobs *jobs = ud;
    (void)gv_signal_get(jobs->live_rev);
    (void)gv_signal_get(jobs->wake);
    /* Starting a job is a transition that must be stored first; while the
     * store is down every start would be refused (fault.c wakes us). */
    if (!gvd_store_available(jobs->store))
        return;
    double now = gvd_now();
    unsigned used = gvd_jobs_busy_slots(jobs);
    /* On PostgreSQL the starts join the tick's commit (group.c;
     * gvd_job_begin_run stages each), wherever this runs from (a finished
     * job, a claim, a retry's timer, start-up): a process is spawned only
     * once its "running" row is durable.  A write outside the group is
     * durable only later there, and a spawn before it would, after a kill -9
     * in between, leave a row saying "queued" for a job that ran — which the
     * next start would run again.  On SQLite the write is durable at once. */
    bool deferred = gvd_store_deferred(jobs->store);
    if (deferred)
        gvd_jobs_group_begin(jobs);
    while (used < jobs->cfg.max_running) {
        gvd_job *best = NULL;
        for (gvd_job *j = jobs->live_first; j; j = j->live_next) {
            if (gvd_job_status_peek(j) != GVD_QUEUED || j->exec_state != GVD_EXEC_NONE || j->not_before > now ||
                j->held || !gvd_job_acts(j))
                continue;
            if (!best || j->spec.priority > best->spec.priority)
                best = j;
        }
        if (!best)
            break;
        /* If the store refuses the start, the job's reconcile effect puts
         * it back after this run; the store is then unavailable and the
         * gate above holds until it recovers. */
        gvd_job_begin_run(best);
        used++;
    }
    if (deferred)
        gvd_jobs_group_end(jobs);
    /* Slots left: queued jobs nobody owns may be claimed (other nodes). */
    gvd_jobs_maybe_claim(jobs, jobs->cfg.max_running > used ? jobs->cfg.max_running - used : 0);
}

/* ---- creation, recovery ----------------------------------------------- */

/* mkdir -p; what it creates is 0700 (the log and run directories hold
 * what the database holds: they are as private as its 0600 file). */
static int gvd_mkdir_p(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

void gvd_jobs_run_dir(const gvd_jobs *jobs, int64_t id, char *out, size_t n)
{
    snprintf(out, n, "%s/%lld", jobs->run_dir, (long long)id);
}

gvd_jobs *gvd_jobs_new(uv_loop_t *loop, gvd_store *store, const gvd_config *cfg, gvd_error *err)
{
    gvd_jobs *jobs = calloc(1, sizeof *jobs);
    if (!jobs) {
        gvd_error_set(err, 503, "out_of_memory", "out of memory");
        return NULL;
    }
    jobs->loop = loop;
    jobs->store = store;
    jobs->cfg = *cfg;
    if (!jobs->cfg.max_running)
        jobs->cfg.max_running = 4;
    if (!jobs->cfg.cancel_grace_ms)
        jobs->cfg.cancel_grace_ms = 5000;
    if (!jobs->cfg.log_limit)
        jobs->cfg.log_limit = 10u << 20;
    if (!jobs->cfg.progress_flush_ms)
        jobs->cfg.progress_flush_ms = 250;
    if (!jobs->cfg.demo_step_ms)
        jobs->cfg.demo_step_ms = 100;
    const char *dir = cfg->log_dir ? cfg->log_dir : "galvani-logs";
    jobs->log_dir = malloc(strlen(dir) + 1);
    if (jobs->log_dir)
        strcpy(jobs->log_dir, dir);
    jobs->cfg.log_dir = jobs->log_dir;
    if (cfg->run_dir) {
        jobs->run_dir = strdup(cfg->run_dir);
    } else if (jobs->log_dir && (jobs->run_dir = malloc(strlen(jobs->log_dir) + 5)) != NULL) {
        strcpy(jobs->run_dir, jobs->log_dir);
        strcat(jobs->run_dir, ".run");
    }
    jobs->cfg.run_dir = jobs->run_dir;
    jobs->live_rev = gv_signal_new(gv_int(0));
    jobs->wake = gv_signal_new(gv_int(0));
    jobs->scope = gv_scope_new();
    uv_timer_init(loop, &jobs->flush_timer);
    jobs->flush_timer.data = jobs;
    if (!jobs->log_dir || !jobs->run_dir || !jobs->live_rev || !jobs->wake || !jobs->scope ||
        gvd_faults_new(jobs) != 0 || gvd_group_new(jobs) != 0 || gvd_retention_new(jobs) != 0 || gvd_rules_new(jobs) != 0 ||
        gvd_pipelines_new(jobs) != 0) {
        gvd_error_set(err, 503, "out_of_memory", "out of memory");
        gvd_jobs_free(jobs);
        return NULL;
    }
    /* An existing log directory is made private too (an older galvanid
     * created it 0755): it is galvanid's, like the run directory below. */
    int rc = gvd_mkdir_p(jobs->log_dir);
    if (rc == 0 && chmod(jobs->log_dir, 0700) != 0)
        rc = -errno;
    if (rc != 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "cannot create the log directory %s: %s", jobs->log_dir, strerror(-rc));
        gvd_error_set(err, 500, "log_dir", msg);
        gvd_jobs_free(jobs);
        return NULL;
    }
    /* <run_dir>/<id>/sock must fit a unix socket address (108 bytes). */
    size_t room = sizeof(((struct sockaddr_un *)0)->sun_path) - sizeof "/-9223372036854775808/sock";
    rc = strlen(jobs->run_dir) > room ? -ENAMETOOLONG : gvd_mkdir_p(jobs->run_dir);
    if (rc == 0 && chmod(jobs->run_dir, 0700) != 0)
        rc = -errno;
    if (rc != 0) {
        char msg[600];
        if (rc == -ENAMETOOLONG)
            snprintf(msg, sizeof msg, "the run directory path is too long for unix sockets: %s (%zu bytes; at most %zu)",
                     jobs->run_dir, strlen(jobs->run_dir), room);
        else
            snprintf(msg, sizeof msg, "cannot create the run directory %s: %s", jobs->run_dir, strerror(-rc));
        gvd_error_set(err, 500, "run_dir", msg);
        gvd_jobs_free(jobs);
        return NULL;
    }
    char werr[400], serr[256];
    if (gvd_rules_webhook(jobs, werr, sizeof werr) != 0) {
        gvd_error_set(err, 400, "webhook", werr);
        gvd_jobs_free(jobs);
        return NULL;
    }
    if (gvd_rules_load_globals(jobs, serr, sizeof serr) != 0 ||
        gvd_store_load(store, gvd_jobs_load_row, jobs, serr, sizeof serr) != 0 ||
        gvd_params_load(jobs, serr, sizeof serr) != 0 || gvd_metrics_load(jobs, serr, sizeof serr) != 0 ||
        gvd_rules_load(jobs, serr, sizeof serr) != 0) {
        char msg[400];
        snprintf(msg, sizeof msg, "cannot load jobs: %s", serr);
        gvd_error_set(err, 500, "store_failed", msg);
        gvd_jobs_free(jobs);
        return NULL;
    }
    gvd_jobs_start_loaded(jobs);
    if (gvd_pipelines_load(jobs, serr, sizeof serr) != 0) {
        char msg[400];
        snprintf(msg, sizeof msg, "cannot load pipelines: %s", serr);
        gvd_error_set(err, 500, "store_failed", msg);
        gvd_jobs_free(jobs);
        return NULL;
    }
    gvd_jobs_sweep_run_dirs(jobs);
    gv_scope_enter(jobs->scope);
    jobs->scheduler = gv_effect_new(gvd_scheduler_fx, jobs);
    gv_scope_leave(jobs->scope);
    gvd_log(GVD_LOG_INFO, "jobs.loaded", "jobs=%zu max_running=%u", jobs->count, jobs->cfg.max_running);
    gvd_retention_schedule(jobs); /* a database from a run with a higher limit */
    return jobs;
}

static void gvd_jobs_timer_closed(uv_handle_t *h)
{
    gvd_jobs *jobs = h->data;
    free(jobs->map);
    free(jobs->log_dir);
    free(jobs->run_dir);
    free(jobs);
}

void gvd_jobs_free(gvd_jobs *jobs)
{
    if (!jobs)
        return;
    gvd_group_free(jobs); /* commits what is staged, answers its waiters */
    gvd_jobs_started(jobs, NULL); /* the jobs still starting are left to their supervisors */
    jobs->closing = true;
    if (jobs->dirty_first)
        (void)gvd_jobs_flush(jobs); /* persist pending progress */
    gvd_faults_free(jobs);          /* logs what could not be written */
    gvd_retention_free(jobs);
    gvd_pipelines_free(jobs); /* before the jobs: their graphs read the jobs' signals */
    gv_scope_free(jobs->scope);
    for (gvd_job *job = jobs->first, *next; job; job = next) {
        next = job->next;
        gvd_job_free(job);
    }
    gvd_rules_free(jobs); /* after the jobs: their rules read its tick */
    gv_signal_free(jobs->live_rev);
    gv_signal_free(jobs->wake);
    uv_close((uv_handle_t *)&jobs->flush_timer, gvd_jobs_timer_closed);
}

gvd_job *gvd_jobs_create(gvd_jobs *jobs, json_t *body, gvd_error *err)
{
    return gvd_jobs_create_step(jobs, body, NULL, NULL, false, err);
}

gvd_job *gvd_jobs_create_step(gvd_jobs *jobs, json_t *body, json_t *link, struct gvd_pipeline *pipeline, bool held,
                              gvd_error *err)
{
    gvd_spec spec;
    json_t *normalized = NULL, *params = NULL;
    if (gvd_spec_parse(body, &jobs->cfg, &spec, &normalized, &params, err) != 0)
        return NULL;
    if (link && json_object_set(normalized, "pipeline", link) != 0) {
        gvd_spec_clear(&spec);
        json_decref(normalized);
        json_decref(params);
        gvd_error_set(err, 503, "out_of_memory", "out of memory");
        return NULL;
    }
    /* Insert first: the id comes from the store, and a 201 means stored.
     * In a cluster the job is this node's if it has a free slot (it starts
     * at once, as on one node), else queued for any node to claim; a step
     * of a paused pipeline is its pipeline's node's, which holds it. */
    bool mine = !jobs->cfg.cluster || held || gvd_jobs_busy_slots(jobs) < jobs->cfg.max_running;
    double now = gvd_now();
    char *spec_text = json_dumps(normalized, JSON_COMPACT), *params_text = json_dumps(params, JSON_COMPACT);
    gvd_job_row row = {.name = spec.name,
                       .kind = spec.kind == GVD_EXEC_DEMO ? "demo" : "process",
                       .status = "queued",
                       .priority = spec.priority,
                       .spec_json = spec_text,
                       .params_json = params_text,
                       .metrics_json = "{}",
                       .progress_total = 100,
                       .message = "",
                       .created_at = now,
                       .updated_at = now,
                       .node = mine ? jobs->cfg.node_id : NULL};
    int64_t id = 0;
    char serr[256] = "out of memory";
    int rc = spec_text && params_text ? gvd_store_insert(jobs->store, &row, &id, serr, sizeof serr) : -1;
    free(spec_text);
    free(params_text);
    if (rc != 0) {
        gvd_jobs_store_error(jobs, err, "the job was not created", serr);
        gvd_spec_clear(&spec);
        json_decref(normalized);
        json_decref(params);
        return NULL;
    }
    gvd_job *job = gvd_job_new(jobs, id, &spec, normalized, params, now);
    if (!job || gvd_jobs_map_put(jobs, job) != 0) {
        if (job)
            gvd_job_free(job);
        else {
            gvd_spec_clear(&spec);
            json_decref(normalized);
            json_decref(params);
        }
        (void)gvd_store_delete(jobs->store, id, serr, sizeof serr);
        gvd_error_set(err, 503, "out_of_memory", "out of memory");
        return NULL;
    }
    gvd_jobs_list_append(jobs, job);
    gvd_job_set_owner(job, row.node);
    job->persisted_status = GVD_QUEUED;
    job->pipeline = pipeline;
    job->held = held;
    gv_batch_begin();
    gvd_job_start_effects(job);
    gvd_jobs_live_add(jobs, job); /* the scheduler may start it at batch end */
    gv_batch_end();
    gvd_retention_schedule(jobs); /* one more job kept */
    return job;
}

void gvd_job_set_held(gvd_job *job, bool held)
{
    if (job->held == held)
        return;
    job->held = held;
    /* Several nodes: the hold is this node's word; a queued job nobody owns
     * is taken (then held here), one another node owns is held (or paused,
     * if it started) and released there (cluster/control.c). */
    if (job->owner != GVD_OWNER_SELF && gvd_job_status_peek(job) == GVD_QUEUED)
        (void)gvd_jobs_forward(job->jobs, job->id, held ? "hold" : "release");
    /* the scheduler reads `wake`: a released job may start now */
    gv_signal_set_int(job->jobs->wake, gv_value_to_int(gv_signal_peek(job->jobs->wake)) + 1);
}

int gvd_jobs_delete(gvd_jobs *jobs, gvd_job *job, gvd_error *err)
{
    if (gvd_job_in_pipeline(job)) {
        char msg[200];
        snprintf(msg, sizeof msg, "job %lld is a step of pipeline %lld: delete the pipeline instead",
                 (long long)job->id, (long long)gvd_pipeline_id(job->pipeline));
        gvd_error_set(err, 409, "invalid_transition", msg);
        return -1;
    }
    gvd_status st = gvd_job_status_peek(job);
    if (!gvd_status_finished(st) || job->exec) {
        char msg[200];
        snprintf(msg, sizeof msg, "job %lld is %s: only finished jobs can be deleted (cancel it first)",
                 (long long)job->id, job->exec ? "still stopping" : gvd_status_name(st));
        gvd_error_set(err, 409, "invalid_transition", msg);
        return -1;
    }
    char serr[256];
    if (job->group_pending)
        gvd_jobs_group_commit(jobs); /* its end first: no staged row outlives its job */
    if (gvd_store_delete(jobs->store, job->id, serr, sizeof serr) != 0) {
        gvd_jobs_store_error(jobs, err, "the job was not deleted", serr);
        return -1;
    }
    gvd_jobs_forget(jobs, job);
    return 0;
}

gvd_store *gvd_jobs_store(gvd_jobs *jobs)
{
    return jobs->store;
}

void gvd_jobs_forget(gvd_jobs *jobs, gvd_job *job)
{
    if (job->group_pending)
        gvd_jobs_group_commit(jobs); /* no staged row outlives its job */
    gvd_group_forget(job);
    gvd_jobs_notify(jobs, job, true);
    gvd_dirty_forget(jobs, job);
    gvd_jobs_live_remove(jobs, job);
    gvd_map_remove(jobs, job->id);
    gvd_list_remove(jobs, job);
    if (job->log_path)
        (void)unlink(job->log_path);
    gvd_job_free(job);
}

size_t gvd_jobs_list(gvd_jobs *jobs, unsigned status_mask, size_t offset, size_t limit, gvd_job **out,
                     size_t *total)
{
    return gvd_jobs_list_labeled(jobs, status_mask, NULL, NULL, offset, limit, out, total);
}

size_t gvd_jobs_list_labeled(gvd_jobs *jobs, unsigned status_mask, const char *label, const char *value,
                             size_t offset, size_t limit, gvd_job **out, size_t *total)
{
    gvd_job_filter f = {.status_mask = status_mask, .label = label, .value = value};
    return gvd_jobs_list_where(jobs, &f, offset, limit, out, total);
}

size_t gvd_jobs_list_where(gvd_jobs *jobs, const gvd_job_filter *f, size_t offset, size_t limit, gvd_job **out,
                           size_t *total)
{
    size_t matched = 0, written = 0;
    for (gvd_job *j = jobs->last; j; j = j->prev) {
        if (f->status_mask && !(f->status_mask & (1u << gvd_job_status_peek(j))))
            continue;
        if (f->label) {
            json_t *have = json_object_get(json_object_get(j->spec_json, "labels"), f->label);
            if (!json_is_string(have) || strcmp(json_string_value(have), f->value) != 0)
                continue;
        }
        if (f->name_glob && fnmatch(f->name_glob, j->spec.name, 0) != 0)
            continue;
        if (matched >= offset && written < limit)
            out[written++] = j;
        matched++;
    }
    if (total)
        *total = matched;
    return written;
}

gvd_job *gvd_jobs_demo(gvd_jobs *jobs)
{
    for (gvd_job *j = jobs->last; j; j = j->prev)
        if (j->spec.kind == GVD_EXEC_DEMO)
            return j;
    return NULL;
}

gvd_job *gvd_jobs_start_demo(gvd_jobs *jobs, gvd_error *err)
{
    gvd_job *demo = gvd_jobs_demo(jobs);
    if (demo && !gvd_status_finished(gvd_job_status_peek(demo))) {
        char msg[200];
        snprintf(msg, sizeof msg, "the demo job (id %lld) is already %s", (long long)demo->id,
                 gvd_status_name(gvd_job_status_peek(demo)));
        gvd_error_set(err, 409, "already_running", msg);
        return NULL;
    }
    json_t *body = json_pack("{s:s}", "kind", "demo");
    if (!body) {
        gvd_error_set(err, 503, "out_of_memory", "out of memory");
        return NULL;
    }
    gvd_job *job = gvd_jobs_create(jobs, body, err);
    json_decref(body);
    return job;
}

size_t gvd_jobs_count(gvd_jobs *jobs) { return jobs->count; }
int64_t gvd_job_id(const gvd_job *job) { return job->id; }
gvd_status gvd_job_status(const gvd_job *job) { return gvd_job_status_peek(job); }
const char *gvd_job_log_path(const gvd_job *job) { return job->log_path; }
