/*
 * prom.c — GET /metrics: galvanid's own metrics for Prometheus
 * (docs/observability.md).
 *
 * The counters live in the obs registry (src/daemon/obs/), bumped by each
 * layer as things happen; what is a state rather than an event (jobs per
 * status, stream clients, open connections) is read here from its owner at
 * the scrape, so the page always agrees with GET /jobs and /healthz.  Not
 * to be confused with GET /jobs/{id}/metrics, a job's own ::metric history.
 *
 * Same access rules as the rest of the API (auth.c): a token when one is
 * configured; the read-only token is enough, since a scrape changes nothing.
 */
#include "api_int.h"

#include "../obs/obs.h"

void gvd_on_prom(gvd_server *s, h2o_req_t *req)
{
    static const char *const none[] = {NULL};
    gvd_query q;
    if (gvd_query_parse(req, none, &q) != 0)
        return;
    gvd_obs_live live = {.conns_open = s->nconns, .conns_max = s->max_conns, .conns_refused = s->refused};
    gvd_jobs_stats_get(s->jobs, &live.jobs);
    if (s->push) /* NULL only while closing, when no request gets here */
        gvd_push_stats_get(s->push, &live.push);
    gvd_obs_text text = {0};
    if (gvd_obs_render(&text, &live) != 0) {
        gvd_obs_text_free(&text);
        gvd_http_error(req, 503, "out_of_memory", "out of memory");
        return;
    }
    gvd_http_send(req, 200, GVD_OBS_CONTENT_TYPE, h2o_iovec_init(text.p, text.len)); /* copies */
    gvd_obs_text_free(&text);
}
