/*
 * jobs.h — galvanid's job model: every job's state is a set of signals.
 *
 * This is the layer the HTTP API and the push side talk to.  A control
 * request calls one of the functions below; it writes signals inside a batch;
 * when the batch ends the effects run: the persistence effect commits the
 * transition to the store (synchronously: when the function returns 0 the
 * transition is durable — except inside a group window, see "Group commit"
 * below, where it is durable when the tick's commit says so), the runner effect makes the process follow (SIGSTOP,
 * SIGCONT, SIGTERM...), the log effect writes one structured line, and the
 * change effect tells the push hub which job to re-send.
 *
 * Everything runs on the loop thread.  gvd_job pointers stay valid until the
 * job is deleted (the change listener hears `removed` first) or the registry
 * is freed.
 */
#ifndef GALVANI_DAEMON_JOBS_H
#define GALVANI_DAEMON_JOBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../store/store.h"

typedef struct gvd_jobs gvd_jobs;
typedef struct gvd_job gvd_job;

typedef enum gvd_status {
    GVD_QUEUED = 0,
    GVD_RUNNING,
    GVD_PAUSED,
    GVD_SUCCEEDED,
    GVD_FAILED,
    GVD_CANCELLED,
    GVD_NSTATUS
} gvd_status;

const char *gvd_status_name(gvd_status s);         /* "queued", ... */
bool gvd_status_parse(const char *name, gvd_status *out);
static inline bool gvd_status_finished(gvd_status s) { return s >= GVD_SUCCEEDED; }

typedef struct gvd_config {
    unsigned max_running;       /* jobs running or paused at once (default 4) */
    unsigned cancel_grace_ms;   /* SIGTERM -> SIGKILL (default 5000) */
    uint64_t log_limit;         /* bytes of output kept per job (default 10 MiB) */
    const char *log_dir;        /* per-job log files: <log_dir>/<id>.log */
    const char *run_dir;        /* per-job supervisor dirs: <run_dir>/<id>/ (0700; NULL:
                                   "<log_dir>.run"); short enough for a socket path */
    const char *shim_path;      /* galvani-shim; NULL: $GALVANI_SHIM, else next to galvanid */
    struct gvd_spawner *spawner; /* borrowed: starts supervisors without an exec (runner/spawner.h);
                                   NULL: posix_spawn of shim_path */
    bool leave_running;         /* gvd_jobs_free leaves process jobs running under their
                                   supervisors, to be re-adopted (galvanid); false: they
                                   are killed, and it waits (bounded) for that */
    unsigned progress_flush_ms; /* progress write-behind interval (default 250) */
    unsigned demo_step_ms;      /* demo job: ms per 1 % (default 100) */
    /* Retention (model/retention.c).  Finished jobs are deleted, oldest
     * first, while more than max_jobs jobs are kept (0: the default 10000;
     * GVD_MAX_JOBS_UNLIMITED: never), and once finished longer than
     * keep_finished_s ago (0: no age limit).  Queued, running and paused jobs
     * are never deleted, so they may exceed max_jobs. */
    unsigned max_jobs;
    double keep_finished_s;
    /* Metric history: points kept per ::metric series of a job (0: the
     * default GVD_SERIES_DEFAULT_BOUND, 512); older points are merged
     * pairwise (model/series.h). */
    unsigned metric_points;
    /* The notify action's webhook (rules/webhook.h): http://HOST[:PORT]/PATH
     * or NULL (notify only logs); the timeout of one attempt (0: 5 s) and
     * how many attempts (0: 4). */
    const char *webhook_url;
    double webhook_timeout_s;
    unsigned webhook_attempts;
    /* Several nodes (model/owner.c, cluster/): this node's id (shown as a
     * job's "node"; required), and whether other nodes share the store —
     * then a job is acted on by the node that owns it only. */
    const char *node_id;
    bool cluster;
} gvd_config;

#define GVD_MAX_JOBS_DEFAULT 10000u
#define GVD_MAX_JOBS_UNLIMITED 0xffffffffu

/* What one job spec may hold (docs/api.md, "Limits").  A spec is kept in
 * memory for the job's whole life and every listing and stream frame carries
 * its command, so the body limit alone (1 MiB) let one POST cost ~15 MB of
 * daemon memory; these bound a job to a few hundred KiB.  The argv and env
 * bounds sit under Linux's own (128 KiB per argument, ~2 MiB for argv and
 * environment together): a spec past them could not be executed anyway.
 * Beyond a count or size: 413 spec_too_large naming the field and the limit. */
#define GVD_SPEC_MAX_ARGS 4096               /* "command" elements */
#define GVD_SPEC_MAX_ARGV_BYTES (128u << 10) /* "command": the bytes of every element + 1 each */
#define GVD_SPEC_MAX_ENV 1024                /* "env" variables */
#define GVD_SPEC_MAX_ENV_BYTES (128u << 10)  /* "env": NAME=VALUE + 1 for each */
#define GVD_SPEC_MAX_JSON_BYTES (64u << 10)  /* "params", "params_schema" (compact JSON); also a params patch and
                                                the params it leads to */
#define GVD_SPEC_MAX_CWD_BYTES 4095          /* "cwd" (PATH_MAX - 1) */
/* Seconds, converted to timer milliseconds: a finite bound keeps the
 * conversion defined (1e300 s used to overflow and fire at once); a larger
 * value is a 400 naming the bound. */
#define GVD_SPEC_MAX_TIMEOUT_S (366.0 * 86400) /* "timeout": a year */
#define GVD_SPEC_MAX_BACKOFF_S 86400.0         /* "retry_backoff", and the doubled wait between attempts: a day */

/* A refused request: the HTTP status to answer, a stable machine code and a
 * human message, e.g. {409, "invalid_transition", "job 3 is succeeded: it
 * cannot be paused"}. */
typedef struct gvd_error {
    int http;
    const char *code; /* static: "invalid_spec", "not_found", "invalid_transition", "store_unavailable",
                         "store_failed", "spawn_failed" */
    char message[512];
    /* A params schema violation (422 invalid_params) also names the
     * parameter and the rule ("min", "type", "required", ...); the API adds
     * them to the error object.  "" / NULL otherwise. */
    char field[128];
    const char *rule;
    /* A rule condition that does not parse (400 invalid_spec): the 1-based
     * column in field (e.g. "rules[0].when"); 0 otherwise. */
    int column;
} gvd_error;

/* Load every job from the store and re-adopt those a previous daemon left
 * running or paused (see docs/api.md, "Restart policy").  NULL + err. */
gvd_jobs *gvd_jobs_new(uv_loop_t *loop, gvd_store *store, const gvd_config *cfg, gvd_error *err);
/* Write pending progress, stop timers, free everything.  With
 * cfg.leave_running, process jobs still running keep running under their
 * supervisors and stay recorded as running or paused: the next start
 * re-adopts them (docs/daemon.md "Restart policy"); without, they are killed
 * first.  Handles close on the loop: run it once after. */
void gvd_jobs_free(gvd_jobs *jobs);

/* POST /jobs.  `spec` is the parsed request body (borrowed).  Validates it
 * (400 naming any unknown or mistyped field), persists the job as queued and
 * lets the scheduler start it if a slot is free.  Returns the job or NULL. */
gvd_job *gvd_jobs_create(gvd_jobs *jobs, json_t *spec, gvd_error *err);
/* A pipeline step's job (pipeline/control.c): the same, with `link`
 * ({"id", "step", "generation"}, borrowed) kept in the stored spec as
 * "pipeline", owned by `pipeline` and held from the start if `held`. */
struct gvd_pipeline;
gvd_job *gvd_jobs_create_step(gvd_jobs *jobs, json_t *spec, json_t *link, struct gvd_pipeline *pipeline, bool held,
                              gvd_error *err);
/* Hold a queued job back from the scheduler (a paused pipeline's), or let
 * it go. */
void gvd_job_set_held(gvd_job *job, bool held);

gvd_job *gvd_jobs_get(gvd_jobs *jobs, int64_t id);

/* Jobs whose status is in `status_mask` (bit 1u << status; 0 = all), newest
 * first, skipping `offset`, at most `limit` written to out.  Returns how many
 * were written; *total gets how many match. */
size_t gvd_jobs_list(gvd_jobs *jobs, unsigned status_mask, size_t offset, size_t limit, gvd_job **out,
                     size_t *total);

/* The same, only jobs whose label `label` is `value` (label NULL: all);
 * GET /jobs?label=K=V. */
size_t gvd_jobs_list_labeled(gvd_jobs *jobs, unsigned status_mask, const char *label, const char *value,
                             size_t offset, size_t limit, gvd_job **out, size_t *total);
/* Every filter of GET /jobs at once: status (mask, 0 = all), a label
 * (NULL = any), a name glob (fnmatch(3); NULL = any). */
typedef struct gvd_job_filter {
    unsigned status_mask;
    const char *label, *value;
    const char *name_glob;
} gvd_job_filter;
size_t gvd_jobs_list_where(gvd_jobs *jobs, const gvd_job_filter *f, size_t offset, size_t limit, gvd_job **out,
                           size_t *total);

/* Transitions.  0, or -1 with err filled (409 for a transition the state
 * machine refuses, 503 if the store failed — then nothing changed). */
int gvd_job_pause(gvd_job *job, gvd_error *err);
int gvd_job_resume(gvd_job *job, gvd_error *err);
int gvd_job_cancel(gvd_job *job, gvd_error *err);
/* PATCH /jobs/{id}/params: merge `patch` (an object; a null value removes a
 * key) into the params; a running cooperative job is sent "params {...}". */
int gvd_job_set_params(gvd_job *job, json_t *patch, gvd_error *err);
/* The same, recording `who` made the change in the params history ("token",
 * "local", ...; docs/api.md).  Each accepted patch is a new revision
 * (params_revision), stored with the patch in the same transaction as the
 * new params; a patch that breaks the job's params_schema is 422 and
 * changes nothing.  Cooperative jobs are sent "params N {json}" and answer
 * "ack params N"; params_applied follows their acks. */
int gvd_job_set_params_by(gvd_job *job, json_t *patch, const char *who, gvd_error *err);
/* GET /jobs/{id}/params/history: {"params_revision": n, "params_applied": n,
 * "history": [{"revision", "patch", "who", "at", "applied_at"}, ...]}
 * (oldest first; new reference). */
json_t *gvd_job_params_history_json(gvd_job *job);
/* GET /jobs/{id}/metrics: {"metrics": {"loss": [[t_ms, value], ...], ...}}
 * with only points at or after since_ms (< 0: all) and only the series
 * `name` (NULL: all).  New reference. */
json_t *gvd_job_metrics_json(gvd_job *job, double since_ms, const char *name);
/* DELETE /jobs/{id}: finished jobs only (409 otherwise). */
int gvd_jobs_delete(gvd_jobs *jobs, gvd_job *job, gvd_error *err);

/* Group commit (model/group.c).  Transitions made between _begin and _end
 * (nestable) are not written at once: they join the loop tick's single
 * transaction, written at the end of the tick, and everything that follows
 * from them (the process, the streams, the log line) waits for it.  The
 * transition functions then return 0 for "accepted"; whether it became
 * durable is said to the functions registered with gvd_jobs_after_commit,
 * called once the tick's transaction is written (ok) or refused (!ok: every
 * request-driven transition in it was reverted, as a refused single write
 * is; `error` says why).  Outside a window a transition is committed before
 * its function returns, as always. */
void gvd_jobs_group_begin(gvd_jobs *jobs);
void gvd_jobs_group_end(gvd_jobs *jobs);
/* Transitions are waiting for the tick's commit: what the API shows now
 * might not be durable yet. */
bool gvd_jobs_group_pending(gvd_jobs *jobs);
typedef void (*gvd_committed_fn)(void *ud, bool ok, const char *error);
/* 0, or -1 when out of memory.  `early`: called as soon as the transaction
 * is written (or refused and reverted), before what it held back runs (the
 * spawns, the signals): an answer then does not wait for a posix_spawn; such
 * a function must only read the jobs.  Otherwise called after all that, and
 * it may do anything (route a held request). */
int gvd_jobs_after_commit(gvd_jobs *jobs, gvd_committed_fn fn, void *ud, bool early);
/* Write the group now (the end of the tick does it by itself). */
void gvd_jobs_group_commit(gvd_jobs *jobs);
/* fn(ud, err) when the store can no longer tell what the database holds
 * (PostgreSQL: a batch failed or the connection dropped; store.h): main.c
 * stops galvanid, whose next start reloads the truth. */
void gvd_jobs_on_store_lost(gvd_jobs *jobs, void (*fn)(void *ud, const char *err), void *ud);
/* A process job whose supervisor has not answered yet (running, no pid). */
bool gvd_job_starting(const gvd_job *job);
/* Call fn(ud) once the starting job's supervisor answered (it runs, or it
 * failed with the runner's words), or when the registry is freed.  0, or -1
 * when out of memory. */
typedef void (*gvd_started_fn)(void *ud);
int gvd_jobs_after_start(gvd_jobs *jobs, gvd_job *job, gvd_started_fn fn, void *ud);
/* The server is closing: commit what is staged and call every waiter now
 * (a job still starting is shown as it is). */
void gvd_jobs_release_waiters(gvd_jobs *jobs);
/* A 503 for a write the store refused (fault.c): "store_unavailable"
 * naming the cause when the store is in a fault (and the retry timer
 * armed), else "store_failed".  `what` says what did not happen. */
void gvd_jobs_store_error(gvd_jobs *jobs, gvd_error *err, const char *what, const char *detail);
/* ---- several nodes (model/owner.c; the cluster module drives it) ----------
 *
 * In a cluster every node holds every job; the node that owns a job acts on
 * it, the others mirror its row.  gvd_job_acts: this node owns the job.
 * gvd_job_node: the id of the node running it (NULL: queued, unclaimed). */
typedef struct gvd_cluster_hooks {
    /* The scheduler has free_slots slots and there are queued jobs nobody
     * owns: claim up to that many (asynchronously), then call
     * gvd_jobs_claimed for each job claimed.  Called again when the
     * scheduler runs again; the callee keeps one claim in flight. */
    void (*claim)(void *ud, unsigned free_slots);
    /* Pause, resume or cancel ("pause", "resume", "cancel") job `id`,
     * which another node runs or nobody has claimed yet — or "hold" /
     * "release" a queued one for its pipeline (a job nobody owns is
     * claimed first): done there, asynchronously; the job's row says the
     * outcome. */
    void (*forward)(void *ud, int64_t id, const char *verb);
} gvd_cluster_hooks;
void gvd_jobs_set_cluster(gvd_jobs *jobs, const gvd_cluster_hooks *hooks, void *ud);
bool gvd_job_acts(const gvd_job *job);
const char *gvd_job_node(const gvd_job *job);
/* Another node's row of a job (its NOTIFY said it changed): create the
 * mirror, or make it follow the row; fences the job when the row gives to
 * another node a job this node runs.  0, or -1 when out of memory. */
int gvd_jobs_apply_row(gvd_jobs *jobs, const gvd_job_row *row);
/* Another node deleted job `id`. */
void gvd_jobs_apply_delete(gvd_jobs *jobs, int64_t id);
/* Would gvd_jobs_apply_delete forget `job`? (A step's pipeline lets go of
 * it first: pipeline/mirror.c.) */
bool gvd_jobs_apply_delete_forgets(const gvd_job *job);
/* This node's claim got job `id`: the scheduler starts it when it runs
 * next (call gvd_jobs_wake once after a claim's jobs are all recorded, so
 * that it counts them all). */
void gvd_jobs_claimed(gvd_jobs *jobs, int64_t id);
/* Jobs running or paused on `node` (this node's or a mirror's view). */
size_t gvd_jobs_running_on(gvd_jobs *jobs, const char *node);
/* This node was cut off from the cluster: SIGKILL the process group of
 * every job it runs (their rows are, or will be, handed to other nodes). */
void gvd_jobs_kill_own(gvd_jobs *jobs);
/* Let the scheduler run again (a claim ended, a slot may be free). */
void gvd_jobs_wake(gvd_jobs *jobs);

/* The store the model writes to (borrowed). */
gvd_store *gvd_jobs_store(gvd_jobs *jobs);

/* The seed's demo job: the newest job of kind "demo", or NULL. */
gvd_job *gvd_jobs_demo(gvd_jobs *jobs);
/* POST /start: create and start a demo job; 409 if the newest demo job is
 * still queued, running or paused. */
gvd_job *gvd_jobs_start_demo(gvd_jobs *jobs, gvd_error *err);

int64_t gvd_job_id(const gvd_job *job);
gvd_status gvd_job_status(const gvd_job *job);
const char *gvd_job_log_path(const gvd_job *job); /* NULL for the demo */

/* The job as JSON (a new reference): id, name, kind, status, progress
 * (percent 0..100), current, total, message, metrics {name: value}, params,
 * command, pid, exit_code, signal, attempts, priority, pause_mode,
 * created_at / started_at / finished_at (ISO-8601 or null), rate (% per
 * second), eta (seconds or null), error.  "status" and "progress" are
 * top-level: that is the seed's frame. */
json_t *gvd_job_json(gvd_job *job);
/* GET /jobs/{id}'s body: the job's JSON with its "spec" (env values null
 * when hide_env), compact, ending in a newline; *len bytes, owned by the
 * job and valid until it next changes (copy it before yielding to the
 * loop).  NULL when out of memory. */
const char *gvd_job_body(gvd_job *job, bool hide_env, size_t *len);
/* The job's spec as it was accepted and stored (the normalized POST /jobs
 * body, params aside: command, shell, env, cwd, pause_mode, timeout,
 * max_retries, retry_backoff, priority, labels, rules, params_schema), a new
 * reference.  GET /jobs/{id} carries it so that a client can run the same
 * job again (galvani rerun).  With hide_env, each env value is null: the
 * names stay visible, the values (which may be secrets) do not. */
json_t *gvd_job_spec_json(gvd_job *job, bool hide_env);
/* {"queued": n, "running": n, ..., "total": n, "max_running": n} */
json_t *gvd_jobs_counts_json(gvd_jobs *jobs);
/* The store's state for /healthz: {"state": "ok"} or {"state":
 * "unavailable", "cause": "disk full", "since": ISO-8601, "failed_writes": n,
 * "pending_writes": jobs whose state is not yet stored, "error": "..."}.
 * gvd_jobs_counts_json carries the first three fields as "store". */
json_t *gvd_jobs_store_json(gvd_jobs *jobs);
/* The same numbers as plain values (GET /metrics): jobs per status, the
 * limit, whether the store takes writes, jobs whose state is not stored. */
typedef struct gvd_jobs_stats {
    size_t by_status[GVD_NSTATUS];
    unsigned max_running;
    bool store_available;
    size_t pending_writes;
} gvd_jobs_stats;
void gvd_jobs_stats_get(gvd_jobs *jobs, gvd_jobs_stats *out);
/* How many jobs the registry holds (all statuses). */
size_t gvd_jobs_count(gvd_jobs *jobs);

/* The push hub's hook: called (from an effect, after the batch that changed
 * it) whenever anything visible in gvd_job_json changed, and once with
 * removed = true just before a job is deleted.  One listener. */
typedef void (*gvd_job_change_fn)(void *ud, gvd_job *job, bool removed);
void gvd_jobs_on_change(gvd_jobs *jobs, gvd_job_change_fn fn, void *ud);

#endif
