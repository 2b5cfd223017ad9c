/*
 * routes.c — the HTTP API's routing table and handlers (docs/api.md).
 *
 * One h2o handler takes every path; this file matches it.  A handler
 * validates what HTTP can validate (route, method, query, media type, JSON
 * syntax), then hands the request to the job model (jobs.h), which decides
 * everything about jobs and answers with a gvd_error that becomes the
 * response.  Following one pause: POST /jobs/7/pause -> gvd_route ->
 * gvd_on_transition -> gvd_job_pause (model: status signal, persisted,
 * SIGSTOP) -> 200 with the job; the model's change effect then tells the push
 * hub, which sends the new state to the streams.
 */
#include "api_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "../obs/obs.h"
#include "../rules/rules.h"
#include "../util/log.h"


static bool gvd_method(h2o_req_t *req, const char *m)
{
    return gvd_http_method_is(req, m);
}

static bool gvd_path_is(h2o_iovec_t path, const char *p)
{
    return h2o_memis(path.base, path.len, p, strlen(p));
}

/* ---- /jobs ------------------------------------------------------------------ */

static const char gvd_status_list[] = "queued, running, paused, succeeded, failed, cancelled";

static json_t *gvd_list_item(void *jobs, size_t i)
{
    return gvd_job_json(((gvd_job **)jobs)[i]);
}

static void gvd_on_list(gvd_server *s, h2o_req_t *req)
{
    static const char *const names[] = {"status", "limit", "offset", "label", "name", NULL};
    gvd_query q;
    if (gvd_query_parse(req, names, &q) != 0)
        return;
    unsigned mask = 0;
    const char *status = gvd_query_get(&q, "status");
    if (status) {
        char *copy = h2o_mem_alloc_pool(&req->pool, strlen(status) + 1), *save = NULL;
        strcpy(copy, status);
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ')
                tok++;
            size_t n = strlen(tok);
            while (n && tok[n - 1] == ' ')
                tok[--n] = '\0';
            gvd_status st;
            if (!gvd_status_parse(tok, &st)) {
                gvd_http_error(req, 400, "invalid_query", "unknown status \"%s\" (known: %s)", tok, gvd_status_list);
                return;
            }
            mask |= 1u << st;
        }
    }
    int64_t limit, offset;
    if (gvd_query_paging(req, &q, &limit, &offset) != 0)
        return;
    const char *v;
    /* ?label=team=payments: the first '=' is the query's, the second splits
     * the label's name from its value. */
    char *label = NULL, *value = NULL;
    if ((v = gvd_query_get(&q, "label"))) {
        const char *eq = strchr(v, '=');
        if (!eq || eq == v) {
            gvd_http_error(req, 400, "invalid_query", "label must be NAME=VALUE (e.g. label=team=payments), not \"%s\"", v);
            return;
        }
        label = h2o_mem_alloc_pool(&req->pool, strlen(v) + 1);
        strcpy(label, v);
        label[eq - v] = '\0';
        value = label + (eq - v) + 1;
    }
    /* ?name=GLOB: shell-style, as in `galvani ls --name 'build-*'` */
    const char *glob = gvd_query_get(&q, "name");
    if (glob && (!*glob || strlen(glob) > 200)) {
        gvd_http_error(req, 400, "invalid_query", "name must be a glob of 1 to 200 bytes (e.g. name=build-*)");
        return;
    }
    gvd_job **out = h2o_mem_alloc_pool(&req->pool, sizeof *out * (size_t)(limit ? limit : 1));
    size_t total = 0;
    gvd_job_filter f = {.status_mask = mask, .label = label, .value = value, .name_glob = glob};
    size_t n = gvd_jobs_list_where(s->jobs, &f, (size_t)offset, (size_t)limit, out, &total);
    gvd_http_json_list(req, "jobs", gvd_list_item, out, n,
                       json_pack("{s:I, s:I, s:I}", "total", (json_int_t)total, "limit", (json_int_t)limit,
                                 "offset", (json_int_t)offset));
}

static void gvd_on_create(gvd_server *s, h2o_req_t *req)
{
    json_t *spec = gvd_http_json_body(req, "a job spec");
    if (!spec)
        return;
    gvd_error err = {0};
    gvd_jobs_group_begin(s->jobs); /* its start joins the tick's commit (held.c) */
    gvd_job *job = gvd_jobs_create(s->jobs, spec, &err);
    gvd_jobs_group_end(s->jobs);
    json_decref(spec);
    if (!job) {
        gvd_http_error_from(req, &err);
        return;
    }
    gvd_held_created(s, req, job);
}

/* "/jobs/<digits>" or "/jobs/<digits>/<action>": the id (0 if the segment
 * is not a positive integer) and the action ("" for none).  Returns false if
 * the path has more segments. */
static bool gvd_split_job_path(h2o_iovec_t path, int64_t *id, h2o_iovec_t *seg, h2o_iovec_t *action)
{
    const char *p = path.base + 6, *end = path.base + path.len; /* after "/jobs/" */
    const char *slash = memchr(p, '/', (size_t)(end - p));
    *seg = h2o_iovec_init(p, (size_t)((slash ? slash : end) - p));
    *action = slash ? h2o_iovec_init(slash + 1, (size_t)(end - slash - 1)) : h2o_iovec_init("", 0);
    if (memchr(action->base, '/', action->len) && !gvd_path_is(*action, "params/history"))
        return false;
    *id = 0;
    if (seg->len == 0 || seg->len > 18)
        return true;
    int64_t v = 0;
    for (size_t i = 0; i < seg->len; i++) {
        if (seg->base[i] < '0' || seg->base[i] > '9')
            return true;
        v = v * 10 + (seg->base[i] - '0');
    }
    *id = v;
    return true;
}

static void gvd_on_transition(gvd_server *s, h2o_req_t *req, gvd_job *job, int (*fn)(gvd_job *, gvd_error *))
{
    const char *verb = fn == gvd_job_pause ? "pause" : fn == gvd_job_resume ? "resume" : "cancel";
    if (!gvd_job_acts(job) && s->forward) {
        gvd_held_forward(s, req, job, verb); /* another node's job (several nodes) */
        return;
    }
    gvd_error err = {0};
    gvd_jobs_group_begin(s->jobs); /* joins the tick's commit; answered after it (held.c) */
    int rc = fn(job, &err);
    gvd_jobs_group_end(s->jobs);
    if (rc != 0) {
        gvd_http_error_from(req, &err);
        return;
    }
    gvd_held_transition(s, req, job, fn == gvd_job_pause ? "paused" : fn == gvd_job_resume ? "resumed" : "cancelled");
}

/* The requests that join the tick's commit rather than wait for it: job
 * creation and the transitions (the seed's routes included). */
static bool gvd_route_batched(h2o_req_t *req, h2o_iovec_t path)
{
    if (!gvd_method(req, "POST"))
        return false;
    if (gvd_path_is(path, "/jobs") || gvd_path_is(path, "/pause") || gvd_path_is(path, "/resume") ||
        gvd_path_is(path, "/cancel"))
        return true;
    if (path.len <= 6 || memcmp(path.base, "/jobs/", 6) != 0)
        return false;
    const char *slash = memchr(path.base + 6, '/', path.len - 6);
    if (!slash)
        return false;
    h2o_iovec_t action = h2o_iovec_init(slash + 1, (size_t)(path.base + path.len - slash - 1));
    return gvd_path_is(action, "pause") || gvd_path_is(action, "resume") || gvd_path_is(action, "cancel");
}

static void gvd_on_params(gvd_server *s, h2o_req_t *req, gvd_job *job)
{
    json_t *patch = gvd_http_json_body(req, "a params patch");
    if (!patch)
        return;
    gvd_error err = {0};
    int rc = gvd_job_set_params_by(job, patch, gvd_auth_who(s, req), &err);
    json_decref(patch);
    if (rc != 0) {
        gvd_http_error_from(req, &err);
        return;
    }
    gvd_http_json(req, 200, gvd_job_json(job), NULL);
}

/* GET /jobs/{id}/metrics[?since=T_MS][&name=NAME]. */
static void gvd_on_metrics(h2o_req_t *req, gvd_job *job)
{
    static const char *const names[] = {"since", "name", NULL};
    gvd_query q;
    if (gvd_query_parse(req, names, &q) != 0)
        return;
    int64_t since = -1;
    const char *v = gvd_query_get(&q, "since");
    if (v && (since = gvd_parse_uint(v, INT64_MAX / 2)) < 0) {
        gvd_http_error(req, 400, "invalid_query",
                       "since must be a time in milliseconds since 1970 (a non-negative integer), not \"%s\"", v);
        return;
    }
    const char *name = gvd_query_get(&q, "name");
    if (name && !*name) {
        gvd_http_error(req, 400, "invalid_query", "name must be a metric name, not empty");
        return;
    }
    json_t *body = gvd_job_metrics_json(job, (double)since, name);
    gvd_http_json(req, 200, body, NULL);
}

static void gvd_on_log(h2o_req_t *req, gvd_job *job)
{
    static const char *const names[] = {"tail", "offset", NULL};
    gvd_query q;
    if (gvd_query_parse(req, names, &q) != 0)
        return;
    int64_t tail = -1, offset = -1;
    const char *v = gvd_query_get(&q, "tail");
    if (v && (tail = gvd_parse_uint(v, INT64_MAX / 2)) < 0) {
        gvd_http_error(req, 400, "invalid_query", "tail must be a number of bytes, not \"%s\"", v);
        return;
    }
    if ((v = gvd_query_get(&q, "offset")) && (offset = gvd_parse_uint(v, INT64_MAX / 2)) < 0) {
        gvd_http_error(req, 400, "invalid_query", "offset must be a byte offset, not \"%s\"", v);
        return;
    }
    if (tail >= 0 && offset >= 0) {
        gvd_http_error(req, 400, "invalid_query", "give tail or offset, not both");
        return;
    }
    const char *path = gvd_job_log_path(job);
    if (!path) {
        gvd_http_error(req, 404, "no_log", "job %lld is a demo job: it runs in-process and has no log",
                       (long long)gvd_job_id(job));
        return;
    }
    gvd_logtail_send(req, path, tail, offset);
}

static void gvd_on_job_path(gvd_server *s, h2o_req_t *req, h2o_iovec_t path)
{
    int64_t id;
    h2o_iovec_t seg, action;
    if (!gvd_split_job_path(path, &id, &seg, &action)) {
        gvd_http_error(req, 404, "not_found", "no such route: %.*s", (int)path.len, path.base);
        return;
    }
    /* Route and method first (405 does not depend on the job), then the job. */
    const char *allow;
    int (*transition)(gvd_job *, gvd_error *) = NULL;
    if (action.len == 0)
        allow = "GET, DELETE";
    else if (gvd_path_is(action, "pause"))
        allow = "POST", transition = gvd_job_pause;
    else if (gvd_path_is(action, "resume"))
        allow = "POST", transition = gvd_job_resume;
    else if (gvd_path_is(action, "cancel"))
        allow = "POST", transition = gvd_job_cancel;
    else if (gvd_path_is(action, "params"))
        allow = "PATCH";
    else if (gvd_path_is(action, "log") || gvd_path_is(action, "metrics") || gvd_path_is(action, "params/history") ||
             gvd_path_is(action, "events"))
        allow = "GET";
    else {
        gvd_http_error(req, 404, "not_found",
                       "no such route: %.*s (job actions: pause, resume, cancel, params, params/history, log, "
                       "metrics, events)",
                       (int)path.len, path.base);
        return;
    }
    bool ok = action.len == 0 ? gvd_method(req, "GET") || gvd_method(req, "DELETE")
                              : gvd_method(req, allow);
    if (!ok) {
        gvd_http_method_not_allowed(req, allow);
        return;
    }
    gvd_job *job = id > 0 ? gvd_jobs_get(s->jobs, id) : NULL;
    if (!job) {
        gvd_http_error(req, 404, "not_found", "no job %s%.*s%s", id > 0 ? "" : "\"", (int)seg.len, seg.base,
                       id > 0 ? "" : "\"");
        return;
    }
    /* What only the job's node has (its log, series, params record,
     * events) or can do (a params change; a delete, which removes the log
     * on its disk): relay.c sends it there. */
    if (!transition && (action.len > 0 || gvd_method(req, "DELETE")) &&
        gvd_relay(s, req, job, gvd_path_is(action, "params")))
        return;
    if (transition) {
        gvd_on_transition(s, req, job, transition);
    } else if (gvd_path_is(action, "params")) {
        gvd_on_params(s, req, job);
    } else if (gvd_path_is(action, "params/history")) {
        static const char *const none[] = {NULL};
        gvd_query q;
        if (gvd_query_parse(req, none, &q) == 0)
            gvd_http_json(req, 200, gvd_job_params_history_json(job), NULL);
    } else if (gvd_path_is(action, "metrics")) {
        gvd_on_metrics(req, job);
    } else if (gvd_path_is(action, "events")) {
        static const char *const none[] = {NULL};
        gvd_query q;
        if (gvd_query_parse(req, none, &q) == 0)
            gvd_http_json(req, 200, gvd_job_events_json(job), NULL);
    } else if (gvd_path_is(action, "log")) {
        gvd_on_log(req, job);
    } else if (gvd_method(req, "GET")) {
        /* Only the one-job answer carries the spec: lists and streams stay
         * as small as they were, and the env values are hidden from the
         * read-only token (docs/security.md).  The text is the job's cached
         * one (model/control.c): encoded once per change, not per request. */
        size_t n;
        const char *text = gvd_job_body(job, gvd_auth_read_only(s, req), &n);
        gvd_http_text(req, 200, text, n);
    } else {
        gvd_error err = {0};
        if (gvd_jobs_delete(s->jobs, job, &err) != 0)
            gvd_http_error_from(req, &err);
        else
            gvd_http_no_content(req);
    }
}

/* ---- the seed's routes: /start, /pause, /resume, /cancel ------------------------ */

static void gvd_on_seed(gvd_server *s, h2o_req_t *req, h2o_iovec_t path)
{
    if (!gvd_method(req, "POST")) {
        gvd_http_method_not_allowed(req, "POST");
        return;
    }
    gvd_error err = {0};
    if (gvd_path_is(path, "/start")) {
        gvd_job *job = gvd_jobs_start_demo(s->jobs, &err);
        if (!job) {
            gvd_http_error_from(req, &err);
            return;
        }
        char loc[48];
        snprintf(loc, sizeof loc, "/jobs/%lld", (long long)gvd_job_id(job));
        gvd_http_json(req, 201, gvd_job_json(job), loc);
        return;
    }
    gvd_job *demo = gvd_jobs_demo(s->jobs);
    if (!demo) {
        gvd_http_error(req, 404, "not_found", "there is no demo job: POST /start first");
        return;
    }
    gvd_on_transition(s, req, demo,
                      gvd_path_is(path, "/pause")    ? gvd_job_pause
                      : gvd_path_is(path, "/resume") ? gvd_job_resume
                                                     : gvd_job_cancel);
}

/* ---- streams ---------------------------------------------------------------- */

/* ?job=ID for the job streams: 0 = every job, -1 after answering; and
 * ?v=2 (GVD_STREAM_UPDATES; v=1 is the default, GVD_STREAM_JOBS). */
static int64_t gvd_stream_job(gvd_server *s, h2o_req_t *req, bool allowed, gvd_stream *stream)
{
    static const char *const with_job[] = {"job", "v", NULL};
    static const char *const none[] = {NULL};
    gvd_query q;
    if (gvd_query_parse(req, allowed ? with_job : none, &q) != 0)
        return -1;
    const char *ver = gvd_query_get(&q, "v");
    if (ver && strcmp(ver, "1") != 0 && strcmp(ver, "2") != 0) {
        gvd_http_error(req, 400, "invalid_query", "v must be 1 or 2, not \"%s\"", ver);
        return -1;
    }
    if (ver && strcmp(ver, "2") == 0)
        *stream = GVD_STREAM_UPDATES;
    const char *v = gvd_query_get(&q, "job");
    if (!v)
        return 0;
    int64_t id = gvd_parse_uint(v, INT64_MAX / 2);
    if (id <= 0) {
        gvd_http_error(req, 400, "invalid_query", "job must be a positive job id, not \"%s\"", v);
        return -1;
    }
    if (!gvd_jobs_get(s->jobs, id)) {
        gvd_http_error(req, 404, "not_found", "no job %lld", (long long)id);
        return -1;
    }
    return id;
}

static void gvd_on_stream(gvd_server *s, h2o_req_t *req, h2o_iovec_t path)
{
    if (!gvd_method(req, "GET")) {
        gvd_http_method_not_allowed(req, "GET");
        return;
    }
    bool demo = gvd_path_is(path, "/ws");
    gvd_stream stream = demo ? GVD_STREAM_DEMO : GVD_STREAM_JOBS;
    int64_t job = gvd_stream_job(s, req, !demo, &stream);
    if (job < 0)
        return;
    gvd_error err = {0};
    int rc = gvd_path_is(path, "/events") ? gvd_push_sse(s->push, req, stream, job, &err)
                                          : gvd_push_ws(s->push, req, stream, job, &err);
    if (rc != 0)
        gvd_http_error_from(req, &err);
}

/* ---- the rest ----------------------------------------------------------------- */

/* GET /nodes: the cluster's nodes as the cluster module last read them;
 * one node (this one) on the SQLite store. */
static void gvd_on_nodes(gvd_server *s, h2o_req_t *req)
{
    json_t *body = s->nodes ? s->nodes(s->nodes_ud) : json_pack("{s:[]}", "nodes");
    if (!body)
        gvd_http_error(req, 503, "out_of_memory", "out of memory");
    else
        gvd_http_json(req, 200, body, NULL);
}

static void gvd_on_health(gvd_server *s, h2o_req_t *req)
{
    json_t *body = gvd_jobs_counts_json(s->jobs);
    if (!body)
        body = json_object();
    gvd_push_stats st;
    gvd_push_stats_get(s->push, &st);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    double now = (double)tv.tv_sec + tv.tv_usec / 1e6;
    json_object_set_new(body, "status", json_string("ok"));
    json_object_set_new(body, "uptime_s", json_real((double)(int64_t)((now - s->started_at) * 1000) / 1000));
    json_object_set_new(body, "streams", json_pack("{s:I, s:I}", "ws", (json_int_t)st.ws_clients, "sse",
                                                   (json_int_t)st.sse_clients));
    json_object_set_new(body, "connections", json_pack("{s:I, s:I, s:I}", "open", (json_int_t)s->nconns, "max",
                                                       (json_int_t)s->max_conns, "refused",
                                                       (json_int_t)s->refused));
    gvd_http_json(req, 200, body, NULL);
}

static void gvd_on_openapi(h2o_req_t *req)
{
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = gvd_openapi_json_len();
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_send_inline(req, gvd_openapi_json, gvd_openapi_json_len());
}

/* The path routes match: "/jobs/" is "/jobs". */
static h2o_iovec_t gvd_route_path(h2o_req_t *req)
{
    h2o_iovec_t path = req->path_normalized;
    if (path.len > 1 && path.base[path.len - 1] == '/')
        path.len--;
    return path;
}

/* Routes under "/<collection>/{id}": what follows the id, and its pattern. */
typedef struct gvd_subroute {
    const char *rest, *pattern;
} gvd_subroute;

/* The pattern of `path` (which starts with `prefix`, e.g. "/jobs/") among
 * `subs`, or NULL; *rest gets what follows the id segment. */
static const char *gvd_subroute_match(h2o_iovec_t path, size_t prefix, const gvd_subroute *subs, size_t n,
                                      h2o_iovec_t *rest)
{
    const char *p = path.base + prefix, *end = path.base + path.len;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    *rest = slash ? h2o_iovec_init(slash + 1, (size_t)(end - slash - 1)) : h2o_iovec_init("", 0);
    for (size_t i = 0; i < n; i++)
        if (gvd_path_is(*rest, subs[i].rest))
            return subs[i].pattern;
    return NULL;
}

/* The route a path belongs to, spelled as docs/api.md and openapi.json do
 * ("/jobs/{id}/pause"): the request counter's label, so its values come
 * from this closed set whatever the path held.  It follows gvd_route below
 * (and the actions of gvd_on_job_path and gvd_on_pipelines);
 * tests/daemon/e2e/test_metrics.py checks that every path of openapi.json is
 * counted under its own name. */
static const char *gvd_route_pattern(h2o_iovec_t path)
{
    static const char *const fixed[] = {"/jobs",   "/rules",  "/pipelines", "/healthz", "/openapi.json",
                                        "/metrics", "/start", "/pause", "/resume", "/cancel", "/ws", "/ws/jobs",
                                        "/events", "/nodes"};
    static const gvd_subroute job[] = {
        {"", "/jobs/{id}"},
        {"pause", "/jobs/{id}/pause"},
        {"resume", "/jobs/{id}/resume"},
        {"cancel", "/jobs/{id}/cancel"},
        {"params", "/jobs/{id}/params"},
        {"params/history", "/jobs/{id}/params/history"},
        {"log", "/jobs/{id}/log"},
        {"metrics", "/jobs/{id}/metrics"},
        {"events", "/jobs/{id}/events"},
    };
    static const gvd_subroute rule[] = {{"", "/rules/{id}"}};
    static const gvd_subroute pipeline[] = {
        {"", "/pipelines/{id}"},
        {"events", "/pipelines/{id}/events"},
        {"pause", "/pipelines/{id}/pause"},
        {"resume", "/pipelines/{id}/resume"},
        {"cancel", "/pipelines/{id}/cancel"},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (gvd_path_is(path, fixed[i]))
            return fixed[i];
    const char *pattern = NULL;
    h2o_iovec_t rest;
    if (path.len > 6 && memcmp(path.base, "/jobs/", 6) == 0) {
        pattern = gvd_subroute_match(path, 6, job, sizeof job / sizeof job[0], &rest);
    } else if (path.len > 7 && memcmp(path.base, "/rules/", 7) == 0) {
        pattern = gvd_subroute_match(path, 7, rule, 1, &rest);
    } else if (path.len > 11 && memcmp(path.base, "/pipelines/", 11) == 0) {
        pattern = gvd_subroute_match(path, 11, pipeline, sizeof pipeline / sizeof pipeline[0], &rest);
        /* steps/{name}/retry: one segment between the two */
        if (!pattern && rest.len > 12 && memcmp(rest.base, "steps/", 6) == 0 &&
            memcmp(rest.base + rest.len - 6, "/retry", 6) == 0 && !memchr(rest.base + 6, '/', rest.len - 12))
            pattern = "/pipelines/{id}/steps/{name}/retry";
    } else if (gvd_static_has(path)) {
        pattern = "/{file}"; /* the dashboard's */
    }
    return pattern ? pattern : "unmatched";
}

static void gvd_route(gvd_server *s, h2o_req_t *req)
{
    h2o_iovec_t path = gvd_route_path(req);
    if (gvd_conn_framing_bad(s, req))
        return;
    if (!s->jobs) {
        gvd_http_error(req, 503, "shutting_down", "the server is shutting down");
        return;
    }
    if (gvd_http_headers_too_large(s, req))
        return;
    if (!gvd_route_batched(req, path) && gvd_held_route(s, req))
        return; /* transitions are staged: routed once they are durable */
    bool reads_only = gvd_method(req, "GET");
    bool stream = gvd_path_is(path, "/ws") || gvd_path_is(path, "/ws/jobs") || gvd_path_is(path, "/events");
    if (gvd_conn_reserved(s, req)) {
        /* Past a connection limit (server.c): one short request, then the
         * slot is free again. */
        req->http1_is_persistent = 0;
        if (stream) {
            gvd_http_error(req, 503, "too_many_connections",
                           "this connection is one of the few kept for clients over the connection limits: "
                           "it serves one short request, not a stream; retry once this client holds fewer "
                           "connections");
            return;
        }
    }
    if (gvd_guard(s, req, !reads_only || stream) != 0)
        return;
    /* Tokens guard the API routes; /healthz, the dashboard's files and 404s
     * hold nothing to protect (auth.c). */
    if (gvd_auth_required(path) && gvd_auth_check(s, req, !reads_only) != 0)
        return;
    if (gvd_path_is(path, "/jobs")) {
        if (gvd_method(req, "GET"))
            gvd_on_list(s, req);
        else if (gvd_method(req, "POST"))
            gvd_on_create(s, req);
        else
            gvd_http_method_not_allowed(req, "GET, POST");
    } else if (path.len > 6 && memcmp(path.base, "/jobs/", 6) == 0) {
        gvd_on_job_path(s, req, path);
    } else if (gvd_path_is(path, "/rules") || (path.len > 7 && memcmp(path.base, "/rules/", 7) == 0)) {
        gvd_on_rules(s, req, path);
    } else if (gvd_path_is(path, "/pipelines") || (path.len > 11 && memcmp(path.base, "/pipelines/", 11) == 0)) {
        gvd_on_pipelines(s, req, path);
    } else if (gvd_path_is(path, "/healthz") || gvd_path_is(path, "/openapi.json")) {
        if (!gvd_method(req, "GET"))
            gvd_http_method_not_allowed(req, "GET");
        else if (path.len == 8)
            gvd_on_health(s, req);
        else
            gvd_on_openapi(req);
    } else if (gvd_path_is(path, "/metrics")) {
        if (!gvd_method(req, "GET"))
            gvd_http_method_not_allowed(req, "GET");
        else
            gvd_on_prom(s, req);
    } else if (gvd_path_is(path, "/nodes")) {
        if (!gvd_method(req, "GET"))
            gvd_http_method_not_allowed(req, "GET");
        else
            gvd_on_nodes(s, req);
    } else if (gvd_path_is(path, "/start") || gvd_path_is(path, "/pause") || gvd_path_is(path, "/resume") ||
               gvd_path_is(path, "/cancel")) {
        gvd_on_seed(s, req, path);
    } else if (gvd_path_is(path, "/ws") || gvd_path_is(path, "/ws/jobs") || gvd_path_is(path, "/events")) {
        gvd_on_stream(s, req, path);
    } else if (!gvd_static_serve(req, path)) { /* the dashboard's files (static.c) */
        gvd_http_error(req, 404, "not_found", "no such route: %.*s (see /openapi.json)", (int)path.len, path.base);
    }
}

int gvd_api_handle(gvd_server *s, h2o_req_t *req)
{
    s->held_now = false;
    s->routing = true;
    gvd_route(s, req);
    s->routing = false;
    /* Every route answers (or starts its stream) before returning, or
     * holds the request until the tick's commit (held.c answers then). */
    if (!s->held_now)
        gvd_api_answered(req);
    return 0;
}

void gvd_api_answered(h2o_req_t *req)
{
    gvd_obs_http_request(gvd_route_pattern(gvd_route_path(req)), req->res.status);
    if (gvd_log_enabled(GVD_LOG_DEBUG)) {
        char path[300];
        char quoted[320];
        gvd_auth_redact(req->path, path, sizeof path); /* never log a ?token= */
        gvd_log(GVD_LOG_DEBUG, "http.request", "method=%.*s path=%s status=%d", (int)req->method.len,
                req->method.base, gvd_log_quote(path, quoted, sizeof quoted), req->res.status);
    }
}
