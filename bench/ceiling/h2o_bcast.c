/* h2o_bcast — the ceiling galvanid is measured against, in the same run:
 * the least a server built from the same parts (h2o on libuv, wslay) must do.
 *
 *   /ws (any path starting with /ws)  WebSocket: every --tick-ms (100) each of
 *       --jobs (100) in-memory jobs changes, and ONE compact text frame with
 *       every job's state is sent to every client:
 *         {"t":<unix ms of the change>,"jobs":[[id,progress],...]}
 *       (wsload --mode bcast counts each entry as one job update and takes
 *       the latency from "t").  The frame is encoded once per tick; wslay then
 *       copies it into each client's queue, as a plain h2o + wslay server
 *       does.  A client with more than --max-queued frames unsent skips the
 *       tick (latest state wins, memory stays bounded).
 *   GET /jobs/{id}  a job object like galvanid's (same fields, ~500 bytes),
 *       formatted per request from memory: the bare JSON handler.
 *
 * No store, no auth, no metrics, no coalescing: that is the point of a
 * ceiling.  Prints "h2o_bcast listening port=N" on stderr (--port 0 picks a
 * free port).  Loopback only. */
#include <h2o.h>
#include <h2o/websocket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

typedef struct ceil_client {
    h2o_websocket_conn_t *ws;
    struct ceil_client *prev, *next;
} ceil_client;

typedef struct {
    uv_loop_t *loop;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    uv_timer_t tick;
    int jobs;
    unsigned tick_ms;
    size_t max_queued;
    int *progress;
    uint64_t ticks;
    ceil_client head; /* circular list of WebSocket clients */
    size_t nclients;
    char *frame;
    size_t frame_cap;
} ceil_server;

static ceil_server ceil_srv;

static int64_t ceil_now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- WebSocket broadcast ------------------------------------------------------------------- */

static void ceil_on_ws_msg(h2o_websocket_conn_t *conn, const struct wslay_event_on_msg_recv_arg *arg)
{
    if (arg != NULL)
        return; /* what clients send is ignored (wslay answers pings itself) */
    ceil_client *c = conn->data;
    c->prev->next = c->next;
    c->next->prev = c->prev;
    ceil_srv.nclients--;
    free(c);
    h2o_websocket_close(conn);
}

/* Encodes every job's state once; returns its length (0 on failure). */
static size_t ceil_encode(ceil_server *s, int64_t t_ms)
{
    size_t need = 64 + (size_t)s->jobs * 32;
    if (need > s->frame_cap) {
        char *nb = realloc(s->frame, need);
        if (!nb)
            return 0;
        s->frame = nb;
        s->frame_cap = need;
    }
    size_t n = (size_t)snprintf(s->frame, s->frame_cap, "{\"t\":%lld,\"jobs\":[", (long long)t_ms);
    for (int i = 0; i < s->jobs; i++)
        n += (size_t)snprintf(s->frame + n, s->frame_cap - n, "%s[%d,%d]", i ? "," : "", i + 1, s->progress[i]);
    n += (size_t)snprintf(s->frame + n, s->frame_cap - n, "]}");
    return n < s->frame_cap ? n : 0;
}

static void ceil_on_tick(uv_timer_t *t)
{
    ceil_server *s = t->data;
    s->ticks++;
    /* Every job changes every tick: the worst case for a push server. */
    for (int i = 0; i < s->jobs; i++)
        s->progress[i] = (int)((s->ticks + (uint64_t)i) % 101);
    size_t n = ceil_encode(s, ceil_now_ms());
    if (n == 0 || s->nclients == 0)
        return;
    struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, (const uint8_t *)s->frame, n};
    /* Walk with `next` saved: proceeding may close (and free) a client. */
    for (ceil_client *c = s->head.next, *next; c != &s->head; c = next) {
        next = c->next;
        if (wslay_event_get_queued_msg_count(c->ws->ws_ctx) > s->max_queued)
            continue;
        if (wslay_event_queue_msg(c->ws->ws_ctx, &msg) == 0)
            h2o_websocket_proceed(c->ws);
    }
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

static int ceil_on_ws(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    const char *key;
    if (h2o_is_websocket_handshake(req, &key) != 0 || key == NULL)
        return -1;
    ceil_client *c = malloc(sizeof *c);
    if (!c) {
        h2o_send_error_503(req, "Service Unavailable", "out of memory", 0);
        return 0;
    }
    c->ws = h2o_upgrade_to_websocket(req, key, c, ceil_on_ws_msg);
    c->next = &ceil_srv.head;
    c->prev = ceil_srv.head.prev;
    c->prev->next = c;
    ceil_srv.head.prev = c;
    ceil_srv.nclients++;
    return 0;
}

static int ceil_on_job(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")))
        return -1;
    /* path_normalized is "/jobs/ID" here (the handler is registered on /jobs). */
    const char *p = req->path_normalized.base, *end = p + req->path_normalized.len;
    long id = 0;
    if (req->path_normalized.len > 6)
        for (p += 6; p < end && *p >= '0' && *p <= '9'; p++)
            id = id * 10 + (*p - '0');
    if (id <= 0 || id > ceil_srv.jobs || p != end) {
        req->res.status = 404;
        req->res.reason = "Not Found";
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
        h2o_send_inline(req, H2O_STRLIT("{\"error\":{\"code\":\"not_found\",\"message\":\"no such job\"}}"));
        return 0;
    }
    char *body = h2o_mem_alloc_pool(&req->pool, 1024);
    int prog = ceil_srv.progress[id - 1];
    int n = snprintf(body, 1024,
                     "{\"id\":%ld,\"name\":\"job-%ld\",\"kind\":\"process\",\"status\":\"running\",\"progress\":%d,"
                     "\"current\":%d,\"total\":100,\"message\":\"\",\"metrics\":{},\"params\":{},"
                     "\"params_revision\":0,\"params_applied\":0,\"command\":[\"/bin/sleep\",\"60\"],"
                     "\"shell\":false,\"pid\":%ld,\"exit_code\":null,\"signal\":null,\"attempts\":1,"
                     "\"max_retries\":0,\"priority\":0,\"pause_mode\":\"stop\",\"timeout\":null,"
                     "\"created_at\":\"2026-11-25T17:40:59.004Z\",\"started_at\":\"2026-11-25T17:40:59.005Z\","
                     "\"finished_at\":null,\"rate\":1.5,\"eta\":null,\"error\":null}",
                     id, id, prog, prog, 10000 + id);
    if (n <= 0 || n >= 1024)
        return -1;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_send_inline(req, body, (size_t)n);
    return 0;
}

/* ---- accepting ----------------------------------------------------------------------------- */

static void ceil_on_conn_closed(uv_handle_t *h) { free(h); }

static void ceil_on_accept(uv_stream_t *listener, int status)
{
    if (status != 0)
        return;
    uv_tcp_t *conn = malloc(sizeof *conn);
    if (!conn)
        return;
    if (uv_tcp_init(listener->loop, conn) != 0) {
        free(conn);
        return;
    }
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, ceil_on_conn_closed);
        return;
    }
    (void)uv_tcp_nodelay(conn, 1); /* as galvanid does: small frames leave at once */
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, ceil_on_conn_closed);
    h2o_accept(&ceil_srv.accept_ctx, sock);
}

static void ceil_register(h2o_hostconf_t *host, const char *path, int (*on_req)(h2o_handler_t *, h2o_req_t *))
{
    h2o_pathconf_t *pc = h2o_config_register_path(host, path, 0);
    h2o_handler_t *h = h2o_create_handler(pc, sizeof *h);
    h->on_req = on_req;
}

int main(int argc, char **argv)
{
    ceil_server *s = &ceil_srv;
    const char *host = "127.0.0.1";
    int port = 0;
    s->jobs = 100;
    s->tick_ms = 100;
    s->max_queued = 16;
    static const struct option opts[] = {{"host", required_argument, 0, 'H'},  {"port", required_argument, 0, 'p'},
                                         {"jobs", required_argument, 0, 'j'},  {"tick-ms", required_argument, 0, 't'},
                                         {"max-queued", required_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "H:p:j:t:q:h", opts, NULL)) != -1) {
        switch (o) {
        case 'H': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'j': s->jobs = atoi(optarg); break;
        case 't': s->tick_ms = (unsigned)atoi(optarg); break;
        case 'q': s->max_queued = (size_t)atoi(optarg); break;
        case 'h':
            puts("usage: h2o_bcast [--host 127.0.0.1] [--port 0] [--jobs 100] [--tick-ms 100] [--max-queued 16]");
            return 0;
        default: return 2;
        }
    }
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1 || (ntohl(addr.sin_addr.s_addr) >> 24) != 127 || port < 0 ||
        port > 65535 || s->jobs < 1 || s->jobs > 100000 || s->tick_ms < 1) {
        fprintf(stderr, "h2o_bcast: bad arguments (the host must be in 127.0.0.0/8)\n");
        return 2;
    }
    /* As many clients as the hard limit allows (20,000 here). */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            perror("h2o_bcast: setrlimit");
    }
    s->progress = calloc((size_t)s->jobs, sizeof *s->progress);
    if (!s->progress)
        return 1;
    s->head.next = s->head.prev = &s->head;
    s->loop = uv_default_loop();

    h2o_config_init(&s->config);
    h2o_hostconf_t *hc = h2o_config_register_host(&s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    ceil_register(hc, "/ws", ceil_on_ws);
    ceil_register(hc, "/jobs", ceil_on_job);
    h2o_context_init(&s->ctx, s->loop, &s->config);
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->config.hosts;

    int rc = uv_tcp_init(s->loop, &s->listener);
    if (rc == 0)
        rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 4096, ceil_on_accept);
    struct sockaddr_in bound;
    int blen = sizeof bound;
    if (rc == 0)
        rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
    if (rc != 0) {
        fprintf(stderr, "h2o_bcast: listen %s:%d: %s\n", host, port, uv_strerror(rc));
        return 1;
    }
    s->tick.data = s;
    if (uv_timer_init(s->loop, &s->tick) != 0 || uv_timer_start(&s->tick, ceil_on_tick, s->tick_ms, s->tick_ms) != 0) {
        fprintf(stderr, "h2o_bcast: cannot start the tick\n");
        return 1;
    }
    fprintf(stderr, "h2o_bcast listening port=%d jobs=%d tick_ms=%u\n", ntohs(bound.sin_port), s->jobs, s->tick_ms);
    return uv_run(s->loop, UV_RUN_DEFAULT) == 0 ? 0 : 1;
}
