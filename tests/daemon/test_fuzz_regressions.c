/*
 * test_fuzz_regressions.c — inputs the fuzz targets (fuzz/, docs/fuzzing.md)
 * found to break a parser, fed to the same real parser in the normal test
 * suite, with the exact outcome asserted.  Each input is also in the seed
 * corpus of its target (fuzz/corpus/<target>/regress-*), so the fuzz stage
 * replays it too.
 *
 * 1. fuzz_spec, "regress-utf8-name-cut": a job spec without "name" takes the
 *    program's base name, cut to 63 bytes.  The cut went through snprintf,
 *    which splits a multi-byte UTF-8 character; jansson then refused the
 *    name (json_string of invalid UTF-8 is NULL), the normalized spec could
 *    not be built and POST /jobs answered "503 out of memory" for a valid
 *    spec.  Fixed in model/spec.c: the cut backs up to a character boundary.
 * 2. fuzz_http, "regress-error-not-utf8" (and fuzz_spec's long "kind"): an
 *    error message quoting what the client sent — a path segment, a query
 *    value, a spec field cut to fit the message — may not be UTF-8; jansson
 *    refused to encode it and the client got its 4xx with the fallback body
 *    {"error":{"code":"out_of_memory",...}} instead of the real error.  Fixed
 *    in api/http.c (gvd_http_error_body): such a message is sent with its
 *    non-ASCII bytes as '?'.  Checked end to end on the real server.
 */
#include "test_api_harness.h" /* first: it sets the feature macros */

#include "model/model.h"

/* Parse `text` as POST /jobs does, expect success and the default name
 * `want_name`, and check that the stored form reloads to the same name. */
static void expect_default_name(const char *text, const char *want_name)
{
    static const gvd_config cfg = {0};
    json_t *body = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(body);
    gvd_spec spec;
    json_t *normalized = NULL, *params = NULL;
    gvd_error err = {0};
    int rc = gvd_spec_parse(body, &cfg, &spec, &normalized, &params, &err);
    if (rc != 0)
        fail_msg("refused with %d %s: %s", err.http, err.code, err.message);
    assert_string_equal(spec.name, want_name);
    assert_string_equal(json_string_value(json_object_get(normalized, "name")), want_name);

    char *stored = json_dumps(normalized, JSON_COMPACT);
    assert_non_null(stored);
    json_t *reloaded = json_loads(stored, 0, NULL);
    assert_non_null(reloaded);
    gvd_spec again;
    assert_int_equal(gvd_spec_from_json(reloaded, &cfg, &again, &err), 0);
    assert_string_equal(again.name, want_name);

    gvd_spec_clear(&again);
    json_decref(reloaded);
    free(stored);
    gvd_spec_clear(&spec);
    json_decref(normalized);
    json_decref(params);
    json_decref(body);
}

static char *repeat(const char *s, int n)
{
    size_t len = strlen(s);
    char *out = malloc(len * (size_t)n + 1);
    assert_non_null(out);
    for (int i = 0; i < n; i++)
        memcpy(out + len * (size_t)i, s, len);
    out[len * (size_t)n] = '\0';
    return out;
}

/* The input exactly as fuzz_spec reported it. */
static void test_spec_default_name_fuzz_input(void **state)
{
    (void)state;
    char *e40 = repeat("\xc3\xa9", 40), *e31 = repeat("\xc3\xa9", 31);
    char text[256];
    snprintf(text, sizeof text, "{\"command\": [\"/opt/%s\"]}", e40);
    expect_default_name(text, e31); /* 62 bytes: the 32nd character would straddle byte 63 */
    free(e40);
    free(e31);
}

/* Characters of every length at every position relative to the cut. */
static void test_spec_default_name_cut_on_char_boundary(void **state)
{
    (void)state;
    static const struct {
        const char *prefix, *ch;
        int count;   /* characters in the program name */
        int keep;    /* characters that fit in 63 bytes with the prefix */
    } cases[] = {
        {"", "\xc3\xa9", 40, 31},             /* 2-byte: 62 bytes kept */
        {"a", "\xc3\xa9", 40, 31},            /* 2-byte, ends exactly at 63 */
        {"", "\xe2\x9c\x93", 30, 21},         /* 3-byte: exactly 63 */
        {"ab", "\xe2\x9c\x93", 30, 20},       /* 3-byte: 62, the next one straddles */
        {"", "\xf0\x9f\x98\x80", 20, 15},     /* 4-byte: 60 */
        {"abc", "\xf0\x9f\x98\x80", 20, 15},  /* 4-byte: exactly 63 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *chars = repeat(cases[i].ch, cases[i].count), *kept = repeat(cases[i].ch, cases[i].keep);
        char text[256], want[80];
        snprintf(text, sizeof text, "{\"command\": [\"/usr/bin/%s%s\", \"x\"]}", cases[i].prefix, chars);
        snprintf(want, sizeof want, "%s%s", cases[i].prefix, kept);
        expect_default_name(text, want);
        free(chars);
        free(kept);
    }
    /* ASCII is still cut at exactly 63 bytes, and a short name is whole. */
    char *a70 = repeat("a", 70), *a63 = repeat("a", 63), text[128];
    snprintf(text, sizeof text, "{\"command\": [\"%s\"]}", a70);
    expect_default_name(text, a63);
    expect_default_name("{\"command\": [\"/bin/\xc3\xa9t\xc3\xa9\"]}", "\xc3\xa9t\xc3\xa9");
    free(a70);
    free(a63);
}

/* ---- 2. error messages that quote bytes that are not UTF-8 ------------------ */

static void expect_ascii_error(http_resp *r, int status, const char *code, const char *message_start)
{
    if (r->status != status || strcmp(http_error_code(r), code) != 0)
        fail_msg("expected %d %s, got %d %s", status, code, r->status, r->body);
    const char *msg = http_error_message(r);
    if (strncmp(msg, message_start, strlen(message_start)) != 0)
        fail_msg("message \"%s\" does not start with \"%s\"", msg, message_start);
    for (const char *p = msg; *p; p++)
        assert_true((unsigned char)*p < 0x80);
}

static void test_error_message_not_utf8(void **state)
{
    (void)state;
    api_harness h;
    gvd_server_opts o = {0};
    api_start(&h, NULL, &o);

    /* A path segment: raw, and percent-encoded (h2o decodes it). */
    http_resp r = http_do(&h, "GET", "/jobs/\xc3", NULL, NULL);
    expect_ascii_error(&r, 404, "not_found", "no job \"?\"");
    http_resp_free(&r);
    r = http_do(&h, "GET", "/jobs/%C3", NULL, NULL);
    expect_ascii_error(&r, 404, "not_found", "no job \"?\"");
    http_resp_free(&r);

    /* A query value. */
    r = http_do(&h, "GET", "/jobs?limit=%C3%A9%C3", NULL, NULL);
    expect_ascii_error(&r, 400, "invalid_query", "limit must be an integer from 0 to 1000, not \"???\"");
    http_resp_free(&r);

    /* A spec field quoted in the message and cut to fit it, inside a
     * character (the input fuzz_spec reported: "a" + 600 x U+00E9). */
    char *e600 = repeat("\xc3\xa9", 600), body[1400];
    snprintf(body, sizeof body, "{\"kind\": \"a%s\"}", e600);
    r = http_do(&h, "POST", "/jobs", "application/json", body);
    expect_ascii_error(&r, 400, "invalid_spec", "field \"kind\" must be \"process\" or \"demo\", not \"a??");
    http_resp_free(&r);
    free(e600);

    /* The server answers the next request as usual. */
    r = http_do(&h, "GET", "/healthz", NULL, NULL);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    api_stop(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_default_name_fuzz_input),
        cmocka_unit_test(test_spec_default_name_cut_on_char_boundary),
        cmocka_unit_test(test_error_message_not_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
