/*
 * guard.c — which web pages may talk to galvanid.
 *
 * Without a token (auth.c) galvanid runs commands for whoever reaches its
 * port: what protects it is that it listens on loopback.  Two browser
 * attacks get around that, and both are refused here.  With a token they
 * would fail anyway (a page can neither know the token nor make the browser
 * attach it: a bearer token is not a cookie), so then this is defence in
 * depth; the checks run before the token's, whatever the setup
 * (docs/security.md, "Tokens and the Host/Origin guard together"):
 *
 *   - DNS rebinding: a page on evil.example makes its own name resolve to
 *     127.0.0.1; the browser then treats galvanid as that page's origin and
 *     lets it POST /jobs with any command.  Such requests carry
 *     "Host: evil.example:8000".  While the server listens on a loopback
 *     address, a Host that is a domain name (it has a dot) is refused with
 *     403 forbidden_host unless it is *.localhost or the host it was told to
 *     listen on; IP literals, "localhost" and single-label names pass.
 *   - Cross-site requests: any page can make the browser send a POST without
 *     a body (POST /jobs/3/cancel) or open a WebSocket to localhost; the
 *     browser marks them with an Origin header.  Requests that change state,
 *     and stream handshakes, are refused (403 forbidden_origin) when they
 *     carry an Origin that is neither the server's own nor in
 *     allow_origins.  (POST /jobs and PATCH need Content-Type:
 *     application/json, which a cross-site page can only send after a CORS
 *     preflight that galvanid never grants.)
 *
 * Clients that are not browsers (curl, scripts, the CLI) send a loopback Host
 * and no Origin, so they never notice.
 */
#include "api_int.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

/* The host part of a Host / :authority value ("[::1]:8000" -> "::1"). */
static h2o_iovec_t gvd_host_part(h2o_iovec_t a)
{
    if (a.len > 0 && a.base[0] == '[') {
        const char *end = memchr(a.base, ']', a.len);
        return end ? h2o_iovec_init(a.base + 1, (size_t)(end - a.base - 1)) : h2o_iovec_init(NULL, 0);
    }
    size_t n = a.len;
    for (size_t i = a.len; i > 0; i--) {
        if (a.base[i - 1] == ':') {
            n = i - 1;
            break;
        }
        if (a.base[i - 1] < '0' || a.base[i - 1] > '9')
            break;
    }
    return h2o_iovec_init(a.base, n);
}

/* Could a web page's own name have been rebound to us?  Only a domain name
 * someone registered: it has a dot.  IP literals cannot be rebound (a page
 * at http://192.0.2.1/ talks to 192.0.2.1), single-label names come from
 * the local resolver, and RFC 6761 makes browsers resolve localhost and
 * *.localhost to loopback themselves. */
static bool gvd_is_rebindable_name(h2o_iovec_t h)
{
    char name[256];
    if (h.len == 0 || h.len >= sizeof name)
        return h.len != 0;
    memcpy(name, h.base, h.len);
    name[h.len] = '\0';
    unsigned char addr[16];
    if (inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1)
        return false;
    if (!strchr(name, '.'))
        return false;
    if (h.len > 10 && strcasecmp(name + h.len - 10, ".localhost") == 0)
        return false;
    return true;
}

static bool gvd_host_ok(gvd_server *s, h2o_req_t *req)
{
    if (!s->loopback)
        return true; /* listening beyond loopback: remote names are expected */
    h2o_iovec_t a = req->input.authority;
    if (a.base == NULL || a.len == 0)
        return true; /* no Host at all: not a browser */
    h2o_iovec_t h = gvd_host_part(a);
    if (!gvd_is_rebindable_name(h))
        return true;
    return s->host && strlen(s->host) == h.len && strncasecmp(s->host, h.base, h.len) == 0;
}

static bool gvd_origin_listed(const char *list, h2o_iovec_t origin)
{
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        size_t n = (size_t)(e - p);
        if ((n == 1 && *p == '*') || (n == origin.len && n > 0 && strncasecmp(p, origin.base, n) == 0))
            return true;
        p = e;
    }
    return false;
}

static bool gvd_origin_ok(gvd_server *s, h2o_req_t *req)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    if (i < 0)
        return true; /* not sent by a browser on behalf of some page */
    h2o_iovec_t origin = req->headers.entries[i].value;
    if (gvd_origin_listed(s->allow_origins, origin))
        return true;
    /* same origin: "<scheme>://" + exactly our Host (header values are not
     * NUL-terminated: bounded search) */
    size_t k = 0;
    while (k + 3 <= origin.len && memcmp(origin.base + k, "://", 3) != 0)
        k++;
    if (k + 3 > origin.len)
        return false;
    h2o_iovec_t rest = h2o_iovec_init(origin.base + k + 3, origin.len - k - 3);
    h2o_iovec_t a = req->input.authority;
    return a.base && rest.len == a.len && strncasecmp(rest.base, a.base, a.len) == 0;
}

int gvd_guard(gvd_server *s, h2o_req_t *req, bool changes_state)
{
    if (!gvd_host_ok(s, req)) {
        gvd_http_error(req, 403, "forbidden_host",
                       "Host \"%.*s\" is not a name of this server, which listens on loopback (DNS rebinding "
                       "protection): use localhost or 127.0.0.1",
                       (int)(req->input.authority.len > 200 ? 200 : req->input.authority.len),
                       req->input.authority.base);
        return -1;
    }
    if (changes_state && !gvd_origin_ok(s, req)) {
        ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
        h2o_iovec_t o = req->headers.entries[i].value;
        gvd_http_error(req, 403, "forbidden_origin",
                       "requests from web pages at %.*s are refused (cross-origin): allow that origin "
                       "explicitly to use galvanid from it",
                       (int)(o.len > 200 ? 200 : o.len), o.base);
        return -1;
    }
    return 0;
}
