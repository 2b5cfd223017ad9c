/*
 * auth.c — bearer tokens: who may use the API, and with which role.
 *
 * galvanid runs commands for whoever may POST /jobs, so once it listens
 * beyond loopback it needs to know who is asking.  Two roles, each an
 * optional secret given at start (docs/security.md):
 *
 *   token       full control: everything
 *   read_token  watch only: GET / HEAD (which includes opening /ws,
 *               /ws/jobs and /events); anything else is 403 read_only_token.
 *               It sees a job's spec with the env values hidden (they may
 *               be secrets: gvd_auth_read_only, GET /jobs/{id})
 *
 * A request proves its role with "Authorization: Bearer <token>", or with
 * "?token=<token>" in the query for the clients that cannot set a header
 * (a browser's WebSocket and EventSource).  No or a wrong token is 401 with
 * "WWW-Authenticate: Bearer".  /healthz and everything that is not an API
 * route (the dashboard's page and assets, which hold no data and must load
 * so that the page can ask for a token; 404s) need no token.
 *
 * Constant time: the server keeps only the SHA-256 digests of its tokens and
 * compares the digest of what the client sent with CRYPTO_memcmp.  Digests
 * have a fixed length, so neither the comparison's duration nor an early
 * length check says anything about the token's bytes or length.
 *
 * Never logged: the tokens themselves are forgotten after hashing, and the
 * one log line that shows a request path (routes.c, debug level) passes it
 * through gvd_auth_redact first.
 */
#include "api_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define GVD_TOKEN_MAX 4096

/* RFC 6750's b64token: what may follow "Bearer " without quoting, and what
 * survives a query string once percent-decoded. */
static bool gvd_token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
}

int gvd_token_check(const char *what, const char *tok, char *err, size_t errlen)
{
    size_t n = strlen(tok);
    if (n == 0) {
        snprintf(err, errlen, "%s is empty", what);
        return -1;
    }
    if (n > GVD_TOKEN_MAX) {
        snprintf(err, errlen, "%s is longer than %d characters", what, GVD_TOKEN_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!gvd_token_char(tok[i])) {
            /* Do not echo the token: the message may end up in a log. */
            snprintf(err, errlen,
                     "%s has a character that cannot go in an Authorization header (character %zu): use "
                     "letters, digits and - . _ ~ + / = only (e.g. openssl rand -hex 32)",
                     what, i + 1);
            return -1;
        }
    }
    return 0;
}

int gvd_token_read_file(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open the token file %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat the token file %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    /* Like ssh with a private key: a secret others can read is no secret. */
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen,
                 "the token file %s is accessible by group or others (mode %04o): make it private "
                 "with chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "the token file %s is not a regular file", path);
        close(fd);
        return -1;
    }
    char buf[GVD_TOKEN_MAX + 2];
    size_t len = 0;
    ssize_t k;
    while (len < sizeof buf && (k = read(fd, buf + len, sizeof buf - len)) != 0) {
        if (k < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "cannot read the token file %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        len += (size_t)k;
    }
    close(fd);
    /* The first line is the token (a trailing newline, with or without \r,
     * is how editors and `echo` leave it). */
    size_t n = 0;
    while (n < len && buf[n] != '\n')
        n++;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n >= outlen || n > GVD_TOKEN_MAX) {
        snprintf(err, errlen, "the token in %s is longer than %d characters", path, GVD_TOKEN_MAX);
        return -1;
    }
    memcpy(out, buf, n);
    out[n] = '\0';
    OPENSSL_cleanse(buf, sizeof buf); /* not left on the stack */
    char what[300];
    snprintf(what, sizeof what, "the token in %s", path);
    return gvd_token_check(what, out, err, errlen);
}

static void gvd_digest(const char *tok, size_t len, unsigned char out[GVD_DIGEST_LEN])
{
    SHA256((const unsigned char *)tok, len, out);
}

int gvd_auth_init(gvd_server *s, const gvd_server_opts *o, char *err, size_t errlen)
{
    if (o->read_token && !o->token) {
        snprintf(err, errlen, "a read-only token needs a full token too (--token or --token-file): otherwise "
                              "nobody could control the jobs");
        return -1;
    }
    if (o->token && gvd_token_check("the token", o->token, err, errlen) != 0)
        return -1;
    if (o->read_token && gvd_token_check("the read-only token", o->read_token, err, errlen) != 0)
        return -1;
    if (o->token && o->read_token && strcmp(o->token, o->read_token) == 0) {
        snprintf(err, errlen, "the read-only token must differ from the full token");
        return -1;
    }
    s->auth = o->token != NULL;
    if (o->token)
        gvd_digest(o->token, strlen(o->token), s->token_digest);
    s->read_auth = o->read_token != NULL;
    if (o->read_token)
        gvd_digest(o->read_token, strlen(o->read_token), s->read_digest);
    return 0;
}

bool gvd_auth_required(h2o_iovec_t path)
{
    static const char *const exact[] = {"/jobs", "/openapi.json", "/start", "/pause", "/resume",
                                        "/cancel", "/ws", "/ws/jobs", "/events", "/rules", "/pipelines",
                                        "/metrics", "/nodes"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (h2o_memis(path.base, path.len, exact[i], strlen(exact[i])))
            return true;
    return (path.len > 6 && memcmp(path.base, "/jobs/", 6) == 0) || (path.len > 7 && memcmp(path.base, "/rules/", 7) == 0) ||
           (path.len > 11 && memcmp(path.base, "/pipelines/", 11) == 0);
}

/* The credential the request carries: the Bearer header's, else the
 * ?token= parameter's; NULL if neither.  *malformed is set for an
 * Authorization header that is not "Bearer <token>". */
static h2o_iovec_t gvd_presented(h2o_req_t *req, bool *malformed)
{
    *malformed = false;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        if (v.len < 7 || strncasecmp(v.base, "bearer ", 7) != 0) {
            *malformed = true;
            return h2o_iovec_init(NULL, 0);
        }
        size_t k = 7;
        while (k < v.len && v.base[k] == ' ')
            k++;
        return h2o_iovec_init(v.base + k, v.len - k);
    }
    const char *q = gvd_query_value(req, "token");
    return q ? h2o_iovec_init(q, strlen(q)) : h2o_iovec_init(NULL, 0);
}

static void gvd_unauthorized(h2o_req_t *req, const char *challenge, const char *code, const char *msg)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, challenge, strlen(challenge));
    gvd_http_error(req, 401, code, "%s", msg);
}

int gvd_auth_check(gvd_server *s, h2o_req_t *req, bool changes_state)
{
    if (!s->auth)
        return 0;
    bool malformed;
    h2o_iovec_t tok = gvd_presented(req, &malformed);
    if (malformed) {
        gvd_unauthorized(req, "Bearer realm=\"galvanid\", error=\"invalid_request\"", "unauthorized",
                         "the Authorization header must be \"Bearer <token>\"");
        return -1;
    }
    if (!tok.base) {
        gvd_unauthorized(req, "Bearer realm=\"galvanid\"", "unauthorized",
                         "this galvanid requires a token: send \"Authorization: Bearer <token>\" (browser "
                         "streams: ?token=<token>); the CLI takes --token or GALVANI_TOKEN");
        return -1;
    }
    unsigned char d[GVD_DIGEST_LEN];
    gvd_digest(tok.base, tok.len, d);
    /* With two tokens both comparisons run: the time does not say which
     * role matched (or how close a guess came to either). */
    int full = CRYPTO_memcmp(d, s->token_digest, GVD_DIGEST_LEN) == 0;
    int read = s->read_auth && CRYPTO_memcmp(d, s->read_digest, GVD_DIGEST_LEN) == 0;
    if (full)
        return 0;
    if (!read) {
        gvd_unauthorized(req, "Bearer realm=\"galvanid\", error=\"invalid_token\"", "unauthorized",
                         "the token is not valid for this galvanid");
        return -1;
    }
    if (changes_state) {
        gvd_http_error(req, 403, "read_only_token",
                       "this token is read-only: it can list, show and watch jobs, not %.*s %.*s",
                       (int)req->method.len, req->method.base, (int)(req->path_normalized.len > 200 ? 200 :
                       req->path_normalized.len), req->path_normalized.base);
        return -1;
    }
    return 0;
}

bool gvd_auth_read_only(const gvd_server *s, h2o_req_t *req)
{
    if (!s->read_auth)
        return false;
    bool malformed;
    h2o_iovec_t tok = gvd_presented(req, &malformed);
    if (malformed || !tok.base)
        return false; /* gvd_auth_check has refused such a request already */
    unsigned char d[GVD_DIGEST_LEN];
    gvd_digest(tok.base, tok.len, d);
    /* Compared the same way as in gvd_auth_check, and only after it let the
     * request through: the full token is the one case that is not
     * read-only. */
    return CRYPTO_memcmp(d, s->token_digest, GVD_DIGEST_LEN) != 0 &&
           CRYPTO_memcmp(d, s->read_digest, GVD_DIGEST_LEN) == 0;
}

const char *gvd_auth_who(const gvd_server *s, h2o_req_t *req)
{
    (void)req; /* gvd_auth_check has already said the token is the full one */
    return s->auth ? "token" : "local";
}

const char *gvd_auth_redact(h2o_iovec_t path, char *buf, size_t size)
{
    /* Copy, replacing the value of every parameter whose decoded name is
     * "token" (the one gvd_query_value would read). */
    size_t o = 0, i = 0;
    const char *q = memchr(path.base, '?', path.len);
    size_t qa = q ? (size_t)(q - path.base) + 1 : path.len;
    while (i < path.len && o + 1 < size) {
        if (i >= qa && (path.base[i - 1] == '?' || path.base[i - 1] == '&')) {
            size_t e = i;
            while (e < path.len && path.base[e] != '&' && path.base[e] != '=')
                e++;
            if (e < path.len && path.base[e] == '=' && gvd_query_key_is(path.base + i, e - i, "token")) {
                for (const char *p = "token=REDACTED"; *p && o + 1 < size; p++)
                    buf[o++] = *p;
                while (i < path.len && path.base[i] != '&')
                    i++;
                continue;
            }
        }
        buf[o++] = path.base[i++];
    }
    buf[o] = '\0';
    return buf;
}
