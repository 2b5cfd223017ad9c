/*
 * rules.h — reactive rules on jobs (docs/api.md, "Rules").
 *
 *   "rules": [{"when": "metrics.fraud_score > 0.9", "then": "pause"}]
 *
 * A rule is a condition (rules/expr.h) and an action: pause, cancel, resume
 * or notify.  On a job, each rule becomes one computed (the condition, over
 * the job's signals: its tracked reads are exactly the signals the
 * condition names) and one effect that acts on the computed's edges:
 *
 *   false -> true   fire: record what made it true and act (the action runs
 *                   on the loop right after the flush, as a request would,
 *                   so the job's own effects see an ordinary transition);
 *   true -> false   re-arm.
 *
 * So a rule fires once per transition of its condition from false to true,
 * never again while it stays true (a person can resume a job the rule
 * paused while the score is still high).  A "for 30s" hold starts a timer
 * when the condition becomes true; the timer sets a signal the effect
 * reads, and the rule fires if the condition is still true then.  A rule
 * never acts on a finished job.  Whether each condition was true when last
 * seen (the latch) is stored with each firing and re-arm, so a restart does
 * not fire again what already fired.
 *
 * Every firing is an event of the job (GET /jobs/{id}/events), stored
 * (migration 3); a job keeps its newest GVD_EVENTS_MAX.
 *
 * Ownership: the engine (gvd_rules, one per gvd_jobs) owns the tick timer
 * and the queue of pending actions; each job owns its gvd_job_rules (the
 * compiled rules, their hold timers) and its events.  Everything runs on
 * the loop thread.
 */
#ifndef GALVANI_DAEMON_RULES_H
#define GALVANI_DAEMON_RULES_H

#include <jansson.h>
#include <stdbool.h>

#include "../model/jobs.h"

#define GVD_RULES_MAX 32      /* rules per job spec */
#define GVD_EVENTS_MAX 1000   /* events kept per job */
#define GVD_EVENTS_PRUNE 100  /* dropped at once when full */

typedef struct gvd_rules gvd_rules;
typedef struct gvd_job_rules gvd_job_rules;

/* spec.c: check the "rules" field of a job spec (an array of {"when",
 * "then", "name"?}) and return its normalized form (every rule named) in
 * *normalized (new reference).  0, or -1 with err: 400 invalid_spec naming
 * the rule, with err->column for a condition that does not parse. */
int gvd_rules_check_spec(json_t *rules, json_t **normalized, gvd_error *err);

/* The engine: 0, or -1 (out of memory).  Freed by gvd_rules_free, whose
 * handles close on the loop. */
int gvd_rules_new(gvd_jobs *jobs);
void gvd_rules_free(gvd_jobs *jobs);
/* The notify webhook of cfg.webhook_url (none: 0 at once).  0, or -1 with
 * err ("cannot use the webhook: ..."). */
int gvd_rules_webhook(gvd_jobs *jobs, char *err, size_t errlen);
/* At start, after the jobs are loaded and before their effects start: the
 * events and latches from the store.  0, or -1 with err. */
int gvd_rules_load(gvd_jobs *jobs, char *err, size_t errlen);

/* One job: compile the rules of its spec (gvd_job_new; 0, or -1 when out of
 * memory), start their computeds and effects (inside the job's scope, after
 * its own effects), free them (gvd_job_free, after the job's scope). */
int gvd_job_rules_attach(gvd_job *job);
void gvd_job_rules_start(gvd_job *job);
void gvd_job_rules_free(gvd_job *job);

/* Global rules (global.c; docs/api.md, "Global rules").  _load_globals
 * runs at start before the jobs are loaded (a job compiles the global
 * rules that match it when it is created or loaded). */
int gvd_rules_load_globals(gvd_jobs *jobs, char *err, size_t errlen);
/* Several nodes (cluster/): the global rules as the table now has them —
 * those another node created are added (and compiled onto the jobs), those
 * it deleted removed. */
typedef struct gvd_global_row {
    int64_t id;
    const char *def_json;
    double created_at;
} gvd_global_row;
void gvd_rules_sync_globals(gvd_jobs *jobs, const gvd_global_row *rows, size_t n);
/* POST /rules: the new rule (new reference: {"id", "name", "when", "then",
 * "match", "created_at"}), compiled onto every matching job; or NULL with
 * err (400 invalid_rule, with err->field "when" and err->column for a
 * condition that does not parse; 503 if the store refused). */
json_t *gvd_rules_create(gvd_jobs *jobs, json_t *body, gvd_error *err);
json_t *gvd_rules_list_json(gvd_jobs *jobs);          /* {"rules": [...]} oldest first */
json_t *gvd_rules_get_json(gvd_jobs *jobs, int64_t id); /* NULL: no such rule */
/* DELETE /rules/{id}: removed from every job (their events stay). 0, or -1
 * with err (404, 503). */
int gvd_rules_delete(gvd_jobs *jobs, int64_t id, gvd_error *err);

/* In the write-behind's transaction (jobs.c): the firings and latches the
 * store refused when they happened.  0 or -1; _committed once it commits. */
int gvd_rules_write(gvd_job *job, char *err, size_t errlen);
void gvd_rules_committed(gvd_job *job);

/* The job's "events" field: how many firings it keeps, or -1 when it has
 * neither rules nor firings (the field is left out). */
int64_t gvd_job_events_count(const gvd_job *job);

/* GET /jobs/{id}/events: {"events": [{"id", "rule", "when", "then",
 * "values", "outcome", "at"}, ...]} oldest first (new reference). */
json_t *gvd_job_events_json(gvd_job *job);

#endif
