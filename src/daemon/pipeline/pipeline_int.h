/*
 * pipeline_int.h — the pipelines' private structures, shared by:
 *   spec.c     checking a definition (POST /pipelines), normalizing it
 *   graph.c    a pipeline's signals, computeds and effects; its JSON; the
 *              values its rules read
 *   control.c  the registry, creating step jobs, the transitions, the
 *              stored state, loading
 *   prules.c   a pipeline's rules: their firings (the conditions and edges
 *              are rules/rules.c's, like a job's)
 *   mirror.c   several nodes: another node's pipelines, followed
 */
#ifndef GALVANI_DAEMON_PIPELINE_INT_H
#define GALVANI_DAEMON_PIPELINE_INT_H

#include "../model/model.h"
#include "../rules/expr.h"
#include "pipeline.h"

struct gvd_rule;
struct gvd_pending;

/* A step's status: a job's (gvd_status) or one of these. */
#define GVD_STEP_WAITING ((int)GVD_NSTATUS)       /* a need has not succeeded yet */
#define GVD_STEP_READY ((int)GVD_NSTATUS + 1)     /* every need succeeded: its job is due ("waiting") */
#define GVD_STEP_SKIPPED ((int)GVD_NSTATUS + 2)   /* a need failed, was cancelled or skipped */
const char *gvd_step_status_name(int status);

typedef enum gvd_pl_status {
    GVD_PL_RUNNING = 0,
    GVD_PL_PAUSED,
    GVD_PL_SUCCEEDED,
    GVD_PL_FAILED,
    GVD_PL_CANCELLED
} gvd_pl_status;
const char *gvd_pl_status_name(gvd_pl_status s);
static inline bool gvd_pl_finished(gvd_pl_status s) { return s >= GVD_PL_SUCCEEDED; }

typedef struct gvd_step {
    gvd_pipeline *pl;      /* borrowed: its pipeline */
    const char *name;      /* borrowed from pl->def */
    json_t *spec;          /* borrowed from pl->def: the step's job spec */
    size_t *needs;         /* owned: indices of the steps it needs */
    size_t nneeds;
    double weight;
    int64_t generation;    /* bumped by a retry of it or of a step it needs */
    gvd_job *job;          /* the current generation's job, or NULL */
    int64_t *jobs;         /* owned: every job it ran, oldest first */
    size_t njobs, jobs_cap;
    gv_signal *job_rev;    /* int: bumped when `job` changes */
    gv_computed *status;   /* int: see GVD_STEP_* */
    gv_computed *progress; /* double: percent */
} gvd_step;

struct gvd_pipeline {
    gvd_jobs *jobs;        /* borrowed */
    int64_t id;
    json_t *def;           /* owned: the normalized definition */
    const char *name;      /* borrowed from def */
    bool cancel_on_failure;
    double created_at;
    gvd_step *steps;       /* owned, definition order */
    size_t nsteps;

    gv_signal *paused;     /* bool */
    gv_signal *cancelled;  /* bool */
    gv_computed *status;   /* int gvd_pl_status */
    gv_computed *progress; /* double: weighted percent */
    gv_scope *scope;       /* owns the effects (its own and its rules') */
    gv_effect *advance_fx, *notify_fx;

    struct gvd_rule **rules; /* owned */
    size_t nrules;
    json_t *latches;       /* owned: {rule name: true} while its condition holds */
    json_t *events;        /* owned: firings, oldest first */
    int64_t next_event;    /* the next event's id */

    /* Several nodes: the node that drives it, when that is another node
     * (owned; NULL: this node drives it).  Such a pipeline is a mirror
     * (mirror.c): its state follows the row the driver writes, its steps
     * follow their jobs' rows, and it never creates a step, fires a rule
     * or stores anything; its transitions are the driver's (api/relay.c). */
    char *driver;
    bool advance_due;      /* control.c: run gvd_pipeline_advance soon */
    bool unsaved;          /* state the store refused, written again by the retry timer */
    gvd_pipeline *prev, *next;
};

typedef struct gvd_pipelines {
    gvd_jobs *jobs;
    gvd_pipeline *first, *last;
    size_t count;
    uv_timer_t timer;      /* advances outside the flush; retries unsaved state */
    bool timer_open;
    gvd_pipeline_change_fn on_change;
    void *on_change_ud;
} gvd_pipelines;

/* spec.c: check a POST /pipelines body; *out gets the normalized definition
 * {"name", "on_failure", "steps": [{"name", "needs", "weight", "job"}],
 * "rules": [...]}.  0, or -1 with err (400 invalid_pipeline). */
int gvd_pipeline_spec_check(json_t *body, const gvd_config *cfg, json_t **out, gvd_error *err);
/* The step named `name` (an index), or -1. */
int gvd_pipeline_step_index(const gvd_pipeline *pl, const char *name);

/* graph.c */
/* Build the steps of pl->def (no graph yet).  0, or -1 (out of memory). */
int gvd_pipeline_build(gvd_pipeline *pl);
/* Create the graph's signals and computeds (0, or -1 out of memory); the
 * effects (its own and its rules', in pl->scope) start with
 * _start_effects once the state is restored, so a pipeline loaded paused
 * never starts a step. */
int gvd_pipeline_start(gvd_pipeline *pl);
int gvd_pipeline_start_effects(gvd_pipeline *pl);
/* Dispose of the graph and free everything the pipeline owns. */
void gvd_pipeline_destroy(gvd_pipeline *pl);
/* When it finished (UNIX s), 0 while it has not. */
double gvd_pipeline_finished_at(gvd_pipeline *pl);
/* Read tracked (rules): is the pipeline finished? */
bool gvd_pipeline_finished(gvd_pipeline *pl);
gvd_pl_status gvd_pipeline_status_peek(gvd_pipeline *pl);
/* A pipeline rule's variable (pipeline.NAME, steps.STEP.*), read tracked. */
void gvd_pipeline_value(gvd_pipeline *pl, const gvd_expr_var *var, gvd_expr_value *out);
/* Point step `st` at `job` (NULL: none) and wake its readers. */
void gvd_step_set_job(gvd_step *st, gvd_job *job);
/* Remember a job the step ran (its "jobs"); 0 or -1. */
int gvd_step_add_job(gvd_step *st, int64_t id);

/* control.c */
/* The state row as JSON text (malloc'd), with these overrides. */
char *gvd_pipeline_state_text(gvd_pipeline *pl, bool paused, bool cancelled, const int64_t *generations);
/* Store the current state; on failure mark it unsaved (retried). 0 or -1. */
int gvd_pipeline_save(gvd_pipeline *pl, char *err, size_t errlen);
/* Ask for gvd_pipeline_advance on the loop (from an effect). */
void gvd_pipeline_schedule(gvd_pipeline *pl);
void gvd_pipelines_notify(gvd_pipeline *pl, bool removed);

/* control.c, for mirror.c: a pipeline of definition `def` (taken), its
 * graph built and started but not its effects; NULL when out of memory.
 * In the registry (newest last) once appended. */
gvd_pipeline *gvd_pl_alloc(gvd_jobs *jobs, int64_t id, json_t *def, double created_at);
void gvd_pl_append(gvd_pipelines *reg, gvd_pipeline *pl);
void gvd_pl_unlink(gvd_pipelines *reg, gvd_pipeline *pl);
/* Restore a stored state (paused, cancelled, generations, latches, events);
 * a step whose generation moved points at its job of the new one. */
void gvd_pl_apply_state(gvd_pipeline *pl, json_t *state);
/* Link `job` to its pipeline's step if its spec names one held here. */
void gvd_pl_link_job(gvd_jobs *jobs, gvd_job *job);

/* prules.c */
/* Compile the definition's rules (not started); 0 or -1. */
int gvd_pipeline_rules_attach(gvd_pipeline *pl);
void gvd_pipeline_rules_start(gvd_pipeline *pl);
void gvd_pipeline_rules_free(gvd_pipeline *pl);
/* The rules engine drained a firing or re-arm of a pipeline's rule. */
void gvd_pipeline_rule_acted(gvd_jobs *jobs, struct gvd_pending *p);

#endif
