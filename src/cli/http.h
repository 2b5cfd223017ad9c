/* galvani CLI: the HTTP client, a thin layer over libcurl.
 *
 * Every request of the CLI goes through gvc_http_request so that the
 * "daemon is not running" diagnosis and the error-body handling live in one
 * place.  No HTTP is written by hand: libcurl does the protocol. */
#ifndef GALVANI_CLI_HTTP_H
#define GALVANI_CLI_HTTP_H

#include <stddef.h>

/* A response body, always NUL-terminated (len excludes the NUL) so it can be
 * handed to jansson or printed directly. */
typedef struct gvc_buf {
    char *data;
    size_t len;
    size_t cap;
} gvc_buf;

/* Outcome of one request. */
typedef enum gvc_http_result {
    GVC_HTTP_OK = 0,        /* a response arrived (any status) */
    GVC_HTTP_UNREACHABLE,   /* connection refused / host not found: daemon down */
    GVC_HTTP_FAILED         /* any other transport error (timeout, reset...) */
} gvc_http_result;

typedef struct gvc_http {
    void *curl;             /* CURL *, kept opaque so callers need no curl.h */
    char *base;             /* server URL without a trailing slash */
    char *auth;             /* "Authorization: Bearer <token>" header, or NULL (owned) */
    char errbuf[256];       /* libcurl's message for the last failure */
} gvc_http;

/* Initialise for server base URL `server`.  Returns 0, or -1 on allocation /
 * libcurl failure.  Pair with gvc_http_free. */
int gvc_http_init(gvc_http *h, const char *server);
void gvc_http_free(gvc_http *h);

/* Send "Authorization: Bearer <token>" with every request from now on
 * (token NULL: none).  0, or -1 when out of memory. */
int gvc_http_set_token(gvc_http *h, const char *token);

/* The verdict on one request, printed the way every command reports it:
 * 0 for a 2xx; otherwise 1 after telling stderr why — galvanid is not
 * running (and how to start it), the transport failed, or the server's
 * error message (from its JSON body), with what to do about a 401 (no or a
 * wrong token).  `what` names the request when the body has no message. */
int gvc_http_check(const gvc_http *h, gvc_http_result r, long status, const gvc_buf *body, const char *what);

/* Send `method` to base+path.  `body` (JSON text) may be NULL: then no body
 * and no Content-Type are sent.  On GVC_HTTP_OK, *status is the HTTP status
 * and `out` holds the body (caller frees with gvc_buf_free). */
gvc_http_result gvc_http_request(gvc_http *h, const char *method, const char *path,
                                 const char *body, long *status, gvc_buf *out);

/* Called with each piece of a streamed 2xx body, as it arrives.  Return 0
 * to go on, nonzero to end the stream (the request then counts as OK). */
typedef int (*gvc_chunk_fn)(void *userdata, const char *data, size_t len);

/* While a stream is open, also wait for `fd` (-1: none) to be readable
 * and call fn(userdata, fd_readable) when it is and at least every `ms`
 * milliseconds: nonzero ends the stream (the request then counts as OK).
 * How `galvani watch` reads its keys and redraws on a resize. */
typedef struct gvc_wake {
    int fd;
    int ms;
    int (*fn)(void *userdata, int fd_readable);
    void *userdata;
} gvc_wake;

/* GET base+path and hand the body to `fn` piece by piece until the server
 * ends it or `fn` asks to stop (Server-Sent Events: the response never ends
 * by itself).  `wake` may be NULL.  A non-2xx body is not streamed: it is
 * collected in `errbody` (caller frees) for the error message.  *status as
 * for gvc_http_request. */
gvc_http_result gvc_http_stream(gvc_http *h, const char *path, gvc_chunk_fn fn, void *userdata,
                                const gvc_wake *wake, long *status, gvc_buf *errbody);

void gvc_buf_free(gvc_buf *b);
/* `s` percent-encoded for a query string value (a new string the caller
 * frees), or NULL when out of memory. */
char *gvc_http_escape(gvc_http *h, const char *s);

#endif
