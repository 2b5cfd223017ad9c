/*
 * test_api_harness.h — the real galvanid server for the API tests, and
 * small blocking clients to drive it.
 *
 * api_start() opens a store in a fresh temp directory, creates the real job
 * model and the real HTTP server on an ephemeral loopback port, and runs the
 * loop on a worker thread (all of it on that thread: the signals runtime is
 * per thread).  The test thread talks to it only over sockets
 * (HTTP/1.1, WebSocket, SSE clients below), or through api_call(), which
 * runs a function on the loop thread and waits (to read the push hub's
 * statistics race-free).  api_stop() cancels whatever jobs are still
 * active (no process outlives a test), closes the server and the jobs on
 * the loop, waits for the loop to end and checks that the loop closes cleanly (no
 * handle left behind).
 *
 * Clients: tconn is a socket with a receive buffer and deadlines; http_do()
 * sends one request and reads one response (Content-Length, chunked or
 * until EOF); the WebSocket client masks its frames as RFC 6455 requires
 * and reads the server's unmasked ones.  Everything is bounded in time.
 */
#ifndef GALVANI_TEST_API_HARNESS_H
#define GALVANI_TEST_API_HARNESS_H

#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <galvani/signals.h>

#include "api/server.h"
#include "model/jobs.h"
#include "push/push.h"
#include "store/store.h"
#include "util/log.h"

/* ---- time ---------------------------------------------------------------- */

/* How long a test waits for something that must happen before it fails.
 * Generous: it only ends a test whose server is stuck, and a busy (CI)
 * machine under ASan may be many times slower than an idle one.  A wait that
 * expects nothing to happen is a short observation window of its own. */
#define T_WAIT_MS 30000

static inline int64_t t_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void t_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- the server under test ------------------------------------------------- */

typedef struct api_harness {
    char dir[128];
    uv_loop_t loop;
    gvd_store *store;
    gvd_jobs *jobs;
    gvd_server *server;
    int port;
    uv_async_t async;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void (*call_fn)(struct api_harness *h, void *arg);
    void *call_arg;
    bool call_done;
    bool stop;
    /* setup, done on the loop thread: the signals runtime is per thread,
     * so the model must be created, used and freed there */
    gvd_config cfg;
    gvd_server_opts opts;
    bool ready, finished;
    char error[600];
} api_harness;

static inline void api_on_async(uv_async_t *a)
{
    api_harness *h = a->data;
    pthread_mutex_lock(&h->mu);
    if (h->call_fn) {
        h->call_fn(h, h->call_arg);
        h->call_fn = NULL;
        h->call_done = true;
        pthread_cond_broadcast(&h->cv);
    }
    bool stop = h->stop;
    pthread_mutex_unlock(&h->mu);
    if (stop) {
        gvd_server_close(h->server);
        gvd_jobs_free(h->jobs);
        uv_close((uv_handle_t *)&h->async, NULL);
    }
}

static inline int api_open(api_harness *h)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/galvani.db", h->dir);
    h->store = gvd_store_open(path, err, sizeof err);
    if (!h->store) {
        snprintf(h->error, sizeof h->error, "store: %s", err);
        return -1;
    }
    gvd_error e = {0};
    h->jobs = gvd_jobs_new(&h->loop, h->store, &h->cfg, &e);
    if (!h->jobs) {
        snprintf(h->error, sizeof h->error, "jobs: %s", e.message);
        return -1;
    }
    h->server = gvd_server_new(&h->loop, h->jobs, &h->opts, err, sizeof err);
    if (!h->server) {
        snprintf(h->error, sizeof h->error, "server: %s", err);
        return -1;
    }
    h->port = gvd_server_port(h->server);
    uv_async_init(&h->loop, &h->async, api_on_async);
    h->async.data = h;
    return 0;
}

/* One worker thread serves every test's loop, one after the other, and
 * lives until the process exits.  Why not a thread per test: h2o and the
 * signals runtime keep per-thread caches (h2o's memory-pool recycler is a
 * static __thread list); a thread that exits takes the only pointer to them
 * with it, which LeakSanitizer rightly reports.  A thread still alive at exit
 * keeps them reachable. */
static pthread_mutex_t api_worker_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t api_worker_cv = PTHREAD_COND_INITIALIZER;
static api_harness *api_worker_next;
static bool api_worker_running;

static inline void *api_worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&api_worker_mu);
        while (!api_worker_next)
            pthread_cond_wait(&api_worker_cv, &api_worker_mu);
        api_harness *h = api_worker_next;
        api_worker_next = NULL;
        pthread_mutex_unlock(&api_worker_mu);

        int rc = api_open(h);
        pthread_mutex_lock(&h->mu);
        h->ready = true;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
        if (rc == 0)
            uv_run(&h->loop, UV_RUN_DEFAULT);
        if (h->store)
            gvd_store_close(h->store);
        gv_runtime_release();
        pthread_mutex_lock(&h->mu);
        h->finished = true;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
    }
    return NULL;
}

static inline void api_wait_flag(api_harness *h, bool *flag)
{
    pthread_mutex_lock(&h->mu);
    while (!*flag)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

/* Run fn(h, arg) on the loop thread and wait for it. */
static inline void api_call(api_harness *h, void (*fn)(api_harness *, void *), void *arg)
{
    pthread_mutex_lock(&h->mu);
    h->call_fn = fn;
    h->call_arg = arg;
    h->call_done = false;
    uv_async_send(&h->async);
    while (!h->call_done)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

static inline void api_stats_fn(api_harness *h, void *arg)
{
    gvd_push_stats_get(gvd_server_push(h->server), arg);
}

static inline gvd_push_stats api_stats(api_harness *h)
{
    gvd_push_stats st;
    api_call(h, api_stats_fn, &st);
    return st;
}

/* cfg / opts may be NULL (defaults; demo jobs step every 20 ms). */
static inline void api_start(api_harness *h, const gvd_config *cfg, const gvd_server_opts *opts)
{
    memset(h, 0, sizeof *h);
    gvd_log_set_level(GVD_LOG_WARN);
    snprintf(h->dir, sizeof h->dir, "/tmp/galvani-api-test-XXXXXX");
    assert_non_null(mkdtemp(h->dir));
    assert_int_equal(uv_loop_init(&h->loop), 0);
    static char logs[256];
    snprintf(logs, sizeof logs, "%s/logs", h->dir);
    h->cfg = cfg ? *cfg : (gvd_config){0};
    if (!h->cfg.log_dir)
        h->cfg.log_dir = logs;
    if (!h->cfg.demo_step_ms)
        h->cfg.demo_step_ms = 20;
    if (!h->cfg.cancel_grace_ms)
        h->cfg.cancel_grace_ms = 1000;
    h->opts = opts ? *opts : (gvd_server_opts){0};
    h->opts.host = "127.0.0.1";
    h->opts.port = 0;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    pthread_mutex_lock(&api_worker_mu);
    if (!api_worker_running) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, api_worker, NULL), 0);
        pthread_detach(t);
        api_worker_running = true;
    }
    api_worker_next = h;
    pthread_cond_broadcast(&api_worker_cv);
    pthread_mutex_unlock(&api_worker_mu);
    api_wait_flag(h, &h->ready);
    if (h->error[0]) {
        api_wait_flag(h, &h->finished);
        fail_msg("%s", h->error);
    }
    assert_true(h->port > 0);
}

static inline int api_rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* ---- sockets with a receive buffer ----------------------------------------- */

typedef struct tconn {
    int fd;
    char *buf;
    size_t len, cap;
    bool eof;
    int err; /* after eof: 0 for a clean end (FIN), else recv's errno (ECONNRESET...) */
} tconn;

static inline int tconn_open_opt(tconn *c, int port, int rcvbuf)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    struct timeval tv = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return 0;
}

static inline void tconn_open(tconn *c, int port)
{
    assert_int_equal(tconn_open_opt(c, port, 0), 0);
}

static inline void tconn_close(tconn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

/* 0 if everything was sent, -1 if the peer closed / reset. */
static inline int tconn_send(tconn *c, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Read whatever arrives within timeout_ms.  1 = got bytes, 0 = timeout,
 * -1 = EOF or error. */
static inline int tconn_fill(tconn *c, int timeout_ms)
{
    if (c->eof)
        return -1;
    struct pollfd pfd = {c->fd, POLLIN, 0};
    int r = poll(&pfd, 1, timeout_ms < 0 ? 0 : timeout_ms);
    if (r == 0)
        return 0;
    if (c->cap - c->len < 65536) {
        c->cap = c->cap ? c->cap * 2 : 131072;
        c->buf = realloc(c->buf, c->cap + 1);
        assert_non_null(c->buf);
    }
    ssize_t k = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (k <= 0) {
        c->eof = true;
        c->err = k < 0 ? errno : 0;
        return -1;
    }
    c->len += (size_t)k;
    c->buf[c->len] = '\0';
    return 1;
}

/* Make sure n bytes are buffered (deadline is absolute, t_now_ms). */
static inline int tconn_need(tconn *c, size_t n, int64_t deadline)
{
    while (c->len < n) {
        int64_t left = deadline - t_now_ms();
        if (left <= 0)
            return 0;
        if (tconn_fill(c, (int)left) < 0)
            return -1;
    }
    return 1;
}

static inline void tconn_consume(tconn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    if (c->buf)
        c->buf[c->len] = '\0';
}

/* Index just past `needle`, waiting for it; SIZE_MAX on timeout/EOF. */
static inline size_t tconn_find(tconn *c, const char *needle, int64_t deadline)
{
    size_t nl = strlen(needle);
    for (;;) {
        if (c->len >= nl)
            for (size_t i = 0; i + nl <= c->len; i++)
                if (memcmp(c->buf + i, needle, nl) == 0)
                    return i + nl;
        int64_t left = deadline - t_now_ms();
        if (left <= 0 || tconn_fill(c, (int)left) < 0)
            return SIZE_MAX;
    }
}

/* Wait for `needle` and drop everything up to and including it. */
static inline bool tconn_skip_past(tconn *c, const char *needle, int64_t deadline)
{
    size_t i = tconn_find(c, needle, deadline);
    if (i == SIZE_MAX)
        return false;
    tconn_consume(c, i);
    return true;
}

/* Case-insensitive substring test. */
static inline bool ci_contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return true;
    return false;
}

/* ---- HTTP/1.1 -------------------------------------------------------------- */

typedef struct http_resp {
    int status;
    char *head;   /* status line + headers */
    char *body;   /* NUL-terminated */
    size_t body_len;
    json_t *json; /* when the body parses as JSON */
} http_resp;

static inline void http_resp_free(http_resp *r)
{
    free(r->head);
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* The value of header `name` (case-insensitive) in a static buffer, or NULL. */
static inline const char *http_header(const http_resp *r, const char *name)
{
    static char val[512];
    size_t nl = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1, *e = strstr(v, "\r\n");
            while (*v == ' ')
                v++;
            size_t n = (size_t)((e ? e : v + strlen(v)) - v);
            if (n >= sizeof val)
                n = sizeof val - 1;
            memcpy(val, v, n);
            val[n] = '\0';
            return val;
        }
    }
    return NULL;
}

/* Read one response from c.  0, or -1 on timeout / EOF before it ended. */
static inline int http_read(tconn *c, http_resp *r, int timeout_ms)
{
    memset(r, 0, sizeof *r);
    int64_t deadline = t_now_ms() + timeout_ms;
    size_t hend = tconn_find(c, "\r\n\r\n", deadline);
    if (hend == SIZE_MAX)
        return -1;
    r->head = strndup(c->buf, hend);
    r->status = atoi(r->head + 9);
    tconn_consume(c, hend);
    const char *te = http_header(r, "transfer-encoding");
    const char *cl = http_header(r, "content-length");
    size_t cap = 1024, len = 0;
    r->body = malloc(cap);
    if (te && strcasecmp(te, "chunked") == 0) {
        for (;;) {
            size_t e = tconn_find(c, "\r\n", deadline);
            if (e == SIZE_MAX)
                return -1;
            size_t n = strtoul(c->buf, NULL, 16);
            tconn_consume(c, e);
            if (tconn_need(c, n + 2, deadline) != 1)
                return -1;
            if (len + n + 1 > cap) {
                while (len + n + 1 > cap)
                    cap *= 2;
                r->body = realloc(r->body, cap);
            }
            memcpy(r->body + len, c->buf, n);
            len += n;
            tconn_consume(c, n + 2);
            if (n == 0)
                break;
        }
    } else if (cl || r->status == 204 || r->status == 101) {
        size_t n = cl ? strtoul(cl, NULL, 10) : 0;
        if (tconn_need(c, n, deadline) != 1)
            return -1;
        if (n + 1 > cap)
            r->body = realloc(r->body, cap = n + 1);
        memcpy(r->body, c->buf, n);
        len = n;
        tconn_consume(c, n);
    } else {
        while (tconn_fill(c, (int)(deadline - t_now_ms())) > 0)
            ;
        r->body = realloc(r->body, c->len + 1);
        memcpy(r->body, c->buf, c->len);
        len = c->len;
        tconn_consume(c, c->len);
    }
    r->body[len] = '\0';
    r->body_len = len;
    const char *ct = http_header(r, "content-type");
    if (ct && strncmp(ct, "application/json", 16) == 0)
        r->json = json_loadb(r->body, len, 0, NULL);
    return 0;
}

/* A test of a server that requires a token sets it here: http_send_req
 * (and so http_do, api_create, api_drain...) then sends it. */
static const char *api_bearer_token;

static inline void http_send_req(tconn *c, const char *method, const char *path, const char *ctype, const char *body,
                                 size_t body_len, bool keep_alive)
{
    char head[1024];
    int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s", method, path,
                     keep_alive ? "" : "Connection: close\r\n");
    if (api_bearer_token)
        n += snprintf(head + n, sizeof head - (size_t)n, "Authorization: Bearer %s\r\n", api_bearer_token);
    if (ctype)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Type: %s\r\n", ctype);
    if (body)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n", body_len);
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    assert_int_equal(tconn_send(c, head, (size_t)n), 0);
    if (body && body_len)
        assert_int_equal(tconn_send(c, body, body_len), 0);
}

/* One request on a fresh connection. */
static inline http_resp http_do(api_harness *h, const char *method, const char *path, const char *ctype,
                                const char *body)
{
    tconn c;
    http_resp r;
    tconn_open(&c, h->port);
    http_send_req(&c, method, path, ctype, body, body ? strlen(body) : 0, false);
    if (http_read(&c, &r, T_WAIT_MS) != 0)
        fail_msg("%s %s: no complete response", method, path);
    tconn_close(&c);
    return r;
}

static inline http_resp http_json(api_harness *h, const char *method, const char *path, const char *body)
{
    return http_do(h, method, path, body ? "application/json" : NULL, body);
}

/* The error code of a JSON error response ("" if not one). */
static inline const char *http_error_code(const http_resp *r)
{
    json_t *e = r->json ? json_object_get(r->json, "error") : NULL;
    const char *s = e ? json_string_value(json_object_get(e, "code")) : NULL;
    return s ? s : "";
}

static inline const char *http_error_message(const http_resp *r)
{
    json_t *e = r->json ? json_object_get(r->json, "error") : NULL;
    const char *s = e ? json_string_value(json_object_get(e, "message")) : NULL;
    return s ? s : "";
}

static inline const char *json_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static inline int64_t json_int(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? (int64_t)json_number_value(v) : -1;
}

/* POST /jobs and return the new id. */
static inline int64_t api_create(api_harness *h, const char *spec)
{
    http_resp r = http_json(h, "POST", "/jobs", spec);
    if (r.status != 201)
        fail_msg("POST /jobs %s -> %d %s", spec, r.status, r.body);
    int64_t id = json_int(r.json, "id");
    http_resp_free(&r);
    return id;
}

/* GET /jobs/{id} until its status is `status` (or the deadline). */
/* A job spec whose every state frame is big: a shell loop reporting
 * progress a hundred times a second, carrying a params object with a
 * `blob_bytes`-long string.  For the slow-client tests.  Caller frees. */
static inline char *api_chatty_big_spec(size_t blob_bytes)
{
    char *spec = malloc(blob_bytes + 300);
    assert_non_null(spec);
    int n = sprintf(spec, "{\"command\":[\"sh\",\"-c\",\"i=0; while :; do echo ::progress $((i %% 100)); "
                          "i=$((i+1)); sleep 0.01; done\"],\"params\":{\"blob\":\"");
    memset(spec + n, 'x', blob_bytes);
    strcpy(spec + n + blob_bytes, "\"}}");
    return spec;
}

static inline bool api_wait_status(api_harness *h, int64_t id, const char *status, int timeout_ms)
{
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld", (long long)id);
    int64_t deadline = t_now_ms() + timeout_ms;
    do {
        http_resp r = http_do(h, "GET", path, NULL, NULL);
        bool ok = r.status == 200 && strcmp(json_str(r.json, "status"), status) == 0;
        http_resp_free(&r);
        if (ok)
            return true;
        t_sleep_ms(20);
    } while (t_now_ms() < deadline);
    return false;
}

/* Cancel every active job and wait until none is left, so that no process
 * outlives the test. */
static inline void api_drain(api_harness *h)
{
    int64_t deadline = t_now_ms() + T_WAIT_MS;
    for (;;) {
        http_resp r = http_do(h, "GET", "/jobs?status=queued,running,paused&limit=1000", NULL, NULL);
        assert_int_equal(r.status, 200);
        json_t *jobs = json_object_get(r.json, "jobs");
        size_t n = json_array_size(jobs);
        for (size_t i = 0; i < n; i++) {
            char path[64];
            snprintf(path, sizeof path, "/jobs/%lld/cancel", (long long)json_int(json_array_get(jobs, i), "id"));
            http_resp c = http_do(h, "POST", path, NULL, NULL);
            http_resp_free(&c);
        }
        http_resp_free(&r);
        if (n == 0)
            return;
        if (t_now_ms() > deadline)
            fail_msg("jobs still active after cancelling them for %d s", T_WAIT_MS / 1000);
        t_sleep_ms(30);
    }
}

static inline void api_stop(api_harness *h)
{
    api_drain(h);
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_mutex_unlock(&h->mu);
    uv_async_send(&h->async);
    api_wait_flag(h, &h->finished);
    assert_int_equal(uv_loop_close(&h->loop), 0); /* every handle was closed */
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    nftw(h->dir, api_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- WebSocket client ------------------------------------------------------ */

/* RFC 6455 section 1.3's example key and the accept value it must yield. */
#define WS_TEST_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_TEST_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* Connect and upgrade; returns the 101 response (caller frees). */
static inline http_resp ws_connect_opt(tconn *c, int port, const char *path, int rcvbuf)
{
    assert_int_equal(tconn_open_opt(c, port, rcvbuf), 0);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " WS_TEST_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     path);
    assert_int_equal(tconn_send(c, req, (size_t)n), 0);
    http_resp r;
    if (http_read(c, &r, T_WAIT_MS) != 0)
        fail_msg("GET %s: no upgrade response", path);
    return r;
}

static inline void ws_connect(tconn *c, int port, const char *path)
{
    http_resp r = ws_connect_opt(c, port, path, 0);
    if (r.status != 101)
        fail_msg("GET %s: %d %s", path, r.status, r.body);
    assert_string_equal(http_header(&r, "sec-websocket-accept"), WS_TEST_ACCEPT);
    http_resp_free(&r);
}

typedef struct ws_frame {
    int opcode; /* 1 text, 8 close, 9 ping, 10 pong */
    char *data; /* NUL-terminated */
    size_t len;
} ws_frame;

/* 1 = a frame, 0 = timeout, -1 = EOF. */
static inline int ws_read(tconn *c, ws_frame *f, int timeout_ms)
{
    int64_t deadline = t_now_ms() + timeout_ms;
    memset(f, 0, sizeof *f);
    int r = tconn_need(c, 2, deadline);
    if (r != 1)
        return r;
    unsigned char *b = (unsigned char *)c->buf;
    assert_int_equal(b[1] & 0x80, 0); /* server frames are never masked */
    assert_int_equal(b[0] & 0x80, 0x80); /* and never fragmented here */
    size_t hl = 2, len = b[1] & 0x7f;
    if (len == 126)
        hl = 4;
    else if (len == 127)
        hl = 10;
    if ((r = tconn_need(c, hl, deadline)) != 1)
        return r;
    b = (unsigned char *)c->buf;
    if (len == 126)
        len = (size_t)b[2] << 8 | b[3];
    else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | b[2 + i];
    }
    if ((r = tconn_need(c, hl + len, deadline)) != 1)
        return r;
    f->opcode = c->buf[0] & 0x0f;
    f->data = malloc(len + 1);
    memcpy(f->data, c->buf + hl, len);
    f->data[len] = '\0';
    f->len = len;
    tconn_consume(c, hl + len);
    return 1;
}

/* The next text frame as JSON (pings are answered, other control frames
 * skipped); NULL on timeout or EOF. */
static inline json_t *ws_read_json(tconn *c, int timeout_ms);

static inline void ws_send(tconn *c, int opcode, const void *data, size_t len)
{
    unsigned char h[14] = {(unsigned char)(0x80 | opcode)};
    size_t hl;
    if (len < 126) {
        h[1] = (unsigned char)(0x80 | len);
        hl = 2;
    } else {
        h[1] = 0x80 | 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        hl = 4;
    }
    unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(h + hl, mask, 4);
    hl += 4;
    unsigned char *buf = malloc(hl + len);
    memcpy(buf, h, hl);
    for (size_t i = 0; i < len; i++)
        buf[hl + i] = ((const unsigned char *)data)[i] ^ mask[i % 4];
    tconn_send(c, buf, hl + len);
    free(buf);
}

static inline json_t *ws_read_json(tconn *c, int timeout_ms)
{
    int64_t deadline = t_now_ms() + timeout_ms;
    for (;;) {
        ws_frame f;
        int64_t left = deadline - t_now_ms();
        if (left <= 0 || ws_read(c, &f, (int)left) != 1)
            return NULL;
        if (f.opcode == 9)
            ws_send(c, 10, f.data, f.len);
        if (f.opcode == 1) {
            json_t *j = json_loadb(f.data, f.len, 0, NULL);
            if (!j)
                fail_msg("a text frame that is not JSON: %s", f.data);
            free(f.data);
            return j;
        }
        free(f.data);
        if (f.opcode == 8)
            return NULL;
    }
}

/* Close code of a close frame payload. */
static inline int ws_close_code(const ws_frame *f)
{
    return f->len >= 2 ? ((unsigned char)f->data[0] << 8 | (unsigned char)f->data[1]) : -1;
}

#endif
