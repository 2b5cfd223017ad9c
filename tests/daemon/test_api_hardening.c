/*
 * test_api_hardening.c — what the hostile run of issue 15 ("Hardening")
 * found, each against the real server: specs bounded (413 naming the limit,
 * nothing created), absurd timeouts and backoffs refused (400 naming the
 * maximum), params patches bounded, conflicting Content-Length refused, HEAD
 * served wherever GET is, a WebSocket close frame with a 1-byte payload
 * answered with 1002, and the per-client connection cap with its reserve.
 * Every test checks that a refusal lost nothing and the server still serves.
 */
#include "test_api_harness.h"

static api_harness H;

static int setup(void **state)
{
    (void)state;
    api_start(&H, NULL, NULL);
    return 0;
}

/* Per-client cap 4 and 2 reserved connections, out of 16. */
static int setup_capped(void **state)
{
    (void)state;
    gvd_server_opts o = {0};
    o.max_connections = 16;
    o.max_connections_per_client = 4;
    o.reserved_connections = 2;
    o.request_timeout_ms = 600000; /* the idle regular connections must outlive the test */
    api_start(&H, NULL, &o);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    api_stop(&H);
    return 0;
}

static int64_t jobs_total(void)
{
    http_resp r = http_do(&H, "GET", "/jobs?limit=0", NULL, NULL);
    assert_int_equal(r.status, 200);
    int64_t n = json_int(r.json, "total");
    http_resp_free(&r);
    return n;
}

/* POST /jobs `spec` expecting `status` with error `code` and `message_part`
 * in its message. */
static void expect_refused(const char *spec, int status, const char *code, const char *message_part)
{
    http_resp r = http_json(&H, "POST", "/jobs", spec);
    if (r.status != status || strcmp(http_error_code(&r), code) != 0 ||
        !strstr(http_error_message(&r), message_part))
        fail_msg("expected %d %s \"...%s...\", got %d %s", status, code, message_part, r.status, r.body);
    http_resp_free(&r);
}

/* {"command": ["true", "<len bytes>" x n]} (caller frees). */
static char *command_spec(size_t n, size_t len)
{
    char *s = malloc(64 + n * (len + 3));
    size_t k = (size_t)sprintf(s, "{\"command\": [\"true\"");
    for (size_t i = 0; i < n; i++) {
        s[k++] = ',';
        s[k++] = '"';
        memset(s + k, 'a', len);
        k += len;
        s[k++] = '"';
    }
    strcpy(s + k, "]}");
    return s;
}

/* {"<field>": {"V0": "<len bytes>", ... n entries}, <extra>} (caller frees). */
static char *object_spec(const char *field, size_t n, size_t len, const char *extra)
{
    char *s = malloc(128 + strlen(extra) + n * (len + 24));
    size_t k = (size_t)sprintf(s, "{%s, \"%s\": {", extra, field);
    for (size_t i = 0; i < n; i++) {
        k += (size_t)sprintf(s + k, "%s\"V%zu\": \"", i ? ", " : "", i);
        memset(s + k, 'v', len);
        k += len;
        s[k++] = '"';
    }
    strcpy(s + k, "}}");
    return s;
}

/* ---------------------------------------------------------------------------- */

static void test_spec_limits(void **state)
{
    (void)state;
    char *s;
    /* "command": arguments, then bytes */
    s = command_spec(GVD_SPEC_MAX_ARGS, 1); /* + "true": one too many */
    expect_refused(s, 413, "spec_too_large", "field \"command\" has 4097 arguments, more than the limit of 4096");
    free(s);
    s = command_spec(2, 70000);
    expect_refused(s, 413, "spec_too_large", "field \"command\" has 140007 bytes, more than the limit of 131072");
    free(s);
    s = malloc(140000);
    int k = sprintf(s, "{\"shell\": true, \"command\": \"");
    memset(s + k, 'x', 132000);
    strcpy(s + k + 132000, "\"}");
    expect_refused(s, 413, "spec_too_large", "more than the limit of 131072");
    free(s);
    /* "env": variables, then bytes */
    s = object_spec("env", GVD_SPEC_MAX_ENV + 1, 1, "\"command\": [\"true\"]");
    expect_refused(s, 413, "spec_too_large", "field \"env\" has 1025 variables, more than the limit of 1024");
    free(s);
    s = object_spec("env", 3, 50000, "\"command\": [\"true\"]");
    expect_refused(s, 413, "spec_too_large", "more than the limit of 131072");
    free(s);
    /* "params" and "params_schema": compact JSON */
    s = object_spec("params", 2, 40000, "\"command\": [\"true\"]");
    expect_refused(s, 413, "spec_too_large", "bytes of JSON, more than the limit of 65536");
    free(s);
    s = malloc(80000);
    k = sprintf(s, "{\"command\": [\"true\"], \"params_schema\": {\"x\": {\"enum\": [\"");
    memset(s + k, 'e', 70000);
    strcpy(s + k + 70000, "\"]}}}");
    expect_refused(s, 413, "spec_too_large", "field \"params_schema\" has");
    free(s);
    /* "cwd": a path */
    s = malloc(5000);
    k = sprintf(s, "{\"command\": [\"true\"], \"cwd\": \"/");
    memset(s + k, 'd', 4200);
    strcpy(s + k + 4200, "\"}");
    expect_refused(s, 413, "spec_too_large", "more than the limit of 4095");
    free(s);
    /* none of them was created */
    assert_int_equal(jobs_total(), 0);

    /* At the limits: accepted, and the command comes back whole (it is kept
     * packed, not as JSON: the API rebuilds it). */
    s = command_spec(GVD_SPEC_MAX_ARGS - 1, 2);
    int64_t id = api_create(&H, s);
    free(s);
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld", (long long)id);
    http_resp r = http_do(&H, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *cmd = json_object_get(r.json, "command");
    assert_int_equal(json_array_size(cmd), GVD_SPEC_MAX_ARGS);
    assert_string_equal(json_string_value(json_array_get(cmd, 0)), "true");
    assert_string_equal(json_string_value(json_array_get(cmd, GVD_SPEC_MAX_ARGS - 1)), "aa");
    http_resp_free(&r);
    assert_true(api_wait_status(&H, id, "succeeded", T_WAIT_MS));
    /* a shell job's command is its string */
    id = api_create(&H, "{\"shell\": true, \"command\": \"exit 0\", \"env\": {\"A\": \"1\"}}");
    snprintf(path, sizeof path, "/jobs/%lld", (long long)id);
    r = http_do(&H, "GET", path, NULL, NULL);
    assert_string_equal(json_str(r.json, "command"), "exit 0");
    http_resp_free(&r);
    assert_true(api_wait_status(&H, id, "succeeded", T_WAIT_MS));
    /* the listing (serialized one job at a time) has both, whole */
    r = http_do(&H, "GET", "/jobs", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_int(r.json, "total"), 2);
    assert_int_equal(json_array_size(json_object_get(r.json, "jobs")), 2);
    assert_int_equal(json_int(r.json, "limit"), 100);
    assert_int_equal(json_int(r.json, "offset"), 0);
    http_resp_free(&r);
}

static void test_absurd_numbers_refused(void **state)
{
    (void)state;
    expect_refused("{\"command\": [\"false\"], \"max_retries\": 3, \"retry_backoff\": 1e300}", 400, "invalid_spec",
                   "field \"retry_backoff\" must be a number from 0 to 86400 (seconds)");
    expect_refused("{\"command\": [\"true\"], \"timeout\": 1e300}", 400, "invalid_spec",
                   "field \"timeout\" must be a number from 0 to 31622400 (seconds)");
    expect_refused("{\"command\": [\"true\"], \"timeout\": -1}", 400, "invalid_spec", "from 0 to 31622400");
    assert_int_equal(jobs_total(), 0);
    /* the maxima themselves are fine */
    int64_t id = api_create(&H, "{\"command\": [\"true\"], \"timeout\": 31622400, \"retry_backoff\": 86400}");
    assert_true(api_wait_status(&H, id, "succeeded", T_WAIT_MS));
}

static void test_params_patch_bounded(void **state)
{
    (void)state;
    int64_t id = api_create(&H, "{\"command\": [\"sleep\", \"60\"], \"params\": {\"lr\": 1}}");
    char path[64], *patch = malloc(80000);
    snprintf(path, sizeof path, "/jobs/%lld/params", (long long)id);
    /* one patch over the limit */
    int k = sprintf(patch, "{\"big\": \"");
    memset(patch + k, 'p', 70000);
    strcpy(patch + k + 70000, "\"}");
    http_resp r = http_json(&H, "PATCH", path, patch);
    assert_int_equal(r.status, 413);
    assert_string_equal(http_error_code(&r), "params_too_large");
    assert_non_null(strstr(http_error_message(&r), "more than the limit of 65536"));
    http_resp_free(&r);
    /* two under it whose sum is over: the second is refused */
    patch[k + 40000] = '\0';
    strcat(patch, "\"}");
    r = http_json(&H, "PATCH", path, patch);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    patch[2] = 'c'; /* "bcg": another key */
    r = http_json(&H, "PATCH", path, patch);
    assert_int_equal(r.status, 413);
    assert_string_equal(http_error_code(&r), "params_too_large");
    http_resp_free(&r);
    free(patch);
    /* nothing of the refused ones was kept */
    snprintf(path, sizeof path, "/jobs/%lld", (long long)id);
    r = http_do(&H, "GET", path, NULL, NULL);
    json_t *params = json_object_get(r.json, "params");
    assert_int_equal(json_object_size(params), 2);
    assert_int_equal(json_int(params, "lr"), 1);
    assert_int_equal(strlen(json_str(params, "big")), 40000);
    assert_int_equal(json_int(r.json, "params_revision"), 1);
    http_resp_free(&r);
    snprintf(path, sizeof path, "/jobs/%lld/cancel", (long long)id);
    r = http_do(&H, "POST", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    assert_true(api_wait_status(&H, id, "cancelled", T_WAIT_MS));
}

/* A raw request on `c`; the response. */
static http_resp raw_request(tconn *c, const char *req)
{
    assert_int_equal(tconn_send(c, req, strlen(req)), 0);
    http_resp r;
    if (http_read(c, &r, T_WAIT_MS) != 0)
        fail_msg("no response to %s", req);
    return r;
}

static void test_conflicting_content_length(void **state)
{
    (void)state;
    tconn c;
    tconn_open(&c, H.port);
    http_resp r = raw_request(&c, "POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                  "Content-Length: 2\r\nContent-Length: 20\r\n\r\n{}");
    assert_int_equal(r.status, 400);
    assert_string_equal(http_error_code(&r), "bad_request");
    assert_non_null(strstr(http_error_message(&r), "conflicting Content-Length headers (\"2\" and \"20\")"));
    http_resp_free(&r);
    /* what follows on that connection is not trusted: it is closed */
    int64_t deadline = t_now_ms() + T_WAIT_MS;
    while (!c.eof && t_now_ms() < deadline)
        if (tconn_fill(&c, (int)(deadline - t_now_ms())) > 0)
            tconn_consume(&c, c.len);
    assert_true(c.eof);
    tconn_close(&c);
    /* the same in one header */
    tconn_open(&c, H.port);
    r = raw_request(&c, "POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        "Content-Length: 2, 3\r\n\r\n{}");
    assert_int_equal(r.status, 400);
    http_resp_free(&r);
    tconn_close(&c);
    /* the same value twice is one length: the body is read (and the spec
     * then refused for what it is) */
    tconn_open(&c, H.port);
    r = raw_request(&c, "POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}");
    assert_int_equal(r.status, 400);
    assert_string_equal(http_error_code(&r), "invalid_spec");
    http_resp_free(&r);
    tconn_close(&c);
    assert_int_equal(jobs_total(), 0);
}

/* HEAD `path` on c (kept alive): the status and the headers; no body may
 * follow, which the next request on the same connection proves. */
static int head_on(tconn *c, const char *path, char *content_length, size_t cl_size)
{
    http_send_req(c, "HEAD", path, NULL, NULL, 0, true);
    int64_t deadline = t_now_ms() + T_WAIT_MS;
    size_t hend = tconn_find(c, "\r\n\r\n", deadline);
    assert_true(hend != SIZE_MAX);
    http_resp r = {0};
    r.head = strndup(c->buf, hend);
    r.status = atoi(r.head + 9);
    tconn_consume(c, hend);
    const char *cl = http_header(&r, "content-length");
    size_t n = cl ? strlen(cl) : 0;
    assert_true(n < cl_size);
    memcpy(content_length, cl ? cl : "", n + 1);
    int status = r.status;
    http_resp_free(&r);
    return status;
}

static void test_head_is_get_without_body(void **state)
{
    (void)state;
    int64_t id = api_create(&H, "{\"command\": [\"echo\", \"hello\"]}");
    assert_true(api_wait_status(&H, id, "succeeded", T_WAIT_MS));
    char job[64], log[64], cancel[64];
    snprintf(job, sizeof job, "/jobs/%lld", (long long)id);
    snprintf(log, sizeof log, "/jobs/%lld/log", (long long)id);
    snprintf(cancel, sizeof cancel, "/jobs/%lld/cancel", (long long)id);
    const char *paths[] = {"/healthz", "/jobs", job, log, "/openapi.json", "/rules", "/", NULL};
    tconn c;
    tconn_open(&c, H.port);
    for (int i = 0; paths[i]; i++) {
        char cl[32];
        assert_int_equal(head_on(&c, paths[i], cl, sizeof cl), 200);
        /* the length GET's body has (healthz's uptime changes: not compared) */
        if (strcmp(paths[i], "/healthz") != 0) {
            http_resp g = http_do(&H, "GET", paths[i], NULL, NULL);
            assert_int_equal(g.status, 200);
            if (strtoul(cl, NULL, 10) != g.body_len)
                fail_msg("HEAD %s: Content-Length %s, GET's body %zu bytes", paths[i], cl, g.body_len);
            http_resp_free(&g);
        }
    }
    /* the stream: its headers, no stream */
    char cl[32];
    http_send_req(&c, "HEAD", "/events", NULL, NULL, 0, true);
    int64_t deadline = t_now_ms() + T_WAIT_MS;
    size_t hend = tconn_find(&c, "\r\n\r\n", deadline);
    assert_true(hend != SIZE_MAX);
    http_resp r = {0};
    r.head = strndup(c.buf, hend);
    assert_int_equal(atoi(r.head + 9), 200);
    assert_string_equal(http_header(&r, "content-type"), "text/event-stream");
    http_resp_free(&r);
    tconn_close(&c);
    assert_int_equal(api_stats(&H).sse_clients, 0);
    /* where GET is not allowed, neither is HEAD; Allow names HEAD with GET */
    tconn_open(&c, H.port);
    assert_int_equal(head_on(&c, cancel, cl, sizeof cl), 405);
    tconn_close(&c);
    r = http_do(&H, "PUT", "/healthz", NULL, NULL);
    assert_int_equal(r.status, 405);
    assert_string_equal(http_header(&r, "allow"), "GET, HEAD");
    http_resp_free(&r);
    /* a body-less keep-alive answer left the connection in step: the last
     * request on it parses */
    tconn_open(&c, H.port);
    assert_int_equal(head_on(&c, "/jobs", cl, sizeof cl), 200);
    http_send_req(&c, "GET", "/healthz", NULL, NULL, 0, true);
    assert_int_equal(http_read(&c, &r, T_WAIT_MS), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_str(r.json, "status"), "ok");
    http_resp_free(&r);
    tconn_close(&c);
}

static void test_ws_close_with_one_byte_payload(void **state)
{
    (void)state;
    tconn c;
    ws_connect(&c, H.port, "/ws/jobs");
    json_t *snap = ws_read_json(&c, T_WAIT_MS);
    assert_non_null(snap);
    json_decref(snap);
    ws_send(&c, 8, "x", 1); /* a close payload is 0 or >= 2 bytes */
    ws_frame f;
    int code = -1, rc;
    while ((rc = ws_read(&c, &f, T_WAIT_MS)) == 1) {
        if (f.opcode == 8)
            code = ws_close_code(&f);
        free(f.data);
        if (code != -1)
            break;
    }
    assert_int_equal(code, 1002);
    while (tconn_fill(&c, T_WAIT_MS) > 0)
        tconn_consume(&c, c.len);
    assert_true(c.eof);
    tconn_close(&c);
    /* a proper close still gets its code echoed */
    ws_connect(&c, H.port, "/ws/jobs");
    snap = ws_read_json(&c, T_WAIT_MS);
    json_decref(snap);
    ws_send(&c, 8, "\x03\xe8", 2);
    code = -1;
    while ((rc = ws_read(&c, &f, T_WAIT_MS)) == 1) {
        if (f.opcode == 8)
            code = ws_close_code(&f);
        free(f.data);
        if (code != -1)
            break;
    }
    assert_int_equal(code, 1000);
    tconn_close(&c);
    int64_t deadline = t_now_ms() + T_WAIT_MS;
    while (api_stats(&H).ws_clients != 0 && t_now_ms() < deadline)
        t_sleep_ms(10);
    assert_int_equal(api_stats(&H).ws_clients, 0);
}

/* Until the server closes c (EOF or reset); false at the deadline. */
static bool server_closes(tconn *c)
{
    int64_t deadline = t_now_ms() + T_WAIT_MS;
    while (t_now_ms() < deadline) {
        int r = tconn_fill(c, (int)(deadline - t_now_ms()));
        if (r < 0)
            return true;
        tconn_consume(c, c->len);
    }
    return false;
}

static void test_per_client_cap_and_reserve(void **state)
{
    (void)state;
    /* One client (127.0.0.1) holds its 4 regular connections, idle. */
    tconn held[4];
    for (int i = 0; i < 4; i++)
        tconn_open(&held[i], H.port);
    /* Make sure the server has accepted all four before the next one. */
    for (int i = 0; i < 4; i++) {
        http_send_req(&held[i], "GET", "/healthz", NULL, NULL, 0, true);
        http_resp r;
        assert_int_equal(http_read(&held[i], &r, T_WAIT_MS), 0);
        assert_int_equal(r.status, 200);
        http_resp_free(&r);
    }
    /* The same client still gets /healthz and an operator's request, on a
     * reserved connection: one request, then closed. */
    http_resp r = http_do(&H, "GET", "/healthz", NULL, NULL);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    tconn c;
    tconn_open(&c, H.port);
    http_send_req(&c, "POST", "/jobs", "application/json", "{\"command\": [\"true\"]}", 21, true);
    assert_int_equal(http_read(&c, &r, T_WAIT_MS), 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(http_header(&r, "connection"), "close");
    http_resp_free(&r);
    assert_true(server_closes(&c));
    tconn_close(&c);
    /* ... but no stream there */
    tconn_open(&c, H.port);
    http_send_req(&c, "GET", "/events", NULL, NULL, 0, true);
    assert_int_equal(http_read(&c, &r, T_WAIT_MS), 0);
    assert_int_equal(r.status, 503);
    assert_string_equal(http_error_code(&r), "too_many_connections");
    http_resp_free(&r);
    tconn_close(&c);
    /* With the 2 reserved ones held too (idle), the next is refused, told
     * why... */
    tconn res[2];
    for (int i = 0; i < 2; i++)
        tconn_open(&res[i], H.port);
    int64_t deadline = t_now_ms() + T_WAIT_MS;
    bool refused = false;
    while (!refused && t_now_ms() < deadline) {
        /* (until the server has accepted both, a probe may itself be one:
         * then it is shut down after its lifetime, and the next probe
         * tries again).  A probe sends nothing: a request the server never
         * read would turn its close into a reset, which can destroy the
         * 503 before it is read. */
        tconn probe;
        tconn_open(&probe, H.port);
        if (http_read(&probe, &r, T_WAIT_MS) == 0) {
            refused = r.status == 503;
            if (refused) {
                assert_string_equal(http_error_code(&r), "too_many_connections");
                assert_non_null(strstr(http_error_message(&r), "holds its limit of 4 connections"));
            }
            http_resp_free(&r);
        }
        tconn_close(&probe);
    }
    assert_true(refused);
    /* ... and the reserved ones a client grabbed and left idle are shut
     * down after GVD_RESERVE_LIFETIME_MS, not the request timeout: room
     * again. */
    for (int i = 0; i < 2; i++) {
        assert_true(server_closes(&res[i]));
        tconn_close(&res[i]);
    }
    deadline = t_now_ms() + T_WAIT_MS;
    int status = 0;
    while (status != 200 && t_now_ms() < deadline) {
        r = http_do(&H, "GET", "/healthz", NULL, NULL);
        status = r.status;
        http_resp_free(&r);
    }
    assert_int_equal(status, 200);
    /* the regular connections were never touched */
    for (int i = 0; i < 4; i++) {
        http_send_req(&held[i], "GET", "/healthz", NULL, NULL, 0, true);
        assert_int_equal(http_read(&held[i], &r, T_WAIT_MS), 0);
        assert_int_equal(r.status, 200);
        http_resp_free(&r);
        tconn_close(&held[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_spec_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absurd_numbers_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_params_patch_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflicting_content_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_is_get_without_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ws_close_with_one_byte_payload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_per_client_cap_and_reserve, setup_capped, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
