/*
 * webhook.c — see webhook.h.
 *
 * One delivery is a small state machine with two handles, a TCP socket
 * (new for each attempt) and a timer (the attempt's timeout, then the
 * backoff before the next attempt):
 *
 *   connect -> write the request -> read until the status line is complete
 *     2xx                     delivered
 *     anything else, an error, EOF or the timeout
 *                             close the socket; retry after the backoff, or
 *                             give up after the last attempt
 *
 * A delivery is freed once both of its handles are closed.  The webhook
 * keeps the deliveries in flight in a list so that shutting down can close
 * them; a closing webhook frees itself when the last one is gone.
 */
#include "webhook.h"

#include <math.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/log.h"

struct gvd_webhook {
    uv_loop_t *loop;
    char *host, *path;         /* owned */
    int port;
    struct sockaddr_storage addr;
    uint64_t timeout_ms;
    unsigned attempts;
    bool closing;
    struct gvd_delivery *first; /* in flight, owned */
};

typedef struct gvd_delivery {
    struct gvd_delivery *prev, *next;
    gvd_webhook *w;
    char *request;    /* the whole HTTP request, owned */
    size_t request_len;
    char what[160];
    unsigned attempt; /* 1, 2, ... */
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    uv_timer_t timer;
    bool tcp_open;    /* tcp initialized and not yet closing */
    bool done;        /* delivered or given up: free once the handles closed */
    int handles;      /* open handles (timer, tcp) */
    char answer[64];  /* the start of the response: the status line */
    size_t answer_len;
    char error[160];  /* why the attempt failed */
} gvd_delivery;

static int gvd_url_parse(gvd_webhook *w, const char *url, char *err, size_t errlen)
{
    if (strncmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, "the webhook URL must start with http:// (https is not supported), not '%.100s'", url);
        return -1;
    }
    const char *h = url + 7, *slash = strchr(h, '/');
    const char *end = slash ? slash : h + strlen(h);
    const char *colon = memchr(h, ':', (size_t)(end - h));
    const char *hend = colon ? colon : end;
    w->port = 80;
    if (colon) {
        char *pe;
        long p = strtol(colon + 1, &pe, 10);
        if (pe != end || p <= 0 || p > 65535) {
            snprintf(err, errlen, "the webhook URL has a bad port: '%.100s'", url);
            return -1;
        }
        w->port = (int)p;
    }
    if (hend == h) {
        snprintf(err, errlen, "the webhook URL has no host: '%.100s'", url);
        return -1;
    }
    for (const char *p = slash ? slash : ""; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) {
            snprintf(err, errlen, "the webhook URL's path may not contain spaces or control characters");
            return -1;
        }
    w->host = strndup(h, (size_t)(hend - h));
    w->path = strdup(slash ? slash : "/");
    if (!w->host || !w->path) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

gvd_webhook *gvd_webhook_new(uv_loop_t *loop, const char *url, double timeout_s, unsigned attempts, char *err,
                             size_t errlen)
{
    gvd_webhook *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->loop = loop;
    w->timeout_ms = (uint64_t)ceil((timeout_s > 0 ? timeout_s : 5) * 1000.0);
    w->attempts = attempts ? attempts : 1;
    if (gvd_url_parse(w, url, err, errlen) != 0) {
        gvd_webhook_free(w);
        return NULL;
    }
    /* Resolved once, here: the loop never waits for DNS. */
    char port[16];
    snprintf(port, sizeof port, "%d", w->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(w->host, port, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "cannot resolve the webhook host '%.100s': %s", w->host, gai_strerror(rc));
        gvd_webhook_free(w);
        return NULL;
    }
    memcpy(&w->addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return w;
}

static void gvd_delivery_unlink(gvd_delivery *d)
{
    gvd_webhook *w = d->w;
    if (d->prev)
        d->prev->next = d->next;
    else
        w->first = d->next;
    if (d->next)
        d->next->prev = d->prev;
}

static void gvd_webhook_release(gvd_webhook *w)
{
    free(w->host);
    free(w->path);
    free(w);
}

/* Free the delivery once it is over and both handles are closed. */
static void gvd_maybe_free(gvd_delivery *d)
{
    if (d->handles > 0 || !d->done)
        return;
    gvd_webhook *w = d->w;
    gvd_delivery_unlink(d);
    free(d->request);
    free(d);
    if (w->closing && !w->first)
        gvd_webhook_release(w);
}

static void gvd_handle_closed(uv_handle_t *h)
{
    gvd_delivery *d = h->data;
    d->handles--;
    gvd_maybe_free(d);
}

/* Delivered or given up: close the timer (the socket is closed or closing). */
static void gvd_finish(gvd_delivery *d)
{
    d->done = true;
    if (!uv_is_closing((uv_handle_t *)&d->timer))
        uv_close((uv_handle_t *)&d->timer, gvd_handle_closed);
}

static void gvd_attempt(gvd_delivery *d);

static void gvd_retry_cb(uv_timer_t *t)
{
    gvd_attempt(t->data);
}

/* The socket closed after a failed attempt: retry after the backoff, or
 * give up. */
static void gvd_tcp_closed_failed(uv_handle_t *h)
{
    gvd_delivery *d = h->data;
    d->handles--;
    if (!d->done && d->attempt < d->w->attempts) {
        uint64_t backoff = 500u << (d->attempt - 1 < 10 ? d->attempt - 1 : 10);
        gvd_log(GVD_LOG_WARN, "rule.webhook_retry", "%s attempt=%u error=\"%s\" retry_in_ms=%llu", d->what,
                d->attempt, d->error, (unsigned long long)backoff);
        uv_timer_start(&d->timer, gvd_retry_cb, backoff, 0);
        return;
    }
    if (!d->done)
        gvd_log(GVD_LOG_ERROR, "rule.webhook_failed", "%s attempts=%u error=\"%s\"", d->what, d->attempt, d->error);
    gvd_finish(d);
    gvd_maybe_free(d);
}

static void gvd_fail(gvd_delivery *d, const char *why)
{
    if (!d->tcp_open)
        return;
    snprintf(d->error, sizeof d->error, "%s", why);
    d->tcp_open = false;
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->tcp, gvd_tcp_closed_failed);
}

static void gvd_delivered(uv_handle_t *h)
{
    gvd_delivery *d = h->data;
    d->handles--;
    gvd_finish(d);
    gvd_maybe_free(d);
}

static void gvd_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    gvd_delivery *d = h->data;
    size_t room = sizeof d->answer - 1 - d->answer_len;
    *buf = uv_buf_init(d->answer + d->answer_len, (unsigned)(room ? room : 1));
}

static void gvd_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    gvd_delivery *d = s->data;
    if (n < 0) {
        gvd_fail(d, n == UV_EOF ? "connection closed before a status line" : uv_strerror((int)n));
        return;
    }
    d->answer_len += (size_t)n;
    d->answer[d->answer_len] = '\0';
    char *eol = strstr(d->answer, "\r\n");
    if (!eol && d->answer_len < sizeof d->answer - 1)
        return; /* the status line is not complete yet */
    int status = 0;
    if (sscanf(d->answer, "HTTP/1.%*d %d", &status) != 1) {
        gvd_fail(d, "not an HTTP response");
        return;
    }
    if (status < 200 || status > 299) {
        char why[64];
        snprintf(why, sizeof why, "answered %d", status);
        gvd_fail(d, why);
        return;
    }
    gvd_log(GVD_LOG_INFO, "rule.webhook", "%s status=%d attempts=%u", d->what, status, d->attempt);
    d->tcp_open = false;
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->tcp, gvd_delivered);
}

static void gvd_write_cb(uv_write_t *req, int status)
{
    gvd_delivery *d = req->data;
    if (status != 0) {
        gvd_fail(d, uv_strerror(status));
        return;
    }
    int rc = d->tcp_open ? uv_read_start((uv_stream_t *)&d->tcp, gvd_alloc_cb, gvd_read_cb) : 0;
    if (rc != 0)
        gvd_fail(d, uv_strerror(rc));
}

static void gvd_connect_cb(uv_connect_t *req, int status)
{
    gvd_delivery *d = req->data;
    if (status != 0) {
        gvd_fail(d, uv_strerror(status));
        return;
    }
    if (!d->tcp_open)
        return;
    uv_buf_t buf = uv_buf_init(d->request, (unsigned)d->request_len);
    int rc = uv_write(&d->write, (uv_stream_t *)&d->tcp, &buf, 1, gvd_write_cb);
    if (rc != 0)
        gvd_fail(d, uv_strerror(rc));
}

static void gvd_timeout_cb(uv_timer_t *t)
{
    gvd_fail(t->data, "timed out");
}

static void gvd_attempt(gvd_delivery *d)
{
    d->attempt++;
    d->answer_len = 0;
    d->answer[0] = '\0';
    int rc = uv_tcp_init(d->w->loop, &d->tcp);
    if (rc != 0) {
        gvd_log(GVD_LOG_ERROR, "rule.webhook_failed", "%s attempts=%u error=\"%s\"", d->what, d->attempt,
                uv_strerror(rc));
        gvd_finish(d);
        return;
    }
    d->tcp.data = d;
    d->connect.data = d->write.data = d;
    d->handles++;
    d->tcp_open = true;
    uv_timer_start(&d->timer, gvd_timeout_cb, d->w->timeout_ms, 0);
    rc = uv_tcp_connect(&d->connect, &d->tcp, (const struct sockaddr *)&d->w->addr, gvd_connect_cb);
    if (rc != 0)
        gvd_fail(d, uv_strerror(rc));
}

void gvd_webhook_post(gvd_webhook *w, const char *body, const char *what)
{
    if (!w || w->closing)
        return;
    gvd_delivery *d = calloc(1, sizeof *d);
    size_t blen = strlen(body);
    size_t cap = blen + strlen(w->path) + strlen(w->host) + 256;
    if (d)
        d->request = malloc(cap);
    if (!d || !d->request) {
        gvd_log(GVD_LOG_ERROR, "rule.webhook_failed", "%s error=\"out of memory\"", what);
        free(d);
        return;
    }
    int n = snprintf(d->request, cap,
                     "POST %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: galvanid\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     w->path, w->host, w->port, blen, body);
    d->request_len = n > 0 && (size_t)n < cap ? (size_t)n : 0;
    d->w = w;
    snprintf(d->what, sizeof d->what, "%s", what);
    uv_timer_init(w->loop, &d->timer);
    d->timer.data = d;
    d->handles = 1;
    d->next = w->first;
    if (w->first)
        w->first->prev = d;
    w->first = d;
    gvd_attempt(d);
}

void gvd_webhook_free(gvd_webhook *w)
{
    if (!w)
        return;
    w->closing = true;
    if (!w->first) {
        gvd_webhook_release(w);
        return;
    }
    for (gvd_delivery *d = w->first; d; d = d->next) {
        if (!d->done)
            gvd_log(GVD_LOG_WARN, "rule.webhook_dropped", "%s reason=\"galvanid is stopping\"", d->what);
        if (d->tcp_open) {
            d->tcp_open = false;
            uv_close((uv_handle_t *)&d->tcp, gvd_handle_closed);
        }
        gvd_finish(d); /* a socket already closing finishes in its own callback */
    }
}
