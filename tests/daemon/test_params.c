/*
 * test_params.c — the pure parts of live params and metric history, and
 * their tables in a real store:
 *   - the params_schema checker and validator (model/schema.c): every rule,
 *     integer vs number, enum types, required removed, unknown params, the
 *     field and rule named in the error;
 *   - the downsampling series (model/series.c): empty, exactly at the bound,
 *     one past it, many times the bound (the bound holds, the newest half
 *     stays exact, weights add up, the first point stays), NaN / inf
 *     refused;
 *   - "ack params N" in the protocol parser;
 *   - params_history and metric_points in a real SQLite file: round trip,
 *     prune, replace and trim, and deleting the job deletes its history
 *     (cascade).
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

#include "model/model.h"
#include "runner/protocol.h"
#include "store/store.h"

/* ---- schema ----------------------------------------------------------------- */

static json_t *js(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, e.text);
    return j;
}

static void schema_refused(const char *schema, const char *words)
{
    json_t *s = js(schema);
    gvd_error err = {0};
    assert_int_equal(gvd_schema_check(s, &err), -1);
    assert_int_equal(err.http, 400);
    assert_string_equal(err.code, "invalid_spec");
    if (!strstr(err.message, words))
        fail_msg("schema %s: message \"%s\" lacks \"%s\"", schema, err.message, words);
    json_decref(s);
}

static void test_schema_check(void **state)
{
    (void)state;
    json_t *ok = js("{\"lr\": {\"type\": \"number\", \"min\": 0, \"max\": 1}, \"mode\": {\"enum\": [\"fast\", "
                    "\"safe\"]}, \"epochs\": {\"type\": \"integer\", \"required\": true}, \"flag\": {\"type\": "
                    "\"boolean\"}, \"tag\": {\"type\": \"string\", \"enum\": [\"a\"]}, \"any\": {}}");
    gvd_error err = {0};
    assert_int_equal(gvd_schema_check(ok, &err), 0);
    json_decref(ok);
    schema_refused("[]", "must be an object");
    schema_refused("{\"lr\": 1}", "entry \"lr\" must be an object of rules");
    schema_refused("{\"lr\": {\"type\": \"float\"}}", "rule \"type\" must be");
    schema_refused("{\"lr\": {\"type\": 3}}", "rule \"type\" must be");
    schema_refused("{\"lr\": {\"minimum\": 0}}", "unknown rule \"minimum\"");
    schema_refused("{\"lr\": {\"min\": \"0\"}}", "must be numbers");
    schema_refused("{\"lr\": {\"min\": 2, \"max\": 1}}", "\"min\" greater than \"max\"");
    schema_refused("{\"s\": {\"type\": \"string\", \"max\": 3}}", "apply to \"number\" and \"integer\"");
    schema_refused("{\"m\": {\"enum\": []}}", "non-empty array");
    schema_refused("{\"m\": {\"enum\": \"fast\"}}", "non-empty array");
    schema_refused("{\"m\": {\"enum\": [null]}}", "strings, numbers and booleans");
    schema_refused("{\"m\": {\"type\": \"integer\", \"enum\": [1, 2.5]}}", "not of its \"type\"");
    schema_refused("{\"r\": {\"required\": 1}}", "true or false");
    schema_refused("{\"\": {}}", "empty name");
}

static void violation(const char *schema, const char *params, const char *field, const char *rule)
{
    json_t *s = js(schema), *p = js(params);
    gvd_error err = {0};
    assert_int_equal(gvd_schema_check(s, &err), 0);
    assert_int_equal(gvd_schema_validate(s, p, &err), -1);
    assert_int_equal(err.http, 422);
    assert_string_equal(err.code, "invalid_params");
    assert_string_equal(err.field, field);
    assert_string_equal(err.rule, rule);
    char quoted[160];
    snprintf(quoted, sizeof quoted, "\"%s\"", field);
    assert_non_null(strstr(err.message, quoted));
    assert_non_null(strstr(err.message, rule));
    json_decref(s);
    json_decref(p);
}

static void valid(const char *schema, const char *params)
{
    json_t *s = js(schema), *p = js(params);
    gvd_error err = {0};
    if (gvd_schema_validate(s, p, &err) != 0)
        fail_msg("%s against %s: %s", params, schema, err.message);
    json_decref(s);
    json_decref(p);
}

static void test_schema_validate(void **state)
{
    (void)state;
    const char *lr = "{\"lr\": {\"type\": \"number\", \"min\": 0, \"max\": 1}}";
    valid(lr, "{\"lr\": 0}");
    valid(lr, "{\"lr\": 1}"); /* the bounds are inclusive */
    valid(lr, "{\"lr\": 0.5}");
    valid(lr, "{}");          /* not required */
    violation(lr, "{\"lr\": 1.0000001}", "lr", "max");
    violation(lr, "{\"lr\": -0.1}", "lr", "min");
    violation(lr, "{\"lr\": \"0.5\"}", "lr", "type");
    violation(lr, "{\"lr\": null}", "lr", "type"); /* null in a merged params object is a value */
    violation(lr, "{\"LR\": 0.5}", "LR", "unknown");
    /* integer vs number: 3 is both, 3.0 and 2.5 are numbers only */
    const char *ep = "{\"epochs\": {\"type\": \"integer\", \"min\": 1, \"required\": true}}";
    valid(ep, "{\"epochs\": 3}");
    violation(ep, "{\"epochs\": 3.0}", "epochs", "type");
    violation(ep, "{\"epochs\": 2.5}", "epochs", "type");
    violation(ep, "{\"epochs\": 0}", "epochs", "min");
    violation(ep, "{}", "epochs", "required");
    valid("{\"x\": {\"type\": \"number\"}}", "{\"x\": 3}");
    /* enum: exact JSON values */
    const char *mode = "{\"mode\": {\"enum\": [\"fast\", \"safe\"]}}";
    valid(mode, "{\"mode\": \"safe\"}");
    violation(mode, "{\"mode\": \"slow\"}", "mode", "enum");
    violation(mode, "{\"mode\": 1}", "mode", "enum");
    violation("{\"b\": {\"type\": \"boolean\"}}", "{\"b\": 1}", "b", "type");
    /* min/max without a type: a string is refused by "min" */
    violation("{\"n\": {\"min\": 0}}", "{\"n\": \"x\"}", "n", "min");
    /* no schema: anything goes */
    json_t *p = js("{\"anything\": [1, 2]}");
    gvd_error err = {0};
    assert_int_equal(gvd_schema_validate(NULL, p, &err), 0);
    json_decref(p);
}

/* ---- the downsampling series ---------------------------------------------- */

static void test_series_empty_and_bound(void **state)
{
    (void)state;
    gvd_series s;
    assert_int_equal(gvd_series_init(&s, "loss", 8), 0);
    assert_int_equal(s.len, 0);
    assert_string_equal(s.name, "loss");
    for (int i = 0; i < 8; i++)
        assert_int_equal(gvd_series_push(&s, 1000.0 * i, i, 1), 0);
    /* exactly at the bound: nothing merged yet */
    assert_int_equal(s.len, 8);
    assert_int_equal(s.compactions, 0);
    for (int i = 0; i < 8; i++) {
        assert_true(s.pts[i].t_ms == 1000.0 * i && s.pts[i].v == i && s.pts[i].w == 1);
    }
    /* one past it: the first point stays, the older half after it (points
     * 1 to 4) became two, then the new one */
    assert_int_equal(gvd_series_push(&s, 8000, 8, 1), 0);
    assert_int_equal(s.len, 7);
    assert_int_equal(s.compactions, 1);
    assert_true(s.pts[0].t_ms == 0 && s.pts[0].v == 0 && s.pts[0].w == 1);
    assert_true(s.pts[1].t_ms == 1500 && s.pts[1].v == 1.5 && s.pts[1].w == 2);
    assert_true(s.pts[2].t_ms == 3500 && s.pts[2].v == 3.5 && s.pts[2].w == 2);
    for (int i = 3; i < 7; i++)
        assert_true(s.pts[i].v == i + 2 && s.pts[i].w == 1);
    gvd_series_clear(&s);
    assert_null(s.pts);
    /* a bound below the minimum is raised to it */
    assert_int_equal(gvd_series_init(&s, "x", 1), 0);
    assert_int_equal(s.bound, GVD_SERIES_MIN_BOUND);
    gvd_series_clear(&s);
}

static void test_series_many_points(void **state)
{
    (void)state;
    gvd_series s;
    const size_t bound = 64;
    const int n = 100000;
    assert_int_equal(gvd_series_init(&s, "loss", bound), 0);
    double sum = 0;
    for (int i = 0; i < n; i++) {
        double v = sin(i * 0.001) * 10;
        sum += v;
        assert_int_equal(gvd_series_push(&s, (double)i, v, 1), 0);
        assert_true(s.len <= bound);
    }
    /* every report is accounted for, and the weighted mean is the mean */
    int64_t w = 0;
    double wsum = 0;
    for (size_t k = 0; k < s.len; k++) {
        w += s.pts[k].w;
        wsum += s.pts[k].v * (double)s.pts[k].w;
        if (k > 0)
            assert_true(s.pts[k].t_ms > s.pts[k - 1].t_ms); /* still in time order */
    }
    assert_int_equal(w, n);
    assert_true(fabs(wsum - sum) < 1e-6 * n);
    /* the newest half of the bound is exact */
    for (size_t k = s.len - bound / 2; k < s.len; k++)
        assert_int_equal(s.pts[k].w, 1);
    assert_true(s.pts[s.len - 1].t_ms == n - 1);
    /* the span is kept: the first point is the first report */
    assert_true(s.pts[0].t_ms == 0 && s.pts[0].w == 1);
    assert_true(s.pts[1].t_ms < n / 2.0);
    gvd_series_clear(&s);
}

static void test_series_refuses_non_finite(void **state)
{
    (void)state;
    gvd_series s;
    assert_int_equal(gvd_series_init(&s, "x", 4), 0);
    assert_int_equal(gvd_series_push(&s, 1, NAN, 1), -1);
    assert_int_equal(gvd_series_push(&s, 1, INFINITY, 1), -1);
    assert_int_equal(gvd_series_push(&s, 1, -INFINITY, 1), -1);
    assert_int_equal(gvd_series_push(&s, NAN, 1, 1), -1);
    assert_int_equal(gvd_series_push(&s, 1, 1, 0), -1); /* weight < 1 */
    assert_int_equal(s.len, 0);
    /* huge finite values merge without overflowing */
    for (int i = 0; i < 50; i++) {
        assert_int_equal(gvd_series_push(&s, i, 1.7e308, 1), 0);
        assert_true(s.len <= 4); /* the smallest bound compacts too */
    }
    for (size_t k = 0; k < s.len; k++)
        assert_true(isfinite(s.pts[k].v));
    gvd_series_clear(&s);
}

/* ---- the protocol: ack params N ------------------------------------------------ */

static void test_ack_params_revision(void **state)
{
    (void)state;
    gvd_msg m;
    assert_int_equal(gvd_msg_parse("ack params 7", 12, false, &m), GVD_MSG_ACK);
    assert_string_equal(m.text, "params");
    assert_true(m.has_revision);
    assert_int_equal(m.revision, 7);
    const char *old = "::ack params";
    assert_int_equal(gvd_msg_parse(old, strlen(old), true, &m), GVD_MSG_ACK);
    assert_false(m.has_revision);
    const char *bad[] = {"ack params 7 8", "ack params -1", "ack params x", "ack pause 3",
                         "ack params 1234567890123456789"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(gvd_msg_parse(bad[i], strlen(bad[i]), false, &m), GVD_MSG_INVALID);
}

/* ---- the tables in a real store -------------------------------------------------- */

typedef struct seen {
    int params, points;
    int64_t last_rev;
    double applied[8];
    double values[16];
} seen;

static int on_params(void *ud, const gvd_params_row *row)
{
    seen *s = ud;
    assert_true(row->revision > s->last_rev); /* in order */
    s->last_rev = row->revision;
    if (row->revision < 8)
        s->applied[row->revision] = row->applied_at;
    s->params++;
    return 0;
}

static int on_point(void *ud, const gvd_point_row *row)
{
    seen *s = ud;
    assert_int_equal(row->idx, s->points);
    if (row->idx < 16)
        s->values[row->idx] = row->value;
    s->points++;
    return 0;
}

static void test_store_tables(void **state)
{
    fixture *fx = *state; /* store_test_util.h: a temp dir, removed after */
    const char *db = fx->db;
    char err[256];
    gvd_store *st = gvd_store_open(db, err, sizeof err);
    assert_non_null(st);
    gvd_job_row job = {.name = "j", .kind = "process", .status = "succeeded", .spec_json = "{}",
                       .params_json = "{}", .metrics_json = "{}", .progress_total = 100, .message = ""};
    int64_t id = 0;
    assert_int_equal(gvd_store_insert(st, &job, &id, err, sizeof err), 0);
    for (int r = 1; r <= 3; r++) {
        gvd_params_row p = {.job_id = id, .revision = r, .patch_json = "{\"lr\":0.1}", .who = "local", .at = r};
        assert_int_equal(gvd_store_params_insert(st, &p, err, sizeof err), 0);
    }
    /* a revision is unique per job */
    gvd_params_row dup = {.job_id = id, .revision = 2, .patch_json = "{}", .who = "local", .at = 9};
    assert_int_equal(gvd_store_params_insert(st, &dup, err, sizeof err), -1);
    assert_int_equal(gvd_store_params_applied(st, id, 2, 42.5, err, sizeof err), 0);
    for (int r = 4; r <= 5; r++) {
        gvd_params_row p = {.job_id = id, .revision = r, .patch_json = "{}", .who = "token", .at = r};
        assert_int_equal(gvd_store_params_insert(st, &p, err, sizeof err), 0);
    }
    assert_int_equal(gvd_store_params_prune(st, id, 2, err, sizeof err), 0); /* the oldest two go */
    for (int k = 0; k < 6; k++) {
        gvd_point_row pt = {.job_id = id, .name = "loss", .idx = k, .t_ms = k, .value = k, .weight = 1};
        assert_int_equal(gvd_store_point_put(st, &pt, err, sizeof err), 0);
    }
    /* a rewrite after a compaction: replace idx 0..3, trim the rest */
    for (int k = 0; k < 4; k++) {
        gvd_point_row pt = {.job_id = id, .name = "loss", .idx = k, .t_ms = k, .value = 10 + k, .weight = 2};
        assert_int_equal(gvd_store_point_put(st, &pt, err, sizeof err), 0);
    }
    assert_int_equal(gvd_store_points_trim(st, id, "loss", 4, err, sizeof err), 0);
    gvd_store_close(st);

    st = gvd_store_open(db, err, sizeof err); /* what a restart reads */
    assert_non_null(st);
    seen s = {0};
    assert_int_equal(gvd_store_params_load(st, on_params, &s, err, sizeof err), 0);
    assert_int_equal(s.params, 3);
    assert_int_equal(s.last_rev, 5);
    assert_true(s.applied[1] == 0 && s.applied[2] == 0 && s.applied[3] == 0 && s.applied[4] == 0);
    assert_int_equal(gvd_store_points_load(st, on_point, &s, err, sizeof err), 0);
    assert_int_equal(s.points, 4);
    assert_true(s.values[0] == 10 && s.values[3] == 13);
    /* deleting the job deletes its history */
    assert_int_equal(gvd_store_delete(st, id, err, sizeof err), 0);
    seen after = {0};
    assert_int_equal(gvd_store_params_load(st, on_params, &after, err, sizeof err), 0);
    assert_int_equal(gvd_store_points_load(st, on_point, &after, err, sizeof err), 0);
    assert_int_equal(after.params + after.points, 0);
    gvd_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_check),
        cmocka_unit_test(test_schema_validate),
        cmocka_unit_test(test_series_empty_and_bound),
        cmocka_unit_test(test_series_many_points),
        cmocka_unit_test(test_series_refuses_non_finite),
        cmocka_unit_test(test_ack_params_revision),
        cmocka_unit_test_setup_teardown(test_store_tables, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
