/*
 * static.c — the dashboard (web/: index.html, its scripts and styles), compiled
 * into the binary and served at GET / (docs/dashboard.md).
 *
 * Like openapi.c, each file is copied into .rodata by the assembler's
 * .incbin at build time, so galvanid serves its dashboard from anywhere
 * (build tree or installed) with nothing to find, build or download at run
 * time.  The paths are resolved against galvanid_core's include directory
 * (src/daemon); src/daemon/CMakeLists.txt lists the files in OBJECT_DEPENDS
 * so that editing one rebuilds this object, and tests/web checks the served
 * pages in a real browser.
 *
 * Caching: every answer carries a strong ETag (a hash of the bytes, computed
 * once) and "Cache-Control: no-cache", so a browser revalidates on each load
 * and gets a bodyless 304 while the binary is unchanged, and never runs a
 * stale script against a newer daemon.  The page is also locked down: a
 * Content-Security-Policy that allows only its own scripts, styles and
 * connections (the page never loads anything from elsewhere), no framing
 * (the buttons cancel jobs: no clickjacking), no MIME sniffing.
 *
 * Only the listed paths are assets; anything else stays the API's 404 JSON.
 */
#include "api_int.h"

#include <stdio.h>
#include <string.h>

/* One embedded file: `sym` .. `sym`_end in .rodata (a NUL after the end, so
 * the bytes are also a C string, which nothing relies on). */
#define GVD_WEB_INCBIN(sym, file)                                                                          \
    __asm__(".section .rodata\n"                                                                           \
            ".global " #sym "\n"                                                                           \
            ".type " #sym ", @object\n" #sym ":\n"                                                         \
            ".incbin \"../../web/" file "\"\n"                                                             \
            ".global " #sym "_end\n" #sym "_end:\n"                                                        \
            ".byte 0\n"                                                                                    \
            ".previous\n");                                                                                \
    extern const char sym[], sym##_end[]

GVD_WEB_INCBIN(gvd_web_index_html, "index.html");
GVD_WEB_INCBIN(gvd_web_app_css, "app.css");
GVD_WEB_INCBIN(gvd_web_app_js, "app.js");
GVD_WEB_INCBIN(gvd_web_view_js, "view.js");
GVD_WEB_INCBIN(gvd_web_detail_js, "detail.js");
GVD_WEB_INCBIN(gvd_web_pipelines_js, "pipelines.js");
GVD_WEB_INCBIN(gvd_web_chart_js, "chart.js");
GVD_WEB_INCBIN(gvd_web_forms_js, "forms.js");
GVD_WEB_INCBIN(gvd_web_format_js, "format.js");
GVD_WEB_INCBIN(gvd_web_favicon_svg, "favicon.svg");

typedef struct gvd_asset {
    const char *path; /* as requested, after the router dropped a trailing slash */
    const char *type; /* Content-Type */
    const char *start, *end;
    char etag[24];    /* "\"<16 hex digits>\"", filled on first use */
} gvd_asset;

#define GVD_TEXT(t) t "; charset=utf-8"

/* Not const: the ETags are filled in lazily (loop thread only). */
static gvd_asset gvd_assets[] = {
    {"/", GVD_TEXT("text/html"), gvd_web_index_html, gvd_web_index_html_end, ""},
    {"/index.html", GVD_TEXT("text/html"), gvd_web_index_html, gvd_web_index_html_end, ""},
    {"/app.css", GVD_TEXT("text/css"), gvd_web_app_css, gvd_web_app_css_end, ""},
    {"/app.js", GVD_TEXT("text/javascript"), gvd_web_app_js, gvd_web_app_js_end, ""},
    {"/view.js", GVD_TEXT("text/javascript"), gvd_web_view_js, gvd_web_view_js_end, ""},
    {"/detail.js", GVD_TEXT("text/javascript"), gvd_web_detail_js, gvd_web_detail_js_end, ""},
    {"/pipelines.js", GVD_TEXT("text/javascript"), gvd_web_pipelines_js, gvd_web_pipelines_js_end, ""},
    {"/chart.js", GVD_TEXT("text/javascript"), gvd_web_chart_js, gvd_web_chart_js_end, ""},
    {"/forms.js", GVD_TEXT("text/javascript"), gvd_web_forms_js, gvd_web_forms_js_end, ""},
    {"/format.js", GVD_TEXT("text/javascript"), gvd_web_format_js, gvd_web_format_js_end, ""},
    {"/favicon.svg", "image/svg+xml", gvd_web_favicon_svg, gvd_web_favicon_svg_end, ""},
};

/* connect-src 'self' covers ws:// to the same host and port in current
 * browsers (CSP level 3). */
static const char gvd_web_csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/* FNV-1a, 64 bits: not a security hash, only "did these bytes change". */
static void gvd_asset_etag(gvd_asset *a)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = a->start; p < a->end; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    snprintf(a->etag, sizeof a->etag, "\"%016llx\"", (unsigned long long)h);
}

/* Does an If-None-Match header name this ETag?  ("*", a list, W/ prefixes.) */
static bool gvd_etag_matches(h2o_req_t *req, const char *etag)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    if (i < 0)
        return false;
    h2o_iovec_t v = req->headers.entries[i].value;
    size_t n = strlen(etag);
    if (v.len == 1 && v.base[0] == '*')
        return true;
    for (size_t k = 0; k + n <= v.len; k++)
        if (memcmp(v.base + k, etag, n) == 0)
            return true;
    return false;
}

/* h2o 2.2.5 has tokens for some of these names only: add them all by name. */
static void gvd_static_header(h2o_req_t *req, const char *name, const char *value)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, NULL, value, strlen(value));
}

static gvd_asset *gvd_static_find(h2o_iovec_t path)
{
    for (size_t i = 0; i < sizeof gvd_assets / sizeof gvd_assets[0]; i++)
        if (h2o_memis(path.base, path.len, gvd_assets[i].path, strlen(gvd_assets[i].path)))
            return &gvd_assets[i];
    return NULL;
}

bool gvd_static_has(h2o_iovec_t path)
{
    return gvd_static_find(path) != NULL;
}

bool gvd_static_serve(h2o_req_t *req, h2o_iovec_t path)
{
    gvd_asset *a = gvd_static_find(path);
    if (!a)
        return false;
    bool head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    if (!head && !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
        gvd_http_method_not_allowed(req, "GET, HEAD");
        return true;
    }
    if (a->etag[0] == '\0')
        gvd_asset_etag(a);
    gvd_static_header(req, "etag", a->etag);
    gvd_static_header(req, "cache-control", "no-cache");
    gvd_static_header(req, "x-content-type-options", "nosniff");
    if (gvd_etag_matches(req, a->etag)) {
        req->res.status = 304;
        req->res.reason = "Not Modified";
        h2o_send_inline(req, "", 0);
        return true;
    }
    size_t len = (size_t)(a->end - a->start);
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = len;
    gvd_static_header(req, "content-type", a->type);
    if (strncmp(a->type, "text/html", 9) == 0) {
        gvd_static_header(req, "content-security-policy", gvd_web_csp);
        gvd_static_header(req, "x-frame-options", "DENY");
        gvd_static_header(req, "referrer-policy", "no-referrer");
    }
    h2o_send_inline(req, head ? "" : a->start, head ? 0 : len);
    return true;
}
