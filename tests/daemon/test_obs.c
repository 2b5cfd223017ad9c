/*
 * test_obs.c — the metrics registry and its Prometheus text
 * (src/daemon/obs/): the exact lines the format asks for, escaping,
 * cumulative histogram buckets, and the keyed families' bounds.
 *
 * The text is what a Prometheus server parses, so the building blocks are
 * checked byte for byte; the whole page is checked line by line for the
 * format's grammar (tests/daemon/e2e/test_metrics.py parses a real scrape
 * with prometheus_client as well).  The registry is per process: each
 * cmocka run starts from zero.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "obs/obs.h"

/* The text one call appends, as a fresh string (freed by the caller). */
static char *take(gvd_obs_text *t)
{
    assert_false(t->oom);
    char *s = strdup(t->p ? t->p : "");
    assert_non_null(s);
    gvd_obs_text_free(t);
    return s;
}

static void expect_text(gvd_obs_text *t, const char *want)
{
    char *got = take(t);
    assert_string_equal(got, want);
    free(got);
}

static void test_samples_and_escaping(void **state)
{
    (void)state;
    gvd_obs_text t = {0};
    gvd_obs_sample(&t, "up", NULL, 1);
    gvd_obs_sample(&t, "jobs", GVD_OBS_LABELS("status", "queued"), 3);
    gvd_obs_sample(&t, "x_total", GVD_OBS_LABELS("a", "1", "b", "2", "c", "3"), 0);
    expect_text(&t, "up 1\njobs{status=\"queued\"} 3\nx_total{a=\"1\",b=\"2\",c=\"3\"} 0\n");

    /* label values escape \, " and newline; HELP escapes \ and newline only */
    gvd_obs_sample(&t, "m", GVD_OBS_LABELS("route", "a\"b\\c\nd"), 2);
    gvd_obs_family(&t, "m", "counter", "say \"hi\" \\ twice\nok");
    expect_text(&t, "m{route=\"a\\\"b\\\\c\\nd\"} 2\n"
                    "# HELP m say \"hi\" \\\\ twice\\nok\n"
                    "# TYPE m counter\n");
}

static void test_numbers(void **state)
{
    (void)state;
    gvd_obs_text t = {0};
    gvd_obs_sample(&t, "a", NULL, 0.1);
    gvd_obs_sample(&t, "b", NULL, 1e15);
    gvd_obs_sample(&t, "c", NULL, 0.1 + 0.2); /* needs 17 digits to read back */
    gvd_obs_sample(&t, "d", NULL, NAN);
    gvd_obs_sample(&t, "e", NULL, INFINITY);
    gvd_obs_sample(&t, "f", NULL, -INFINITY);
    gvd_obs_sample(&t, "g", NULL, 18446744073709551615.0);
    expect_text(&t, "a 0.1\nb 1e+15\nc 0.30000000000000004\nd NaN\ne +Inf\nf -Inf\ng 1.8446744073709552e+19\n");
}

static void test_histogram_is_cumulative(void **state)
{
    (void)state;
    static const double bounds[] = {0.5, 1, 2.5};
    gvd_obs_hist h = {.bounds = bounds, .nbounds = 3};
    /* A value equal to a bound is in that bucket ("le": less or equal). */
    const double values[] = {0.25, 0.5, 0.75, 1, 3, 100};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        gvd_obs_hist_observe(&h, values[i]);
    assert_int_equal(h.count, 6);
    gvd_obs_text t = {0};
    gvd_obs_histogram(&t, "lat_seconds", "Latency.", &h);
    expect_text(&t, "# HELP lat_seconds Latency.\n"
                    "# TYPE lat_seconds histogram\n"
                    "lat_seconds_bucket{le=\"0.5\"} 2\n"
                    "lat_seconds_bucket{le=\"1\"} 4\n"
                    "lat_seconds_bucket{le=\"2.5\"} 4\n"
                    "lat_seconds_bucket{le=\"+Inf\"} 6\n"
                    "lat_seconds_sum 105.5\n"
                    "lat_seconds_count 6\n");
}

/* The number of the line of `page` that starts with `prefix`, or 0. */
static int line_of(const char *page, const char *prefix)
{
    int n = 1;
    for (const char *p = page; *p; n++) {
        if (strncmp(p, prefix, strlen(prefix)) == 0)
            return n;
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    return 0;
}

static const char *const name_chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789:";

/* Past '{label="value",...}' (values may hold escaped quotes and braces). */
static const char *skip_labels(const char *p, const char *line)
{
    p++;
    while (*p != '}') {
        size_t k = strspn(p, name_chars);
        if (k == 0 || p[k] != '=' || p[k + 1] != '"')
            fail_msg("bad label in: %s", line);
        for (p += k + 2; *p != '"'; p++) {
            if (!*p || *p == '\n')
                fail_msg("unterminated label value in: %s", line);
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n')
                    fail_msg("bad escape in: %s", line);
            }
        }
        p++;
        if (*p == ',')
            p++;
        else if (*p != '}')
            fail_msg("bad label list in: %s", line);
    }
    return p + 1;
}

/* Every line is "# HELP name text", "# TYPE name type" or a sample
 * "name[{k="v",...}] number", and every sample follows its family's TYPE. */
static void check_grammar(const char *page)
{
    char family[128] = "";
    const char *p = page;
    while (*p) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl); /* the page ends with a newline */
        char line[1024];
        size_t n = (size_t)(nl - p);
        assert_true(n < sizeof line);
        memcpy(line, p, n);
        line[n] = '\0';
        p = nl + 1;
        char name[128], type[32];
        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        if (sscanf(line, "# TYPE %127s %31s", name, type) == 2) {
            assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge") || !strcmp(type, "histogram"));
            snprintf(family, sizeof family, "%s", name);
            continue;
        }
        size_t k = strspn(line, name_chars);
        assert_true(k > 0);
        if (strncmp(line, family, strlen(family)) != 0 || family[0] == '\0')
            fail_msg("sample outside its family (%s): %s", family, line);
        const char *rest = line + k;
        if (*rest == '{')
            rest = skip_labels(rest, line);
        assert_true(*rest == ' ');
        char *end;
        (void)strtod(rest + 1, &end);
        if (*end != '\0')
            fail_msg("not a number at the end: %s", line);
    }
}

static void test_page(void **state)
{
    (void)state;
    gvd_obs_job_transition(GVD_NSTATUS, GVD_QUEUED);
    gvd_obs_job_transition(GVD_QUEUED, GVD_RUNNING);
    gvd_obs_job_transition(GVD_QUEUED, GVD_RUNNING);
    gvd_obs_process_spawned(true, gvd_obs_clock_ns());
    gvd_obs_process_spawned(false, gvd_obs_clock_ns());
    gvd_obs_process_exited(0, 0, false, false);
    gvd_obs_process_exited(3, 0, false, false);
    gvd_obs_process_exited(-1, 9, false, false);
    gvd_obs_process_exited(-1, 15, true, false);
    gvd_obs_process_exited(-1, 0, false, true);
    gvd_obs_rule_fired("pause");
    char copy[] = "pause"; /* the same words from another string: the same series */
    gvd_obs_rule_fired(copy);
    gvd_obs_rule_fired("notify");
    gvd_obs_frames_sent(GVD_OBS_SSE, 5);
    gvd_obs_stream_written(3);  /* 0.003 s: in the 0.005 bucket */
    gvd_obs_stream_written(200); /* 0.2 s */
    gvd_obs_frames_dropped(GVD_OBS_WS, GVD_OBS_COALESCED, 2);
    gvd_obs_store_committed(gvd_obs_clock_ns());
    gvd_obs_store_write_failed();
    gvd_obs_store_fault(GVD_STORE_DISK_FULL);
    gvd_obs_store_fault(GVD_STORE_OK); /* not a fault: ignored */
    gvd_obs_http_request("/jobs/{id}", 200);
    gvd_obs_http_request("/jobs/{id}", 200);
    gvd_obs_http_request("/jobs/{id}", 404);
    /* More distinct statuses than a route has slots for: the rest is "other". */
    for (int code = 200; code < 230; code++)
        gvd_obs_http_request("/many", code);

    gvd_obs_live live = {.conns_open = 3, .conns_max = 1024, .conns_refused = 7};
    live.jobs.by_status[GVD_RUNNING] = 2;
    live.jobs.max_running = 4;
    live.jobs.store_available = true;
    live.push.ws_clients = 1;
    live.push.dropped_ping = 1;
    live.push.flushes = 11;
    live.push.writes = 12;
    live.push.resyncs = 13;
    gvd_obs_text t = {0};
    assert_int_equal(gvd_obs_render(&t, &live), 0);
    char *page = take(&t);
    check_grammar(page);
    const char *want[] = {
        "galvanid_build_info{version=\"",
        "process_start_time_seconds ",
        "process_resident_memory_bytes ",
        "galvanid_jobs{status=\"queued\"} 0\n",
        "galvanid_jobs{status=\"running\"} 2\n",
        "galvanid_jobs_max_running 4\n",
        "galvanid_job_transitions_total{from=\"new\",to=\"queued\"} 1\n",
        "galvanid_job_transitions_total{from=\"queued\",to=\"running\"} 2\n",
        "galvanid_process_spawns_total{result=\"ok\"} 1\n",
        "galvanid_process_spawns_total{result=\"failed\"} 1\n",
        "galvanid_process_spawn_duration_seconds_count 1\n",
        "galvanid_process_exits_total{outcome=\"success\"} 1\n",
        "galvanid_process_exits_total{outcome=\"failure\"} 1\n",
        "galvanid_process_exits_total{outcome=\"signal\"} 1\n",
        "galvanid_process_exits_total{outcome=\"cancelled\"} 1\n",
        "galvanid_process_exits_total{outcome=\"lost\"} 1\n",
        "galvanid_rule_firings_total{action=\"pause\"} 2\n",
        "galvanid_rule_firings_total{action=\"notify\"} 1\n",
        "galvanid_stream_clients{transport=\"ws\"} 1\n",
        "galvanid_stream_frames_sent_total{transport=\"sse\"} 5\n",
        "galvanid_stream_frames_dropped_total{transport=\"ws\",reason=\"coalesced\"} 2\n",
        "galvanid_stream_clients_dropped_total{reason=\"ping\"} 1\n",
        "galvanid_stream_flushes_total 11\n",
        "galvanid_stream_write_delay_seconds_bucket{le=\"0.0025\"} 0\n",
        "galvanid_stream_write_delay_seconds_bucket{le=\"0.005\"} 1\n",
        "galvanid_stream_write_delay_seconds_bucket{le=\"0.25\"} 2\n",
        "galvanid_stream_write_delay_seconds_count 2\n",
        "galvanid_stream_writes_total 12\n",
        "galvanid_stream_resyncs_total 13\n",
        "galvanid_store_commit_duration_seconds_count 1\n",
        "galvanid_store_faults_total{cause=\"disk_full\"} 1\n",
        "galvanid_store_faults_total{cause=\"locked\"} 0\n",
        "galvanid_store_write_errors_total 1\n",
        "galvanid_store_available 1\n",
        "galvanid_http_requests_total{route=\"/jobs/{id}\",code=\"200\"} 2\n",
        "galvanid_http_requests_total{route=\"/jobs/{id}\",code=\"404\"} 1\n",
        "galvanid_http_requests_total{route=\"/many\",code=\"215\"} 1\n",
        "galvanid_http_requests_total{route=\"/many\",code=\"other\"} 14\n",
        "galvanid_http_connections 3\n",
        "galvanid_http_connections_refused_total 7\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(page, want[i]))
            fail_msg("missing: %s\n--- page ---\n%s", want[i], page);
    assert_null(strstr(page, "code=\"216\"")); /* past the slots */
    assert_null(strstr(page, "cause=\"ok\""));
    /* Each family once, HELP before TYPE before its samples. */
    assert_true(line_of(page, "# HELP galvanid_jobs ") < line_of(page, "# TYPE galvanid_jobs gauge"));
    assert_true(line_of(page, "# TYPE galvanid_jobs gauge") < line_of(page, "galvanid_jobs{"));
    free(page);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples_and_escaping),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_histogram_is_cumulative),
        cmocka_unit_test(test_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
