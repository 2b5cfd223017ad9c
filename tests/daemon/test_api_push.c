/*
 * test_api_push.c — the live streams end to end: the seed's /ws session,
 * /ws/jobs, /events (SSE), ping/pong, close codes, and the bounds that keep
 * a slow client from growing the server.  Real server, real model, real
 * sockets; the WebSocket client is a small RFC 6455 client in the harness.
 */
#include "test_api_harness.h"

static api_harness H;

/* Demo jobs step every 100 ms (10 s from 0 to 100 %): a demo started by a
 * test is still running when the test pauses or cancels it, however slow the
 * machine (at the harness's 20 ms it was over after 2 s). */
static const gvd_config demo_cfg = {.demo_step_ms = 100};

static int setup(void **state)
{
    (void)state;
    api_start(&H, &demo_cfg, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    api_stop(&H);
    return 0;
}

static void post(const char *path, int want)
{
    http_resp r = http_do(&H, "POST", path, NULL, NULL);
    if (r.status != want)
        fail_msg("POST %s -> %d %s", path, r.status, r.body);
    http_resp_free(&r);
}

/* Next /ws frame, failing the test if none comes by the deadline. */
static json_t *next_frame(tconn *ws)
{
    json_t *j = ws_read_json(ws, T_WAIT_MS);
    if (!j)
        fail_msg("no frame within %d s", T_WAIT_MS / 1000);
    return j;
}

/* ---- the seed's session, verbatim ------------------------------------------- */

static void test_seed_session(void **state)
{
    (void)state;
    tconn ws;
    ws_connect(&ws, H.port, "/ws");
    /* no demo job yet: the idle state first */
    json_t *j = next_frame(&ws);
    assert_string_equal(json_str(j, "status"), "idle");
    assert_int_equal(json_int(j, "progress"), 0);
    json_decref(j);

    post("/start", 201);
    /* running frames with progress advancing */
    int64_t last = -1, distinct = 0, deadline = t_now_ms() + T_WAIT_MS;
    while (distinct < 5 && t_now_ms() < deadline) {
        j = next_frame(&ws);
        assert_string_equal(json_str(j, "status"), "running");
        assert_string_equal(json_str(j, "kind"), "demo");
        int64_t p = json_int(j, "progress");
        assert_true(p >= last); /* never backwards */
        distinct += p > last;
        last = p;
        json_decref(j);
    }
    assert_true(distinct >= 5);

    post("/pause", 200);
    int64_t held = -1;
    while (held < 0) {
        j = next_frame(&ws);
        if (strcmp(json_str(j, "status"), "paused") == 0)
            held = json_int(j, "progress");
        json_decref(j);
    }
    /* paused: five demo steps' time passes and progress holds */
    j = ws_read_json(&ws, 500);
    if (j) {
        assert_string_equal(json_str(j, "status"), "paused");
        assert_int_equal(json_int(j, "progress"), held);
        json_decref(j);
    }
    http_resp r = http_do(&H, "GET", "/jobs/1", NULL, NULL);
    assert_string_equal(json_str(r.json, "status"), "paused");
    assert_int_equal(json_int(r.json, "progress"), held);
    http_resp_free(&r);

    post("/resume", 200);
    bool advanced = false;
    deadline = t_now_ms() + T_WAIT_MS;
    while (!advanced && t_now_ms() < deadline) {
        j = next_frame(&ws);
        advanced = strcmp(json_str(j, "status"), "running") == 0 && json_int(j, "progress") > held;
        json_decref(j);
    }
    assert_true(advanced);

    /* a second client joining now gets the current state first */
    tconn ws2;
    ws_connect(&ws2, H.port, "/ws");
    j = next_frame(&ws2);
    assert_string_equal(json_str(j, "status"), "running");
    assert_true(json_int(j, "progress") > held);
    json_decref(j);
    tconn_close(&ws2);

    post("/cancel", 200);
    bool cancelled = false;
    deadline = t_now_ms() + T_WAIT_MS;
    while (!cancelled && t_now_ms() < deadline) {
        j = next_frame(&ws);
        cancelled = strcmp(json_str(j, "status"), "cancelled") == 0;
        json_decref(j);
    }
    assert_true(cancelled);
    tconn_close(&ws);
}

/* A new demo job (POST /start after the last one finished) becomes the one
 * /ws follows, and deleting it falls back to the previous one or idle. */
static void test_seed_follows_newest_demo(void **state)
{
    (void)state;
    post("/start", 201);
    post("/cancel", 200);
    assert_true(api_wait_status(&H, 1, "cancelled", T_WAIT_MS));
    tconn ws;
    ws_connect(&ws, H.port, "/ws");
    json_t *j = next_frame(&ws);
    assert_int_equal(json_int(j, "id"), 1);
    assert_string_equal(json_str(j, "status"), "cancelled");
    json_decref(j);

    post("/start", 201);
    j = next_frame(&ws);
    assert_int_equal(json_int(j, "id"), 2);
    json_decref(j);
    post("/cancel", 200);
    assert_true(api_wait_status(&H, 2, "cancelled", T_WAIT_MS));
    http_resp r = http_do(&H, "DELETE", "/jobs/2", NULL, NULL);
    assert_int_equal(r.status, 204);
    http_resp_free(&r);
    /* skip job 2's last frames; then job 1 again */
    int64_t deadline = t_now_ms() + T_WAIT_MS, id = 0;
    while (id != 1 && t_now_ms() < deadline) {
        j = next_frame(&ws);
        id = json_int(j, "id");
        json_decref(j);
    }
    assert_int_equal(id, 1);
    r = http_do(&H, "DELETE", "/jobs/1", NULL, NULL);
    assert_int_equal(r.status, 204);
    http_resp_free(&r);
    j = next_frame(&ws);
    assert_string_equal(json_str(j, "status"), "idle");
    json_decref(j);
    tconn_close(&ws);
}

/* ---- /ws/jobs ----------------------------------------------------------------- */

static json_t *next_of_type(tconn *ws, const char *type)
{
    int64_t deadline = t_now_ms() + T_WAIT_MS;
    while (t_now_ms() < deadline) {
        json_t *j = ws_read_json(ws, 500);
        if (j && strcmp(json_str(j, "type"), type) == 0)
            return j;
        json_decref(j);
    }
    fail_msg("no \"%s\" message within %d s", type, T_WAIT_MS / 1000);
    return NULL;
}

static void test_jobs_stream(void **state)
{
    (void)state;
    int64_t a = api_create(&H, "{\"kind\":\"demo\",\"demo_step_ms\":1000,\"name\":\"a\"}");
    tconn ws;
    ws_connect(&ws, H.port, "/ws/jobs");
    json_t *j = next_frame(&ws);
    assert_string_equal(json_str(j, "type"), "snapshot");
    assert_int_equal(json_array_size(json_object_get(j, "jobs")), 1);
    assert_int_equal(json_int(json_array_get(json_object_get(j, "jobs"), 0), "id"), a);
    assert_int_equal(json_int(json_object_get(j, "counts"), "running"), 1);
    assert_true(json_is_false(json_object_get(j, "truncated")));
    json_decref(j);

    int64_t b = api_create(&H, "{\"command\":[\"true\"],\"name\":\"b\"}");
    bool b_done = false, counts_seen = false;
    int64_t deadline = t_now_ms() + T_WAIT_MS;
    while (!(b_done && counts_seen) && t_now_ms() < deadline) {
        j = next_frame(&ws);
        const char *type = json_str(j, "type");
        if (strcmp(type, "job") == 0) {
            json_t *job = json_object_get(j, "job");
            if (json_int(job, "id") == b && strcmp(json_str(job, "status"), "succeeded") == 0)
                b_done = true;
        } else if (strcmp(type, "counts") == 0) {
            json_t *c = json_object_get(j, "counts");
            counts_seen = json_int(c, "succeeded") == 1 || counts_seen;
        }
        json_decref(j);
    }
    assert_true(b_done);
    assert_true(counts_seen);

    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld", (long long)b);
    http_resp r = http_do(&H, "DELETE", path, NULL, NULL);
    assert_int_equal(r.status, 204);
    http_resp_free(&r);
    j = next_of_type(&ws, "removed");
    assert_int_equal(json_int(j, "id"), b);
    json_decref(j);
    tconn_close(&ws);
}

static void test_jobs_stream_one_job(void **state)
{
    (void)state;
    int64_t a = api_create(&H, "{\"kind\":\"demo\",\"demo_step_ms\":1000}");
    int64_t b = api_create(&H, "{\"kind\":\"demo\",\"demo_step_ms\":1000}");
    char path[64];
    snprintf(path, sizeof path, "/ws/jobs?job=%lld", (long long)a);
    tconn ws;
    ws_connect(&ws, H.port, path);
    json_t *j = next_frame(&ws);
    assert_string_equal(json_str(j, "type"), "snapshot");
    assert_int_equal(json_array_size(json_object_get(j, "jobs")), 1);
    assert_int_equal(json_int(json_array_get(json_object_get(j, "jobs"), 0), "id"), a);
    json_decref(j);

    /* b changes: nothing for us */
    snprintf(path, sizeof path, "/jobs/%lld/pause", (long long)b);
    post(path, 200);
    j = ws_read_json(&ws, 300);
    assert_null(j);
    /* a changes: we hear it */
    snprintf(path, sizeof path, "/jobs/%lld/pause", (long long)a);
    post(path, 200);
    j = next_of_type(&ws, "job");
    assert_int_equal(json_int(json_object_get(j, "job"), "id"), a);
    assert_string_equal(json_str(json_object_get(j, "job"), "status"), "paused");
    json_decref(j);

    /* a is deleted: "removed", then the stream ends with close code 1000 */
    snprintf(path, sizeof path, "/jobs/%lld/cancel", (long long)a);
    post(path, 200);
    assert_true(api_wait_status(&H, a, "cancelled", T_WAIT_MS));
    snprintf(path, sizeof path, "/jobs/%lld", (long long)a);
    http_resp r = http_do(&H, "DELETE", path, NULL, NULL);
    assert_int_equal(r.status, 204);
    http_resp_free(&r);
    j = next_of_type(&ws, "removed");
    assert_int_equal(json_int(j, "id"), a);
    json_decref(j);
    ws_frame f;
    assert_int_equal(ws_read(&ws, &f, T_WAIT_MS), 1);
    assert_int_equal(f.opcode, 8);
    assert_int_equal(ws_close_code(&f), 1000);
    free(f.data);
    ws_send(&ws, 8, "\x03\xe8", 2);
    assert_int_equal(ws_read(&ws, &f, T_WAIT_MS), -1); /* then the server closes TCP */
    tconn_close(&ws);
}

static void test_stream_request_errors(void **state)
{
    (void)state;
    tconn c;
    http_resp r = ws_connect_opt(&c, H.port, "/ws/jobs?job=999", 0);
    assert_int_equal(r.status, 404);
    assert_string_equal(http_error_code(&r), "not_found");
    http_resp_free(&r);
    tconn_close(&c);
    r = ws_connect_opt(&c, H.port, "/ws/jobs?job=abc", 0);
    assert_int_equal(r.status, 400);
    http_resp_free(&r);
    tconn_close(&c);
    r = ws_connect_opt(&c, H.port, "/ws?job=1", 0);
    assert_int_equal(r.status, 400);
    assert_string_equal(http_error_code(&r), "invalid_query");
    http_resp_free(&r);
    tconn_close(&c);
    r = http_do(&H, "GET", "/events?job=77", NULL, NULL);
    assert_int_equal(r.status, 404);
    http_resp_free(&r);
    r = http_do(&H, "GET", "/ws/jobs", NULL, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(http_error_code(&r), "websocket_required");
    http_resp_free(&r);
}

/* ---- SSE -------------------------------------------------------------------------- */

static void test_sse_stream(void **state)
{
    (void)state;
    tconn c;
    tconn_open(&c, H.port);
    http_send_req(&c, "GET", "/events", NULL, NULL, 0, true);
    int64_t deadline = t_now_ms() + T_WAIT_MS;
    size_t hend = tconn_find(&c, "\r\n\r\n", deadline);
    assert_true(hend != SIZE_MAX);
    assert_non_null(strstr(c.buf, "200 OK"));
    assert_true(ci_contains(c.buf, "content-type: text/event-stream"));
    assert_true(ci_contains(c.buf, "transfer-encoding: chunked"));
    tconn_consume(&c, hend);
    assert_true(tconn_skip_past(&c, "event: snapshot\ndata: {\"type\":\"snapshot\",\"jobs\":[]", deadline));

    post("/start", 201);
    assert_true(tconn_skip_past(&c, "event: job\ndata: {\"type\":\"job\",\"job\":{\"id\":1,", deadline));
    post("/pause", 200);
    assert_true(tconn_skip_past(&c, "\"status\":\"paused\"", deadline));
    assert_true(tconn_skip_past(&c, "event: counts\ndata: {\"type\":\"counts\"", deadline));
    tconn_close(&c);

    /* ?job= follows one job */
    tconn_open(&c, H.port);
    http_send_req(&c, "GET", "/events?job=1", NULL, NULL, 0, true);
    assert_true(tconn_skip_past(&c, "event: snapshot\ndata: {\"type\":\"snapshot\",\"jobs\":[{\"id\":1,", deadline));
    post("/resume", 200);
    assert_true(tconn_skip_past(&c, "\"status\":\"running\"", deadline));
    /* the followed job goes: "removed", then the response ends properly */
    post("/cancel", 200);
    assert_true(api_wait_status(&H, 1, "cancelled", T_WAIT_MS));
    http_resp r = http_do(&H, "DELETE", "/jobs/1", NULL, NULL);
    assert_int_equal(r.status, 204);
    http_resp_free(&r);
    deadline = t_now_ms() + T_WAIT_MS;
    assert_true(tconn_skip_past(&c, "event: removed\ndata: {\"type\":\"removed\",\"id\":1}\n\n", deadline));
    assert_true(tconn_skip_past(&c, "\r\n0\r\n\r\n", deadline));
    tconn_close(&c);
}

static void test_sse_keepalive(void **state)
{
    (void)state;
    api_stop(&H);
    gvd_server_opts o = {0};
    o.push.keepalive_ms = 100;
    api_start(&H, NULL, &o);
    tconn c;
    tconn_open(&c, H.port);
    http_send_req(&c, "GET", "/events", NULL, NULL, 0, true);
    int64_t deadline = t_now_ms() + T_WAIT_MS;
    assert_true(tconn_skip_past(&c, "event: snapshot", deadline));
    /* two keep-alive comments in a quiet stream */
    assert_true(tconn_skip_past(&c, "\r\n:\n\n\r\n", deadline));
    assert_true(tconn_skip_past(&c, "\r\n:\n\n\r\n", deadline));
    tconn_close(&c);
}

/* ---- keep-alive and close codes ---------------------------------------------------- */

static void test_ping_pong(void **state)
{
    (void)state;
    api_stop(&H);
    gvd_server_opts o = {0};
    /* A client silent for two intervals is dropped: 500 ms, so the good
     * client's answers are never late on a busy machine (at 100 ms one
     * descheduling of this thread could drop it too). */
    o.push.ping_ms = 500;
    api_start(&H, NULL, &o);

    tconn good, silent;
    ws_connect(&good, H.port, "/ws");
    ws_connect(&silent, H.port, "/ws");
    /* The good client answers every ping (ws_read_json does) while the test
     * waits for both conditions: four pings seen, and the silent one, which
     * never answered, disconnected (after its buffered frames).  Counted,
     * not timed. */
    int pings = 0, r = 1;
    int64_t deadline = t_now_ms() + T_WAIT_MS;
    while ((pings < 4 || r != -1) && t_now_ms() < deadline) {
        ws_frame f;
        if (ws_read(&good, &f, 20) == 1) {
            if (f.opcode == 9) {
                pings++;
                ws_send(&good, 10, f.data, f.len);
            }
            free(f.data);
        }
        while (r != -1 && (r = ws_read(&silent, &f, 1)) == 1)
            free(f.data);
    }
    assert_true(pings >= 4);
    assert_int_equal(r, -1);
    gvd_push_stats st = api_stats(&H);
    assert_int_equal(st.dropped_ping, 1);
    assert_int_equal(st.ws_clients, 1);
    tconn_close(&good);
    tconn_close(&silent);
}

static void test_client_close_handshake(void **state)
{
    (void)state;
    tconn ws;
    ws_connect(&ws, H.port, "/ws");
    json_t *j = next_frame(&ws);
    json_decref(j);
    /* a ping with a payload gets a pong with the same payload */
    ws_send(&ws, 9, "hi", 2);
    ws_frame f;
    assert_int_equal(ws_read(&ws, &f, T_WAIT_MS), 1);
    assert_int_equal(f.opcode, 10);
    assert_string_equal(f.data, "hi");
    free(f.data);
    /* text from the client is ignored, not fatal */
    ws_send(&ws, 1, "{\"hello\":1}", 11);
    ws_send(&ws, 8, "\x03\xe8" "bye", 5);
    assert_int_equal(ws_read(&ws, &f, T_WAIT_MS), 1);
    assert_int_equal(f.opcode, 8);
    assert_int_equal(ws_close_code(&f), 1000);
    free(f.data);
    assert_int_equal(ws_read(&ws, &f, T_WAIT_MS), -1);
    tconn_close(&ws);
    int64_t deadline = t_now_ms() + T_WAIT_MS;
    while (api_stats(&H).ws_clients != 0 && t_now_ms() < deadline)
        t_sleep_ms(10);
    assert_int_equal(api_stats(&H).ws_clients, 0);
}

static void test_shutdown_closes_with_1001(void **state)
{
    (void)state;
    tconn ws;
    ws_connect(&ws, H.port, "/ws/jobs");
    json_t *j = next_frame(&ws);
    json_decref(j);
    tconn sse;
    tconn_open(&sse, H.port);
    http_send_req(&sse, "GET", "/events", NULL, NULL, 0, true);
    assert_true(tconn_skip_past(&sse, "event: snapshot", t_now_ms() + T_WAIT_MS));

    api_stop(&H);
    ws_frame f;
    assert_int_equal(ws_read(&ws, &f, T_WAIT_MS), 1);
    assert_int_equal(f.opcode, 8);
    assert_int_equal(ws_close_code(&f), 1001);
    free(f.data);
    /* the SSE response was finished properly: the last chunk */
    assert_true(tconn_skip_past(&sse, "0\r\n\r\n", t_now_ms() + T_WAIT_MS));
    tconn_close(&ws);
    tconn_close(&sse);
    api_start(&H, &demo_cfg, NULL); /* for teardown */
}

/* ---- coalescing and bounds -------------------------------------------------------- */

/* Every message is encoded once per flush, whatever the number of clients:
 * each encoded message went to all five followers. */
static void test_encode_once(void **state)
{
    (void)state;
    tconn c[5];
    for (int i = 0; i < 3; i++) {
        ws_connect(&c[i], H.port, "/ws/jobs");
        json_decref(next_frame(&c[i]));
    }
    for (int i = 3; i < 5; i++) {
        tconn_open(&c[i], H.port);
        http_send_req(&c[i], "GET", "/events", NULL, NULL, 0, true);
        assert_true(tconn_skip_past(&c[i], "event: snapshot", t_now_ms() + T_WAIT_MS));
    }
    gvd_push_stats before = api_stats(&H);
    api_create(&H, "{\"kind\":\"demo\",\"demo_step_ms\":30}");
    /* until a few messages went out (progress steps, counts): waited for,
     * not "400 ms is about 13 steps" */
    gvd_push_stats after = api_stats(&H);
    int64_t deadline = t_now_ms() + T_WAIT_MS;
    while (after.encoded - before.encoded < 5 && t_now_ms() < deadline) {
        t_sleep_ms(20);
        after = api_stats(&H);
    }
    uint64_t encoded = after.encoded - before.encoded, queued = after.queued - before.queued;
    assert_true(encoded >= 5);
    assert_int_equal(queued, 5 * encoded);
    /* one write per client per flush at most */
    assert_true(after.writes - before.writes <= 5 * (after.flushes - before.flushes));
    for (int i = 0; i < 3; i++) {
        json_decref(next_of_type(&c[i], "job"));
        tconn_close(&c[i]);
    }
    for (int i = 3; i < 5; i++) {
        assert_true(tconn_skip_past(&c[i], "event: job", t_now_ms() + T_WAIT_MS));
        tconn_close(&c[i]);
    }
}

/* ---- ?v=2: the compact stream ------------------------------------------------ */

/* The next entry for job `id` in "update" messages (merged into *state,
 * the client's view of it); NULL-safe fields of the entry itself are what
 * the test looks at.  `removed` is set when an update removed it. */
static json_t *next_entry(tconn *ws, int64_t id, json_t *state, bool *removed)
{
    int64_t deadline = t_now_ms() + T_WAIT_MS;
    while (t_now_ms() < deadline) {
        json_t *j = next_of_type(ws, "update");
        size_t i;
        json_t *e, *found = NULL;
        json_array_foreach(json_object_get(j, "removed"), i, e)
            if (json_integer_value(e) == id && removed)
                *removed = true;
        json_array_foreach(json_object_get(j, "jobs"), i, e) {
            if (json_int(e, "id") != id)
                continue;
            assert_int_equal(json_object_update(state, e), 0);
            found = json_incref(e);
        }
        json_decref(j);
        if (found || (removed && *removed))
            return found;
    }
    fail_msg("no update for job %lld", (long long)id);
    return NULL;
}

/* /ws/jobs?v=2: the same snapshot, then "update" messages whose job
 * entries are the whole job on first sight and only the changed fields
 * after; applied in order they give exactly GET /jobs/{id}. */
static void test_updates_stream(void **state)
{
    (void)state;
    int64_t a = api_create(&H, "{\"kind\":\"demo\",\"demo_step_ms\":60000,\"name\":\"a\"}");
    tconn ws;
    ws_connect(&ws, H.port, "/ws/jobs?v=2");
    json_t *j = next_frame(&ws);
    assert_string_equal(json_str(j, "type"), "snapshot");
    assert_int_equal(json_array_size(json_object_get(j, "jobs")), 1);
    json_t *sa = json_deep_copy(json_array_get(json_object_get(j, "jobs"), 0));
    json_decref(j);

    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld/pause", (long long)a);
    post(path, 200);
    json_decref(next_entry(&ws, a, sa, NULL)); /* first sight since the snapshot: may be whole */
    snprintf(path, sizeof path, "/jobs/%lld/resume", (long long)a);
    post(path, 200);
    json_t *e = next_entry(&ws, a, sa, NULL);
    assert_string_equal(json_str(e, "status"), "running");
    assert_null(json_object_get(e, "name")); /* unchanged: not sent again */
    json_decref(e);

    /* a new job: whole the first time, its final state never missed */
    int64_t b = api_create(&H, "{\"command\":[\"true\"],\"name\":\"b\"}");
    json_t *sb = json_object();
    e = next_entry(&ws, b, sb, NULL);
    assert_string_equal(json_str(e, "name"), "b");
    json_decref(e);
    while (strcmp(json_str(sb, "status"), "succeeded") != 0)
        json_decref(next_entry(&ws, b, sb, NULL));
    snprintf(path, sizeof path, "/jobs/%lld", (long long)b);
    http_resp r = http_do(&H, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *got = json_loads(r.body, 0, NULL);
    json_object_del(got, "spec"); /* the API's answer has the spec besides the job object */
    assert_true(json_equal(got, sb)); /* the updates applied in order are the job */
    json_decref(got);
    http_resp_free(&r);

    r = http_do(&H, "DELETE", path, NULL, NULL);
    assert_int_equal(r.status, 204);
    http_resp_free(&r);
    bool removed = false;
    while (!removed)
        json_decref(next_entry(&ws, b, sb, &removed));
    json_decref(sa);
    json_decref(sb);
    tconn_close(&ws);

    /* the version is checked; SSE has it too */
    tconn c;
    r = ws_connect_opt(&c, H.port, "/ws/jobs?v=3", 0);
    assert_int_equal(r.status, 400);
    assert_string_equal(http_error_code(&r), "invalid_query");
    http_resp_free(&r);
    tconn_close(&c);
    tconn_open(&c, H.port);
    http_send_req(&c, "GET", "/events?v=2", NULL, NULL, 0, true);
    assert_true(tconn_skip_past(&c, "event: snapshot", t_now_ms() + T_WAIT_MS));
    snprintf(path, sizeof path, "/jobs/%lld/pause", (long long)a);
    post(path, 200);
    assert_true(tconn_skip_past(&c, "event: update", t_now_ms() + T_WAIT_MS));
    tconn_close(&c);
}

/* Every ?v=2 client gets the same update buffer (one encoding per flush),
 * and clients that arrive together share one snapshot. */
static void test_updates_encode_once(void **state)
{
    (void)state;
    gvd_push_stats s0 = api_stats(&H);
    tconn c[3];
    for (int i = 0; i < 3; i++)
        ws_connect(&c[i], H.port, "/ws/jobs?v=2");
    for (int i = 0; i < 3; i++)
        json_decref(next_frame(&c[i]));
    gvd_push_stats before = api_stats(&H);
    assert_true(before.snapshots - s0.snapshots >= 1);
    assert_true(before.snapshots - s0.snapshots <= 3);
    api_create(&H, "{\"kind\":\"demo\",\"demo_step_ms\":30}");
    gvd_push_stats after = api_stats(&H);
    int64_t deadline = t_now_ms() + T_WAIT_MS;
    while (after.encoded - before.encoded < 5 && t_now_ms() < deadline) {
        t_sleep_ms(20);
        after = api_stats(&H);
    }
    uint64_t encoded = after.encoded - before.encoded;
    assert_true(encoded >= 5);
    assert_int_equal(after.queued - before.queued, 3 * encoded);
    for (int i = 0; i < 3; i++) {
        json_decref(next_of_type(&c[i], "update"));
        tconn_close(&c[i]);
    }
}

/* ---- a job's log over /ws/jobs ---------------------------------------------- */

static void follow_log(tconn *ws, int64_t job, long long offset)
{
    char msg[128];
    int n = job ? snprintf(msg, sizeof msg, "{\"type\":\"log\",\"job\":%lld,\"offset\":%lld}", (long long)job, offset)
                : snprintf(msg, sizeof msg, "{\"type\":\"log\",\"job\":null}");
    ws_send(ws, 1, msg, (size_t)n);
}

/* Log messages for `job` from `offset` on, appended to *text (the bytes
 * contiguous: each message starts where the previous one ended), until the
 * text contains `until`; returns the offset after the last byte. */
static long long read_log_until(tconn *ws, int64_t job, long long offset, char *text, size_t cap, const char *until)
{
    int64_t deadline = t_now_ms() + T_WAIT_MS;
    while (!strstr(text, until)) {
        if (t_now_ms() > deadline)
            fail_msg("the log never showed \"%s\" (got \"%s\")", until, text);
        json_t *j = next_of_type(ws, "log");
        assert_int_equal(json_int(j, "job"), job);
        assert_int_equal(json_int(j, "offset"), offset);
        assert_null(json_object_get(j, "skipped"));
        const char *data = json_str(j, "data");
        assert_true(strlen(text) + strlen(data) < cap);
        strcat(text, data);
        offset = json_int(j, "next");
        json_decref(j);
    }
    return offset;
}

/* A job run to its end, then a /ws/jobs stream past its snapshot: the
 * setting of the log tests that read a finished job's log. */
static int64_t finished_job_then_stream(const char *spec, tconn *ws)
{
    int64_t id = api_create(&H, spec);
    assert_true(api_wait_status(&H, id, "succeeded", T_WAIT_MS));
    ws_connect(ws, H.port, "/ws/jobs");
    json_decref(next_of_type(ws, "snapshot"));
    return id;
}

/* {"type":"log","job":ID,"offset":N} on /ws/jobs: the log's bytes from N
 * arrive as they are written, contiguous, as valid UTF-8 (an invalid byte
 * is U+FFFD); a new subscription replaces the old one and can start
 * anywhere. */
static void test_log_stream(void **state)
{
    (void)state;
    char spec[600];
    snprintf(spec, sizeof spec,
             "{\"shell\":true,\"command\":\"printf 'one\\\\n\\\\377\\\\n'; while [ ! -e %s/gate ]; do sleep 0.02; done; echo two\"}",
             H.dir);
    int64_t id = api_create(&H, spec);
    tconn ws;
    ws_connect(&ws, H.port, "/ws/jobs");
    json_decref(next_of_type(&ws, "snapshot"));
    follow_log(&ws, id, 0);
    char text[256] = "";
    long long at = read_log_until(&ws, id, 0, text, sizeof text, "one\n\xEF\xBF\xBD\n");
    assert_int_equal(at, 6); /* file bytes: "one\n\377\n" */
    char gate[200];
    snprintf(gate, sizeof gate, "%s/gate", H.dir);
    FILE *f = fopen(gate, "w");
    assert_non_null(f);
    fclose(f);
    at = read_log_until(&ws, id, at, text, sizeof text, "two\n");
    assert_string_equal(text, "one\n\xEF\xBF\xBD\ntwo\n");
    assert_int_equal(at, 10);
    assert_true(api_wait_status(&H, id, "succeeded", T_WAIT_MS));

    /* again from byte 4, on the same connection */
    follow_log(&ws, id, 4);
    text[0] = '\0';
    assert_int_equal(read_log_until(&ws, id, 4, text, sizeof text, "two\n"), 10);
    assert_string_equal(text, "\xEF\xBF\xBD\ntwo\n");
    /* stopping is accepted; a bad message is ignored, the stream goes on */
    follow_log(&ws, 0, 0);
    ws_send(&ws, 1, "{\"type\":\"log\",\"job\":\"x\"}", 24);
    ws_send(&ws, 1, "not json", 8);
    int64_t other = api_create(&H, "{\"command\":[\"true\"]}");
    json_t *j = next_of_type(&ws, "job");
    assert_int_equal(json_int(json_object_get(j, "job"), "id"), other);
    json_decref(j);
    tconn_close(&ws);
}

/* The server keeps wslay's context only while a client's frames are in
 * flight (ws.c): a subscription sent as two fragments, the second after a
 * pause in which the server ran, is still understood; so is one with a
 * 16-bit length, and one split mid-header across two writes; a pong to
 * nothing and a ping from the client in between change nothing. */
static void test_client_frames_across_idle_context(void **state)
{
    (void)state;
    tconn ws;
    int64_t id = finished_job_then_stream("{\"shell\":true,\"command\":\"echo hello\"}", &ws);
    char sub[200];
    int n = snprintf(sub, sizeof sub, "{\"type\":\"log\",\"job\":%lld,\"offset\":0}", (long long)id);
    /* two fragments: text without FIN, then a continuation with FIN */
    unsigned char first[64], second[64], mask[4] = {1, 2, 3, 4};
    int half = n / 2;
    first[0] = 0x01, first[1] = (unsigned char)(0x80 | half);
    memcpy(first + 2, mask, 4);
    for (int i = 0; i < half; i++)
        first[6 + i] = (unsigned char)(sub[i] ^ mask[i % 4]);
    tconn_send(&ws, first, (size_t)(6 + half));
    ws_send(&ws, 10, "", 0); /* an unasked pong between the fragments (allowed) */
    /* the server runs: a job message for another job goes out meanwhile */
    int64_t other = api_create(&H, "{\"command\":[\"true\"]}");
    json_t *j = next_of_type(&ws, "job");
    assert_int_equal(json_int(json_object_get(j, "job"), "id"), other);
    json_decref(j);
    second[0] = 0x80, second[1] = (unsigned char)(0x80 | (n - half));
    memcpy(second + 2, mask, 4);
    for (int i = half; i < n; i++)
        second[6 + i - half] = (unsigned char)(sub[i] ^ mask[(i - half) % 4]);
    tconn_send(&ws, second, (size_t)(6 + n - half));
    char text[64] = "";
    assert_int_equal(read_log_until(&ws, id, 0, text, sizeof text, "hello\n"), 6);

    /* 16-bit length (padded with spaces: still JSON), from byte 2 */
    char big[300];
    int m = snprintf(big, sizeof big, "{\"type\":\"log\",\"job\":%lld,\"offset\":2}%*s", (long long)id, 150, "");
    ws_send(&ws, 1, big, (size_t)m);
    text[0] = '\0';
    assert_int_equal(read_log_until(&ws, id, 2, text, sizeof text, "llo\n"), 6);

    /* a frame split in the middle of its header, across two writes */
    unsigned char frame[80];
    n = snprintf(sub, sizeof sub, "{\"type\":\"log\",\"job\":%lld,\"offset\":4}", (long long)id);
    frame[0] = 0x81, frame[1] = (unsigned char)(0x80 | n);
    memcpy(frame + 2, mask, 4);
    for (int i = 0; i < n; i++)
        frame[6 + i] = (unsigned char)(sub[i] ^ mask[i % 4]);
    tconn_send(&ws, frame, 3);
    /* the server reads the three bytes alone: give it a moment, the test's
     * only pause, whose length changes nothing but which half is in flight */
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    tconn_send(&ws, frame + 3, (size_t)(6 + n - 3));
    ws_send(&ws, 9, "", 0); /* a ping from the client after it: answered, nothing else */
    text[0] = '\0';
    assert_int_equal(read_log_until(&ws, id, 4, text, sizeof text, "o\n"), 6);
    tconn_close(&ws);
}

/* A follower far behind the end of the log skips ahead: one message with
 * the last chunk and "skipped", never the whole file queued. */
static void test_log_stream_skips_when_behind(void **state)
{
    (void)state;
    tconn ws;
    int64_t id = finished_job_then_stream("{\"shell\":true,\"command\":\"head -c 600000 /dev/zero | tr '\\\\0' x; echo\"}", &ws);
    follow_log(&ws, id, 0);
    json_t *j = next_of_type(&ws, "log");
    long long off = json_int(j, "offset"), next = json_int(j, "next"), skipped = json_int(j, "skipped");
    size_t len = strlen(json_str(j, "data"));
    assert_int_equal(next, 600001);
    assert_int_equal(skipped, off);
    assert_true(off > 0);
    assert_int_equal((long long)len, next - off);
    assert_true(len <= 64 * 1024);
    json_decref(j);
    tconn_close(&ws);
}

/* A client that never reads: its unsent bytes stay bounded (one frame per
 * job, latest wins) and it is dropped with 1008 once over max_pending for
 * slow_ms; a reading client on the same server is unaffected. */
static void test_slow_client_is_bounded_and_dropped(void **state)
{
    (void)state;
    api_stop(&H);
    gvd_server_opts o = {0};
    o.push.max_pending = 64 * 1024;
    o.push.slow_ms = 1000;
    o.max_body = 1 << 20;
    api_start(&H, NULL, &o);

    /* ~48 KiB per frame: a job carrying a big params object that reports
     * progress a hundred times a second until it is cancelled */
    size_t big = 48 * 1024;
    char *spec = api_chatty_big_spec(big);

    tconn slow, fast;
    http_resp r = ws_connect_opt(&slow, H.port, "/ws/jobs", 4096);
    assert_int_equal(r.status, 101);
    http_resp_free(&r);
    ws_connect(&fast, H.port, "/ws/jobs");
    int64_t id = api_create(&H, spec);
    free(spec);

    /* The fast client reads along; the slow one reads nothing. */
    int64_t deadline = t_now_ms() + T_WAIT_MS;
    gvd_push_stats st = {0};
    int frames = 0;
    while (t_now_ms() < deadline) {
        json_t *j = ws_read_json(&fast, 100);
        frames += j != NULL;
        json_decref(j);
        st = api_stats(&H);
        if (st.dropped_slow == 1)
            break;
    }
    assert_int_equal(st.dropped_slow, 1);
    assert_true(frames >= 1); /* the reader was served meanwhile (how much depends on the machine) */
    /* Without "latest wins" the slow client's backlog would have grown by a
     * frame per step for a second (~200 x 48 KiB = 9.6 MB) before the drop;
     * with it, it never held much more than a frame per key in each of
     * pending and in flight. */
    print_message("slow client: max unsent %zu bytes, %llu frames coalesced, dropped after %d frames to the "
                  "fast client\n",
                  st.max_unsent, (unsigned long long)st.coalesced, frames);
    assert_true(st.max_unsent <= 4 * big + 8192);
    assert_true(st.coalesced > 0);

    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld/cancel", (long long)id);
    post(path, 200);
    /* the fast client is still served, and the slow one is gone once its
     * close had its chance (GVD_PUSH_CLOSE_WAIT_MS) */
    json_decref(next_frame(&fast));
    deadline = t_now_ms() + T_WAIT_MS;
    while ((st = api_stats(&H)).ws_clients != 1 && t_now_ms() < deadline)
        t_sleep_ms(20);
    assert_int_equal(st.ws_clients, 1);

    /* Reading the slow socket now: the frames the kernel held, then the
     * close frame 1008 (or a cut connection if it could not be delivered). */
    ws_frame f;
    int rc, last_op = 0, code = -1;
    while ((rc = ws_read(&slow, &f, T_WAIT_MS)) == 1) {
        last_op = f.opcode;
        if (f.opcode == 8)
            code = ws_close_code(&f);
        free(f.data);
    }
    assert_int_equal(rc, -1);
    if (last_op == 8)
        assert_int_equal(code, 1008);
    tconn_close(&slow);
    tconn_close(&fast);
}

/* Frames larger than what the socket takes at once: the first part goes
 * out with galvanid's own sendmsg and the rest through h2o (ws.c,
 * gvd_ws_write_now).  A client with a 4 KiB receive buffer that reads
 * slowly gets every frame whole (each one parses, its 48 KiB blob intact)
 * and the final state still arrives. */
static void test_frames_whole_across_partial_writes(void **state)
{
    (void)state;
    api_stop(&H);
    gvd_server_opts o = {0};
    /* a 16 KiB send buffer (max_pending sizes it): a 48 KiB frame never
     * fits at once; a frame pending and one in flight stay under the
     * immediate drop (8 x max_pending) */
    o.push.max_pending = 16 * 1024;
    o.push.slow_ms = 60000; /* never dropped for being slow here */
    o.max_body = 1 << 20;
    api_start(&H, NULL, &o);

    size_t big = 48 * 1024;
    char *spec = api_chatty_big_spec(big);
    tconn ws;
    http_resp r = ws_connect_opt(&ws, H.port, "/ws/jobs", 4096);
    assert_int_equal(r.status, 101);
    http_resp_free(&r);
    int64_t id = api_create(&H, spec);
    free(spec);

    int jobs_frames = 0;
    double last_progress = -1;
    for (int i = 0; i < 12; i++) {
        json_t *j = next_frame(&ws); /* fails the test if a frame does not parse */
        json_t *job = json_object_get(j, "job");
        if (job && json_integer_value(json_object_get(job, "id")) == id) {
            const char *blob = json_string_value(json_object_get(json_object_get(job, "params"), "blob"));
            assert_non_null(blob);
            assert_int_equal(strlen(blob), big);
            jobs_frames++;
            last_progress = json_number_value(json_object_get(job, "progress"));
        }
        json_decref(j);
        t_sleep_ms(50); /* slower than the job changes: its frames are coalesced and written in parts */
    }
    assert_true(jobs_frames >= 5);
    assert_true(last_progress >= 0);

    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld/cancel", (long long)id);
    post(path, 200);
    bool cancelled = false;
    int64_t deadline = t_now_ms() + T_WAIT_MS;
    while (!cancelled && t_now_ms() < deadline) {
        json_t *j = next_frame(&ws);
        json_t *job = json_object_get(j, "job");
        if (job && json_integer_value(json_object_get(job, "id")) == id) {
            assert_int_equal(strlen(json_string_value(json_object_get(json_object_get(job, "params"), "blob"))), big);
            cancelled = strcmp(json_string_value(json_object_get(job, "status")), "cancelled") == 0;
        }
        json_decref(j);
    }
    assert_true(cancelled);
    gvd_push_stats st = api_stats(&H);
    assert_int_equal(st.dropped_slow, 0);
    tconn_close(&ws);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seed_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_follows_newest_demo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobs_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobs_stream_one_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_request_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sse_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sse_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ping_pong, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_close_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_closes_with_1001, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_updates_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_updates_encode_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_client_is_bounded_and_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frames_whole_across_partial_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_stream_skips_when_behind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_frames_across_idle_context, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
