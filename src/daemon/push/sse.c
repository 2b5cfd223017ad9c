/*
 * sse.c — the Server-Sent Events transport: GET /events.
 *
 * A streaming h2o response (text/event-stream, chunked on HTTP/1.1).  h2o
 * allows one h2o_send in flight per response: the generator's `proceed`
 * says it was written, and the frames gathered meanwhile leave together in
 * the next h2o_send.  Each message is "event: <type>\ndata: <json>\n\n";
 * a ":" comment line every keepalive_ms keeps proxies and idle-timeouts
 * from closing a quiet stream.
 */
#include "push_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../util/log.h"

typedef struct gvd_sse {
    gvd_client c; /* first: the hub hands us &c */
    uv_loop_t *loop;
    h2o_generator_t gen;
    h2o_req_t *req;  /* NULL once h2o has stopped the response */
    h2o_iovec_t *iov;
    size_t iov_cap;
    bool sending;    /* an h2o_send is in flight */
    bool in_send;    /* we are inside h2o_send (it may call back synchronously) */
    bool gone;       /* stop() came while in_send: free when it returns */
    uint64_t last_write;
} gvd_sse;

#define GVD_SSE_OF(g) ((gvd_sse *)((char *)(g)-offsetof(gvd_sse, gen)))

static void gvd_sse_free(gvd_sse *s)
{
    gvd_client_release(&s->c);
    free(s->iov);
    free(s);
}

/* The last bytes of the response: after a final h2o_send h2o calls neither
 * proceed nor stop, so the client goes now. */
static void gvd_sse_end(gvd_sse *s)
{
    h2o_req_t *req = s->req;
    s->req = NULL;
    gvd_sse_free(s);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
}

/* Write whatever is pending unless a send is in flight.  May free s. */
static void gvd_sse_kick_(gvd_sse *s)
{
    while (s->req && !s->sending) {
        gvd_client *c = &s->c;
        if (c->pending.n == 0) {
            if (c->finish || c->closing)
                gvd_sse_end(s);
            return;
        }
        if (gvd_iov_reserve(&s->iov, &s->iov_cap, GVD_PBUF_MAX_IOV * c->pending.n, 16) != 0)
            return; /* retried on the next kick */
        size_t n = gvd_client_take(c), k = 0;
        if (n == 0)
            return;
        for (size_t i = 0; i < n; i++)
            k += gvd_pbuf_iov(c->inflight[i], false, s->iov + k);
        s->sending = true;
        s->in_send = true;
        s->last_write = uv_now(s->loop);
        gvd_push_count_write(c->hub);
        h2o_send(s->req, s->iov, k, H2O_SEND_STATE_IN_PROGRESS);
        s->in_send = false;
        if (s->gone) {
            gvd_sse_free(s);
            return;
        }
        /* if proceed already ran (synchronously), loop for more */
    }
}

static void gvd_sse_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    (void)req;
    gvd_sse *s = GVD_SSE_OF(g);
    s->sending = false;
    gvd_client_written(&s->c);
    if (!s->in_send)
        gvd_sse_kick_(s);
}

static void gvd_sse_stop(h2o_generator_t *g, h2o_req_t *req)
{
    (void)req;
    gvd_sse *s = GVD_SSE_OF(g);
    s->req = NULL;
    if (s->in_send) {
        s->gone = true;
        return;
    }
    gvd_sse_free(s);
}

static void gvd_sse_kick(gvd_client *c)
{
    gvd_sse_kick_((gvd_sse *)c);
}

static void gvd_sse_drop(gvd_client *c, int code, const char *reason)
{
    (void)code;
    (void)reason;
    gvd_sse *s = (gvd_sse *)c;
    if (c->closing)
        return;
    c->closing = true;
    c->close_by = uv_now(s->loop) + GVD_PUSH_CLOSE_WAIT_MS;
    gvd_client_discard(c);
    gvd_sse_kick_(s); /* ends the response now unless a send is in flight */
}

/* The response's TCP socket, or -1. */
static int gvd_sse_fd(h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
    return sock ? h2o_socket_get_fd(sock) : -1;
}

/* A send that never completes (the client stopped reading): cut the TCP
 * connection under h2o, which then stops the response and frees us.  On
 * HTTP/2 this ends the other streams of that connection too. */
static void gvd_sse_cut(gvd_sse *s)
{
    if (!s->req)
        return;
    int fd = gvd_sse_fd(s->req);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

static void gvd_sse_tick(gvd_client *c, uint64_t now)
{
    gvd_sse *s = (gvd_sse *)c;
    if (c->closing) {
        if (now >= c->close_by)
            gvd_sse_cut(s);
        return;
    }
    if (!s->sending && c->pending.n == 0 && now - s->last_write >= c->hub->opts.keepalive_ms) {
        if (gvd_client_queue(c, GVD_KEY_KEEPALIVE, c->hub->keepalive) == 0)
            gvd_sse_kick_(s);
    }
}

static void gvd_sse_abort(gvd_client *c)
{
    gvd_sse *s = (gvd_sse *)c;
    gvd_client_detach(c);
    c->closing = true;
    if (!s->sending && s->req)
        gvd_sse_end(s);
    else
        gvd_sse_cut(s); /* h2o stops the response and stop() frees us */
}

static const gvd_client_ops gvd_sse_ops = {gvd_sse_kick, gvd_sse_drop, gvd_sse_tick, gvd_sse_abort};

static void gvd_sse_headers(h2o_req_t *req)
{
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
    /* reverse proxies (nginx) must not buffer a stream */
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-accel-buffering"), 0, NULL,
                          H2O_STRLIT("no"));
}

int gvd_sse_accept(gvd_push *p, h2o_req_t *req, gvd_stream stream, int64_t job, gvd_error *err)
{
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        /* A GET's headers and no stream: the stream is the body.  (No
         * Content-Length: a GET's has none either, and h2o sends a HEAD
         * response without a body or chunked framing.) */
        gvd_sse_headers(req);
        h2o_send_inline(req, "", 0);
        return 0;
    }
    gvd_sse *s = calloc(1, sizeof *s);
    if (!s) {
        gvd_push_err(err, 503, "out_of_memory", "out of memory");
        return -1;
    }
    s->c.ops = &gvd_sse_ops;
    s->c.ws = false;
    s->c.stream = stream;
    s->c.job = job;
    s->loop = p->loop;
    s->gen.proceed = gvd_sse_proceed;
    s->gen.stop = gvd_sse_stop;
    if (gvd_client_attach(p, &s->c) != 0) {
        gvd_sse_free(s);
        gvd_push_err(err, 503, p->closing ? "shutting_down" : "out_of_memory",
                      p->closing ? "the server is shutting down" : "out of memory");
        return -1;
    }
    s->req = req;
    gvd_push_bound_sndbuf(p, gvd_sse_fd(req));
    gvd_sse_headers(req);
    h2o_start_response(req, &s->gen);
    gvd_sse_kick_(s); /* the headers and the snapshot (for all jobs: with the next flush) */
    return 0;
}
