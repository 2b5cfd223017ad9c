/*
 * test_api_http.c — the HTTP API end to end: the real server, the real job
 * model and store, a real HTTP/1.1 client over loopback.  Every route,
 * every error status, and the server keeps serving after bad input.
 */
#include "test_api_harness.h"

#include <libgen.h>

static api_harness H;

static int setup(void **state)
{
    (void)state;
    gvd_server_opts o = {0};
    o.max_body = 4096; /* small, so that 413 is cheap to reach */
    api_start(&H, NULL, &o);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    api_stop(&H);
    return 0;
}

static void assert_alive(void)
{
    http_resp r = http_do(&H, "GET", "/healthz", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_str(r.json, "status"), "ok");
    http_resp_free(&r);
}

static void assert_error(http_resp *r, int status, const char *code)
{
    if (r->status != status || strcmp(http_error_code(r), code) != 0)
        fail_msg("expected %d %s, got %d %s", status, code, r->status, r->body);
    assert_string_equal(http_header(r, "content-type"), "application/json");
    assert_true(strlen(http_error_message(r)) > 0);
}

/* ---------------------------------------------------------------------------- */

static void test_healthz_counts(void **state)
{
    (void)state;
    http_resp r = http_do(&H, "GET", "/healthz", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_str(r.json, "status"), "ok");
    assert_int_equal(json_int(r.json, "total"), 0);
    assert_int_equal(json_int(r.json, "running"), 0);
    assert_int_equal(json_int(r.json, "max_running"), 4);
    assert_int_equal(json_int(json_object_get(r.json, "streams"), "ws"), 0);
    http_resp_free(&r);

    api_create(&H, "{\"kind\":\"demo\",\"demo_step_ms\":1000}");
    r = http_do(&H, "GET", "/healthz", NULL, NULL);
    assert_int_equal(json_int(r.json, "total"), 1);
    assert_int_equal(json_int(r.json, "running"), 1);
    http_resp_free(&r);
}

static void test_openapi_is_the_file(void **state)
{
    (void)state;
    http_resp r = http_do(&H, "GET", "/openapi.json", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(http_header(&r, "content-type"), "application/json");
    assert_non_null(r.json);
    assert_string_equal(json_str(r.json, "openapi"), "3.0.3");
    json_t *paths = json_object_get(r.json, "paths");
    const char *routes[] = {"/jobs", "/jobs/{id}", "/jobs/{id}/pause", "/jobs/{id}/resume", "/jobs/{id}/cancel",
                            "/jobs/{id}/params", "/jobs/{id}/log", "/healthz", "/openapi.json", "/start",
                            "/pause", "/resume", "/cancel", "/ws", "/ws/jobs", "/events", "/metrics"};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!json_object_get(paths, routes[i]))
            fail_msg("openapi.json does not document %s", routes[i]);

    /* The served bytes are web/openapi.json's (a stale embed fails here). */
    char src[512];
    snprintf(src, sizeof src, "%s", __FILE__);
    char path[600];
    snprintf(path, sizeof path, "%s/../../web/openapi.json", dirname(src));
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *file = malloc(r.body_len + 2);
    size_t n = fread(file, 1, r.body_len + 1, f);
    fclose(f);
    assert_int_equal(n, r.body_len);
    assert_memory_equal(file, r.body, n);
    free(file);
    http_resp_free(&r);
}

static void test_create_get_and_location(void **state)
{
    (void)state;
    http_resp r = http_json(&H, "POST", "/jobs", "{\"kind\":\"demo\",\"name\":\"first\",\"demo_step_ms\":1000}");
    assert_int_equal(r.status, 201);
    int64_t id = json_int(r.json, "id");
    assert_true(id > 0);
    char loc[64];
    snprintf(loc, sizeof loc, "/jobs/%lld", (long long)id);
    assert_string_equal(http_header(&r, "location"), loc);
    assert_string_equal(json_str(r.json, "name"), "first");
    assert_string_equal(json_str(r.json, "kind"), "demo");
    http_resp_free(&r);

    r = http_do(&H, "GET", loc, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_int(r.json, "id"), id);
    assert_string_equal(json_str(r.json, "status"), "running");
    http_resp_free(&r);

    /* a trailing slash is the same resource */
    strcat(loc, "/");
    r = http_do(&H, "GET", loc, NULL, NULL);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);

    r = http_do(&H, "GET", "/jobs/999", NULL, NULL);
    assert_error(&r, 404, "not_found");
    assert_non_null(strstr(http_error_message(&r), "999"));
    http_resp_free(&r);
    r = http_do(&H, "GET", "/jobs/abc", NULL, NULL);
    assert_error(&r, 404, "not_found");
    assert_non_null(strstr(http_error_message(&r), "abc"));
    http_resp_free(&r);
}

static void test_list_filter_and_pages(void **state)
{
    (void)state;
    int64_t a = api_create(&H, "{\"kind\":\"demo\",\"demo_step_ms\":1000}");
    int64_t b = api_create(&H, "{\"command\":[\"true\"]}");
    int64_t c = api_create(&H, "{\"kind\":\"demo\",\"demo_step_ms\":1000}");
    assert_true(api_wait_status(&H, b, "succeeded", T_WAIT_MS));

    http_resp r = http_do(&H, "GET", "/jobs", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_int(r.json, "total"), 3);
    assert_int_equal(json_int(r.json, "limit"), 100);
    assert_int_equal(json_int(r.json, "offset"), 0);
    json_t *jobs = json_object_get(r.json, "jobs");
    assert_int_equal(json_array_size(jobs), 3);
    assert_int_equal(json_int(json_array_get(jobs, 0), "id"), c); /* newest first */
    http_resp_free(&r);

    r = http_do(&H, "GET", "/jobs?status=running", NULL, NULL);
    assert_int_equal(json_int(r.json, "total"), 2);
    http_resp_free(&r);
    r = http_do(&H, "GET", "/jobs?status=succeeded,paused", NULL, NULL);
    assert_int_equal(json_int(r.json, "total"), 1);
    assert_int_equal(json_int(json_array_get(json_object_get(r.json, "jobs"), 0), "id"), b);
    http_resp_free(&r);
    r = http_do(&H, "GET", "/jobs?status=running%2Csucceeded&limit=1&offset=2", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_int(r.json, "total"), 3);
    assert_int_equal(json_int(r.json, "limit"), 1);
    assert_int_equal(json_array_size(json_object_get(r.json, "jobs")), 1);
    assert_int_equal(json_int(json_array_get(json_object_get(r.json, "jobs"), 0), "id"), a);
    http_resp_free(&r);

    r = http_do(&H, "GET", "/jobs?status=runing", NULL, NULL);
    assert_error(&r, 400, "invalid_query");
    assert_non_null(strstr(http_error_message(&r), "\"runing\""));
    http_resp_free(&r);
    r = http_do(&H, "GET", "/jobs?limit=5000", NULL, NULL);
    assert_error(&r, 400, "invalid_query");
    http_resp_free(&r);
    r = http_do(&H, "GET", "/jobs?offset=-1", NULL, NULL);
    assert_error(&r, 400, "invalid_query");
    http_resp_free(&r);
    r = http_do(&H, "GET", "/jobs?stat=running", NULL, NULL);
    assert_error(&r, 400, "invalid_query");
    assert_non_null(strstr(http_error_message(&r), "\"stat\""));
    http_resp_free(&r);
    r = http_do(&H, "GET", "/jobs?status=%zz", NULL, NULL);
    assert_error(&r, 400, "invalid_query");
    http_resp_free(&r);
}

static void test_transitions_and_conflicts(void **state)
{
    (void)state;
    int64_t id = api_create(&H, "{\"kind\":\"demo\",\"demo_step_ms\":1000}");
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld/pause", (long long)id);
    http_resp r = http_do(&H, "POST", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_str(r.json, "status"), "paused");
    http_resp_free(&r);

    /* pausing twice is a refused transition */
    r = http_do(&H, "POST", path, NULL, NULL);
    assert_error(&r, 409, "invalid_transition");
    http_resp_free(&r);

    snprintf(path, sizeof path, "/jobs/%lld/resume", (long long)id);
    r = http_do(&H, "POST", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_str(r.json, "status"), "running");
    http_resp_free(&r);

    snprintf(path, sizeof path, "/jobs/%lld/cancel", (long long)id);
    r = http_do(&H, "POST", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    assert_true(api_wait_status(&H, id, "cancelled", T_WAIT_MS));

    snprintf(path, sizeof path, "/jobs/%lld/pause", (long long)id);
    r = http_do(&H, "POST", path, NULL, NULL);
    assert_error(&r, 409, "invalid_transition");
    http_resp_free(&r);

    r = http_do(&H, "POST", "/jobs/4242/resume", NULL, NULL);
    assert_error(&r, 404, "not_found");
    assert_non_null(strstr(http_error_message(&r), "4242"));
    http_resp_free(&r);
}

static void test_params_patch(void **state)
{
    (void)state;
    int64_t id = api_create(&H, "{\"kind\":\"demo\",\"demo_step_ms\":1000,\"params\":{\"lr\":0.5,\"keep\":1}}");
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld/params", (long long)id);
    http_resp r = http_json(&H, "PATCH", path, "{\"lr\":0.1,\"keep\":null,\"tag\":\"x\"}");
    assert_int_equal(r.status, 200);
    json_t *params = json_object_get(r.json, "params");
    assert_true(json_number_value(json_object_get(params, "lr")) == 0.1);
    assert_null(json_object_get(params, "keep"));
    assert_string_equal(json_str(params, "tag"), "x");
    http_resp_free(&r);

    r = http_do(&H, "PATCH", path, "text/plain", "{\"lr\":1}");
    assert_error(&r, 415, "unsupported_media_type");
    http_resp_free(&r);
    r = http_do(&H, "PATCH", path, "application/merge-patch+json", "{\"lr\":1}");
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    r = http_json(&H, "PATCH", path, "[1,2]");
    assert_error(&r, 400, "invalid_json");
    http_resp_free(&r);
    r = http_json(&H, "PATCH", path, "{\n  \"lr\": ,\n}");
    assert_error(&r, 400, "invalid_json");
    assert_int_equal(json_int(json_object_get(r.json, "error"), "line"), 2);
    assert_non_null(strstr(http_error_message(&r), "line 2"));
    http_resp_free(&r);
    r = http_do(&H, "POST", path, NULL, NULL);
    assert_error(&r, 405, "method_not_allowed");
    assert_string_equal(http_header(&r, "allow"), "PATCH");
    http_resp_free(&r);
}

static void test_log_tail(void **state)
{
    (void)state;
    int64_t id = api_create(&H, "{\"command\":[\"sh\",\"-c\",\"echo hello; echo world\"]}");
    assert_true(api_wait_status(&H, id, "succeeded", T_WAIT_MS));
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld/log", (long long)id);
    http_resp r = http_do(&H, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(http_header(&r, "content-type"), "text/plain; charset=utf-8");
    assert_string_equal(r.body, "hello\nworld\n");
    http_resp_free(&r);

    snprintf(path, sizeof path, "/jobs/%lld/log?tail=6", (long long)id);
    r = http_do(&H, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "world\n");
    http_resp_free(&r);
    snprintf(path, sizeof path, "/jobs/%lld/log?tail=0", (long long)id);
    r = http_do(&H, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    http_resp_free(&r);
    snprintf(path, sizeof path, "/jobs/%lld/log?tail=lots", (long long)id);
    r = http_do(&H, "GET", path, NULL, NULL);
    assert_error(&r, 400, "invalid_query");
    http_resp_free(&r);

    /* a log bigger than one 64 KiB piece arrives whole */
    id = api_create(&H, "{\"command\":[\"sh\",\"-c\",\"i=0; while [ $i -lt 3000 ]; do "
                        "echo line-$i-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; i=$((i+1)); done\"]}");
    assert_true(api_wait_status(&H, id, "succeeded", T_WAIT_MS));
    snprintf(path, sizeof path, "/jobs/%lld/log", (long long)id);
    r = http_do(&H, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_true(r.body_len > 65536 * 2);
    assert_non_null(strstr(r.body, "line-0-"));
    assert_non_null(strstr(r.body, "line-2999-"));
    http_resp_free(&r);

    int64_t demo = api_create(&H, "{\"kind\":\"demo\",\"demo_step_ms\":1000}");
    snprintf(path, sizeof path, "/jobs/%lld/log", (long long)demo);
    r = http_do(&H, "GET", path, NULL, NULL);
    assert_error(&r, 404, "no_log");
    http_resp_free(&r);
}

static void test_delete(void **state)
{
    (void)state;
    int64_t id = api_create(&H, "{\"kind\":\"demo\",\"demo_step_ms\":1000}");
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld", (long long)id);
    http_resp r = http_do(&H, "DELETE", path, NULL, NULL);
    assert_error(&r, 409, "invalid_transition"); /* still running */
    http_resp_free(&r);

    char cancel[80];
    snprintf(cancel, sizeof cancel, "%s/cancel", path);
    r = http_do(&H, "POST", cancel, NULL, NULL);
    http_resp_free(&r);
    assert_true(api_wait_status(&H, id, "cancelled", T_WAIT_MS));
    r = http_do(&H, "DELETE", path, NULL, NULL);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body_len, 0);
    assert_null(http_header(&r, "content-length"));
    http_resp_free(&r);
    r = http_do(&H, "GET", path, NULL, NULL);
    assert_error(&r, 404, "not_found");
    http_resp_free(&r);
    r = http_do(&H, "DELETE", path, NULL, NULL);
    assert_error(&r, 404, "not_found");
    http_resp_free(&r);
}

static void test_seed_routes(void **state)
{
    (void)state;
    http_resp r = http_do(&H, "POST", "/pause", NULL, NULL);
    assert_error(&r, 404, "not_found"); /* no demo job yet */
    http_resp_free(&r);

    r = http_do(&H, "POST", "/start", NULL, NULL);
    assert_int_equal(r.status, 201);
    assert_string_equal(json_str(r.json, "kind"), "demo");
    assert_string_equal(json_str(r.json, "status"), "running");
    int64_t id = json_int(r.json, "id");
    http_resp_free(&r);

    r = http_do(&H, "POST", "/start", NULL, NULL);
    assert_int_equal(r.status, 409); /* the demo job is still running */
    assert_string_equal(http_header(&r, "content-type"), "application/json");
    http_resp_free(&r);

    const char *steps[][2] = {{"/pause", "paused"}, {"/resume", "running"}, {"/cancel", NULL}};
    for (int i = 0; i < 3; i++) {
        r = http_do(&H, "POST", steps[i][0], NULL, NULL);
        assert_int_equal(r.status, 200);
        assert_int_equal(json_int(r.json, "id"), id);
        if (steps[i][1])
            assert_string_equal(json_str(r.json, "status"), steps[i][1]);
        http_resp_free(&r);
    }
    assert_true(api_wait_status(&H, id, "cancelled", T_WAIT_MS));
    r = http_do(&H, "POST", "/resume", NULL, NULL);
    assert_error(&r, 409, "invalid_transition");
    http_resp_free(&r);

    r = http_do(&H, "GET", "/start", NULL, NULL);
    assert_error(&r, 405, "method_not_allowed");
    assert_string_equal(http_header(&r, "allow"), "POST");
    http_resp_free(&r);
}

static void test_method_and_route_errors(void **state)
{
    (void)state;
    struct {
        const char *method, *path, *allow;
    } cases[] = {
        /* HEAD goes wherever GET does */
        {"PUT", "/jobs", "GET, HEAD, POST"}, {"POST", "/jobs/1", "GET, HEAD, DELETE"},
        {"GET", "/jobs/1/pause", "POST"},    {"GET", "/jobs/1/cancel", "POST"},
        {"POST", "/jobs/1/log", "GET, HEAD"}, {"POST", "/healthz", "GET, HEAD"},
        {"DELETE", "/openapi.json", "GET, HEAD"}, {"POST", "/ws", "GET, HEAD"},
        {"POST", "/events", "GET, HEAD"},     {"POST", "/metrics", "GET, HEAD"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_resp r = http_do(&H, cases[i].method, cases[i].path, NULL, NULL);
        assert_error(&r, 405, "method_not_allowed");
        assert_string_equal(http_header(&r, "allow"), cases[i].allow);
        http_resp_free(&r);
    }
    /* "/" is the dashboard (static.c); a near miss of one of its files is not */
    const char *missing[] = {"/index.htm", "/nope", "/jobs/1/explode", "/jobs/1/log/more", "/ws/other"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        http_resp r = http_do(&H, "GET", missing[i], NULL, NULL);
        assert_error(&r, 404, "not_found");
        http_resp_free(&r);
    }
    /* a plain GET on a WebSocket endpoint */
    http_resp r = http_do(&H, "GET", "/ws", NULL, NULL);
    assert_error(&r, 400, "websocket_required");
    http_resp_free(&r);
    assert_alive();
}

static void test_bad_bodies_keep_the_server_alive(void **state)
{
    (void)state;
    http_resp r = http_json(&H, "POST", "/jobs", "{\"command\": [\"true\"");
    assert_error(&r, 400, "invalid_json");
    assert_int_equal(json_int(json_object_get(r.json, "error"), "line"), 1);
    http_resp_free(&r);
    assert_alive();

    r = http_json(&H, "POST", "/jobs", "{\"command\":[\"true\"],\"priority\":\"high\"}");
    assert_error(&r, 400, "invalid_spec");
    assert_non_null(strstr(http_error_message(&r), "priority"));
    http_resp_free(&r);

    r = http_json(&H, "POST", "/jobs", "{\"command\":[\"true\"],\"timout\":5,\"colour\":1}");
    assert_error(&r, 400, "invalid_spec");
    assert_non_null(strstr(http_error_message(&r), "\"timout\""));
    assert_non_null(strstr(http_error_message(&r), "\"colour\""));
    http_resp_free(&r);

    /* fields of the other kind are refused, not silently dropped */
    r = http_json(&H, "POST", "/jobs", "{\"kind\":\"demo\",\"env\":{\"A\":\"1\"}}");
    assert_error(&r, 400, "invalid_spec");
    assert_string_equal(http_error_message(&r), "a demo job takes no \"env\" (it runs inside galvanid)");
    http_resp_free(&r);
    r = http_json(&H, "POST", "/jobs", "{\"kind\":\"demo\",\"pause_mode\":\"cooperative\"}");
    assert_error(&r, 400, "invalid_spec");
    assert_non_null(strstr(http_error_message(&r), "\"pause_mode\""));
    http_resp_free(&r);
    r = http_json(&H, "POST", "/jobs", "{\"command\":[\"true\"],\"demo_step_ms\":5}");
    assert_error(&r, 400, "invalid_spec");
    assert_string_equal(http_error_message(&r), "only a demo job takes \"demo_step_ms\"");
    http_resp_free(&r);

    r = http_json(&H, "POST", "/jobs", "\"just a string\"");
    assert_error(&r, 400, "invalid_json");
    http_resp_free(&r);
    r = http_json(&H, "POST", "/jobs", "{\"a\":1,\"a\":2}"); /* duplicate keys are ambiguous */
    assert_error(&r, 400, "invalid_json");
    http_resp_free(&r);
    r = http_do(&H, "POST", "/jobs", NULL, NULL);
    assert_error(&r, 400, "invalid_json");
    http_resp_free(&r);

    r = http_do(&H, "POST", "/jobs", "application/x-www-form-urlencoded", "command=true");
    assert_error(&r, 415, "unsupported_media_type");
    http_resp_free(&r);
    r = http_do(&H, "POST", "/jobs", "text/plain", "{\"command\":[\"true\"]}");
    assert_error(&r, 415, "unsupported_media_type");
    http_resp_free(&r);
    r = http_do(&H, "POST", "/jobs", "application/json; charset=utf-8", "{\"kind\":\"demo\",\"demo_step_ms\":1000}");
    assert_int_equal(r.status, 201);
    http_resp_free(&r);

    /* binary garbage as JSON */
    char junk[300];
    for (size_t i = 0; i < sizeof junk - 1; i++)
        junk[i] = (char)(1 + (i * 37) % 254);
    junk[sizeof junk - 1] = '\0';
    r = http_json(&H, "POST", "/jobs", junk);
    assert_error(&r, 400, "invalid_json");
    http_resp_free(&r);
    assert_alive();
}

static void test_body_too_large(void **state)
{
    (void)state;
    /* Rejected from Content-Length alone: the response comes before a byte
     * of the body is sent. */
    tconn c;
    tconn_open(&c, H.port);
    const char *head = "POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 10485760\r\n\r\n";
    assert_int_equal(tconn_send(&c, head, strlen(head)), 0);
    http_resp r;
    assert_int_equal(http_read(&c, &r, 3000), 0);
    assert_error(&r, 413, "body_too_large");
    assert_non_null(strstr(http_error_message(&r), "4096"));
    http_resp_free(&r);
    tconn_close(&c);

    /* A chunked body has no length up front: rejected while reading. */
    tconn_open(&c, H.port);
    head = "PATCH /jobs/1/params HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Transfer-Encoding: chunked\r\n\r\n1400\r\n";
    assert_int_equal(tconn_send(&c, head, strlen(head)), 0);
    char chunk[4200];
    memset(chunk, ' ', sizeof chunk);
    assert_int_equal(tconn_send(&c, chunk, sizeof chunk), 0);
    assert_int_equal(http_read(&c, &r, 3000), 0);
    assert_error(&r, 413, "body_too_large");
    http_resp_free(&r);
    tconn_close(&c);

    /* Just under the limit is fine (and then a 400 for what it says). */
    char body[4000];
    memset(body, ' ', sizeof body);
    body[0] = '{';
    memcpy(body + sizeof body - 2, "}", 2);
    r = http_json(&H, "POST", "/jobs", body);
    assert_error(&r, 400, "invalid_spec"); /* an empty spec: no command */
    http_resp_free(&r);
    assert_alive();
}

static void test_keep_alive_connection(void **state)
{
    (void)state;
    /* Several requests, errors included, on one connection. */
    tconn c;
    tconn_open(&c, H.port);
    const char *paths[] = {"/healthz", "/nope", "/jobs?limit=x", "/jobs", "/openapi.json"};
    int want[] = {200, 404, 400, 200, 200};
    for (int i = 0; i < 5; i++) {
        http_resp r;
        http_send_req(&c, "GET", paths[i], NULL, NULL, 0, true);
        assert_int_equal(http_read(&c, &r, 3000), 0);
        assert_int_equal(r.status, want[i]);
        http_resp_free(&r);
    }
    /* a 204 keeps the connection usable too */
    int64_t id = api_create(&H, "{\"command\":[\"true\"]}");
    assert_true(api_wait_status(&H, id, "succeeded", T_WAIT_MS));
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld", (long long)id);
    http_resp r;
    http_send_req(&c, "DELETE", path, NULL, NULL, 0, true);
    assert_int_equal(http_read(&c, &r, 3000), 0);
    assert_int_equal(r.status, 204);
    http_resp_free(&r);
    http_send_req(&c, "GET", "/healthz", NULL, NULL, 0, true);
    assert_int_equal(http_read(&c, &r, 3000), 0);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    tconn_close(&c);
}

static void test_garbage_request_line(void **state)
{
    (void)state;
    tconn c;
    tconn_open(&c, H.port);
    const char *junk = "\x16\x03\x01 not http at all\r\n\r\n";
    tconn_send(&c, junk, strlen(junk));
    /* h2o answers 400 (plain, before any request exists) and closes */
    while (tconn_fill(&c, T_WAIT_MS) > 0)
        ;
    assert_non_null(strstr(c.buf ? c.buf : "", "400"));
    tconn_close(&c);
    assert_alive();
}

/* One request with hand-written headers (Host included). */
static http_resp raw_request(const char *method, const char *path, const char *headers)
{
    tconn c;
    http_resp r;
    char req[1024];
    tconn_open(&c, H.port);
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\n%sConnection: close\r\n\r\n", method, path, headers);
    assert_int_equal(tconn_send(&c, req, (size_t)n), 0);
    if (http_read(&c, &r, T_WAIT_MS) != 0)
        fail_msg("%s %s: no response", method, path);
    tconn_close(&c);
    return r;
}

static void test_dns_rebinding_and_cross_origin(void **state)
{
    (void)state;
    char hdr[256];
    /* a page that rebound its own name to 127.0.0.1 */
    snprintf(hdr, sizeof hdr, "Host: evil.example:%d\r\n", H.port);
    http_resp r = raw_request("GET", "/healthz", hdr);
    assert_error(&r, 403, "forbidden_host");
    assert_non_null(strstr(http_error_message(&r), "evil.example"));
    http_resp_free(&r);
    r = raw_request("POST", "/start", hdr);
    assert_error(&r, 403, "forbidden_host");
    http_resp_free(&r);
    r = raw_request("GET", "/events", "Host: rebind.attacker.example\r\n");
    assert_error(&r, 403, "forbidden_host");
    http_resp_free(&r);
    /* loopback names are served */
    const char *names[] = {"localhost", "127.0.0.1", "[::1]", "127.0.0.2", "app.localhost", "LOCALHOST", "myhost"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(hdr, sizeof hdr, "Host: %s:%d\r\n", names[i], H.port);
        r = raw_request("GET", "/healthz", hdr);
        if (r.status != 200)
            fail_msg("Host %s -> %d", names[i], r.status);
        http_resp_free(&r);
    }

    /* a cross-site page may not change state... */
    int64_t id = api_create(&H, "{\"kind\":\"demo\",\"demo_step_ms\":1000}");
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld/pause", (long long)id);
    snprintf(hdr, sizeof hdr, "Host: 127.0.0.1:%d\r\nOrigin: https://evil.example\r\n", H.port);
    r = raw_request("POST", path, hdr);
    assert_error(&r, 403, "forbidden_origin");
    http_resp_free(&r);
    r = raw_request("POST", "/cancel", hdr);
    assert_error(&r, 403, "forbidden_origin");
    http_resp_free(&r);
    /* ...nor open a stream... */
    snprintf(hdr, sizeof hdr,
             "Host: 127.0.0.1:%d\r\nOrigin: null\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: " WS_TEST_KEY "\r\nSec-WebSocket-Version: 13\r\n",
             H.port);
    r = raw_request("GET", "/ws", hdr);
    assert_error(&r, 403, "forbidden_origin");
    http_resp_free(&r);
    /* ...but reading is the browser's business (no CORS headers: the page
     * cannot see the answer) */
    snprintf(hdr, sizeof hdr, "Host: 127.0.0.1:%d\r\nOrigin: https://evil.example\r\n", H.port);
    r = raw_request("GET", "/jobs", hdr);
    assert_int_equal(r.status, 200);
    assert_null(http_header(&r, "access-control-allow-origin"));
    http_resp_free(&r);
    /* the server's own origin is fine */
    snprintf(hdr, sizeof hdr, "Host: 127.0.0.1:%d\r\nOrigin: http://127.0.0.1:%d\r\n", H.port, H.port);
    r = raw_request("POST", path, hdr);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_str(r.json, "status"), "paused");
    http_resp_free(&r);
}

static void test_allowed_origins(void **state)
{
    (void)state;
    api_stop(&H);
    gvd_server_opts o = {0};
    o.allow_origins = "http://localhost:3000, http://dash.localhost:8080";
    api_start(&H, NULL, &o);
    char hdr[256];
    snprintf(hdr, sizeof hdr, "Host: localhost:%d\r\nOrigin: http://dash.localhost:8080\r\n", H.port);
    http_resp r = raw_request("POST", "/start", hdr);
    assert_int_equal(r.status, 201);
    http_resp_free(&r);
    snprintf(hdr, sizeof hdr, "Host: localhost:%d\r\nOrigin: http://localhost:3001\r\n", H.port);
    r = raw_request("POST", "/pause", hdr);
    assert_error(&r, 403, "forbidden_origin");
    http_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_healthz_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openapi_is_the_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_get_and_location, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_filter_and_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transitions_and_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_params_patch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_method_and_route_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_bodies_keep_the_server_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_request_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dns_rebinding_and_cross_origin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allowed_origins, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
