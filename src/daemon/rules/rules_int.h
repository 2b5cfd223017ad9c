/*
 * rules_int.h — the rules engine's private structures, shared by its files:
 *   rules.c   the spec's rules, a rule's condition and edges (on a job, the
 *             spec's and the matching global ones, or on a pipeline);
 *   engine.c  the queue of firings, acting on them, events and latches;
 *   global.c  global rules (POST /rules): matching jobs by name glob and
 *             labels, adding and removing them on live jobs, storage.
 */
#ifndef GALVANI_DAEMON_RULES_INT_H
#define GALVANI_DAEMON_RULES_INT_H

#include "../model/model.h"
#include "expr.h"
#include "rules.h"

typedef enum gvd_rule_action { GVD_ACT_PAUSE, GVD_ACT_CANCEL, GVD_ACT_RESUME, GVD_ACT_NOTIFY } gvd_rule_action;
extern const char *const gvd_action_names[]; /* "pause", ..., NULL */
int gvd_action_parse(const char *s, gvd_rule_action *out);
/* Check that a rule's condition parses: 0, or -1 with `err` set — 400 `code`
 * "PREFIX, column N: what was expected" with err->field = `field` and
 * err->column = N, or 503 when out of memory. */
int gvd_rule_check_when(const char *src, gvd_expr_context ctx, const char *code, const char *prefix,
                        const char *field, gvd_error *err);
/* gvd_rules_check_spec for a pipeline's "rules" (pipeline context). */
int gvd_rules_check_spec_for(json_t *rules, gvd_expr_context ctx, json_t **normalized, gvd_error *err);

struct gvd_pipeline; /* pipeline/pipeline.h */

/* One rule on one job, or on one pipeline (pipeline/prules.c). */
typedef struct gvd_rule {
    gvd_jobs *jobs;      /* borrowed: the registry (its loop, the engine) */
    gvd_job *job;        /* borrowed: the job that owns the rule; NULL for a pipeline's rule */
    struct gvd_pipeline *pipeline; /* borrowed: the pipeline that owns it; NULL for a job's rule */
    char *name, *when;   /* owned */
    int64_t global_id;   /* a global rule's id; 0 for a rule of the spec */
    gvd_rule_action action;
    gvd_expr *expr;      /* owned */
    gv_computed *cond;   /* bool: the condition is true (without the hold) */
    gv_signal *held;     /* bool: the hold elapsed while the condition stayed true */
    gv_effect *fx;       /* owned by the job's scope */
    uv_timer_t hold_timer; /* closing it frees the rule (gvd_rule_closed) */
    bool latched;        /* the condition was true when last seen (stored) */
} gvd_rule;

struct gvd_job_rules {
    gvd_rule **rules;    /* owned */
    size_t n, cap;
    json_t *events;      /* owned: array of event objects, oldest first */
    /* What the store refused (a full disk): written by the progress
     * write-behind's transaction once it takes writes (gvd_rules_write). */
    json_t *unstored;    /* owned: [{"ev": <an object of events>, "at": seconds}] */
    json_t *latches_unstored; /* owned: {rule name: latched} */
    int64_t *written_ids; /* ids the running flush gave unstored[i] */
    size_t nwritten;
};

/* A firing or a re-arm waiting for the loop. */
typedef struct gvd_pending {
    struct gvd_pending *next;
    int64_t job_id;      /* a job's rule; 0 for a pipeline's */
    int64_t pipeline_id; /* a pipeline's rule; 0 for a job's */
    char *rule, *when;   /* owned */
    gvd_rule_action action;
    bool fire;           /* false: a re-arm (the latch goes back to 0) */
    json_t *values;      /* owned (fire only) */
    double at;
} gvd_pending;

/* A global rule (global.c). */
typedef struct gvd_global_rule {
    struct gvd_global_rule *next;
    int64_t id;
    char name[32];       /* "global-<id>": its name on every job */
    json_t *def;         /* owned: the rule as GET /rules shows it */
} gvd_global_rule;

struct gvd_rules {
    gvd_jobs *jobs;
    gv_signal *tick;        /* bumped every second: conditions reading `elapsed` */
    uv_timer_t tick_timer, act_timer;
    int open_handles;
    gvd_pending *first, *last;
    gvd_global_rule *globals; /* owned, oldest first */
    struct gvd_webhook *webhook; /* owned; NULL without --webhook */
};

/* rules.c: a rule on `job` (not started), or NULL (logged). */
gvd_rule *gvd_rule_new(gvd_job *job, const char *name, const char *when, const char *then, int64_t global_id);
/* The same on a pipeline (its condition in the pipeline context). */
gvd_rule *gvd_rule_new_for_pipeline(gvd_jobs *jobs, struct gvd_pipeline *pl, const char *name, const char *when,
                                    const char *then);
/* A job variable's value (a field, metrics.NAME or params.NAME; the step
 * of `var` is ignored), read tracked: a pipeline's rules read their steps'
 * jobs through it. */
void gvd_rule_job_value(gvd_job *job, const gvd_expr_var *var, gvd_expr_value *out);
/* "metrics.x", "steps.test.progress", "pipeline.failed_steps": a
 * variable as its condition names it (the keys of an event's values). */
void gvd_expr_var_text(const gvd_expr_var *var, char *buf, size_t len);
/* POST a firing to the webhook: the event plus {kind: about} (`about` is
 * taken over), "event": "rule.fired"; `owner` ("job=3") names it in logs. */
void gvd_rule_post_event(gvd_jobs *jobs, json_t *ev, const char *kind, json_t *about, const char *owner);
/* engine.c: act on a firing, the part every target shares: unless
 * `refused` (then the outcome is "not applied: REFUSED"), notify logs and
 * pause/cancel/resume call act(target); the outcome in words goes to
 * outcome[len]; the firing is counted and logged ("rule.fired OWNER ..."). */
typedef int (*gvd_rule_act_fn)(void *target, gvd_rule_action action, gvd_error *err);
void gvd_rule_act(gvd_jobs *jobs, const gvd_pending *p, const char *owner, const char *refused,
                  gvd_rule_act_fn act, void *target, const char *vtext, char *outcome, size_t len);
/* engine.c: drain the queue on the loop soon. */
void gvd_rules_kick(gvd_rules *eng);
/* Free a rule whose condition was never started (timer closed first). */
void gvd_rule_discard(gvd_rule *r);
/* Add it to the job's rules (taking it over; 0, or -1 and it is freed). */
int gvd_job_rules_add(gvd_job *job, gvd_rule *r);
/* Its computed and effect, in the scope the caller entered. */
void gvd_rule_start(gvd_rule *r);
/* Dispose of its effect and nodes; the memory goes when its timer closed. */
void gvd_rule_dispose(gvd_rule *r);

/* global.c */
bool gvd_global_matches(const gvd_global_rule *g, gvd_job *job);
void gvd_globals_free(gvd_rules *eng);

#endif
