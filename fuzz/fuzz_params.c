/*
 * fuzz_params.c — libFuzzer target for a params patch, the body of
 * PATCH /jobs/{id}/params: the bytes are parsed as the HTTP layer parses a
 * body (json_loadb with JSON_REJECT_DUPLICATES, api/http.c) and applied by
 * the real gvd_job_set_params (model/params.c) to a live job of the real
 * job model, which persists the result to a real SQLite store before
 * answering.  (The HTTP path in front of it is fuzzed by fuzz_http.)
 *
 * The job is a demo job (it runs in-process: nothing is spawned), kept
 * running for the whole process; each input starts from empty params.
 *
 * Checks, beyond "no crash / no sanitizer report / no leak": a non-object
 * is refused with 400 "invalid_params"; an object is accepted and the job's
 * params (as GET /jobs/{id} shows them) are exactly the JSON merge of the
 * patch: every non-null value set, every null key removed, nothing else
 * touched; and the params revision moves.  (Each input makes two history
 * entries; the job keeps the newest 1000, so a long run stays bounded.)
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "model/jobs.h"
#include "store/store.h"
#include "util/log.h"

typedef struct params_fixture {
    uv_loop_t loop;
    char dir[64];
    gvd_store *store;
    gvd_jobs *jobs;
    gvd_job *job;
} params_fixture;

static params_fixture *fixture;

static json_t *job_params(gvd_job *job)
{
    json_t *j = gvd_job_json(job);
    FUZZ_CHECK(j != NULL);
    json_t *p = json_incref(json_object_get(j, "params"));
    json_decref(j);
    FUZZ_CHECK(json_is_object(p));
    return p;
}

static void fixture_cleanup(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/galvani.db", fixture->dir);
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
        unlink(p);
    }
    snprintf(path, sizeof path, "%s/logs", fixture->dir);
    rmdir(path);
    rmdir(fixture->dir);
}

static params_fixture *fixture_get(void)
{
    if (fixture)
        return fixture;
    gvd_log_set_level(GVD_LOG_ERROR);
    params_fixture *f = calloc(1, sizeof *f);
    FUZZ_CHECK(f != NULL);
    fuzz_make_tmpdir(f->dir, sizeof f->dir);
    FUZZ_CHECK(uv_loop_init(&f->loop) == 0);
    char path[128], logs[128], err[256];
    snprintf(path, sizeof path, "%s/galvani.db", f->dir);
    snprintf(logs, sizeof logs, "%s/logs", f->dir);
    f->store = gvd_store_open(path, err, sizeof err);
    FUZZ_CHECK(f->store != NULL);
    gvd_config cfg = {.log_dir = logs};
    gvd_error e = {0};
    f->jobs = gvd_jobs_new(&f->loop, f->store, &cfg, &e);
    FUZZ_CHECK(f->jobs != NULL);
    /* One step per minute: it stays running for any fuzzing session, and
     * the loop is never run anyway. */
    json_t *spec = json_pack("{s:s, s:i}", "kind", "demo", "demo_step_ms", 60000);
    FUZZ_CHECK(spec != NULL);
    f->job = gvd_jobs_create(f->jobs, spec, &e);
    json_decref(spec);
    FUZZ_CHECK(f->job != NULL);
    fixture = f;
    atexit(fixture_cleanup);
    return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    params_fixture *f = fixture_get();
    json_t *patch = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!patch)
        return 0; /* the HTTP layer answers invalid JSON itself (fuzz_http) */

    gvd_error err = {0};
    json_t *before = job_params(f->job);
    FUZZ_CHECK(json_object_size(before) == 0);
    if (!json_is_object(patch)) {
        FUZZ_CHECK(gvd_job_set_params(f->job, patch, &err) == -1);
        FUZZ_CHECK(err.http == 400 && err.code && strcmp(err.code, "invalid_params") == 0);
        json_decref(before);
        json_decref(patch);
        return 0;
    }

    /* The expected result, computed here: an RFC 7396-style merge, one
     * level deep (values are replaced whole, null removes). */
    json_t *want = json_deep_copy(before);
    const char *key;
    json_t *value;
    json_object_foreach(patch, key, value) {
        if (json_is_null(value))
            json_object_del(want, key);
        else
            json_object_set(want, key, value);
    }
    int rc = gvd_job_set_params(f->job, patch, &err);
    if (rc != 0)
        fprintf(stderr, "fuzz: set_params refused: %d %s %s\n", err.http, err.code, err.message);
    FUZZ_CHECK(rc == 0);
    json_t *got = job_params(f->job);
    FUZZ_CHECK(json_equal(got, want));

    /* Back to empty params for the next input: a patch of nulls. */
    json_t *clear = json_object();
    json_object_foreach(got, key, value) FUZZ_CHECK(json_object_set_new(clear, key, json_null()) == 0);
    FUZZ_CHECK(gvd_job_set_params(f->job, clear, &err) == 0);
    json_t *after = job_params(f->job);
    FUZZ_CHECK(json_object_size(after) == 0);

    json_decref(after);
    json_decref(clear);
    json_decref(got);
    json_decref(want);
    json_decref(before);
    json_decref(patch);
    return 0;
}
