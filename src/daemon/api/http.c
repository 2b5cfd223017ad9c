/*
 * http.c — small HTTP helpers for the handlers: JSON responses, the error
 * shape every failure shares ({"error":{"code":...,"message":...}}), query
 * strings, JSON request bodies, and the watch on a request answered later
 * (gvd_req_watch: held.c, relay.c).
 *
 * Response bodies live in the request's memory pool (h2o frees it with the
 * request) and always carry a Content-Length.
 */
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *gvd_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return status < 400 ? "OK" : "Error";
    }
}

void gvd_http_send(h2o_req_t *req, int status, const char *type, h2o_iovec_t body)
{
    req->res.status = status;
    req->res.reason = gvd_http_reason(status);
    req->res.content_length = body.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, strlen(type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    if (gvd_held_defer(req, body))
        return; /* sent once the store has what the request wrote */
    h2o_send_inline(req, body.base, body.len);
}

/* jansson only fails on allocation: answer with a static body. */
static void gvd_http_oom(h2o_req_t *req)
{
    static const char oom[] = "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}\n";
    gvd_http_send(req, 503, "application/json", h2o_iovec_init(oom, sizeof oom - 1));
}

void gvd_http_text(h2o_req_t *req, int status, const char *text, size_t n)
{
    if (!text) {
        gvd_http_oom(req);
        return;
    }
    /* No copy here: h2o_send_inline copies the body into the pool. */
    gvd_http_send(req, status, "application/json", h2o_iovec_init(text, n));
}

void gvd_http_json(h2o_req_t *req, int status, json_t *body, const char *location)
{
    char *text = body ? json_dumps(body, GVD_JSON_FLAGS) : NULL;
    json_decref(body);
    if (!text) {
        gvd_http_oom(req);
        return;
    }
    size_t n = strlen(text);
    char *buf = h2o_mem_alloc_pool(&req->pool, n + 1);
    memcpy(buf, text, n);
    buf[n] = '\n';
    free(text);
    /* h2o keeps the pointer: the caller's buffer may be gone by the time a
     * deferred answer (held.c) is sent. */
    if (location) {
        h2o_iovec_t loc = h2o_strdup(&req->pool, location, SIZE_MAX);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, loc.base, loc.len);
    }
    gvd_http_send(req, status, "application/json", h2o_iovec_init(buf, n + 1));
}

/* Append n bytes to the growing buffer *buf (*len used, *cap allocated). */
static int gvd_buf_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*cap - *len < n) {
        size_t c = *cap ? *cap : 4096;
        while (c - *len < n)
            c *= 2;
        char *b = realloc(*buf, c);
        if (!b)
            return -1;
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    return 0;
}

void gvd_http_json_list(h2o_req_t *req, const char *key, json_t *(*item)(void *ctx, size_t i), void *ctx, size_t n,
                        json_t *rest)
{
    /* {"<key>":[item, ...],<rest's members>}, one item at a time: a listing
     * built as one tree held every item's JSON at once (a thousand jobs
     * with large commands: tens of MB of small allocations, which the
     * allocator then kept); this way only one item's tree exists at a time,
     * and the text grows in one buffer (large, so returned to the system
     * when freed). */
    char *buf = NULL, *text = NULL;
    size_t len = 0, cap = 0;
    int rc = gvd_buf_append(&buf, &len, &cap, "{\"", 2) || gvd_buf_append(&buf, &len, &cap, key, strlen(key)) ||
             gvd_buf_append(&buf, &len, &cap, "\":[", 3);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *j = item(ctx, i);
        text = j ? json_dumps(j, GVD_JSON_FLAGS) : NULL;
        json_decref(j);
        rc = !text || (i && gvd_buf_append(&buf, &len, &cap, ",", 1)) ||
             gvd_buf_append(&buf, &len, &cap, text, strlen(text));
        free(text);
    }
    /* rest is an object: its text without the opening brace ends ours */
    text = rc == 0 && rest ? json_dumps(rest, GVD_JSON_FLAGS) : NULL;
    json_decref(rest);
    rc = rc || !text || gvd_buf_append(&buf, &len, &cap, "]", 1) ||
         gvd_buf_append(&buf, &len, &cap, text[1] == '}' ? "}" : ",", 1) ||
         gvd_buf_append(&buf, &len, &cap, text + 1, strlen(text + 1)) || gvd_buf_append(&buf, &len, &cap, "\n", 1);
    free(text);
    if (rc) {
        free(buf);
        gvd_http_json(req, 503, NULL, NULL); /* the static out-of-memory body */
        return;
    }
    char *body = h2o_mem_alloc_pool(&req->pool, len);
    memcpy(body, buf, len);
    free(buf);
    gvd_http_send(req, 200, "application/json", h2o_iovec_init(body, len));
}

h2o_iovec_t gvd_http_error_body(h2o_mem_pool_t *pool, const char *code, const char *message)
{
    json_t *j = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
    if (!j && message) {
        /* The message quotes what the client sent (a path, a field value),
         * which may not be UTF-8 or may have been cut inside a character;
         * jansson refuses invalid UTF-8.  Send it with its non-ASCII bytes
         * as '?' rather than an "out of memory" body (found by
         * fuzz/fuzz_http.c). */
        size_t n = strlen(message);
        char *ascii = h2o_mem_alloc_pool(pool, n + 1);
        for (size_t i = 0; i <= n; i++)
            ascii[i] = (unsigned char)message[i] >= 0x80 ? '?' : message[i];
        j = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", ascii);
    }
    char *text = j ? json_dumps(j, GVD_JSON_FLAGS) : NULL;
    json_decref(j);
    if (!text)
        return h2o_iovec_init(H2O_STRLIT("{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}\n"));
    size_t n = strlen(text);
    char *buf = h2o_mem_alloc_pool(pool, n + 1);
    memcpy(buf, text, n);
    buf[n] = '\n';
    free(text);
    return h2o_iovec_init(buf, n + 1);
}

void gvd_http_error(h2o_req_t *req, int status, const char *code, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gvd_http_send(req, status, "application/json", gvd_http_error_body(&req->pool, code, msg));
}

void gvd_http_error_from(h2o_req_t *req, const gvd_error *err)
{
    int status = err->http >= 400 && err->http <= 599 ? err->http : 500;
    if (err->field[0] && err->column > 0) {
        /* A rule condition that does not parse: where, for programs. */
        json_t *body = json_pack("{s:{s:s, s:s, s:s, s:i}}", "error", "code", err->code ? err->code : "error",
                                 "message", err->message, "field", err->field, "column", err->column);
        if (body) {
            gvd_http_json(req, status, body, NULL);
            return;
        }
    }
    if (err->field[0] && err->rule) {
        /* A params schema violation: the field and the rule, for programs. */
        json_t *body = json_pack("{s:{s:s, s:s, s:s, s:s}}", "error", "code", err->code ? err->code : "error",
                                 "message", err->message, "field", err->field, "rule", err->rule);
        if (body) {
            gvd_http_json(req, status, body, NULL);
            return;
        }
    }
    gvd_http_error(req, status, err->code ? err->code : "error", "%s", err->message);
}

bool gvd_http_headers_too_large(gvd_server *s, h2o_req_t *req)
{
    /* What the client sent, counted as on the wire: "METHOD path
     * HTTP/1.1\r\n" and "name: value\r\n" per header. */
    size_t n = req->input.method.len + req->input.path.len + 12;
    for (size_t i = 0; i < req->headers.size; i++)
        n += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    if (n <= s->max_header)
        return false;
    req->http1_is_persistent = 0; /* whatever follows on this connection is suspect */
    gvd_http_error(req, 431, "headers_too_large",
                   "the request line and headers are %zu bytes, more than the limit of %zu", n, s->max_header);
    return true;
}

void gvd_http_created(h2o_req_t *req, json_t *body, const char *collection, int64_t id)
{
    char loc[96];
    snprintf(loc, sizeof loc, "/%s/%lld", collection, (long long)id);
    gvd_http_json(req, 201, body, loc);
}

void gvd_http_no_content(h2o_req_t *req)
{
    /* No body and no Content-Length (RFC 9110 8.6); h2o's chunked filter
     * leaves 204 alone, so the connection stays reusable. */
    static h2o_generator_t gen = {NULL, NULL};
    req->res.status = 204;
    req->res.reason = gvd_http_reason(204);
    if (gvd_held_defer(req, h2o_iovec_init(NULL, 0)))
        return;
    h2o_start_response(req, &gen);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
}

bool gvd_http_method_is(h2o_req_t *req, const char *m)
{
    /* HEAD is GET without the body (RFC 9110 9.3.2): it takes GET's route,
     * and every response leaves through h2o_send_inline (or logtail.c),
     * which send a HEAD response's headers only. */
    if (strcmp(m, "GET") == 0 && h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")))
        return true;
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

void gvd_http_method_not_allowed(h2o_req_t *req, const char *allow)
{
    /* where GET is allowed, so is HEAD (gvd_http_method_is): "GET, POST"
     * becomes "GET, HEAD, POST" */
    const char *get = strstr(allow, "GET");
    if (get && !strstr(allow, "HEAD")) {
        size_t n = strlen(allow), at = (size_t)(get - allow) + 3;
        char *with = h2o_mem_alloc_pool(&req->pool, n + sizeof ", HEAD");
        memcpy(with, allow, at);
        memcpy(with + at, ", HEAD", 6);
        memcpy(with + at + 6, allow + at, n - at + 1);
        allow = with;
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
    gvd_http_error(req, 405, "method_not_allowed", "%.*s is not allowed on %.*s (allowed: %s)",
                   (int)req->method.len, req->method.base, (int)req->path_normalized.len,
                   req->path_normalized.base, allow);
}

/* ---- requests answered later (api_int.h) ---------------------------------- */

/* h2o clears the request's pool: tell the watch, if still watching. */
static void gvd_req_watch_disposed(void *p)
{
    gvd_req_watch **slot = p;
    if (*slot)
        (*slot)->req = NULL;
}

int gvd_req_watch_start(gvd_req_watch *w, h2o_req_t *req)
{
    gvd_req_watch **slot = h2o_mem_alloc_shared(&req->pool, sizeof *slot, gvd_req_watch_disposed);
    if (!slot)
        return -1;
    *w = (gvd_req_watch){req, slot};
    *slot = w;
    return 0;
}

bool gvd_req_watch_gone(const gvd_req_watch *w)
{
    return !w->req;
}

h2o_req_t *gvd_req_watch_take(gvd_req_watch *w)
{
    h2o_req_t *req = w->req;
    if (req)
        *w->slot = NULL; /* the pool may outlive the watch: its slot points nowhere now */
    /* Gone: the slot went with the pool; do not touch it. */
    *w = (gvd_req_watch){NULL, NULL};
    return req;
}

/* ---- query strings ---------------------------------------------------------- */

static int gvd_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode (and '+' -> ' ') into the pool; NULL if malformed. */
static char *gvd_decode(h2o_mem_pool_t *pool, const char *s, size_t n)
{
    char *out = h2o_mem_alloc_pool(pool, n + 1), *d = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n)
                return NULL;
            int hi = gvd_hexval(s[i + 1]), lo = gvd_hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return NULL;
            *d++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *d++ = s[i] == '+' ? ' ' : s[i];
        }
    }
    *d = '\0';
    if (strlen(out) != (size_t)(d - out))
        return NULL; /* an encoded NUL */
    return out;
}

bool gvd_query_key_is(const char *key, size_t n, const char *name)
{
    /* Compare as decoded ("tok%65n" is "token"), without allocating. */
    size_t j = 0;
    for (size_t i = 0; i < n; i++, j++) {
        char c = key[i];
        if (c == '%' && i + 2 < n && gvd_hexval(key[i + 1]) >= 0 && gvd_hexval(key[i + 2]) >= 0) {
            c = (char)(gvd_hexval(key[i + 1]) * 16 + gvd_hexval(key[i + 2]));
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (name[j] == '\0' || name[j] != c)
            return false;
    }
    return name[j] == '\0';
}

int gvd_query_parse(h2o_req_t *req, const char *const *names, gvd_query *q)
{
    memset(q, 0, sizeof *q);
    size_t nn = 0;
    for (; names[nn] && nn < sizeof q->names / sizeof q->names[0]; nn++)
        q->names[nn] = names[nn];
    if (req->query_at == SIZE_MAX)
        return 0;
    const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        if (pe > p) {
            const char *eq = memchr(p, '=', (size_t)(pe - p));
            const char *ke = eq ? eq : pe;
            char *key = gvd_decode(&req->pool, p, (size_t)(ke - p));
            char *val = eq ? gvd_decode(&req->pool, eq + 1, (size_t)(pe - eq - 1)) : gvd_decode(&req->pool, "", 0);
            if (!key || !val) {
                gvd_http_error(req, 400, "invalid_query", "malformed percent-encoding in the query string");
                return -1;
            }
            size_t i = 0;
            while (i < nn && strcmp(q->names[i], key) != 0)
                i++;
            if (i == nn && strcmp(key, "token") == 0) {
                p = pe + 1; /* the credential: auth.c's, on every route */
                continue;
            }
            if (i == nn) {
                char known[200] = "";
                for (size_t j = 0; j < nn; j++)
                    snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", j ? ", " : "",
                             q->names[j]);
                gvd_http_error(req, 400, "invalid_query", "unknown query parameter \"%s\" (known: %s)", key,
                               nn ? known : "none");
                return -1;
            }
            q->values[i] = val; /* the last one wins */
        }
        p = pe + 1;
    }
    return 0;
}

int gvd_query_paging(h2o_req_t *req, const gvd_query *q, int64_t *limit, int64_t *offset)
{
    const char *v;
    *limit = GVD_LIST_DEFAULT_LIMIT;
    *offset = 0;
    if ((v = gvd_query_get(q, "limit")) && (*limit = gvd_parse_uint(v, GVD_LIST_MAX_LIMIT)) < 0) {
        gvd_http_error(req, 400, "invalid_query", "limit must be an integer from 0 to %d, not \"%s\"",
                       GVD_LIST_MAX_LIMIT, v);
        return -1;
    }
    if ((v = gvd_query_get(q, "offset")) && (*offset = gvd_parse_uint(v, INT64_MAX / 2)) < 0) {
        gvd_http_error(req, 400, "invalid_query", "offset must be a non-negative integer, not \"%s\"", v);
        return -1;
    }
    return 0;
}

const char *gvd_query_get(const gvd_query *q, const char *name)
{
    for (size_t i = 0; i < sizeof q->names / sizeof q->names[0] && q->names[i]; i++)
        if (strcmp(q->names[i], name) == 0)
            return q->values[i];
    return NULL;
}

const char *gvd_query_value(h2o_req_t *req, const char *name)
{
    if (req->query_at == SIZE_MAX)
        return NULL;
    const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len, *found = NULL;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        if (eq && gvd_query_key_is(p, (size_t)(eq - p), name))
            found = gvd_decode(&req->pool, eq + 1, (size_t)(pe - eq - 1));
        p = pe + 1;
    }
    return found;
}

int64_t gvd_parse_uint(const char *s, int64_t max)
{
    if (!s || !*s)
        return -1;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        if (v > (max - (*s - '0')) / 10)
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* ---- request bodies ------------------------------------------------------ */

/* application/json, or any application/...+json (merge-patch+json), with
 * optional parameters ("; charset=utf-8"). */
static bool gvd_is_json_type(h2o_iovec_t v)
{
    size_t n = 0;
    while (n < v.len && v.base[n] != ';' && v.base[n] != ' ' && v.base[n] != '\t')
        n++;
    if (n == 16 && strncasecmp(v.base, "application/json", 16) == 0)
        return true;
    return n > 17 && strncasecmp(v.base, "application/", 12) == 0 && strncasecmp(v.base + n - 5, "+json", 5) == 0;
}

json_t *gvd_http_json_body(h2o_req_t *req, const char *what)
{
    ssize_t ct = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (req->entity.base == NULL || req->entity.len == 0) {
        gvd_http_error(req, 400, "invalid_json", "a JSON object is required as the request body (%s)", what);
        return NULL;
    }
    if (ct < 0 || !gvd_is_json_type(req->headers.entries[ct].value)) {
        gvd_http_error(req, 415, "unsupported_media_type",
                       "the body must be JSON: send \"Content-Type: application/json\" (got %s%.*s%s)",
                       ct < 0 ? "no Content-Type" : "\"", ct < 0 ? 0 : (int)req->headers.entries[ct].value.len,
                       ct < 0 ? "" : req->headers.entries[ct].value.base, ct < 0 ? "" : "\"");
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(req->entity.base, req->entity.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        /* jansson names the place: line, column (characters) and byte */
        char msg[400];
        snprintf(msg, sizeof msg, "invalid JSON at line %d, column %d (byte %d): %s", jerr.line, jerr.column,
                 jerr.position, jerr.text);
        json_t *body = json_pack("{s:{s:s, s:s, s:i, s:i}}", "error", "code", "invalid_json", "message", msg,
                                 "line", jerr.line, "column", jerr.column);
        gvd_http_json(req, 400, body, NULL);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        gvd_http_error(req, 400, "invalid_json", "the request body must be a JSON object (%s)", what);
        return NULL;
    }
    return j;
}
