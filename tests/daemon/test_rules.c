/*
 * test_rules.c — the rule condition language (rules/expr.c):
 *   - accepted conditions and their hold, variables in order of appearance;
 *   - refused conditions: the column and the words of each message;
 *   - evaluation: comparisons, precedence, three-valued logic (unknown
 *     never holds, not even under "not"), params of any type checked when
 *     evaluated;
 *   - bounds: length and nesting;
 *   - the rule tables in a real store (migration 3): events, latches and
 *     global rules round trip across a reopen, pruning, a rule's delete
 *     takes its latches, deleting the job deletes its events and latches.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store_test_util.h"

#include "rules/expr.h"
#include "store/store.h"

/* ---- a fake job ------------------------------------------------------------ */

/* Variables as "source:name=value" strings: n:, s:, b: prefixes for the
 * type of the value; a missing variable is unknown. */
typedef struct fake {
    const char *const *vars;
} fake;

static void fake_lookup(void *ud, const gvd_expr_var *var, gvd_expr_value *out)
{
    const fake *f = ud;
    const char *prefix = var->source == GVD_EXPR_FIELD      ? ""
                         : var->source == GVD_EXPR_METRIC   ? "metrics."
                         : var->source == GVD_EXPR_PIPELINE ? "pipeline."
                                                            : "params.";
    char key[400];
    if (var->step)
        snprintf(key, sizeof key, "steps.%s.%s%s=", var->step, prefix, var->name);
    else
        snprintf(key, sizeof key, "%s%s=", prefix, var->name);
    for (const char *const *v = f->vars; v && *v; v++) {
        if (strncmp(*v + 2, key, strlen(key)) != 0)
            continue;
        const char *val = *v + 2 + strlen(key);
        switch (**v) {
        case 'n': out->type = GVD_EXPR_NUMBER; out->num = strtod(val, NULL); break;
        case 's': out->type = GVD_EXPR_STRING; out->str = val; break;
        case 'b': out->type = GVD_EXPR_BOOL; out->b = !strcmp(val, "true"); break;
        }
        return;
    }
}

static gvd_expr *parse_ok(const char *src)
{
    gvd_expr_error err;
    gvd_expr *e = gvd_expr_parse(src, &err);
    if (!e)
        fail_msg("\"%s\" refused at column %d: %s", src, err.column, err.message);
    return e;
}

/* "holds", "false" or "unknown" */
static const char *outcome(const char *src, const char *const *vars)
{
    gvd_expr *e = parse_ok(src);
    fake f = {vars};
    gvd_expr_value v = gvd_expr_eval(e, fake_lookup, &f);
    bool holds = gvd_expr_holds(e, fake_lookup, &f);
    gvd_expr_free(e);
    assert_true(v.type == GVD_EXPR_BOOL || v.type == GVD_EXPR_UNKNOWN);
    assert_true(holds == (v.type == GVD_EXPR_BOOL && v.b));
    return v.type == GVD_EXPR_UNKNOWN ? "unknown" : v.b ? "holds" : "false";
}

static void refused(const char *src, int column, const char *words)
{
    gvd_expr_error err;
    gvd_expr *e = gvd_expr_parse(src, &err);
    if (e) {
        gvd_expr_free(e);
        fail_msg("\"%s\" was accepted", src);
    }
    if (err.column != column || !strstr(err.message, words))
        fail_msg("\"%s\": column %d \"%s\", wanted column %d with \"%s\"", src, err.column, err.message, column, words);
}

/* ---- tests ----------------------------------------------------------------- */

/* A pipeline's rules name the pipeline and its steps; a job's cannot, and
 * the other way round: each refused where it stands. */
static void test_pipeline_context(void **state)
{
    (void)state;
    gvd_expr_error err;
    gvd_expr *e = gvd_expr_parse_for("pipeline.failed_steps >= 1 or steps.unit-tests.metrics.failed_tests > 0 and "
                                     "steps.build.status == \"succeeded\" and steps.build.metrics.failed_tests < 9",
                                     GVD_EXPR_FOR_PIPELINE, &err);
    if (!e)
        fail_msg("refused at column %d: %s", err.column, err.message);
    assert_int_equal(gvd_expr_nvars(e), 4);
    const gvd_expr_var *v = gvd_expr_var_at(e, 0);
    assert_int_equal(v->source, GVD_EXPR_PIPELINE);
    assert_string_equal(v->name, "failed_steps");
    assert_null(v->step);
    v = gvd_expr_var_at(e, 1);
    assert_int_equal(v->source, GVD_EXPR_METRIC);
    assert_string_equal(v->step, "unit-tests");
    assert_string_equal(v->name, "failed_tests");
    v = gvd_expr_var_at(e, 2);
    assert_int_equal(v->source, GVD_EXPR_FIELD);
    assert_string_equal(v->step, "build");
    assert_string_equal(v->name, "status");
    v = gvd_expr_var_at(e, 3); /* same metric name, another step: another variable */
    assert_string_equal(v->step, "build");
    fake f = {(const char *const[]){"n:pipeline.failed_steps=0", "n:steps.unit-tests.metrics.failed_tests=2",
                                    "s:steps.build.status=succeeded", "n:steps.build.metrics.failed_tests=1", NULL}};
    assert_true(gvd_expr_holds(e, fake_lookup, &f));
    gvd_expr_free(e);

    static const struct {
        const char *src;
        gvd_expr_context ctx;
        int column;
        const char *words;
    } bad[] = {
        {"progress > 5", GVD_EXPR_FOR_PIPELINE, 1, "a pipeline's rule names the pipeline"},
        {"x == 1 or metrics.loss > 1", GVD_EXPR_FOR_PIPELINE, 1, "a pipeline's rule names the pipeline"},
        {"pipeline.progress > 5", GVD_EXPR_FOR_JOB, 1, "only in a pipeline's rules"},
        {"progress > 1 and steps.a.progress > 5", GVD_EXPR_FOR_JOB, 18, "only in a pipeline's rules"},
        {"pipeline.bogus > 1", GVD_EXPR_FOR_PIPELINE, 1, "unknown pipeline field 'bogus'"},
        {"pipeline.status > 1", GVD_EXPR_FOR_PIPELINE, 17, "a number"},
        {"steps..progress > 1", GVD_EXPR_FOR_PIPELINE, 7, "expected steps.STEP.FIELD"},
        {"steps.a progress", GVD_EXPR_FOR_PIPELINE, 8, "expected steps.STEP.FIELD"},
        {"steps.a. > 1", GVD_EXPR_FOR_PIPELINE, 9, "expected a field, metrics.NAME or params.NAME after 'steps.a.'"},
        {"steps.a.bogus > 1", GVD_EXPR_FOR_PIPELINE, 1, "unknown field 'bogus'"},
        {"steps.a.metrics. > 1", GVD_EXPR_FOR_PIPELINE, 17, "expected a metric name after 'metrics.'"},
        {"pipeline. > 1", GVD_EXPR_FOR_PIPELINE, 10, "expected a pipeline field after 'pipeline.'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gvd_expr *x = gvd_expr_parse_for(bad[i].src, bad[i].ctx, &err);
        if (x) {
            gvd_expr_free(x);
            fail_msg("\"%s\" was accepted", bad[i].src);
        }
        if (err.column != bad[i].column || !strstr(err.message, bad[i].words))
            fail_msg("\"%s\": column %d \"%s\", wanted column %d with \"%s\"", bad[i].src, err.column, err.message,
                     bad[i].column, bad[i].words);
    }
}

static void test_parse_accepts(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "metrics.fraud_score > 0.9",
        "progress >= 50 and status == \"running\"",
        "not (rate < 1.5e-3) or attempts != 2",
        "status == 'paused'",
        "params.mode == \"fast\" and params.lr <= -0.5",
        "params.enabled",
        "true",
        "metrics.gpu/0:util-max > 90",
        "((progress > 1))",
        "elapsed > 10 and eta < 60 and pid > 0 and exit_code == 0 and current < total and message != name",
        "not not true",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        gvd_expr_free(parse_ok(ok[i]));
}

static void test_hold_and_vars(void **state)
{
    (void)state;
    gvd_expr *e = parse_ok("metrics.score > 0.9 and progress < metrics.score for 30s");
    assert_true(gvd_expr_hold(e) == 30);
    assert_int_equal(gvd_expr_nvars(e), 2);
    assert_int_equal(gvd_expr_var_at(e, 0)->source, GVD_EXPR_METRIC);
    assert_string_equal(gvd_expr_var_at(e, 0)->name, "score");
    assert_int_equal(gvd_expr_var_at(e, 1)->source, GVD_EXPR_FIELD);
    assert_string_equal(gvd_expr_var_at(e, 1)->name, "progress");
    assert_null(gvd_expr_var_at(e, 2));
    gvd_expr_free(e);
    static const struct { const char *src; double s; } holds[] = {
        {"true for 500ms", 0.5}, {"true for 2m", 120}, {"true for 1h", 3600}, {"true for 1.5s", 1.5}, {"true", 0}};
    for (size_t i = 0; i < sizeof holds / sizeof *holds; i++) {
        e = parse_ok(holds[i].src);
        assert_true(fabs(gvd_expr_hold(e) - holds[i].s) < 1e-9);
        gvd_expr_free(e);
    }
}

static void test_parse_refuses(void **state)
{
    (void)state;
    refused("", 1, "empty condition");
    refused("   ", 1, "empty condition");
    refused("metrics.x >", 12, "expected a value");
    refused("metrics.x > > 1", 13, "expected a value");
    refused("progres > 1", 1, "unknown field 'progres'");
    refused("progress > \"high\"", 10, "compares a number with a string");
    refused("status < \"b\"", 8, "orders numbers");
    refused("1 and true", 3, "'and' needs a condition");
    refused("true or 2", 6, "'or' needs a condition");
    refused("not 3", 1, "'not' needs a condition");
    refused("progress", 1, "a rule needs a condition");
    refused("1 < 2 < 3", 7, "comparisons do not chain");
    refused("(progress > 1", 14, "expected ')'");
    refused("progress > 1)", 13, "expected 'and', 'or'");
    refused("progress = 1", 10, "expected '==' to compare");
    refused("progress > 1 for", 17, "expected a duration after 'for'");
    refused("progress > 1 for 3", 18, "expected a duration after 'for'");
    refused("progress > 1 for 3x", 19, "expected a unit of time");
    refused("progress > 1 for 0s", 18, "more than 0");
    refused("progress > 1 for 8d", 19, "unit of time");
    refused("progress > 1 for 200h", 18, "at most 7 days");
    refused("progress > 5s", 12, "may only follow 'for'");
    refused("status == \"run", 11, "unterminated string");
    refused("status == \"a\\qb\"", 13, "unknown escape");
    refused("metrics. > 1", 9, "expected a metric name after 'metrics.'");
    refused("params.", 8, "expected a param name");
    refused("progress > 1 for 1s and true", 21, "expected 'and', 'or', a comparison, 'for DURATION' or the end");
    refused("progress # 1", 10, "unexpected character '#'");
    refused("progress > - 1", 12, "expected a value");
    refused("progress > .", 12, "expected digits");
    refused("progress > 1e999", 12, "out of range");
    refused("and", 1, "expected a value");
}

static void test_bounds(void **state)
{
    (void)state;
    char big[GVD_EXPR_MAX_LEN + 2];
    memset(big, ' ', sizeof big - 1);
    big[0] = 't', big[1] = 'r', big[2] = 'u', big[3] = 'e';
    big[sizeof big - 1] = '\0';
    refused(big, GVD_EXPR_MAX_LEN + 1, "too long");
    big[GVD_EXPR_MAX_LEN] = '\0';
    gvd_expr_free(parse_ok(big));

    char deep[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "(");
    refused(deep, GVD_EXPR_MAX_DEPTH + 1, "nested too deeply");
    char nots[300] = "";
    for (int i = 0; i < 40; i++)
        strcat(nots, "not ");
    strcat(nots, "true");
    refused(nots, GVD_EXPR_MAX_DEPTH * 4 + 1, "nested too deeply");
    /* A long flat chain is fine: only nesting is bounded. */
    char chain[GVD_EXPR_MAX_LEN + 1] = "true";
    while (strlen(chain) + 9 < GVD_EXPR_MAX_LEN)
        strcat(chain, " and true");
    gvd_expr *e = parse_ok(chain);
    assert_true(gvd_expr_holds(e, fake_lookup, &(fake){NULL}));
    gvd_expr_free(e);
}

static void test_eval(void **state)
{
    (void)state;
    static const char *const job[] = {"n:progress=42", "s:status=running", "n:metrics.score=0.95", "n:attempts=1",
                                      "s:params.mode=fast", "n:params.lr=0.1", "b:params.on=true", NULL};
    assert_string_equal(outcome("metrics.score > 0.9", job), "holds");
    assert_string_equal(outcome("metrics.score > 0.95", job), "false");
    assert_string_equal(outcome("metrics.score >= 0.95", job), "holds");
    assert_string_equal(outcome("progress == 42 and status == \"running\"", job), "holds");
    assert_string_equal(outcome("status != 'running'", job), "false");
    assert_string_equal(outcome("progress < 10 or attempts == 1", job), "holds");
    /* and binds tighter than or */
    assert_string_equal(outcome("true or false and false", job), "holds");
    assert_string_equal(outcome("(true or false) and false", job), "false");
    assert_string_equal(outcome("not progress > 50", job), "holds");
    assert_string_equal(outcome("params.mode == \"fast\" and params.lr < 0.5 and params.on", job), "holds");
    assert_string_equal(outcome("progress > -1", job), "holds");
}

static void test_unknown(void **state)
{
    (void)state;
    static const char *const job[] = {"n:progress=42", "s:params.mode=fast", NULL};
    /* A metric never reported is unknown, not 0. */
    assert_string_equal(outcome("metrics.never > 0.9", job), "unknown");
    assert_string_equal(outcome("metrics.never < 0.9", job), "unknown");
    assert_string_equal(outcome("metrics.never == 0", job), "unknown");
    /* "not" of unknown is unknown: it never fires either. */
    assert_string_equal(outcome("not (metrics.never > 0.9)", job), "unknown");
    assert_string_equal(outcome("metrics.never > 1 and false", job), "false");
    assert_string_equal(outcome("false and metrics.never > 1", job), "false");
    assert_string_equal(outcome("metrics.never > 1 or progress > 1", job), "holds");
    assert_string_equal(outcome("metrics.never > 1 or progress < 1", job), "unknown");
    assert_string_equal(outcome("metrics.never > 1 and progress > 1", job), "unknown");
    /* params of the wrong type: unknown, not an error */
    assert_string_equal(outcome("params.mode > 1", job), "unknown");
    assert_string_equal(outcome("params.mode", job), "unknown");
    assert_string_equal(outcome("params.mode == 3", job), "unknown");
    assert_string_equal(outcome("params.missing == \"x\"", job), "unknown");
    assert_string_equal(outcome("eta < 5", job), "unknown");
}

/* ---- the store tables ---------------------------------------------------- */

typedef struct seen {
    int events, latches, latched, rules;
    int64_t last_event;
    char rule_def[200];
} seen;

static int on_event(void *ud, const gvd_event_row *row)
{
    seen *s = ud;
    s->events++;
    assert_true(row->id > s->last_event); /* by job, then id */
    s->last_event = row->id;
    assert_string_equal(row->when, "metrics.x > 1");
    assert_string_equal(row->values_json, "{\"metrics.x\":2}");
    return 0;
}

static int on_latch(void *ud, int64_t job_id, const char *rule, bool latched)
{
    (void)job_id;
    (void)rule;
    seen *s = ud;
    s->latches++;
    s->latched += latched;
    return 0;
}

static int on_rule(void *ud, int64_t id, const char *def_json, double created_at)
{
    (void)id;
    assert_true(created_at == 7);
    seen *s = ud;
    s->rules++;
    snprintf(s->rule_def, sizeof s->rule_def, "%s", def_json);
    return 0;
}

static void test_store_tables(void **state)
{
    fixture *fx = *state; /* store_test_util.h: a temp dir, removed after */
    const char *db = fx->db;
    char err[256];
    gvd_store *st = gvd_store_open(db, err, sizeof err);
    assert_non_null(st);
    gvd_job_row job = {.name = "j", .kind = "process", .status = "running", .spec_json = "{}",
                       .params_json = "{}", .metrics_json = "{}", .progress_total = 100, .message = ""};
    int64_t id = 0, ev = 0, first = 0;
    assert_int_equal(gvd_store_insert(st, &job, &id, err, sizeof err), 0);
    for (int i = 0; i < 5; i++) {
        gvd_event_row row = {.job_id = id, .rule = "rule-1", .when = "metrics.x > 1", .action = "pause",
                             .values_json = "{\"metrics.x\":2}", .outcome = "paused", .at = i};
        assert_int_equal(gvd_store_event_insert(st, &row, &ev, err, sizeof err), 0);
        if (i == 0)
            first = ev;
    }
    assert_int_equal(gvd_store_event_prune(st, id, first + 1, err, sizeof err), 0); /* the oldest two */
    assert_int_equal(gvd_store_latch_put(st, id, "rule-1", true, err, sizeof err), 0);
    assert_int_equal(gvd_store_latch_put(st, id, "global-1", true, err, sizeof err), 0);
    assert_int_equal(gvd_store_latch_put(st, id, "rule-1", false, err, sizeof err), 0); /* replaced */
    int64_t rid = 0;
    assert_int_equal(gvd_store_rule_insert(st, "{\"then\":\"pause\",\"when\":\"true\"}", 7, &rid, err, sizeof err), 0);
    assert_int_equal(rid, 1);
    gvd_store_close(st);

    st = gvd_store_open(db, err, sizeof err); /* what a restart reads */
    assert_non_null(st);
    seen s = {0};
    assert_int_equal(gvd_store_events_load(st, on_event, &s, err, sizeof err), 0);
    assert_int_equal(gvd_store_latches_load(st, on_latch, &s, err, sizeof err), 0);
    assert_int_equal(gvd_store_rules_load(st, on_rule, &s, err, sizeof err), 0);
    assert_int_equal(s.events, 3);
    assert_int_equal(s.last_event, ev);
    assert_int_equal(s.latches, 2);
    assert_int_equal(s.latched, 1);
    assert_int_equal(s.rules, 1);
    assert_string_equal(s.rule_def, "{\"then\":\"pause\",\"when\":\"true\"}");
    /* deleting the rule takes the latches of its name; ids are not reused */
    assert_int_equal(gvd_store_rule_delete(st, rid, "global-1", err, sizeof err), 0);
    assert_int_equal(gvd_store_rule_insert(st, "{}", 7, &rid, err, sizeof err), 0);
    assert_int_equal(rid, 2);
    seen after = {0};
    assert_int_equal(gvd_store_latches_load(st, on_latch, &after, err, sizeof err), 0);
    assert_int_equal(after.latches, 1);
    /* deleting the job deletes its events and latches */
    assert_int_equal(gvd_store_delete(st, id, err, sizeof err), 0);
    seen gone = {0};
    assert_int_equal(gvd_store_events_load(st, on_event, &gone, err, sizeof err), 0);
    assert_int_equal(gvd_store_latches_load(st, on_latch, &gone, err, sizeof err), 0);
    assert_int_equal(gone.events + gone.latches, 0);
    gvd_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts), cmocka_unit_test(test_hold_and_vars),
        cmocka_unit_test(test_parse_refuses), cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_eval),          cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_pipeline_context),
        cmocka_unit_test_setup_teardown(test_store_tables, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
