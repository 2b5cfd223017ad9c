/*
 * webhook.c — see webhook.h.
 *
 * The HTTP is libcurl's (its multi interface, driven by the daemon's libuv
 * loop), not ours: connection handling, TLS with certificate verification,
 * redirects refused, timeouts.  The glue is the usual one for an event
 * loop: curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION: a
 * uv_poll per socket) and when to call it back (CURLMOPT_TIMERFUNCTION: one
 * uv_timer); we tell curl what happened (curl_multi_socket_action) and read
 * the finished transfers (curl_multi_info_read).  Name resolution is curl's
 * threaded resolver: the loop never waits.
 *
 * One delivery is one body and its attempts: an attempt is one easy handle
 * (one connection); when it ends without a 2xx, the delivery waits its
 * backoff on its own timer and tries again, or gives up after the last
 * attempt.  Each outcome is one log line (docs/api.md, "Webhook").
 *
 * Ownership: the webhook owns its deliveries (a list), the multi handle, the
 * curl timer and the per-socket polls (freed in their close callbacks).  A
 * closing webhook frees itself once every handle it opened has closed.
 */
#include "webhook.h"

#include <curl/curl.h>
#include <math.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/log.h"

struct gvd_webhook {
    uv_loop_t *loop;
    char *url;                 /* owned */
    long timeout_ms;
    unsigned attempts;
    CURLM *multi;
    struct curl_slist *headers; /* owned */
    uv_timer_t curl_timer;     /* curl's own timeouts */
    int open_handles;          /* curl_timer, the polls, the deliveries' timers */
    bool closing;
    struct gvd_delivery *first; /* owned */
};

typedef struct gvd_delivery {
    struct gvd_delivery *prev, *next;
    gvd_webhook *w;
    char *body;                /* owned */
    char what[160];
    unsigned attempt;          /* 1, 2, ... */
    CURL *easy;                /* the attempt in flight, or NULL */
    uv_timer_t backoff;
    char error[CURL_ERROR_SIZE + 64];
} gvd_delivery;

/* A socket curl asked us to watch. */
typedef struct gvd_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    gvd_webhook *w;
} gvd_sock;

static void gvd_check_done(gvd_webhook *w);

/* ---- freeing ------------------------------------------------------------- */

static void gvd_maybe_release(gvd_webhook *w)
{
    if (!w->closing || w->open_handles > 0 || w->first)
        return;
    if (w->multi)
        curl_multi_cleanup(w->multi);
    curl_slist_free_all(w->headers);
    free(w->url);
    free(w);
}

static void gvd_handle_closed(uv_handle_t *h)
{
    gvd_webhook *w = h->data;
    w->open_handles--;
    gvd_maybe_release(w);
}

static void gvd_sock_closed(uv_handle_t *h)
{
    gvd_sock *s = (gvd_sock *)h;
    gvd_webhook *w = s->w;
    free(s);
    w->open_handles--;
    gvd_maybe_release(w);
}

static void gvd_delivery_timer_closed(uv_handle_t *h)
{
    gvd_delivery *d = h->data;
    gvd_webhook *w = d->w;
    free(d->body);
    free(d);
    w->open_handles--;
    gvd_maybe_release(w);
}

/* The delivery is over (delivered, given up or dropped): unlink it; its
 * memory goes with its timer. */
static void gvd_delivery_end(gvd_delivery *d)
{
    gvd_webhook *w = d->w;
    if (d->easy) {
        curl_multi_remove_handle(w->multi, d->easy);
        curl_easy_cleanup(d->easy);
        d->easy = NULL;
    }
    if (d->prev)
        d->prev->next = d->next;
    else
        w->first = d->next;
    if (d->next)
        d->next->prev = d->prev;
    d->backoff.data = d;
    uv_close((uv_handle_t *)&d->backoff, gvd_delivery_timer_closed);
}

/* ---- curl <-> libuv ------------------------------------------------------- */

static void gvd_on_poll(uv_poll_t *h, int status, int events)
{
    gvd_sock *s = (gvd_sock *)h;
    int flags = status < 0 ? CURL_CSELECT_ERR : 0;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    gvd_webhook *w = s->w;
    (void)curl_multi_socket_action(w->multi, s->fd, flags, &running);
    gvd_check_done(w);
}

static int gvd_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    gvd_webhook *w = userp;
    gvd_sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, gvd_sock_closed);
            curl_multi_assign(w->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || uv_poll_init_socket(w->loop, &s->poll, fd) != 0) {
            free(s);
            return -1; /* curl fails the transfer */
        }
        s->fd = fd;
        s->w = w;
        w->open_handles++;
        curl_multi_assign(w->multi, fd, s);
    }
    int events = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
    return uv_poll_start(&s->poll, events, gvd_on_poll) == 0 ? 0 : -1;
}

static void gvd_on_curl_timer(uv_timer_t *t)
{
    gvd_webhook *w = t->data;
    int running;
    (void)curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    gvd_check_done(w);
}

static int gvd_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    gvd_webhook *w = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&w->curl_timer);
    else
        uv_timer_start(&w->curl_timer, gvd_on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- attempts -------------------------------------------------------------- */

static void gvd_attempt(gvd_delivery *d);

static void gvd_on_backoff(uv_timer_t *t)
{
    gvd_attempt(t->data);
}

/* An attempt failed (d->error says why): retry after the backoff, or give up. */
static void gvd_failed(gvd_delivery *d)
{
    if (d->attempt < d->w->attempts && !d->w->closing) {
        uint64_t backoff = 500u << (d->attempt - 1 < 10 ? d->attempt - 1 : 10);
        gvd_log(GVD_LOG_WARN, "rule.webhook_retry", "%s attempt=%u error=\"%s\" retry_in_ms=%llu", d->what,
                d->attempt, d->error, (unsigned long long)backoff);
        uv_timer_start(&d->backoff, gvd_on_backoff, backoff, 0);
        return;
    }
    gvd_log(GVD_LOG_ERROR, "rule.webhook_failed", "%s attempts=%u error=\"%s\"", d->what, d->attempt, d->error);
    gvd_delivery_end(d);
}

static void gvd_check_done(gvd_webhook *w)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(w->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *easy = m->easy_handle;
        CURLcode result = m->data.result;
        gvd_delivery *d = NULL;
        long status = 0;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&d);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(w->multi, easy);
        curl_easy_cleanup(easy);
        if (!d)
            continue;
        d->easy = NULL;
        if (result == CURLE_OK && status >= 200 && status <= 299) {
            gvd_log(GVD_LOG_INFO, "rule.webhook", "%s status=%ld attempts=%u", d->what, status, d->attempt);
            gvd_delivery_end(d);
            continue;
        }
        if (result == CURLE_OPERATION_TIMEDOUT)
            snprintf(d->error, sizeof d->error, "timed out");
        else if (result != CURLE_OK && d->error[0] == '\0')
            snprintf(d->error, sizeof d->error, "%s", curl_easy_strerror(result));
        else if (result == CURLE_OK)
            snprintf(d->error, sizeof d->error, "answered %ld", status);
        gvd_failed(d);
    }
}

static void gvd_attempt(gvd_delivery *d)
{
    gvd_webhook *w = d->w;
    d->attempt++;
    d->error[0] = '\0';
    CURL *e = curl_easy_init();
    if (!e || curl_easy_setopt(e, CURLOPT_URL, w->url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, w->headers) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, w->timeout_ms) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        /* the operator's URL, exactly: a redirect could send the event elsewhere */
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_USERAGENT, "galvanid") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->error) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)d) != CURLE_OK ||
        curl_multi_add_handle(w->multi, e) != CURLM_OK) {
        if (e)
            curl_easy_cleanup(e);
        snprintf(d->error, sizeof d->error, "cannot start the request (out of memory)");
        d->attempt = w->attempts; /* no retry can do better */
        gvd_failed(d);
        return;
    }
    d->easy = e;
}

/* ---- the API ----------------------------------------------------------------- */

/* http(s)://HOST[:PORT][/PATH], checked with curl's own parser; the host
 * is resolved once here, so a typo stops galvanid with a clear message
 * instead of failing every delivery. */
static int gvd_url_check(const char *url, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = -1;
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(err, errlen, "the webhook URL is not a URL (http://HOST[:PORT]/PATH): '%.100s'", url);
    } else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        snprintf(err, errlen, "the webhook URL must be http:// or https://, not '%.100s'", url);
    } else if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        snprintf(err, errlen, "the webhook URL has a bad port: '%.100s'", url);
    } else {
        /* [::1] comes back bracketed: getaddrinfo wants it bare */
        char bare[256];
        size_t hl = strlen(host);
        snprintf(bare, sizeof bare, "%.*s", (int)(host[0] == '[' && hl > 2 ? hl - 2 : hl),
                 host[0] == '[' ? host + 1 : host);
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
        int g = getaddrinfo(bare, port, &hints, &res);
        if (g != 0 || !res)
            snprintf(err, errlen, "cannot resolve the webhook host '%.100s': %s", bare, gai_strerror(g));
        else
            rc = 0;
        if (res)
            freeaddrinfo(res);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

gvd_webhook *gvd_webhook_new(uv_loop_t *loop, const char *url, double timeout_s, unsigned attempts, char *err,
                             size_t errlen)
{
    /* Once per process, before any thread of curl's: galvanid calls this
     * at start, from the loop thread. */
    static bool curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(err, errlen, "cannot initialise libcurl");
            return NULL;
        }
        curl_ready = true;
    }
    if (gvd_url_check(url, err, errlen) != 0)
        return NULL;
    gvd_webhook *w = calloc(1, sizeof *w);
    if (!w || !(w->url = strdup(url)) || !(w->multi = curl_multi_init()) ||
        !(w->headers = curl_slist_append(NULL, "Content-Type: application/json")) ||
        uv_timer_init(loop, &w->curl_timer) != 0) {
        if (w) {
            if (w->multi)
                curl_multi_cleanup(w->multi);
            curl_slist_free_all(w->headers);
            free(w->url);
        }
        free(w);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->loop = loop;
    w->timeout_ms = (long)ceil((timeout_s > 0 ? timeout_s : 5) * 1000.0);
    w->attempts = attempts ? attempts : 1;
    w->curl_timer.data = w;
    w->open_handles = 1;
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, gvd_socket_cb);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, gvd_timer_cb);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
    return w;
}

void gvd_webhook_post(gvd_webhook *w, const char *body, const char *what)
{
    if (!w || w->closing)
        return;
    gvd_delivery *d = calloc(1, sizeof *d);
    if (!d || !(d->body = strdup(body)) || uv_timer_init(w->loop, &d->backoff) != 0) {
        gvd_log(GVD_LOG_ERROR, "rule.webhook_failed", "%s error=\"out of memory\"", what);
        if (d)
            free(d->body);
        free(d);
        return;
    }
    d->w = w;
    d->backoff.data = d;
    w->open_handles++;
    snprintf(d->what, sizeof d->what, "%s", what);
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
    while (w->first) {
        gvd_log(GVD_LOG_WARN, "rule.webhook_dropped", "%s reason=\"galvanid is stopping\"", w->first->what);
        gvd_delivery_end(w->first);
    }
    uv_timer_stop(&w->curl_timer);
    uv_close((uv_handle_t *)&w->curl_timer, gvd_handle_closed);
}
