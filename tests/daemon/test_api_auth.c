/*
 * test_api_auth.c — bearer tokens on the real server: which routes need
 * one, the header and the ?token= forms, the read-only role, the 401/403
 * answers, and the start-up refusals (bad tokens, a non-loopback address
 * without a token).
 */
#include "test_api_harness.h"

#define FULL "full-Token_0123456789"
#define READ "read.only~token+42="

static api_harness H;

static int setup(void **state)
{
    (void)state;
    gvd_server_opts o = {0};
    o.token = FULL;
    o.read_token = READ;
    api_start(&H, NULL, &o);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    api_bearer_token = FULL; /* api_stop lists and cancels what is left */
    api_stop(&H);
    api_bearer_token = NULL;
    return 0;
}

/* One request with an optional Authorization header on a fresh connection. */
static http_resp req_auth(const char *method, const char *path, const char *auth, const char *body)
{
    tconn c;
    tconn_open(&c, H.port);
    char head[2048];
    int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, path);
    if (auth)
        n += snprintf(head + n, sizeof head - (size_t)n, "Authorization: %s\r\n", auth);
    if (body)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                      strlen(body));
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    assert_int_equal(tconn_send(&c, head, (size_t)n), 0);
    if (body)
        assert_int_equal(tconn_send(&c, body, strlen(body)), 0);
    http_resp r;
    if (http_read(&c, &r, T_WAIT_MS) != 0)
        fail_msg("%s %s: no complete response", method, path);
    tconn_close(&c);
    return r;
}

static void expect(http_resp r, int status, const char *code)
{
    if (r.status != status || (code && strcmp(http_error_code(&r), code) != 0))
        fail_msg("expected %d %s, got %d %s", status, code ? code : "", r.status, r.body);
    http_resp_free(&r);
}

static void expect_401(const char *method, const char *path, const char *auth, const char *challenge)
{
    http_resp r = req_auth(method, path, auth, NULL);
    if (r.status != 401 || strcmp(http_error_code(&r), "unauthorized") != 0)
        fail_msg("%s %s (%s): expected 401 unauthorized, got %d %s", method, path, auth ? auth : "no token", r.status,
                 r.body);
    assert_string_equal(http_header(&r, "content-type"), "application/json");
    assert_string_equal(http_header(&r, "www-authenticate"), challenge);
    http_resp_free(&r);
}

/* Upgrade with an optional Authorization header; the status. */
static int ws_status(const char *path, const char *auth, tconn *keep)
{
    tconn c;
    assert_int_equal(tconn_open_opt(&c, H.port, 0), 0);
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " WS_TEST_KEY "\r\nSec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                     path, auth ? "Authorization: " : "", auth ? auth : "", auth ? "\r\n" : "");
    assert_int_equal(tconn_send(&c, req, (size_t)n), 0);
    http_resp r;
    if (http_read(&c, &r, T_WAIT_MS) != 0)
        fail_msg("GET %s: no upgrade response", path);
    int status = r.status;
    http_resp_free(&r);
    if (keep && status == 101)
        *keep = c;
    else
        tconn_close(&c);
    return status;
}

/* ---------------------------------------------------------------------------- */

static void test_every_api_route_needs_a_token(void **state)
{
    (void)state;
    const char *plain = "Bearer realm=\"galvanid\"";
    static const char *const routes[][2] = {
        {"GET", "/jobs"},         {"POST", "/jobs"},         {"GET", "/jobs/1"},      {"DELETE", "/jobs/1"},
        {"POST", "/jobs/1/pause"}, {"PATCH", "/jobs/1/params"}, {"GET", "/jobs/1/log"}, {"GET", "/openapi.json"},
        {"POST", "/start"},       {"POST", "/cancel"},       {"GET", "/events"},      {"GET", "/ws/jobs"},
        {"GET", "/jobs/abc"},     {"GET", "/jobs?status=nonsense"}, {"GET", "/metrics"},
        {"GET", "/nodes"},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        expect_401(routes[i][0], routes[i][1], NULL, plain);
    /* a WebSocket handshake too: no upgrade without the token */
    assert_int_equal(ws_status("/ws", NULL, NULL), 401);
    assert_int_equal(ws_status("/ws/jobs?job=1", NULL, NULL), 401);

    /* wrong tokens, and what is not a Bearer credential */
    expect_401("GET", "/jobs", "Bearer nope", "Bearer realm=\"galvanid\", error=\"invalid_token\"");
    expect_401("GET", "/jobs", "Bearer " FULL "x", "Bearer realm=\"galvanid\", error=\"invalid_token\"");
    expect_401("GET", "/jobs", "Bearer full", "Bearer realm=\"galvanid\", error=\"invalid_token\"");
    expect_401("GET", "/jobs", "Basic dXNlcjpwYXNz", "Bearer realm=\"galvanid\", error=\"invalid_request\"");
    expect_401("GET", "/jobs?token=nope", NULL, "Bearer realm=\"galvanid\", error=\"invalid_token\"");
    /* a header wins over the query: a wrong header is not rescued */
    expect_401("GET", "/jobs?token=" FULL, "Bearer nope", "Bearer realm=\"galvanid\", error=\"invalid_token\"");
}

static void test_open_routes(void **state)
{
    (void)state;
    /* /healthz: for load balancers and `galvani` to tell "down" from "refused" */
    http_resp r = req_auth("GET", "/healthz", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_str(r.json, "status"), "ok");
    http_resp_free(&r);
    /* the dashboard page loads, to ask for the token */
    r = req_auth("GET", "/", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_true(strncmp(http_header(&r, "content-type"), "text/html", 9) == 0);
    http_resp_free(&r);
    /* a path that is no route is a 404 either way (there is nothing to protect) */
    expect(req_auth("GET", "/nothing-here", NULL, NULL), 404, "not_found");
}

static void test_full_token(void **state)
{
    (void)state;
    const char *auth = "Bearer " FULL;
    http_resp r = req_auth("POST", "/jobs", auth, "{\"kind\":\"demo\",\"demo_step_ms\":1000}");
    assert_int_equal(r.status, 201);
    int64_t id = json_int(r.json, "id");
    http_resp_free(&r);
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld/pause", (long long)id);
    r = req_auth("POST", path, auth, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_str(r.json, "status"), "paused");
    http_resp_free(&r);
    /* the scheme is case-insensitive (RFC 7235) */
    r = req_auth("GET", "/jobs", "bearer " FULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_int(r.json, "total"), 1);
    http_resp_free(&r);
    /* the query form, percent-encoded or not, on any route with its own
     * query parameters */
    r = req_auth("GET", "/jobs?limit=1&token=full%2DToken_0123456789", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_int(r.json, "limit"), 1);
    http_resp_free(&r);
    /* the parameter's name is decoded too */
    r = req_auth("GET", "/jobs?tok%65n=" FULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    snprintf(path, sizeof path, "/jobs/%lld/cancel?token=" FULL, (long long)id);
    r = req_auth("POST", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_str(r.json, "status"), "cancelled");
    http_resp_free(&r);

    /* streams: header, or the query for browsers */
    tconn ws;
    assert_int_equal(ws_status("/ws/jobs", auth, &ws), 101);
    json_t *snap = ws_read_json(&ws, T_WAIT_MS);
    assert_non_null(snap);
    assert_string_equal(json_str(snap, "type"), "snapshot");
    json_decref(snap);
    tconn_close(&ws);
    assert_int_equal(ws_status("/ws?token=" FULL, NULL, &ws), 101);
    tconn_close(&ws);

    tconn c;
    tconn_open(&c, H.port);
    char req[256];
    int n = snprintf(req, sizeof req, "GET /events?job=%lld&token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                     (long long)id, FULL);
    assert_int_equal(tconn_send(&c, req, (size_t)n), 0);
    assert_true(tconn_skip_past(&c, "event: snapshot\ndata: {\"type\":\"snapshot\",\"jobs\":[{\"id\":", t_now_ms() + T_WAIT_MS));
    tconn_close(&c);
}

static void test_read_only_token(void **state)
{
    (void)state;
    const char *ro = "Bearer " READ;
    int64_t id = 0;
    {
        http_resp r = req_auth("POST", "/jobs", "Bearer " FULL, "{\"kind\":\"demo\",\"demo_step_ms\":1000}");
        assert_int_equal(r.status, 201);
        id = json_int(r.json, "id");
        http_resp_free(&r);
    }
    char path[64];
    /* it can look */
    http_resp r = req_auth("GET", "/jobs", ro, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_int(r.json, "total"), 1);
    http_resp_free(&r);
    snprintf(path, sizeof path, "/jobs/%lld", (long long)id);
    r = req_auth("GET", path, ro, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_str(r.json, "status"), "running");
    http_resp_free(&r);
    expect(req_auth("GET", "/openapi.json", ro, NULL), 200, NULL);
    expect(req_auth("GET", "/metrics", ro, NULL), 200, NULL); /* a scrape changes nothing */
    expect(req_auth("GET", "/nodes", ro, NULL), 200, NULL);
    /* ... and watch */
    tconn ws;
    assert_int_equal(ws_status("/ws/jobs", ro, &ws), 101);
    json_t *snap = ws_read_json(&ws, T_WAIT_MS);
    assert_non_null(snap);
    assert_int_equal(json_array_size(json_object_get(snap, "jobs")), 1);
    json_decref(snap);
    tconn_close(&ws);
    tconn c;
    tconn_open(&c, H.port);
    const char ev[] = "GET /events?token=read.only~token%2B42%3D HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    assert_int_equal(tconn_send(&c, ev, sizeof ev - 1), 0);
    assert_true(tconn_skip_past(&c, "event: snapshot", t_now_ms() + T_WAIT_MS));
    tconn_close(&c);

    /* it cannot change anything: 403, and the job is untouched */
    expect(req_auth("POST", "/jobs", ro, "{\"command\":[\"true\"]}"), 403, "read_only_token");
    snprintf(path, sizeof path, "/jobs/%lld/pause", (long long)id);
    expect(req_auth("POST", path, ro, NULL), 403, "read_only_token");
    snprintf(path, sizeof path, "/jobs/%lld/cancel", (long long)id);
    expect(req_auth("POST", path, ro, NULL), 403, "read_only_token");
    snprintf(path, sizeof path, "/jobs/%lld/params", (long long)id);
    expect(req_auth("PATCH", path, ro, "{\"a\":1}"), 403, "read_only_token");
    snprintf(path, sizeof path, "/jobs/%lld", (long long)id);
    expect(req_auth("DELETE", path, ro, NULL), 403, "read_only_token");
    expect(req_auth("POST", "/start", ro, NULL), 403, "read_only_token");
    /* unencoded in a query, '+' is a space: that is another token */
    expect(req_auth("POST", "/cancel?token=" READ, NULL, NULL), 401, "unauthorized");
    r = req_auth("GET", path, "Bearer " FULL, NULL);
    assert_string_equal(json_str(r.json, "status"), "running");
    http_resp_free(&r);
    r = req_auth("GET", "/jobs", "Bearer " FULL, NULL);
    assert_int_equal(json_int(r.json, "total"), 1);
    http_resp_free(&r);
}

/* ---- start-up ---------------------------------------------------------------- */

static void new_fails(const gvd_server_opts *o, const char *needle)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char err[600] = "";
    /* gvd_server_new fails before it touches the jobs */
    gvd_server *s = gvd_server_new(&loop, NULL, o, err, sizeof err);
    assert_null(s);
    if (!strstr(err, needle))
        fail_msg("expected an error with \"%s\", got \"%s\"", needle, err);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_bad_configurations_are_refused(void **state)
{
    (void)state;
    gvd_server_opts o = {.host = "127.0.0.1"};
    o.read_token = "only-read";
    new_fails(&o, "a read-only token needs a full token too");
    o = (gvd_server_opts){.host = "127.0.0.1", .token = "two words"};
    new_fails(&o, "the token has a character that cannot go in an Authorization header (character 4)");
    o.token = "";
    new_fails(&o, "the token is empty");
    o = (gvd_server_opts){.host = "127.0.0.1", .token = "same", .read_token = "same"};
    new_fails(&o, "the read-only token must differ");
    /* Beyond loopback without a token: refused before anything is bound. */
    o = (gvd_server_opts){.host = "0.0.0.0", .port = 0};
    new_fails(&o, "refusing to listen on 0.0.0.0:0 without a token");
    o.host = "::";
    new_fails(&o, "refusing to listen on :::0 without a token");
}

static void test_token_file(void **state)
{
    (void)state;
    char path[256], tok[5000], err[600];
    snprintf(path, sizeof path, "%s/token", H.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("file-token-1\r\nsecond line is ignored\n", f);
    fclose(f);
    /* world-readable: refused, with the fix in the message */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(gvd_token_read_file(path, tok, sizeof tok, err, sizeof err), -1);
    assert_non_null(strstr(err, "is accessible by group or others (mode 0644): make it private with chmod 600"));
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(gvd_token_read_file(path, tok, sizeof tok, err, sizeof err), -1);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(gvd_token_read_file(path, tok, sizeof tok, err, sizeof err), 0);
    assert_string_equal(tok, "file-token-1");
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(gvd_token_read_file(path, tok, sizeof tok, err, sizeof err), 0);

    /* an empty first line, and a missing file */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("\nsecret on line two\n", f);
    fclose(f);
    assert_int_equal(gvd_token_read_file(path, tok, sizeof tok, err, sizeof err), -1);
    assert_non_null(strstr(err, "is empty"));
    snprintf(path, sizeof path, "%s/no-such-file", H.dir);
    assert_int_equal(gvd_token_read_file(path, tok, sizeof tok, err, sizeof err), -1);
    assert_non_null(strstr(err, "No such file or directory"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_api_route_needs_a_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_configurations_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
