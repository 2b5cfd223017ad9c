/*
 * fuzz_spec.c — libFuzzer target for the job spec, the body of POST /jobs:
 * the bytes are parsed exactly as the HTTP layer parses a body (json_loadb
 * with JSON_REJECT_DUPLICATES, api/http.c) and validated by the real
 * gvd_spec_parse (model/spec.c).  (The HTTP path in front of it — routing,
 * Content-Type, 413 — is fuzzed by fuzz_http.)
 *
 * Checks, beyond "no crash / no sanitizer report":
 *   - a refused spec is a 400 "invalid_spec" with a message, and leaves
 *     nothing allocated (LeakSanitizer checks);  a 503 (out of memory) is a
 *     finding: nothing runs out of memory here;
 *   - an accepted spec is usable: a non-empty program name, a name of at
 *     most 200 bytes, params an object;
 *   - the stored form round-trips: the normalized spec is dumped the way
 *     the store writes it (JSON_COMPACT), loaded back the way a restart
 *     loads it, rebuilt with gvd_spec_from_json, and the rebuilt spec equals
 *     the accepted one in every field the job's kind uses (a job reloaded
 *     after a restart is the job that was accepted);
 *   - normalizing is idempotent: the normalized spec is itself a valid spec
 *     whose normalized form is identical.
 */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "model/model.h"

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_strv(char **a, char **b)
{
    if (!a || !b)
        return a == b;
    for (; *a && *b; a++, b++)
        if (strcmp(*a, *b) != 0)
            return false;
    return !*a && !*b;
}

static void check_same_spec(const gvd_spec *a, const gvd_spec *b)
{
    FUZZ_CHECK(a->kind == b->kind);
    FUZZ_CHECK(same_str(a->name, b->name));
    FUZZ_CHECK(a->timeout_s == b->timeout_s);
    FUZZ_CHECK(a->max_retries == b->max_retries);
    FUZZ_CHECK(a->retry_backoff_s == b->retry_backoff_s);
    FUZZ_CHECK(a->priority == b->priority);
    if (a->kind == GVD_EXEC_PROCESS) {
        FUZZ_CHECK(a->shell == b->shell);
        FUZZ_CHECK(same_strv(a->argv, b->argv));
        FUZZ_CHECK(same_strv(a->env, b->env));
        FUZZ_CHECK(same_str(a->cwd, b->cwd));
        FUZZ_CHECK(a->pause_mode == b->pause_mode);
    } else {
        FUZZ_CHECK(a->demo_step_ms == b->demo_step_ms);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* demo_step_ms 0 takes the model's default, as in galvanid. */
    static const gvd_config cfg = {0};
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!body)
        return 0; /* the HTTP layer answers invalid JSON itself (fuzz_http) */

    gvd_spec spec;
    memset(&spec, 0, sizeof spec);
    json_t *normalized = NULL, *params = NULL;
    gvd_error err = {0};
    if (gvd_spec_parse(body, &cfg, &spec, &normalized, &params, &err) != 0) {
        FUZZ_CHECK(err.http == 400);
        FUZZ_CHECK(err.code && strcmp(err.code, "invalid_spec") == 0);
        FUZZ_CHECK(err.message[0] != '\0');
        json_decref(body);
        return 0;
    }
    FUZZ_CHECK(spec.name && strlen(spec.name) <= 200);
    FUZZ_CHECK(json_is_object(params) && json_is_object(normalized));
    if (spec.kind == GVD_EXEC_PROCESS)
        FUZZ_CHECK(spec.argv && spec.argv[0] && spec.argv[0][0]);
    FUZZ_CHECK(spec.env != NULL);

    /* The store's round trip (job.c / jobs.c: JSON_COMPACT, json_loads 0). */
    char *text = json_dumps(normalized, JSON_COMPACT);
    FUZZ_CHECK(text != NULL);
    json_t *stored = json_loads(text, 0, NULL);
    FUZZ_CHECK(stored != NULL && json_equal(stored, normalized));
    gvd_spec again;
    gvd_error err2 = {0};
    FUZZ_CHECK(gvd_spec_from_json(stored, &cfg, &again, &err2) == 0);
    check_same_spec(&spec, &again);
    gvd_spec_clear(&again);

    /* Normalizing the normalized spec changes nothing. */
    json_t *normalized2 = NULL, *params2 = NULL;
    FUZZ_CHECK(gvd_spec_parse(stored, &cfg, &again, &normalized2, &params2, &err2) == 0);
    FUZZ_CHECK(json_equal(normalized, normalized2));
    check_same_spec(&spec, &again);
    gvd_spec_clear(&again);

    json_decref(normalized2);
    json_decref(params2);
    json_decref(stored);
    free(text);
    gvd_spec_clear(&spec);
    json_decref(normalized);
    json_decref(params);
    json_decref(body);
    return 0;
}
