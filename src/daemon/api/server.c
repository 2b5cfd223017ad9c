/*
 * server.c — the h2o server: listener, configuration, connections, shutdown.
 *
 * h2o 2.2.5 on libuv has no listener of its own: we accept on a uv_tcp_t,
 * wrap each connection with h2o_uv_socket_create() and hand it to
 * h2o_accept().  Each accepted connection is tracked (its uv close callback
 * unlinks it) because h2o 2.2.5 cannot close idle keep-alive connections on
 * demand: at shutdown we shutdown(2) their sockets, h2o reads EOF and frees
 * each connection through its own code path, and once none is left the h2o
 * context can be disposed (h2o_timeout_dispose asserts that no connection
 * still holds a timer).
 *
 * Errors h2o produces by itself, before any handler runs (413 for a body
 * over max_body — from Content-Length before a byte of the body is read, or
 * while reading a chunked body —, 400 for broken chunked encoding, 417)
 * are plain text; a filter on the host's fallback path, which is where h2o
 * binds such requests, rewrites them into the API's JSON error shape.
 *
 * Limits against hostile clients live here too (docs/api.md, "Limits"):
 * past max_conns an accepted connection gets a 503 and is closed at once
 * (existing ones are untouched), and h2o's request timeout bounds both a
 * slowly trickled request and an idle keep-alive connection.
 *
 * One client must not be able to take every connection (the hostile run:
 * one local process holding all 1,024 locked everyone out, /healthz
 * included, until the request timeout).  So a client (an IP address) holds
 * at most max_per_peer of the regular connections, and the last `reserve`
 * connections are given to whoever is over a limit, for one short request:
 * a reserved connection serves one request and no stream (routes.c asks
 * gvd_conn_reserved) and is shut down GVD_RESERVE_LIFETIME_MS after it was
 * accepted, so a client that grabs them and sends nothing frees them again
 * within that time instead of the request timeout.  On loopback every local
 * client is the same address: the reserve is what lets /healthz and an
 * operator in beside a local client at its cap.
 *
 * Conflicting Content-Length headers ("2" and "20") must be refused (RFC
 * 9112 6.3: a proxy in front may have used the other one: request
 * smuggling), but h2o 2.2.5 keeps the first, drops the rest and copies the
 * head before any handler runs.  So the raw bytes are watched as libuv
 * hands them to h2o (gvd_raw_*): a small scanner follows the requests'
 * framing (head, then Content-Length bytes of body), notes a head with two
 * different lengths, and routes.c answers that request 400 and closes.  A
 * chunked body or an upgrade ends the watch (h2o frames those itself).
 */
#include "api_int.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "../obs/obs.h"
#include "../util/log.h"

#define GVD_DEFAULT_MAX_BODY (1u << 20)
#define GVD_DEFAULT_MAX_HEADER (32u << 10)
#define GVD_DEFAULT_MAX_CONNS 1024
#define GVD_DEFAULT_REQ_TIMEOUT_MS 10000
#define GVD_DEFAULT_RESERVE 8
/* The listen queue: connections the kernel has completed and we have not
 * accepted yet.  When it is full the kernel drops the client's SYN (nstat:
 * TcpExtListenOverflows), and the client's TCP tries again only after 1 s,
 * then 3, 7, 15, 31 s: a loop iteration a little too long during a connect
 * storm (or a client that opens 500 connections at once) turned into
 * clients waiting 15-30 s for their handshake with 511 here
 * (docs/benchmarks.md, "Connect storm").  The kernel caps it at
 * net.core.somaxconn (4096 by default since Linux 5.4). */
#define GVD_LISTEN_BACKLOG 4096

/* A client address and the regular connections it holds (s->peers). */
struct gvd_peer {
    unsigned char addr[16]; /* IPv4 as ::ffff:a.b.c.d */
    size_t conns;
    gvd_peer *next;
};

struct gvd_conn {
    uv_tcp_t tcp; /* first: h2o's close callback hands us the handle */
    gvd_server *srv;
    gvd_conn *prev, *next;
    gvd_peer *peer;           /* NULL for a reserved connection */
    struct sockaddr_storage sa; /* the client's address and port */
    uv_timer_t lifetime;      /* reserved connections only */

    /* the raw request scanner (see the top) */
    uv_read_cb h2o_read_cb;   /* h2o's, called after ours */
    enum { GVD_RAW_HEAD, GVD_RAW_BODY, GVD_RAW_OFF } raw;
    uint64_t body_left;
    char line[64];            /* the current head line's start */
    size_t line_len;
    bool head_started, chunked, upgrade, has_length, bad_framing;
    char length[24], other[24]; /* the first Content-Length, and one that disagrees */
};

typedef struct gvd_api_handler {
    h2o_handler_t super;
    gvd_server *srv;
} gvd_api_handler;

typedef struct gvd_json_error_filter {
    h2o_filter_t super;
    gvd_server *srv;
} gvd_json_error_filter;

typedef struct gvd_json_error_ostream {
    h2o_ostream_t super;
    gvd_server *srv;
    const char *code;   /* NULL: by status (413, 417, else bad_request) */
    const char *prefix; /* before h2o's text in the message, or NULL */
} gvd_json_error_ostream;

static void gvd_server_unref(gvd_server *s);

/* ---- h2o glue ---------------------------------------------------------------- */

static int gvd_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    return gvd_api_handle(((gvd_api_handler *)self)->srv, req);
}

static void gvd_json_error_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t n,
                                h2o_send_state_t state)
{
    /* h2o's text ("request entity is too large") becomes the message. */
    char text[200];
    size_t used = 0;
    for (size_t i = 0; i < n && used < sizeof text - 1; i++) {
        size_t k = bufs[i].len < sizeof text - 1 - used ? bufs[i].len : sizeof text - 1 - used;
        memcpy(text + used, bufs[i].base, k);
        used += k;
    }
    text[used] = '\0';
    gvd_json_error_ostream *os = (gvd_json_error_ostream *)self;
    gvd_server *s = os->srv;
    const char *code = os->code ? os->code : "bad_request";
    char msg[700];
    snprintf(msg, sizeof msg, "%s%s", os->prefix ? os->prefix : "", text);
    if (os->code) {
        /* as given */
    } else if (req->res.status == 413) {
        code = "body_too_large";
        snprintf(msg, sizeof msg, "the request body exceeds the limit of %zu bytes", s->max_body);
    } else if (req->res.status == 417) {
        code = "expectation_failed";
    }
    h2o_iovec_t body = gvd_http_error_body(&req->pool, code, msg);
    req->res.content_length = body.len;
    h2o_ostream_send_next(self, req, &body, 1, state);
}

static void gvd_json_error_setup(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    /* Answered by h2o itself, before any route looked at the path. */
    gvd_obs_http_request("protocol", req->res.status);
    if (req->res.status >= 400)
        slot = gvd_json_error_wrap(((gvd_json_error_filter *)self)->srv, req, slot, NULL, NULL);
    h2o_setup_next_ostream(req, slot);
}

h2o_ostream_t **gvd_json_error_wrap(gvd_server *s, h2o_req_t *req, h2o_ostream_t **slot, const char *code,
                                    const char *prefix)
{
    ssize_t i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (i >= 0)
        req->res.headers.entries[i].value = h2o_iovec_init(H2O_STRLIT("application/json"));
    else
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    gvd_json_error_ostream *os = (gvd_json_error_ostream *)h2o_add_ostream(req, sizeof *os, slot);
    os->super.do_send = gvd_json_error_send;
    os->srv = s;
    os->code = code;
    os->prefix = prefix;
    return &os->super.next;
}

/* ---- connections ------------------------------------------------------------- */

/* Past a limit: say why in one write the kernel takes at once (a fresh
 * socket's send buffer is empty) and close.  The client reads the 503 if it
 * reads before the close's reset arrives (it does on loopback); either way
 * the connection costs us one accept and no state. */
static void gvd_refuse(gvd_server *s, uv_tcp_t *tcp, bool per_peer)
{
    char body[300], head[200];
    int bn = per_peer ? snprintf(body, sizeof body,
                                 "{\"error\":{\"code\":\"too_many_connections\",\"message\":\"this client (address) "
                                 "holds its limit of %zu connections, and the reserved ones are taken\"}}\n",
                                 s->max_per_peer)
                      : snprintf(body, sizeof body,
                                 "{\"error\":{\"code\":\"too_many_connections\",\"message\":\"galvanid has "
                                 "reached its connection limit\"}}\n");
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
                      "Retry-After: 1\r\nContent-Length: %d\r\n\r\n",
                      bn);
    uv_buf_t b[2] = {uv_buf_init(head, (unsigned)hn), uv_buf_init(body, (unsigned)bn)};
    (void)uv_try_write((uv_stream_t *)tcp, b, 2); /* best effort: the close says it anyway */
    s->refused++;
    uint64_t now = uv_now(s->loop);
    if (s->refused == 1 || now - s->refused_logged_at >= 1000) {
        s->refused_logged_at = now;
        gvd_log(GVD_LOG_WARN, "http.refused", "reason=%s open=%zu max=%zu refused_total=%llu reserved=%zu",
                per_peer ? "max_connections_per_client" : "max_connections", s->nconns, s->max_conns,
                (unsigned long long)s->refused, s->nreserved);
    }
}

/* The 16-byte key of a client address (IPv4 as ::ffff:a.b.c.d). */
static void gvd_peer_key(const struct sockaddr_storage *sa, unsigned char key[16])
{
    memset(key, 0, 16);
    if (sa->ss_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else if (sa->ss_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    }
}

static gvd_peer **gvd_peer_slot(gvd_server *s, const unsigned char key[16])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    gvd_peer **p = &s->peers[h % GVD_PEER_BUCKETS];
    while (*p && memcmp((*p)->addr, key, 16) != 0)
        p = &(*p)->next;
    return p;
}

static void gvd_conn_free(uv_handle_t *h)
{
    free(h->data);
}

static void gvd_conn_closed(uv_handle_t *h)
{
    gvd_conn *c = (gvd_conn *)h;
    gvd_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    if (c->bad_framing)
        s->nbad_framing--;
    if (c->peer) {
        if (--c->peer->conns == 0) {
            gvd_peer **p = gvd_peer_slot(s, c->peer->addr);
            *p = c->peer->next;
            free(c->peer);
        }
        free(c);
    } else {
        /* reserved: the lifetime timer frees it once closed */
        s->nreserved--;
        uv_close((uv_handle_t *)&c->lifetime, gvd_conn_free);
    }
    gvd_server_unref(s);
}

/* A reserved connection's time is up: shut it down (as at server close),
 * h2o reads EOF and frees it through its own path. */
static void gvd_on_lifetime(uv_timer_t *t)
{
    gvd_conn *c = t->data;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
        shutdown(fd, SHUT_RDWR);
}

/* The connection of `req` among those matching `want` (the few reserved
 * or ambiguous ones), or NULL: the client's address and port name it. */
static gvd_conn *gvd_conn_find(gvd_server *s, h2o_req_t *req, bool (*want)(const gvd_conn *))
{
    struct sockaddr_storage sa;
    socklen_t n = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&sa);
    if (n == 0)
        return NULL;
    for (gvd_conn *c = s->conns; c; c = c->next)
        if (want(c) && memcmp(&c->sa, &sa, n) == 0)
            return c;
    return NULL;
}

static bool gvd_is_reserved(const gvd_conn *c)
{
    return c->peer == NULL;
}

static bool gvd_is_bad_framing(const gvd_conn *c)
{
    return c->bad_framing;
}

bool gvd_conn_reserved(gvd_server *s, h2o_req_t *req)
{
    return s->nreserved > 0 && gvd_conn_find(s, req, gvd_is_reserved) != NULL;
}

bool gvd_conn_framing_bad(gvd_server *s, h2o_req_t *req)
{
    gvd_conn *c = s->nbad_framing > 0 ? gvd_conn_find(s, req, gvd_is_bad_framing) : NULL;
    if (!c)
        return false;
    req->http1_is_persistent = 0; /* where this request's body ends is unknown: nothing after it is trusted */
    gvd_http_error(req, 400, "bad_request",
                   "conflicting Content-Length headers (\"%s\" and \"%s\"): the body's length is ambiguous",
                   c->length, c->other);
    return true;
}

/* ---- the raw request scanner ------------------------------------------------- */

static uv__io_cb gvd_stream_io; /* libuv's own I/O callback for streams */

/* One "name: value" line of a head (without its CRLF; cut to sizeof line). */
static void gvd_raw_line(gvd_conn *c)
{
    char *l = c->line;
    size_t n = c->line_len;
    static const char cl[] = "content-length:", te[] = "transfer-encoding:", up[] = "upgrade:";
    if (n >= sizeof te - 1 && strncasecmp(l, te, sizeof te - 1) == 0)
        c->chunked = true; /* h2o lets a transfer coding win over a length */
    else if (n >= sizeof up - 1 && strncasecmp(l, up, sizeof up - 1) == 0)
        c->upgrade = true;
    if (n < sizeof cl - 1 || strncasecmp(l, cl, sizeof cl - 1) != 0)
        return;
    /* each comma-separated value ("5, 5" is one length, "5, 6" is not) */
    for (size_t p = sizeof cl - 1; p < n;) {
        size_t e = p;
        while (e < n && l[e] != ',')
            e++;
        size_t a = p, b = e;
        while (a < b && (l[a] == ' ' || l[a] == '\t'))
            a++;
        while (b > a && (l[b - 1] == ' ' || l[b - 1] == '\t'))
            b--;
        size_t len = b - a < sizeof c->length - 1 ? b - a : sizeof c->length - 1;
        if (!c->has_length) {
            memcpy(c->length, l + a, len);
            c->length[len] = '\0';
            c->has_length = true;
        } else if (strlen(c->length) != len || memcmp(c->length, l + a, len) != 0) {
            memcpy(c->other, l + a, len);
            c->other[len] = '\0';
            if (!c->bad_framing)
                c->srv->nbad_framing++;
            c->bad_framing = true;
        }
        p = e + 1;
    }
}

/* The end of a head: what follows it. */
static void gvd_raw_head_end(gvd_conn *c)
{
    char *end = NULL;
    unsigned long long n = c->has_length ? strtoull(c->length, &end, 10) : 0;
    if (c->chunked || c->upgrade || (c->has_length && (!end || *end)))
        c->raw = GVD_RAW_OFF; /* h2o frames (or refuses) these itself */
    else if (n > 0)
        c->raw = GVD_RAW_BODY, c->body_left = n;
    c->head_started = c->chunked = c->upgrade = c->has_length = false;
}

static void gvd_raw_scan(gvd_conn *c, const char *p, size_t n)
{
    for (size_t i = 0; i < n && c->raw != GVD_RAW_OFF; i++) {
        if (c->raw == GVD_RAW_BODY) {
            size_t k = c->body_left < n - i ? (size_t)c->body_left : n - i;
            c->body_left -= k;
            i += k - 1;
            if (c->body_left == 0)
                c->raw = GVD_RAW_HEAD;
            continue;
        }
        if (p[i] != '\n') {
            if (c->line_len < sizeof c->line)
                c->line[c->line_len++] = p[i];
            continue;
        }
        size_t len = c->line_len && c->line_len <= sizeof c->line && c->line[c->line_len - 1] == '\r'
                         ? c->line_len - 1
                         : c->line_len;
        c->line_len = len;
        if (len == 0 && c->head_started)
            gvd_raw_head_end(c);
        else if (len > 0 && c->head_started)
            gvd_raw_line(c);
        else if (len > 0)
            c->head_started = true; /* the request line */
        c->line_len = 0;
    }
}

static void gvd_raw_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    gvd_conn *c = (gvd_conn *)stream;
    if (nread > 0)
        gvd_raw_scan(c, buf->base, (size_t)nread);
    uv_read_cb h2o_cb = c->h2o_read_cb;
    h2o_cb(stream, nread, buf);
    /* h2o may have restarted reading from inside its callback (its own
     * read callback again): put ours back in front (c is still alive: h2o
     * closes the handle, and libuv frees nothing, within the callback). */
    if (stream->read_cb && stream->read_cb != gvd_raw_on_read) {
        c->h2o_read_cb = stream->read_cb;
        stream->read_cb = gvd_raw_on_read;
    }
}

/* libuv calls this before every read of the stream: make sure the bytes go
 * through gvd_raw_on_read, whatever read callback h2o last installed. */
static void gvd_raw_io(uv_loop_t *loop, uv__io_t *w, unsigned int events)
{
    gvd_conn *c = (gvd_conn *)((char *)w - offsetof(gvd_conn, tcp) - offsetof(uv_tcp_t, io_watcher));
    if (c->tcp.read_cb && c->tcp.read_cb != gvd_raw_on_read) {
        c->h2o_read_cb = c->tcp.read_cb;
        c->tcp.read_cb = gvd_raw_on_read;
    }
    gvd_stream_io(loop, w, events);
}

static void gvd_on_accept(uv_stream_t *listener, int status)
{
    gvd_server *s = listener->data;
    if (status < 0) {
        gvd_log(GVD_LOG_WARN, "http.accept", "error=%s", uv_strerror(status));
        return;
    }
    gvd_conn *c = calloc(1, sizeof *c);
    if (!c)
        return; /* the connection waits in the backlog; retried on the next accept */
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    int salen = sizeof c->sa;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 ||
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->sa, &salen) != 0) {
        uv_close((uv_handle_t *)&c->tcp, gvd_conn_free);
        return;
    }
    unsigned char key[16];
    gvd_peer_key(&c->sa, key);
    gvd_peer **slot = gvd_peer_slot(s, key);
    size_t held = *slot ? (*slot)->conns : 0;
    bool regular = s->nconns - s->nreserved < s->max_conns - s->reserve && held < s->max_per_peer;
    if (!regular && (s->nreserved >= s->reserve || s->nconns >= s->max_conns)) {
        gvd_refuse(s, &c->tcp, s->nconns - s->nreserved < s->max_conns - s->reserve);
        uv_close((uv_handle_t *)&c->tcp, gvd_conn_free);
        return;
    }
    if (regular && !*slot) {
        if (!(*slot = calloc(1, sizeof **slot))) {
            uv_close((uv_handle_t *)&c->tcp, gvd_conn_free);
            return;
        }
        memcpy((*slot)->addr, key, 16);
    }
    if (regular) {
        c->peer = *slot;
        c->peer->conns++;
    } else {
        uv_timer_init(s->loop, &c->lifetime);
        c->lifetime.data = c;
        uv_timer_start(&c->lifetime, gvd_on_lifetime, GVD_RESERVE_LIFETIME_MS, 0);
        s->nreserved++;
    }
    /* Small frames must leave now, not wait for Nagle (measured: p99
     * 45 -> 36 ms at 1k WebSocket clients). */
    uv_tcp_nodelay(&c->tcp, 1);
    c->srv = s;
    /* every byte h2o reads passes gvd_raw_scan first (see the top) */
    gvd_stream_io = c->tcp.io_watcher.cb;
    c->tcp.io_watcher.cb = gvd_raw_io;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    s->open_handles++;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, gvd_conn_closed);
    h2o_accept(&s->accept_ctx, sock);
}

/* ---- lifetime ---------------------------------------------------------------- */

static void gvd_server_free(gvd_server *s)
{
    h2o_config_dispose(&s->config);
    free(s->host);
    free(s->allow_origins);
    free(s);
}

static char *gvd_strdup_or_null(const char *v)
{
    if (!v)
        return NULL;
    size_t n = strlen(v) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, v, n);
    return d;
}

static bool gvd_addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return false;
}

static void gvd_server_unref(gvd_server *s)
{
    if (--s->open_handles == 0 && s->phase == 3)
        gvd_server_free(s);
}

static void gvd_handle_closed(uv_handle_t *h)
{
    gvd_server_unref(h->data);
}

/* The first address `host` resolves to (freeaddrinfo it), or NULL with err. */
static struct addrinfo *gvd_resolve(const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s:%d: %s", host, port, gai_strerror(rc));
        return NULL;
    }
    return res;
}

static int gvd_listen_allowed(const char *host, int port, const struct sockaddr *sa, bool has_token, bool insecure,
                              char *err, size_t errlen)
{
    if (gvd_addr_is_loopback(sa) || has_token || insecure)
        return 0;
    /* Anyone who can reach the port could run commands as this user. */
    snprintf(err, errlen,
             "refusing to listen on %s:%d without a token: it is not a loopback address, and anyone who "
             "can reach it could run commands as this user.  Set a token (--token-file PATH, --token or "
             "GALVANI_TOKEN), or pass --insecure if something else guards the port",
             host, port);
    return -1;
}

int gvd_server_check_listen(const char *host, int port, bool has_token, bool insecure, char *err, size_t errlen)
{
    struct addrinfo *res = gvd_resolve(host, port, err, errlen);
    if (!res)
        return -1;
    int rc = gvd_listen_allowed(host, port, res->ai_addr, has_token, insecure, err, errlen);
    freeaddrinfo(res);
    return rc;
}

static int gvd_bind(gvd_server *s, const char *host, int port, bool insecure, char *err, size_t errlen)
{
    struct addrinfo *res = gvd_resolve(host, port, err, errlen);
    if (!res)
        return -1;
    s->loopback = gvd_addr_is_loopback(res->ai_addr);
    if (gvd_listen_allowed(host, port, res->ai_addr, s->auth, insecure, err, errlen) != 0) {
        freeaddrinfo(res);
        return -1;
    }
    /* libuv reports some bind errors only at listen time */
    int rc = uv_tcp_bind(&s->listener, res->ai_addr, 0);
    freeaddrinfo(res);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, GVD_LISTEN_BACKLOG, gvd_on_accept);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s:%d: %s", host, port, uv_strerror(rc));
        return -1;
    }
    return 0;
}

gvd_server *gvd_server_new(uv_loop_t *loop, gvd_jobs *jobs, const gvd_server_opts *opts, char *err, size_t errlen)
{
    gvd_server_opts o = opts ? *opts : (gvd_server_opts){0};
    const char *host = o.host && *o.host ? o.host : "127.0.0.1";
    gvd_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* A client that disconnects while we write must cost an EPIPE, not
     * the process. */
    signal(SIGPIPE, SIG_IGN);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    s->started_at = (double)tv.tv_sec + tv.tv_usec / 1e6;
    s->loop = loop;
    s->jobs = jobs;
    s->max_body = o.max_body ? o.max_body : GVD_DEFAULT_MAX_BODY;
    s->max_header = o.max_header ? o.max_header : GVD_DEFAULT_MAX_HEADER;
    s->max_conns = o.max_connections ? o.max_connections : GVD_DEFAULT_MAX_CONNS;
    /* A quarter of the connections per client (at least 64, so that small
     * limits stay usable from one machine); a reserve of 1 per 128, at most
     * GVD_DEFAULT_RESERVE, never more than half. */
    s->max_per_peer = o.max_connections_per_client ? o.max_connections_per_client
                                                   : (s->max_conns / 4 > 64 ? s->max_conns / 4 : 64);
    s->reserve = o.reserved_connections ? o.reserved_connections
                                        : (s->max_conns / 128 < GVD_DEFAULT_RESERVE ? s->max_conns / 128
                                                                                    : GVD_DEFAULT_RESERVE);
    if (s->reserve > s->max_conns / 2)
        s->reserve = s->max_conns / 2;
    if (gvd_auth_init(s, &o, err, errlen) != 0) {
        free(s);
        return NULL;
    }
    s->nodes = o.nodes;
    s->nodes_ud = o.nodes_ud;
    s->forward = o.forward;
    s->forward_ud = o.forward_ud;
    s->locate = o.locate;
    s->locate_ud = o.locate_ud;
    s->host = gvd_strdup_or_null(host);
    s->allow_origins = gvd_strdup_or_null(o.allow_origins);
    if (!s->host || (o.allow_origins && !s->allow_origins)) {
        free(s->host);
        free(s->allow_origins);
        free(s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    h2o_config_init(&s->config);
    s->config.server_name = h2o_iovec_init(H2O_STRLIT("galvanid"));
    s->config.max_request_entity_size = s->max_body;
    /* Slow and idle clients (docs/api.md, "Limits"): h2o gives a request's
     * headers req_timeout from the first byte (trickling bytes does not
     * extend it) and closes a keep-alive connection idle that long; the
     * same bound for HTTP/2's idle connections. */
    uint64_t req_timeout = o.request_timeout_ms ? o.request_timeout_ms : GVD_DEFAULT_REQ_TIMEOUT_MS;
    s->config.http1.req_timeout = req_timeout;
    s->config.http2.idle_timeout = req_timeout;
    h2o_hostconf_t *host_conf = h2o_config_register_host(&s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host_conf, "/", 0);
    gvd_api_handler *handler = (gvd_api_handler *)h2o_create_handler(path, sizeof *handler);
    handler->super.on_req = gvd_on_req;
    handler->srv = s;
    /* streamed responses (SSE, logs of unknown length) on keep-alive
     * HTTP/1.1 connections need chunked encoding */
    /* relayed requests (relay.c): counted when answered, h2o's own 502 as
     * JSON; no second line of h2o's on stderr (relay.c logs the failure). */
    gvd_relay_filter_register(s, path);
    h2o_chunked_register(path);
    path->error_log.emit_request_errors = 0;
    s->config.proxy.io_timeout = GVD_RELAY_TIMEOUT_MS;
    gvd_json_error_filter *filter =
        (gvd_json_error_filter *)h2o_create_filter(&host_conf->fallback_path, sizeof *filter);
    filter->super.on_setup_ostream = gvd_json_error_setup;
    filter->srv = s;

    h2o_context_init(&s->ctx, loop, &s->config);
    s->ctx_ready = true;
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->config.hosts;

    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    uv_timer_init(loop, &s->close_timer);
    s->close_timer.data = s;
    s->open_handles = 2;
    if (gvd_bind(s, host, o.port, o.insecure, err, errlen) != 0)
        goto fail;
    s->push = gvd_push_new(loop, jobs, &o.push);
    if (!s->push) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    gvd_log(GVD_LOG_INFO, "http.listen",
            "host=%s port=%d max_body=%zu max_header=%zu max_connections=%zu request_timeout_ms=%llu auth=%s "
            "max_connections_per_client=%zu reserved_connections=%zu",
            host, gvd_server_port(s), s->max_body, s->max_header, s->max_conns, (unsigned long long)req_timeout,
            s->auth ? (s->read_auth ? "token+read_token" : "token") : "none", s->max_per_peer, s->reserve);
    return s;

fail:
    /* Nothing was accepted yet: only the listener and the timer are open. */
    s->jobs = NULL;
    s->phase = 3;
    h2o_context_dispose(&s->ctx);
    uv_close((uv_handle_t *)&s->listener, gvd_handle_closed);
    uv_close((uv_handle_t *)&s->close_timer, gvd_handle_closed);
    return NULL;
}

int gvd_server_port(const gvd_server *s)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

gvd_push *gvd_server_push(gvd_server *s)
{
    return s->push;
}

/* Phase 2 -> 3: poll until h2o has let go of every connection, then
 * dispose.  h2o_context_dispose runs uv_run(NOWAIT) on the loop itself to
 * reap its timers; called from a timer callback that nesting is harmless
 * (it only runs due timers, a zero-timeout poll and close callbacks). */
static void gvd_on_close_timer(uv_timer_t *t)
{
    gvd_server *s = t->data;
    if (s->nconns > 0)
        return;
    uv_timer_stop(t);
    h2o_context_dispose(&s->ctx);
    s->ctx_ready = false;
    s->phase = 3;
    gvd_log(GVD_LOG_INFO, "http.closed", "connections=0");
    uv_close((uv_handle_t *)&s->close_timer, gvd_handle_closed);
}

/* Phase 1 -> 2: the streams are gone (or given up on); shut down every
 * remaining connection under h2o. */
static void gvd_on_push_closed(void *ud)
{
    gvd_server *s = ud;
    s->push = NULL;
    s->phase = 2;
    for (gvd_conn *c = s->conns; c; c = c->next) {
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
            shutdown(fd, SHUT_RDWR);
    }
    uv_timer_start(&s->close_timer, gvd_on_close_timer, 0, 10);
}

void gvd_server_close(gvd_server *s)
{
    if (s->phase != 0)
        return;
    s->phase = 1;
    /* Requests waiting for the tick's commit, or for a new job's start,
     * get their real answer. */
    if (s->jobs)
        gvd_jobs_release_waiters(s->jobs);
    s->jobs = NULL;
    gvd_log(GVD_LOG_INFO, "http.closing", "connections=%zu", s->nconns);
    uv_close((uv_handle_t *)&s->listener, gvd_handle_closed);
    gvd_push_close(s->push, gvd_on_push_closed, s);
}
