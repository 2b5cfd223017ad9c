/*
 * expr.h — the rule condition language (docs/api.md, "Rules").
 *
 *   metrics.fraud_score > 0.9 and status == "running" for 30s
 *
 * A condition is parsed once, when the rule is created, into a small tree
 * that is type-checked there and then (a bad condition is a 400 naming the
 * column and what was expected); it is evaluated many times, against values
 * a lookup function supplies.  There is no eval and no shell: the grammar
 * below is all there is.
 *
 *   cond    := or [ "for" DURATION ]          DURATION: 30s, 500ms, 2m, 1h
 *   or      := and { "or" and }
 *   and     := not { "and" not }
 *   not     := "not" not | cmp
 *   cmp     := operand [ ("==" | "!=" | "<" | "<=" | ">" | ">=") operand ]
 *   operand := NUMBER | "-" NUMBER | STRING | true | false | "(" or ")"
 *            | FIELD | metrics.NAME | params.NAME                 (a job's rules)
 *            | pipeline.PFIELD | steps.STEP.FIELD                 (a pipeline's rules)
 *            | steps.STEP.metrics.NAME | steps.STEP.params.NAME
 *
 * Values are numbers, strings and booleans.  Job fields have a fixed type
 * (gvd_expr_fields); metrics are numbers; params may hold anything, so a
 * params value is checked when evaluated.  A value may be *unknown* (a
 * metric never reported, a param not set, eta while nothing is known): a
 * comparison with unknown is unknown, and logic is three-valued (false and
 * unknown = false, true or unknown = true, not unknown = unknown).  A
 * condition holds only when it is true: unknown never fires a rule, not
 * even under "not".
 *
 * Pure: no I/O, no signals, no globals; unit-tested in
 * tests/daemon/test_rules.c, fuzzed by fuzz/fuzz_rule_expr.c.
 */
#ifndef GALVANI_DAEMON_RULES_EXPR_H
#define GALVANI_DAEMON_RULES_EXPR_H

#include <stdbool.h>
#include <stddef.h>

#define GVD_EXPR_MAX_LEN 1024  /* bytes of source */
#define GVD_EXPR_MAX_DEPTH 32  /* nesting of parentheses and operators */
#define GVD_EXPR_MAX_HOLD_S (7 * 86400.0) /* "for" at most a week */

typedef enum gvd_expr_type {
    GVD_EXPR_UNKNOWN = 0, /* as a value: not known; as a static type: any */
    GVD_EXPR_NUMBER,
    GVD_EXPR_STRING,
    GVD_EXPR_BOOL
} gvd_expr_type;

typedef enum gvd_expr_source {
    GVD_EXPR_FIELD,   /* progress, status, ... (name: the field) */
    GVD_EXPR_METRIC,  /* metrics.NAME (name: NAME) */
    GVD_EXPR_PARAM,   /* params.NAME */
    GVD_EXPR_PIPELINE /* pipeline.NAME: a field of the pipeline (gvd_expr_pipeline_fields) */
} gvd_expr_source;

/* Who a condition is about.  A job's rules read the job (FIELD,
 * metrics.NAME, params.NAME); a pipeline's rules read the pipeline
 * (pipeline.NAME) and its steps, each a job once it runs
 * (steps.STEP.FIELD, steps.STEP.metrics.NAME, steps.STEP.params.NAME).
 * Naming the other kind is refused with the column, like any error. */
typedef enum gvd_expr_context { GVD_EXPR_FOR_JOB = 0, GVD_EXPR_FOR_PIPELINE } gvd_expr_context;

typedef struct gvd_expr_value {
    gvd_expr_type type;
    double num;
    const char *str; /* borrowed: valid while the evaluation runs */
    bool b;
} gvd_expr_value;

/* The job fields a condition may name, with their types; NULL-terminated. */
typedef struct gvd_expr_field {
    const char *name;
    gvd_expr_type type;
} gvd_expr_field;
extern const gvd_expr_field gvd_expr_fields[];
/* A pipeline's fields (pipeline.NAME): status, progress, steps,
 * failed_steps, succeeded_steps, running_steps, waiting_steps,
 * skipped_steps; NULL-terminated. */
extern const gvd_expr_field gvd_expr_pipeline_fields[];

/* A variable the condition reads (for recording what made it true). */
typedef struct gvd_expr_var {
    gvd_expr_source source;
    const char *name; /* owned by the expression */
    const char *step; /* steps.STEP.*: STEP (owned); NULL otherwise */
} gvd_expr_var;

typedef struct gvd_expr gvd_expr;

/* A refused condition: the 1-based byte column and a message saying what
 * was expected there, e.g. column 19: "expected a value (a number, a string,
 * true, false, a job field, metrics.NAME or params.NAME), found '>'". */
typedef struct gvd_expr_error {
    int column;
    char message[256];
} gvd_expr_error;

/* Parse and type-check `src` (NUL-terminated, at most GVD_EXPR_MAX_LEN
 * bytes).  A new expression (free with gvd_expr_free), or NULL with err
 * filled (also when out of memory: column 0). */
gvd_expr *gvd_expr_parse(const char *src, gvd_expr_error *err);
/* The same for the given context (gvd_expr_parse is GVD_EXPR_FOR_JOB). */
gvd_expr *gvd_expr_parse_for(const char *src, gvd_expr_context ctx, gvd_expr_error *err);
void gvd_expr_free(gvd_expr *e); /* NULL is fine */

/* Seconds of the "for" hold; 0 without one. */
double gvd_expr_hold(const gvd_expr *e);
/* The distinct variables the condition reads, in order of appearance. */
size_t gvd_expr_nvars(const gvd_expr *e);
const gvd_expr_var *gvd_expr_var_at(const gvd_expr *e, size_t i);

/* Supplies a variable's current value (type GVD_EXPR_UNKNOWN if unknown). */
typedef void (*gvd_expr_lookup_fn)(void *ud, const gvd_expr_var *var, gvd_expr_value *out);

/* Evaluate the condition (without its hold): GVD_EXPR_BOOL true / false, or
 * GVD_EXPR_UNKNOWN.  gvd_expr_holds is "is it true". */
gvd_expr_value gvd_expr_eval(const gvd_expr *e, gvd_expr_lookup_fn lookup, void *ud);
bool gvd_expr_holds(const gvd_expr *e, gvd_expr_lookup_fn lookup, void *ud);

#endif
