/*
 * pipelines_api.c — the pipelines' routes (docs/api.md, "Pipelines"):
 *
 *   POST   /pipelines                          create: 201, Location: /pipelines/{id}
 *   GET    /pipelines                          {"pipelines": [...], "total"} newest first
 *   GET    /pipelines/{id}                     one pipeline with its steps
 *   DELETE /pipelines/{id}                     204 once finished; its jobs go too
 *   GET    /pipelines/{id}/events              its rules' firings
 *   POST   /pipelines/{id}/pause|resume|cancel the whole pipeline
 *   POST   /pipelines/{id}/steps/{name}/retry  re-run the step, then its dependents
 *
 * The pipelines themselves are pipeline/'s; this file only routes and
 * answers.
 */
#include "api_int.h"

#include <stdio.h>
#include <string.h>

#include "../pipeline/pipeline.h"

static void gvd_on_pipelines_root(gvd_server *s, h2o_req_t *req)
{
    if (gvd_http_method_is(req, "GET")) {
        static const char *const names[] = {"limit", "offset", NULL};
        gvd_query q;
        if (gvd_query_parse(req, names, &q) != 0)
            return;
        int64_t limit, offset;
        if (gvd_query_paging(req, &q, &limit, &offset) != 0)
            return;
        json_t *body = gvd_pipelines_list_json(s->jobs, (size_t)offset, (size_t)limit);
        if (body)
            gvd_http_json(req, 200, body, NULL);
        else
            gvd_http_error(req, 503, "out_of_memory", "out of memory");
    } else if (gvd_http_method_is(req, "POST")) {
        json_t *body = gvd_http_json_body(req, "a pipeline");
        if (!body)
            return;
        gvd_error err = {0};
        gvd_pipeline *pl = gvd_pipelines_create(s->jobs, body, &err);
        json_decref(body);
        if (!pl) {
            gvd_http_error_from(req, &err);
            return;
        }
        gvd_http_created(req, gvd_pipeline_json(pl), "pipelines", gvd_pipeline_id(pl));
    } else {
        gvd_http_method_not_allowed(req, "GET, POST");
    }
}

/* POST /pipelines/{id}/pause|resume|cancel and .../steps/{name}/retry. */
static void gvd_on_pipeline_action(h2o_req_t *req, gvd_pipeline *pl, h2o_iovec_t rest)
{
    if (!gvd_http_method_is(req, "POST")) {
        gvd_http_method_not_allowed(req, "POST");
        return;
    }
    gvd_error err = {0};
    int rc;
    if (gvd_iov_is(rest, "pause")) {
        rc = gvd_pipeline_pause(pl, &err);
    } else if (gvd_iov_is(rest, "resume")) {
        rc = gvd_pipeline_resume(pl, &err);
    } else if (gvd_iov_is(rest, "cancel")) {
        rc = gvd_pipeline_cancel(pl, &err);
    } else {
        /* steps/{name}/retry */
        char name[80];
        const char *p = rest.base + 6;
        size_t n = rest.len - 6 - 6; /* "steps/" ... "/retry" */
        if (n == 0 || n >= sizeof name) {
            gvd_http_error(req, 404, "not_found", "no step \"%.*s\" in pipeline %lld", (int)(n < 80 ? n : 80), p,
                           (long long)gvd_pipeline_id(pl));
            return;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        rc = gvd_pipeline_retry(pl, name, &err);
    }
    if (rc != 0)
        gvd_http_error_from(req, &err);
    else
        gvd_http_json(req, 200, gvd_pipeline_json(pl), NULL);
}

static bool gvd_is_retry(h2o_iovec_t rest)
{
    return rest.len > 12 && !memcmp(rest.base, "steps/", 6) && !memcmp(rest.base + rest.len - 6, "/retry", 6) &&
           !memchr(rest.base + 6, '/', rest.len - 12);
}

void gvd_on_pipelines(gvd_server *s, h2o_req_t *req, h2o_iovec_t path)
{
    if (gvd_iov_is(path, "/pipelines")) {
        gvd_on_pipelines_root(s, req);
        return;
    }
    /* "/pipelines/<id>" or "/pipelines/<id>/<rest>" (the router saw the prefix) */
    size_t left = path.len > 11 ? path.len - 11 : 0;
    const char *p = path.base + 11, *end = p + left;
    const char *slash = memchr(p, '/', left);
    size_t idlen = (size_t)((slash ? slash : end) - p);
    char idtext[24];
    snprintf(idtext, sizeof idtext, "%.*s", (int)(idlen < 20 ? idlen : 20), p);
    int64_t id = idlen > 18 ? -1 : gvd_parse_uint(idtext, INT64_MAX / 2);
    h2o_iovec_t rest = slash ? h2o_iovec_init(slash + 1, (size_t)(end - slash - 1)) : h2o_iovec_init("", 0);
    bool known = rest.len == 0 || gvd_iov_is(rest, "events") || gvd_iov_is(rest, "pause") || gvd_iov_is(rest, "resume") ||
                 gvd_iov_is(rest, "cancel") || gvd_is_retry(rest);
    if (id <= 0 || !known) {
        gvd_http_error(req, 404, "not_found",
                       "no such route: %.*s (pipelines: /pipelines, /pipelines/{id}, /pipelines/{id}/events, "
                       "/pipelines/{id}/pause|resume|cancel, /pipelines/{id}/steps/{name}/retry)",
                       (int)(path.len > 200 ? 200 : path.len), path.base);
        return;
    }
    /* Another node's pipeline: this node's mirror answers reads; changes
     * are its driver's (relayed).  One it does not hold (yet): relayed. */
    gvd_pipeline *pl = gvd_pipelines_get(s->jobs, id);
    if ((!pl || (gvd_pipeline_driver(pl) && !gvd_http_method_is(req, "GET"))) && gvd_relay_pipeline(s, req, id))
        return;
    if (!pl) {
        gvd_http_error(req, 404, "not_found", "no pipeline %lld", (long long)id);
        return;
    }
    if (rest.len == 0) {
        if (gvd_http_method_is(req, "GET")) {
            gvd_http_json(req, 200, gvd_pipeline_json(pl), NULL);
        } else if (gvd_http_method_is(req, "DELETE")) {
            gvd_error err = {0};
            if (gvd_pipeline_delete(pl, &err) != 0)
                gvd_http_error_from(req, &err);
            else
                gvd_http_no_content(req);
        } else {
            gvd_http_method_not_allowed(req, "GET, DELETE");
        }
    } else if (gvd_iov_is(rest, "events")) {
        if (gvd_http_method_is(req, "GET"))
            gvd_http_json(req, 200, gvd_pipeline_events_json(pl), NULL);
        else
            gvd_http_method_not_allowed(req, "GET");
    } else {
        gvd_on_pipeline_action(req, pl, rest);
    }
}
