/* galvani CLI: libcurl wrapper (see http.h). */
#include "http.h"
#include "report.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libcurl hands the body over in pieces; append each to a growing buffer,
 * keeping it NUL-terminated.  Returning less than the piece's size makes
 * libcurl abort the transfer, which is how an allocation failure is reported. */
static size_t gvc_on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    gvc_buf *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return 0;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

void gvc_buf_free(gvc_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int gvc_http_init(gvc_http *h, const char *server)
{
    memset(h, 0, sizeof *h);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    size_t n = strlen(server);
    /* "http://host:8000/" and "http://host:8000" must build the same URLs. */
    while (n > 0 && server[n - 1] == '/')
        n--;
    h->base = malloc(n + 1);
    if (!h->base) {
        curl_global_cleanup();
        return -1;
    }
    memcpy(h->base, server, n);
    h->base[n] = '\0';
    h->curl = curl_easy_init();
    if (!h->curl) {
        free(h->base);
        h->base = NULL;
        curl_global_cleanup();
        return -1;
    }
    return 0;
}

void gvc_http_free(gvc_http *h)
{
    if (h->curl) {
        curl_easy_cleanup(h->curl);
        curl_global_cleanup();
    }
    free(h->base);
    free(h->auth);
    memset(h, 0, sizeof *h);
}

int gvc_http_set_token(gvc_http *h, const char *token)
{
    free(h->auth);
    h->auth = NULL;
    if (!token)
        return 0;
    static const char prefix[] = "Authorization: Bearer ";
    h->auth = malloc(sizeof prefix + strlen(token));
    if (!h->auth)
        return -1;
    strcpy(h->auth, prefix);
    strcat(h->auth, token);
    return 0;
}

/* The request headers every request carries: the token, if any, and
 * `extra`.  NULL when out of memory. */
static struct curl_slist *gvc_headers(const gvc_http *h, const char *extra)
{
    struct curl_slist *l = extra ? curl_slist_append(NULL, extra) : NULL;
    if (extra && !l)
        return NULL;
    if (h->auth) {
        struct curl_slist *n = curl_slist_append(l, h->auth);
        if (!n) {
            curl_slist_free_all(l);
            return NULL;
        }
        l = n;
    }
    return l;
}

int gvc_http_check(const gvc_http *h, gvc_http_result r, long status, const gvc_buf *body, const char *what)
{
    if (r == GVC_HTTP_UNREACHABLE) {
        gvc_error("unreachable", "cannot reach galvanid at %s (is it running? start it with: bash scripts/run)",
                  h->base);
        return 1;
    }
    if (r != GVC_HTTP_OK) {
        gvc_error("connection_failed", "%s to %s failed: %s", what, h->base, h->errbuf);
        return 1;
    }
    if (status >= 200 && status < 300)
        return 0;
    /* Every daemon error is {"error":{"code":..,"message":..}}; the message
     * names what is wrong (e.g. "no job 42"), so it is what people see. */
    json_t *doc = body && body->data ? json_loads(body->data, 0, NULL) : NULL;
    if (gvc_error_from_daemon(json_object_get(doc, "error"), status) != 0)
        gvc_error("http_error", "%s: HTTP %ld", what, status);
    json_decref(doc);
    if (status == 401 && !gvc_report_is_json())
        fputs(h->auth ? "galvani: galvanid refused the token given (--token or GALVANI_TOKEN)\n"
                      : "galvani: this galvanid needs a token: pass --token TOKEN or set GALVANI_TOKEN\n",
              stderr);
    return 1;
}

gvc_http_result gvc_http_request(gvc_http *h, const char *method, const char *path,
                                 const char *body, long *status, gvc_buf *out)
{
    CURL *c = h->curl;
    memset(out, 0, sizeof *out);
    *status = 0;
    h->errbuf[0] = '\0';

    size_t ulen = strlen(h->base) + strlen(path) + 1;
    char *url = malloc(ulen);
    if (!url) {
        strcpy(h->errbuf, "out of memory");
        return GVC_HTTP_FAILED;
    }
    strcpy(url, h->base);
    strcat(url, path);

    /* The handle is reused between requests (one connection for a multi-id
     * `pause 1 2 3`); reset clears the previous request's options. */
    curl_easy_reset(c);
    /* A body is always JSON.  Without a body, "Content-Type:" with no value
     * tells libcurl to send none (it would otherwise add a form type to an
     * empty POST, which the daemon refuses on some routes). */
    struct curl_slist *hdrs = gvc_headers(h, body ? "Content-Type: application/json" : "Content-Type:");
    if (!hdrs) {
        free(url);
        strcpy(h->errbuf, "out of memory");
        return GVC_HTTP_FAILED;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, gvc_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    /* A daemon that accepts but never answers should not hang the terminal
     * forever; logs can be large, so only the connect phase is bounded hard. */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "galvani-cli");

    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    free(url);
    if (rc != CURLE_OK) {
        if (!h->errbuf[0])
            strncpy(h->errbuf, curl_easy_strerror(rc), sizeof h->errbuf - 1);
        gvc_buf_free(out);
        if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
            return GVC_HTTP_UNREACHABLE;
        return GVC_HTTP_FAILED;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    /* An empty body (204) still gets a valid empty string. */
    if (!out->data) {
        out->data = calloc(1, 1);
        if (!out->data) {
            strcpy(h->errbuf, "out of memory");
            return GVC_HTTP_FAILED;
        }
    }
    return GVC_HTTP_OK;
}

/* State of one streamed request, seen by the write callback. */
typedef struct gvc_stream {
    CURL *curl;
    gvc_chunk_fn fn;
    void *userdata;
    gvc_buf *errbody;
    int stopped;        /* fn asked to stop: the abort is not an error */
} gvc_stream;

static size_t gvc_on_stream(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    gvc_stream *s = userdata;
    size_t n = size * nmemb;
    long code = 0;
    /* The status line is parsed before the first body byte arrives, so the
     * code is known here: only a 2xx body is a stream. */
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code < 200 || code >= 300)
        return gvc_on_body(ptr, size, nmemb, s->errbody);
    if (s->fn(s->userdata, ptr, n) != 0) {
        s->stopped = 1;
        return 0;  /* makes libcurl end the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

/* Drive the transfer with the multi interface, which can wait on the
 * socket and on `w->fd` (the keyboard) at once, and wakes at least every
 * w->ms so a resize or a key is handled at once, not when the daemon next
 * sends something (it may stay quiet for 15 s).  Returns the transfer's
 * result; *woke is set when w->fn ended it. */
static CURLcode gvc_perform_waking(CURL *c, const gvc_wake *w, int *woke)
{
    *woke = 0;
    CURLM *m = curl_multi_init();
    if (!m)
        return CURLE_OUT_OF_MEMORY;
    if (curl_multi_add_handle(m, c) != CURLM_OK) {
        curl_multi_cleanup(m);
        return CURLE_OUT_OF_MEMORY;
    }
    CURLcode rc = CURLE_OK;
    int running = 1;
    while (running) {
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            rc = CURLE_RECV_ERROR;
            break;
        }
        if (!running)
            break;
        struct curl_waitfd wfd = {.fd = w->fd, .events = CURL_WAIT_POLLIN, .revents = 0};
        int n = 0;
        if (curl_multi_poll(m, w->fd >= 0 ? &wfd : NULL, w->fd >= 0 ? 1u : 0u, w->ms, &n) != CURLM_OK) {
            rc = CURLE_RECV_ERROR;
            break;
        }
        if (w->fn(w->userdata, (wfd.revents & CURL_WAIT_POLLIN) != 0)) {
            *woke = 1;
            break;
        }
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == c)
            rc = msg->data.result;
    /* Failing to detach only leaks the multi handle's bookkeeping, and the
     * easy handle is reset before its next use anyway. */
    (void)curl_multi_remove_handle(m, c);
    (void)curl_multi_cleanup(m);
    return rc;
}

gvc_http_result gvc_http_stream(gvc_http *h, const char *path, gvc_chunk_fn fn, void *userdata,
                                const gvc_wake *wake, long *status, gvc_buf *errbody)
{
    CURL *c = h->curl;
    memset(errbody, 0, sizeof *errbody);
    *status = 0;
    h->errbuf[0] = '\0';
    char *url = malloc(strlen(h->base) + strlen(path) + 1);
    if (!url) {
        strcpy(h->errbuf, "out of memory");
        return GVC_HTTP_FAILED;
    }
    strcpy(url, h->base);
    strcat(url, path);
    gvc_stream s = {.curl = c, .fn = fn, .userdata = userdata, .errbody = errbody};
    struct curl_slist *hdrs = NULL;
    if (h->auth && !(hdrs = gvc_headers(h, NULL))) {
        free(url);
        strcpy(h->errbuf, "out of memory");
        return GVC_HTTP_FAILED;
    }
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, gvc_on_stream);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "galvani-cli");
    /* No total timeout: a stream lasts as long as the user watches.  The
     * daemon sends a keep-alive comment every 15 s, so 60 s of silence means
     * the connection is dead. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    int woke = 0;
    CURLcode rc = wake ? gvc_perform_waking(c, wake, &woke) : curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    free(url);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && s.stopped)) {
        if (!h->errbuf[0])
            strncpy(h->errbuf, curl_easy_strerror(rc), sizeof h->errbuf - 1);
        gvc_buf_free(errbody);
        if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
            return GVC_HTTP_UNREACHABLE;
        return GVC_HTTP_FAILED;
    }
    if (!errbody->data) {
        errbody->data = calloc(1, 1);
        if (!errbody->data) {
            strcpy(h->errbuf, "out of memory");
            return GVC_HTTP_FAILED;
        }
    }
    return GVC_HTTP_OK;
}

char *gvc_http_escape(gvc_http *h, const char *s)
{
    char *e = curl_easy_escape(h->curl, s, 0);
    char *out = e ? strdup(e) : NULL; /* ours to free(), not curl_free() */
    curl_free(e);
    return out;
}
