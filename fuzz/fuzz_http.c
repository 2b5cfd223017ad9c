/*
 * fuzz_http.c — libFuzzer target for everything a client sends over HTTP:
 * the request line, headers, the URL path (the router, api/routes.c),
 * query strings (api/http.c gvd_query_parse: percent-decoding, unknown
 * names, limit/offset/tail/job numbers, status lists), request bodies
 * (Content-Type, JSON syntax, job specs for POST /jobs, params patches for
 * PATCH /jobs/{id}/params), chunked bodies and body limits (h2o, with the
 * server's JSON error filter), the Host/Origin guard, and the upgrade to
 * the streams — played to the real server over loopback TCP (fuzz_server.h).
 *
 * Input: byte 0 picks the server (bit 7: the one that requires a bearer
 * token, "fuzz-token", or "fuzz-read" for read-only access; else the one
 * without authentication) and seeds how the bytes are cut into writes; the
 * rest is what the client sends on one connection (several pipelined
 * requests allowed).
 * Jobs the input creates never start a process (fuzz_server.h forbids
 * fork/exec), and are deleted after each input.
 *
 * Checks, beyond "no crash / no sanitizer report / no leak": the server
 * closes the connection once the client is gone, and the first answer is
 * an HTTP/1.x response whose 4xx/5xx error, when it has a body, is the API's
 * JSON error shape {"error":{"code":"...","message":"..."}} (docs/api.md).
 */
#include "fuzz_server.h" /* first: it asks for _GNU_SOURCE (memmem) */

#include <ctype.h>
#include <jansson.h>
#include <string.h>
#include <strings.h>

/* The value of header `name` in the header block [h, end), or NULL. */
static const char *find_header(const char *h, const char *end, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    while (h < end) {
        const char *eol = memchr(h, '\n', (size_t)(end - h));
        if (!eol)
            eol = end;
        if ((size_t)(eol - h) > nl && strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            const char *v = h + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            *len = (size_t)(ve - v);
            return v;
        }
        h = eol + 1;
    }
    return NULL;
}

static void check_answer(const uint8_t *req, size_t req_len, const char *out, size_t n)
{
    if (n == 0)
        return; /* nothing answered: e.g. the client sent nothing complete */
    if (n < 12)
        return; /* cut by a reset before the status line was complete */
    FUZZ_CHECK(memcmp(out, "HTTP/1.1 ", 9) == 0 || memcmp(out, "HTTP/1.0 ", 9) == 0);
    FUZZ_CHECK(isdigit((unsigned char)out[9]) && isdigit((unsigned char)out[10]) &&
               isdigit((unsigned char)out[11]));
    int status = (out[9] - '0') * 100 + (out[10] - '0') * 10 + (out[11] - '0');
    FUZZ_CHECK(status >= 100 && status <= 599);
    if (status < 400 || (req_len >= 5 && memcmp(req, "HEAD ", 5) == 0))
        return;
    /* Known exception: a request h2o 2.2.5 cannot parse at all (broken
     * request line or headers) is answered by h2o's HTTP/1 code itself with
     * a fixed text/plain "Bad Request" and closed, before any filter of ours
     * could see it (docs/fuzzing.md, "Findings"). */
    static const char h2o_400[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                  "Connection: close\r\nContent-Length: 11\r\n\r\nBad Request";
    if (n == sizeof h2o_400 - 1 && memcmp(out, h2o_400, n) == 0)
        return;
    const char *hend = memmem(out, n, "\r\n\r\n", 4);
    if (!hend)
        return; /* headers cut short */
    size_t clen_len = 0, ct_len = 0;
    const char *clen = find_header(out, hend + 2, "content-length", &clen_len);
    const char *ct = find_header(out, hend + 2, "content-type", &ct_len);
    if (!clen || clen_len == 0 || clen_len > 9)
        return;
    size_t body_len = (size_t)strtoul(clen, NULL, 10);
    if (body_len == 0)
        return;
    const char *body = hend + 4;
    if ((size_t)(out + n - body) < body_len)
        return; /* body cut short */
    FUZZ_CHECK(ct && ct_len >= 16 && strncasecmp(ct, "application/json", 16) == 0);
    json_t *j = json_loadb(body, body_len, 0, NULL);
    FUZZ_CHECK(j != NULL);
    json_t *e = json_object_get(j, "error");
    FUZZ_CHECK(json_is_object(e));
    FUZZ_CHECK(json_is_string(json_object_get(e, "code")));
    /* Nothing runs out of memory here: this code is the fallback body used
     * when the real error could not be encoded (e.g. invalid UTF-8). */
    FUZZ_CHECK(strcmp(json_string_value(json_object_get(e, "code")), "out_of_memory") != 0);
    FUZZ_CHECK(json_is_string(json_object_get(e, "message")));
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* Bit 7 of byte 0: the server with tokens; the rest seeds the pieces. */
    fz_server *f = fz_server_get(data[0] & 0x80 ? FZ_AUTH : FZ_OPEN);
    char *out = NULL;
    size_t n = 0;
    bool reset = false;
    fz_exchange(f, data + 1, size - 1, 0, data[0] & 0x7F, &out, &n, &reset);
    check_answer(data + 1, size - 1, out, n);
    free(out);
    fz_reset_jobs(f);
    return 0;
}
