/*
 * model.h — the job model's private structures, shared by its files:
 *   spec.c   validating a job spec (the POST /jobs body)
 *   job.c    one job: its signals, computeds and effects, its lifetime
 *   run.c    its process: the start, what it reports, the timeout, the
 *            exit and retries, adoption after a restart
 *   jobs.c   the registry: ids, listing, the scheduler, restart recovery,
 *            progress write-behind
 *   control.c  the transitions users ask for, a job as JSON
 *   schema.c   the optional params_schema and checking params against it
 *   params.c   params revisions, their history, delivery and acks
 *   series.c   a bounded, downsampling time series (pure)
 *   metrics.c  each job's metric history: recording, JSON, persistence
 *   group.c    group commit: the transitions of a loop tick in one transaction
 *   recover.c  a start: loading every job, re-adopting what still runs
 *   owner.c    several nodes: which node acts on a job, following others' rows
 * and, in ../rules/, the reactive rules compiled onto a job's signals.
 *
 * A job's state lives in signals; its effects (owned by the job's scope) do
 * all side effects:
 *   persist    status / identity changes are written to the store at once
 *              (so a 2xx means committed), or, in a group window, staged for
 *              the loop tick's one transaction (group.c), which the steps
 *              below wait for; progress, message and metrics are written
 *              behind, coalesced by a timer.
 *   reconcile  makes the process follow `status`: spawns it when a job
 *              becomes running, pauses / resumes / cancels it.  The status
 *              signal is the desired state; `exec_state` the actual one.
 *   notify     tells the push hub the job changed (once per batch).
 *   log        one structured line per status change.
 */
#ifndef GALVANI_DAEMON_MODEL_H
#define GALVANI_DAEMON_MODEL_H

#include <galvani/signals.h>

#include <string.h>

#include "../runner/exec.h"
#include "../rules/rules.h"
#include "jobs.h"
#include "series.h"

/* The rate (% per second) is the slope from the newest progress point back
 * to the newest point at least GVD_RATE_WINDOW_S older (or the oldest one
 * kept): recent enough to follow a job that speeds up, long enough that one
 * coarse step (1 % after 0.3 s) does not read as a spike.  32 points at
 * least 2 s apart always reach back past the window. */
#define GVD_RATE_SAMPLES 32
#define GVD_RATE_WINDOW_S 30.0
#define GVD_RATE_SPACING_S 2.0

typedef struct gvd_spec {
    char *name;
    gvd_exec_kind kind;
    char **argv;        /* NULL-terminated, owned (process) */
    bool shell;
    char **env;         /* NULL-terminated "K=V", owned */
    char *cwd;
    double timeout_s;   /* 0: none */
    int64_t max_retries;
    bool at_most_once;  /* several nodes: fail, never retry, when the job's node is lost */
    double retry_backoff_s;
    int64_t priority;
    gvd_pause_mode pause_mode;
    unsigned demo_step_ms;
} gvd_spec;

/* spec.c: validate `body` and fill *spec (and *normalized, a new JSON object
 * holding every field with its default, which is what gets stored).  The
 * initial params object is returned in *params (new reference).  On error,
 * fills err (400) and returns -1 with nothing allocated. */
int gvd_spec_parse(json_t *body, const gvd_config *cfg, gvd_spec *spec, json_t **normalized, json_t **params,
                   gvd_error *err);
/* Rebuild a spec from its stored JSON (as written by gvd_spec_parse). */
int gvd_spec_from_json(json_t *stored, const gvd_config *cfg, gvd_spec *spec, gvd_error *err);
void gvd_spec_clear(gvd_spec *spec);
/* The spec's "command" as the API shows it: the array, or the string of a
 * shell job (null for the demo; NULL when out of memory).  Built from argv:
 * a job does not keep its command as JSON (see gvd_job_new). */
json_t *gvd_spec_command_json(const gvd_spec *spec);
/* The spec's environment as {"K": "V"} (hide_values: every value null),
 * rebuilt from the packed env.  New reference, or NULL (out of memory). */
json_t *gvd_spec_env_json(const gvd_spec *spec, bool hide_values);
/* 0 if `v` (NULL: nothing) is at most GVD_SPEC_MAX_JSON_BYTES of compact
 * JSON; else -1 with a 413 `code` naming `field` and the limit. */
int gvd_json_size_check(json_t *v, const char *field, const char *code, gvd_error *err);

/* fault.c: what a request-driven transition may change, kept so that it can
 * be put back when the store refuses to record it (see gvd_job_revert). */
typedef struct gvd_job_snap {
    int64_t status, attempts, pid, term_signal, exit_status;
    bool has_exit, cancel_requested;
    double current, progress_at, started_at, finished_at;
} gvd_job_snap;

typedef enum gvd_exec_state {
    GVD_EXEC_NONE = 0, /* no process (queued, or finished and reaped) */
    GVD_EXEC_STARTING, /* its supervisor is launched, its answer not yet read:
                          pause / cancel wait for it (gvd_on_start follows) */
    GVD_EXEC_RUNNING,
    GVD_EXEC_PAUSED,
    GVD_EXEC_STOPPING  /* cancel sent, waiting for it to die */
} gvd_exec_state;

/* params.c: one accepted params patch (the history). */
typedef struct gvd_params_change {
    int64_t revision;  /* 1, 2, ...: the index in the history + 1 */
    json_t *patch;     /* owned: the patch as sent */
    char who[16];      /* "token", "local" */
    double at;         /* accepted (s) */
    double applied_at; /* acknowledged by the job (s); 0 = not yet */
} gvd_params_change;

/* owner.c: who acts on a job (see there). */
typedef enum gvd_owner { GVD_OWNER_SELF = 0, GVD_OWNER_NONE, GVD_OWNER_OTHER } gvd_owner;

struct gvd_job {
    gvd_jobs *jobs;
    int64_t id;
    gvd_owner owner;
    char *node;         /* GVD_OWNER_OTHER: the owner's id, owned; else stale or NULL */
    gvd_spec spec;
    json_t *spec_json;  /* normalized spec, owned */
    json_t *params;     /* owned; params_rev bumps on change */
    json_t *metrics;    /* owned; metrics_rev bumps on change */
    char *log_path;     /* NULL for the demo */
    double created_at;

    /* state: signals (see top) */
    gv_signal *status;       /* int gvd_status */
    gv_signal *current;      /* double */
    gv_signal *total;        /* double */
    gv_signal *progress_at;  /* double: when current last changed (s) */
    gv_signal *message;      /* string */
    gv_signal *metrics_rev;  /* int */
    gv_signal *params_rev;   /* int */
    gv_signal *pid;          /* int */
    gv_signal *exit_status;  /* int; GV_NONE until the job exited */
    gv_signal *term_signal;  /* int */
    gv_signal *attempts;     /* int */
    gv_signal *started_at;   /* double, 0 = never */
    gv_signal *finished_at;  /* double */
    gv_signal *error;        /* string, "" = none */
    gv_signal *params_applied; /* int: the last params revision the job acknowledged */

    /* derived */
    gv_computed *percent;    /* 0..100 */
    gv_computed *rate;       /* percent per second over the recent samples (gvd_rate_fn) */
    gv_computed *eta;        /* seconds, or GV_NONE */

    gv_scope *scope;         /* owns the effects below */
    gv_effect *persist_fx, *reconcile_fx, *notify_fx, *log_fx;

    /* the process */
    gvd_exec *exec;
    gvd_exec_state exec_state;
    uint64_t pid_start_ticks;
    bool cancel_requested;   /* the user cancelled: the exit is a cancellation */
    bool timed_out;
    /* Real (time, percent) points of this attempt's progress, oldest
     * first, at least GVD_RATE_SPACING_S apart except the newest (which
     * each report replaces until it is that far from the one before):
     * what the rate is computed from.  After a restart they are the stored
     * ones (gvd_job_restore), never the moment of re-adoption. */
    struct gvd_rate_sample {
        double t, pct;
    } rate_samples[GVD_RATE_SAMPLES];
    unsigned rate_n;
    uint64_t timeout_left_ms; /* remaining run time before the timeout */
    uint64_t timer_started;   /* uv_now when the timeout timer was (re)started */
    uv_timer_t timeout_timer;
    uv_timer_t retry_timer;
    double not_before;        /* retry backoff: not scheduled before (s) */
    int open_handles;         /* uv handles still to be closed before free */

    /* params.c: the history of params changes, the newest
     * GVD_PARAMS_HISTORY_MAX of them (older ones are pruned) */
    json_t *schema;           /* borrowed from spec_json ("params_schema"), or NULL */
    int64_t params_revision;  /* the latest revision; 0 = the spec's params */
    gvd_params_change *changes; /* owned, oldest first, consecutive revisions ending at params_revision */
    size_t nchanges, changes_cap;
    int64_t applied_stored;   /* revisions up to this one have applied_at in the store */
    int64_t applied_writing;  /* what the current flush wrote, stored once it commits */

    /* metrics.c: one bounded series per ::metric name */
    gvd_series *series;       /* owned */
    size_t nseries, series_cap;
    bool history_dirty;       /* points or applied marks not yet in the store */
    bool history_written;     /* written in the flush now running (jobs.c) */

    /* rules/rules.c: the spec's rules compiled onto this job, and its
     * events (firings); owned */
    gvd_job_rules *rules;

    /* control.c: GET /jobs/{id}'s answer as sent (the job, its spec, a
     * newline), [0] full, [1] env values hidden; owned, built on demand and
     * dropped whenever the job changes (gvd_jobs_notify): a poller asking
     * ten thousand times between two changes costs one encoding. */
    char *body[2];
    size_t body_len[2];

    /* pipeline/: the pipeline this job is a step of (borrowed; NULL for a
     * job of its own, or once its pipeline is gone), and whether the
     * pipeline holds it (paused: the scheduler does not start it) */
    struct gvd_pipeline *pipeline;
    bool held;

    /* persistence bookkeeping */
    gvd_status persisted_status;
    int64_t persisted_params_rev; /* -1 until the first persist effect run */
    bool persist_failed;      /* the last synchronous write failed */
    char persist_error[256];
    bool dirty;               /* unpersisted progress/message/metrics */
    bool dirty_listed;        /* on jobs->dirty_first (dirty may be cleared
                                 meanwhile by a synchronous write) */
    gvd_job *dirty_next;
    gvd_status logged_status;
    /* group.c: staged for the tick's commit; what the write holds back */
    bool group_pending;       /* staged, or written in a round not yet answered */
    bool group_inflight;      /* in a round written and not yet answered (PostgreSQL) */
    bool group_again;         /* changed again while in flight: staged again after */
    bool group_follow;        /* committed (or kept), its held-back steps still to run */
    gvd_job *group_next;
    bool notify_due;          /* the notify effect ran while staged */
    gvd_exec *exit_exec;       /* an exit's handle, released once its outcome is stored */
    bool revertible;          /* a request-driven transition is in flight */
    gvd_job_snap before;      /* its starting point (fault.c) */

    /* registry links */
    gvd_job *prev, *next;     /* all jobs, id order */
    gvd_job *live_prev, *live_next; /* not finished, or finished but the process is still dying */
    bool in_live;
};

struct gvd_jobs {
    uv_loop_t *loop;
    gvd_store *store;
    gvd_config cfg;
    char *log_dir;
    char *run_dir;          /* per-job supervisor dirs, owned */

    gvd_job *first, *last;
    size_t count;
    gvd_job **map;          /* open addressing by id */
    size_t map_cap, map_used;

    gvd_job *live_first, *live_last;
    gv_signal *live_rev;    /* bumped when the live list changes */
    gv_signal *wake;        /* bumped when a retry backoff elapses */
    gv_scope *scope;        /* owns the scheduler */
    gv_effect *scheduler;

    uv_timer_t flush_timer; /* progress write-behind */
    gvd_job *dirty_first;
    bool closing;

    gvd_job_change_fn on_change;
    void *on_change_ud;

    struct gvd_faults *faults;       /* fault.c: store retry, owned */
    struct gvd_group *group;         /* group.c: the tick's commit, owned */
    void (*on_store_lost)(void *ud, const char *err); /* gvd_jobs_on_store_lost */
    void *on_store_lost_ud;
    struct gvd_start_waiter *start_waiters; /* gvd_jobs_after_start, owned */
    struct gvd_retention *retention; /* retention.c: pruning, owned */
    gvd_rules *rules;                /* rules/rules.c: the rules engine, owned */
    const gvd_cluster_hooks *cluster; /* owner.c: claims (NULL: one node); borrowed */
    void *cluster_ud;
    struct gvd_pipelines *pipelines; /* pipeline/control.c: the pipelines, owned */
};

double gvd_now(void); /* wall clock, seconds */
/* A signal's value, not tracked by the effect or computed running. */
static inline int64_t gvd_peek_int(gv_signal *s) { return gv_value_to_int(gv_signal_peek(s)); }
static inline double gvd_peek_double(gv_signal *s) { return gv_value_to_double(gv_signal_peek(s)); }
/* control.c: UNIX seconds as an ISO-8601 UTC string with milliseconds; null for t <= 0. */
json_t *gvd_time_json(double t);

/* job.c */
gvd_job *gvd_job_new(gvd_jobs *jobs, int64_t id, gvd_spec *spec, json_t *spec_json, json_t *params,
                     double created_at);
void gvd_job_start_effects(gvd_job *job);
void gvd_job_free(gvd_job *job); /* closes handles; memory goes when they are closed */
void gvd_job_to_row(gvd_job *job, gvd_job_row *row, char **owned_strings);
void gvd_job_row_release(char **owned_strings);
void gvd_job_restore(gvd_job *job, const gvd_job_row *row); /* from a stored row */
int gvd_job_persist_now(gvd_job *job);
gvd_status gvd_job_status_peek(const gvd_job *job);
/* Record a real progress point (t, percent) of the current attempt; `fresh`
 * forgets the older ones (a new attempt starts from nothing). */
void gvd_job_rate_sample(gvd_job *job, double t, double pct, bool fresh);
/* `cur` of `tot` in percent, clamped to 0..100 (0 when tot <= 0). */
double gvd_percent_of(double cur, double tot);

/* run.c — the job's process (see there). */
/* The scheduler starts a queued job. */
void gvd_job_begin_run(gvd_job *job);
/* Restart: take a running / paused process job back from its supervisor
 * (gvd_exec_adopt).  0, or -1 with *never_started or a message in err. */
int gvd_job_adopt(gvd_job *job, bool *never_started, char *err, size_t errlen);
/* Make the process follow `status`: spawn, resume, pause or cancel it (the
 * reconcile effect; gvd_job_follow_committed once a staged write is in). */
void gvd_job_follow(gvd_job *job, gvd_status status);
/* An exit's handle: released once its outcome is `stored` (the supervisor's
 * record consumed), else detached (the record kept for a restart). */
void gvd_job_release_exit(gvd_job *job, gvd_exec *x, bool stored);

/* fault.c — store faults.  A request-driven transition (pause, resume,
 * cancel, the scheduler's start) starts with _begin: if the store refuses
 * it, the reconcile effect calls gvd_job_revert before touching the
 * process; a caller outside any effect then sees _end return false (and
 * answers 503).  Transitions the
 * world made (an exit, a timeout, a failed spawn) are not reverted: they
 * stay in memory, the job stays dirty, and the retry timer writes them once
 * the store takes writes again. */
void gvd_job_transition_begin(gvd_job *job);
bool gvd_job_transition_end(gvd_job *job, gvd_status want);
bool gvd_job_should_revert(const gvd_job *job, gvd_status status);
void gvd_job_revert(gvd_job *job);
int gvd_faults_new(gvd_jobs *jobs);
void gvd_faults_free(gvd_jobs *jobs);
void gvd_faults_arm(gvd_jobs *jobs); /* retry with backoff until the store takes writes */

/* group.c — group commit (see there).  _stage: the persist effect's write
 * of a status change goes to the tick's transaction (true) when in a group
 * window or already staged; false: write it now.  Once the group is written
 * (job.c): gvd_job_committed records it, or reverts a refused request-driven
 * transition (false: nothing to follow); gvd_job_follow_committed then runs
 * what the write held back (the process, the exit's record, notify, log). */
typedef struct gvd_group gvd_group;
bool gvd_group_stage(gvd_job *job);
bool gvd_job_committed(gvd_job *job, bool ok, const char *err);
void gvd_job_follow_committed(gvd_job *job, bool stored);
int gvd_group_new(gvd_jobs *jobs);
void gvd_group_free(gvd_jobs *jobs);
/* A job about to be freed leaves the group (its row, if written, stays
 * ahead of its delete in the store's order). */
void gvd_group_forget(gvd_job *job);

/* owner.c.  _set_owner: from a row's node (NULL: nobody).  _busy_slots:
 * this node's jobs that hold a slot.  _maybe_claim: ask the cluster for up
 * to free_slots queued jobs nobody owns.  jobs.c: _adopt_row: a job first
 * seen in another node's row. */
void gvd_job_set_owner(gvd_job *job, const char *node);
unsigned gvd_jobs_busy_slots(gvd_jobs *jobs);
void gvd_jobs_maybe_claim(gvd_jobs *jobs, unsigned free_slots);
/* Hand `verb` ("pause", "resume", "cancel", "hold") for job `id` to the node
 * that runs it (cluster hook); false with no cluster. */
bool gvd_jobs_forward(gvd_jobs *jobs, int64_t id, const char *verb);
int gvd_jobs_adopt_row(gvd_jobs *jobs, const gvd_job_row *row);
/* jobs.c: the registry's id map and list. */
int gvd_jobs_map_put(gvd_jobs *jobs, gvd_job *job);
void gvd_jobs_list_append(gvd_jobs *jobs, gvd_job *job);
/* recover.c: a start (see there).  _load_row is the store's load callback. */
int gvd_jobs_load_row(void *ud, const gvd_job_row *row);
void gvd_jobs_start_loaded(gvd_jobs *jobs);
void gvd_jobs_sweep_run_dirs(gvd_jobs *jobs);

/* jobs.c: tell gvd_jobs_after_start's waiters on `job` (all of them: NULL). */
void gvd_jobs_started(gvd_jobs *jobs, gvd_job *job);

/* retention.c — --max-jobs / --keep-finished: finished jobs beyond the
 * limits are deleted, oldest first, from memory, the store and the log
 * directory.  _schedule defers the pruning to the loop (it is asked for from
 * inside effects, where a job must not be freed). */
int gvd_retention_new(gvd_jobs *jobs);
void gvd_retention_free(gvd_jobs *jobs);
void gvd_retention_schedule(gvd_jobs *jobs);

/* schema.c: 0, or -1 with err (400 invalid_spec naming the entry and rule). */
int gvd_schema_check(json_t *schema, gvd_error *err);
/* Check a job's whole params against its schema (NULL: no schema, all
 * fine).  0, or -1 with err (422 invalid_params, err->field and err->rule). */
int gvd_schema_validate(json_t *schema, json_t *params, gvd_error *err);

/* params.c */
#define GVD_PARAMS_HISTORY_MAX 1000 /* changes kept per job */
#define GVD_PARAMS_HISTORY_PRUNE 100 /* dropped at once when it is full */
int64_t gvd_params_revision(const gvd_job *job);
/* "ack params" (has_rev false: the latest revision) or "ack params N". */
void gvd_params_ack(gvd_job *job, bool has_rev, long long rev);
/* Send the current params to a cooperative job that just started, if they
 * were ever patched ("params N {json}"). */
void gvd_params_deliver(gvd_job *job);
/* In the flush's transaction: write applied marks not yet stored.  0 or -1. */
int gvd_params_write(gvd_job *job, char *err, size_t errlen);
void gvd_params_committed(gvd_job *job);
/* At start: the history from the store (after the jobs are loaded). */
int gvd_params_load(gvd_jobs *jobs, char *err, size_t errlen);
void gvd_params_free(gvd_job *job);

/* metrics.c */
/* A ::metric report: one more point of series `name` at now.  Bounded by
 * GVD_MAX_METRICS series per job (further names are refused, logged by the
 * caller).  0, or -1 if refused. */
int gvd_metrics_record(gvd_job *job, const char *name, double value, double now_s);
int gvd_metrics_write(gvd_job *job, char *err, size_t errlen); /* in the flush's transaction */
void gvd_metrics_committed(gvd_job *job);
int gvd_metrics_load(gvd_jobs *jobs, char *err, size_t errlen);
void gvd_metrics_free(gvd_job *job);
#define GVD_MAX_METRICS 64

/* jobs.c */
/* The job has history (metric points, applied marks) to write: list it for
 * the write-behind flush without marking its row dirty. */
void gvd_jobs_mark_history(gvd_jobs *jobs, gvd_job *job);
void gvd_jobs_run_dir(const gvd_jobs *jobs, int64_t id, char *out, size_t n); /* <run_dir>/<id> */
/* Write every dirty job in one transaction; false if some stay unwritten. */
bool gvd_jobs_flush(gvd_jobs *jobs);
/* Unlink a deleted job from the registry, delete its log file, free it. */
void gvd_jobs_forget(gvd_jobs *jobs, gvd_job *job);
void gvd_jobs_live_add(gvd_jobs *jobs, gvd_job *job);
void gvd_jobs_live_remove(gvd_jobs *jobs, gvd_job *job);
void gvd_jobs_mark_dirty(gvd_jobs *jobs, gvd_job *job);
void gvd_jobs_notify(gvd_jobs *jobs, gvd_job *job, bool removed);
/* control.c: drop the cached GET answer (the job changed, or goes). */
void gvd_job_body_forget(gvd_job *job);

static inline void gvd_error_set(gvd_error *err, int http, const char *code, const char *msg)
{
    if (!err)
        return;
    err->http = http;
    err->code = code;
    size_t n = strlen(msg);
    if (n >= sizeof err->message)
        n = sizeof err->message - 1; /* long messages are cut, never overflow */
    memcpy(err->message, msg, n);
    err->message[n] = '\0';
}

#endif
