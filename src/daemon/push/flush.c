/*
 * flush.c — from a change to shared frames: the dirty marks, the flush and
 * the encoding of every message the streams carry.
 *
 * The model's change effect calls gvd_push_job_changed(); that only records
 * the job id (a set: ten changes of one job before the flush are one entry)
 * and arms a one-shot timer so that flushes are at least `flush_ms` apart
 * (an isolated change goes out on the next loop iteration).  The flush reads
 * the jobs' *current* state — signals hold the latest value, so there is
 * nothing to replay — encodes each dirty job once, queues the same buffer to
 * every interested client and kicks each touched client once (hub.c).
 *
 * Why this way: the cost of a change is one encoding per flush, shared by
 * every client however many there are; a burst of changes to one job is
 * one frame, not one per change; and a client that is behind only ever
 * holds the latest state of each job (its queue replaces by key, hub.c),
 * so being slow never makes it receive more.
 *
 * Shared, not per client: a new /ws client gets the demo frame the last
 * flush sent (demo_frame, kept until a job changes), a new all-jobs client
 * the snapshot the next flush encodes for every newcomer at once, a ?v=2
 * client the one update frame of each flush (push_int.h).
 */
#include "push_int.h"

#include <stdlib.h>
#include <string.h>

#include "../pipeline/pipeline.h"
#include "../util/log.h"

#define GVD_STATUS_BIT(s) (1u << (s))
#define GVD_ACTIVE_MASK (GVD_STATUS_BIT(GVD_QUEUED) | GVD_STATUS_BIT(GVD_RUNNING) | GVD_STATUS_BIT(GVD_PAUSED))
#define GVD_FINISHED_MASK \
    (GVD_STATUS_BIT(GVD_SUCCEEDED) | GVD_STATUS_BIT(GVD_FAILED) | GVD_STATUS_BIT(GVD_CANCELLED))

static const char gvd_idle_frame[] = "{\"status\":\"idle\",\"progress\":0}";

/* ---- encoding ------------------------------------------------------------ */

/* `j` is consumed.  A compact dump has no raw newline (SSE needs that). */
static char *gvd_dump(json_t *j)
{
    if (!j)
        return NULL;
    char *s = json_dumps(j, GVD_JSON_FLAGS);
    json_decref(j);
    return s;
}

static int gvd_dump_cb(const char *buf, size_t size, void *ud)
{
    return gvd_pbuf_append((gvd_pbuf **)ud, buf, size);
}

/* prefix + text + suffix, sealed. */
static gvd_pbuf *gvd_msg_wrap(gvd_msg_type type, const char *prefix, const char *text, const char *suffix)
{
    size_t np = strlen(prefix), nt = strlen(text), ns = strlen(suffix);
    gvd_pbuf *b = gvd_pbuf_new(type, np + nt + ns);
    if (!b)
        return NULL;
    /* Cannot fail: the capacity was reserved above. */
    (void)gvd_pbuf_append(&b, prefix, np);
    (void)gvd_pbuf_append(&b, text, nt);
    (void)gvd_pbuf_append(&b, suffix, ns);
    gvd_pbuf_seal(b);
    return b;
}

static gvd_pbuf *gvd_msg_demo(gvd_push *p)
{
    gvd_job *demo = gvd_jobs_demo(p->jobs);
    if (!demo)
        return gvd_msg_wrap(GVD_MSG_DEMO, "", gvd_idle_frame, "");
    char *text = gvd_dump(gvd_job_json(demo));
    if (!text)
        return NULL;
    gvd_pbuf *b = gvd_msg_wrap(GVD_MSG_DEMO, "", text, "");
    free(text);
    return b;
}

/* {"type":"snapshot","jobs":[...],"counts":{...},"truncated":false}: the
 * followed job, or every active job then the newest finished ones, at most
 * snapshot_limit in all. */
gvd_pbuf *gvd_msg_snapshot(gvd_push *p, int64_t follow)
{
    json_t *arr = json_array();
    json_t *msg = NULL;
    gvd_pbuf *b = NULL;
    gvd_job **v = NULL;
    bool truncated = false;
    if (!arr)
        return NULL;
    if (follow) {
        gvd_job *job = gvd_jobs_get(p->jobs, follow);
        if (job && json_array_append_new(arr, gvd_job_json(job)) != 0)
            goto out;
    } else {
        size_t lim = p->opts.snapshot_limit, total_active = 0, total_done = 0;
        v = malloc(lim * sizeof *v);
        if (!v)
            goto out;
        size_t n = gvd_jobs_list(p->jobs, GVD_ACTIVE_MASK, 0, lim, v, &total_active);
        for (size_t i = 0; i < n; i++)
            if (json_array_append_new(arr, gvd_job_json(v[i])) != 0)
                goto out;
        size_t m = gvd_jobs_list(p->jobs, GVD_FINISHED_MASK, 0, lim - n, v, &total_done);
        for (size_t i = 0; i < m; i++)
            if (json_array_append_new(arr, gvd_job_json(v[i])) != 0)
                goto out;
        truncated = n + m < total_active + total_done;
    }
    msg = json_pack("{s:s, s:O, s:o, s:b}", "type", "snapshot", "jobs", arr, "counts",
                    gvd_jobs_counts_json(p->jobs), "truncated", truncated);
    if (!msg)
        goto out;
    if (!follow) {
        /* the whole-daemon streams also carry every pipeline */
        json_t *pls = json_array();
        for (gvd_pipeline *pl = gvd_pipelines_first(p->jobs); pls && pl; pl = gvd_pipeline_next(pl))
            if (json_array_append_new(pls, gvd_pipeline_json(pl)) != 0) {
                json_decref(pls);
                pls = NULL;
            }
        if (!pls || json_object_set_new(msg, "pipelines", pls) != 0)
            goto out;
    }
    b = gvd_pbuf_new(GVD_MSG_SNAPSHOT, 1024);
    if (b && json_dump_callback(msg, gvd_dump_cb, &b, GVD_JSON_FLAGS) != 0) {
        gvd_pbuf_unref(b);
        b = NULL;
    }
    if (b)
        gvd_pbuf_seal(b);
out:
    free(v);
    json_decref(msg);
    json_decref(arr);
    return b;
}

/* The frame a new /ws client starts with: the last one sent while no job
 * changed since (else encoded now, and kept for the next newcomers). */
gvd_pbuf *gvd_demo_first(gvd_push *p)
{
    if (!p->demo_frame)
        p->demo_frame = gvd_msg_demo(p);
    return p->demo_frame ? gvd_pbuf_ref(p->demo_frame) : NULL;
}

static void gvd_demo_keep(gvd_push *p, gvd_pbuf *b)
{
    gvd_pbuf_unref(p->demo_frame);
    p->demo_frame = gvd_pbuf_ref(b);
}

/* ---- the flush ----------------------------------------------------------- */

enum gvd_audience {
    GVD_TO_FOLLOWERS, /* v1 job streams following `key` or every job */
    GVD_TO_ALL_JOBS,  /* v1 job streams following every job */
    GVD_TO_ONE_V2,    /* ?v=2 streams following `key` alone */
    GVD_TO_DEMO       /* /ws */
};

static bool gvd_wants(const gvd_client *c, enum gvd_audience to, int64_t key)
{
    switch (to) {
    case GVD_TO_DEMO:
        return c->stream == GVD_STREAM_DEMO;
    case GVD_TO_ALL_JOBS:
        return c->stream == GVD_STREAM_JOBS && c->job == 0;
    case GVD_TO_ONE_V2:
        return c->stream == GVD_STREAM_UPDATES && c->job == key;
    case GVD_TO_FOLLOWERS:
        break;
    }
    return c->stream == GVD_STREAM_JOBS && (c->job == 0 || c->job == key);
}

/* Queue b for the clients in `to`.  A client still waiting for its
 * snapshot gets none: the snapshot, encoded after, includes the change. */
static void gvd_deliver(gvd_push *p, gvd_pbuf *b, int64_t key, enum gvd_audience to, bool finish_followers)
{
    gvd_client *next;
    for (gvd_client *c = p->first; c; c = next) {
        next = c->next;
        if (c->closing || c->finish || c->want_snapshot || !gvd_wants(c, to, key))
            continue;
        bool single = c->job != 0;
        if (gvd_client_queue(c, to == GVD_TO_DEMO ? GVD_KEY_DEMO : key, b) == 0 && finish_followers && single)
            c->finish = true; /* its job is gone: end after this frame */
    }
    p->stats.encoded++;
}

/* Wrap `text` and deliver it (nothing on allocation failure: the client
 * keeps the older state, the next change sends the latest). */
static void gvd_deliver_text(gvd_push *p, gvd_msg_type type, const char *prefix, const char *text, const char *suffix,
                             int64_t key, enum gvd_audience to, bool finish_followers)
{
    gvd_pbuf *b = gvd_msg_wrap(type, prefix, text, suffix);
    if (!b)
        return;
    gvd_deliver(p, b, key, to, finish_followers);
    if (to == GVD_TO_DEMO)
        gvd_demo_keep(p, b);
    gvd_pbuf_unref(b);
}

static void gvd_flush_removed(gvd_push *p)
{
    for (size_t i = 0; i < p->removed.n && (p->nall || p->nsingle || p->nsingle2); i++) {
        /* (only /ws clients: they learn it from the demo frame; ?v=2 streams
         * following every job: from the update frame) */
        int64_t id = p->removed.slots[i].key;
        char text[64];
        snprintf(text, sizeof text, "%lld", (long long)id);
        if (p->nall || p->nsingle)
            gvd_deliver_text(p, GVD_MSG_REMOVED, "{\"type\":\"removed\",\"id\":", text, "}", id, GVD_TO_FOLLOWERS,
                             true);
        if (p->nsingle2)
            gvd_deliver_text(p, GVD_MSG_UPDATE, "{\"type\":\"update\",\"removed\":[", text, "]}", id, GVD_TO_ONE_V2,
                             true);
    }
}

static void gvd_flush_dirty(gvd_push *p, int64_t demo_id)
{
    for (size_t i = 0; i < p->dirty.n; i++) {
        int64_t id = p->dirty.slots[i].key;
        gvd_job *job = gvd_jobs_get(p->jobs, id);
        if (!job)
            continue; /* deleted since: the "removed" message covers it */
        bool to_jobs = p->nall > 0 || p->nsingle > 0;
        bool to_one2 = p->nsingle2 > 0; /* a ?v=2 stream of one job gets it whole */
        bool to_demo = p->nseed > 0 && id == demo_id;
        if (!to_jobs && !to_one2 && !to_demo)
            continue;
        /* Encode once; every message wraps the same text. */
        char *text = gvd_dump(gvd_job_json(job));
        if (!text)
            continue;
        if (to_jobs)
            gvd_deliver_text(p, GVD_MSG_JOB, "{\"type\":\"job\",\"job\":", text, "}", id, GVD_TO_FOLLOWERS, false);
        if (to_one2)
            gvd_deliver_text(p, GVD_MSG_UPDATE, "{\"type\":\"update\",\"jobs\":[", text, "]}", id, GVD_TO_ONE_V2,
                             false);
        if (to_demo) {
            gvd_deliver_text(p, GVD_MSG_DEMO, "", text, "", GVD_KEY_DEMO, GVD_TO_DEMO, false);
            p->demo_sent = id;
        }
        free(text);
    }
}

/* The counts' text when it differs from *sent (which then becomes a copy
 * of it), else NULL.  The caller frees it. */
static char *gvd_counts_changed(gvd_push *p, char **sent)
{
    char *text = gvd_dump(gvd_jobs_counts_json(p->jobs));
    if (!text || (*sent && strcmp(*sent, text) == 0)) {
        free(text);
        return NULL;
    }
    char *copy = strdup(text);
    if (!copy) {
        free(text);
        return NULL; /* sent again next time */
    }
    free(*sent);
    *sent = copy;
    return text;
}

static void gvd_flush_counts(gvd_push *p)
{
    if (p->nall == 0) {
        free(p->counts_sent);
        p->counts_sent = NULL;
        return;
    }
    char *text = gvd_counts_changed(p, &p->counts_sent);
    if (text)
        gvd_deliver_text(p, GVD_MSG_COUNTS, "{\"type\":\"counts\",\"counts\":", text, "}", GVD_KEY_COUNTS,
                         GVD_TO_ALL_JOBS, false);
    free(text);
}

/* Pipelines go to the clients following every job (GVD_TO_ALL_JOBS). */
static void gvd_flush_pipelines(gvd_push *p)
{
    if (p->nall == 0)
        return;
    for (size_t i = 0; i < p->pl_removed.n; i++) {
        int64_t id = p->pl_removed.slots[i].key;
        char text[64];
        snprintf(text, sizeof text, "%lld", (long long)id);
        gvd_deliver_text(p, GVD_MSG_PIPELINE_REMOVED, "{\"type\":\"pipeline_removed\",\"id\":", text, "}",
                         GVD_KEY_PIPELINE(id), GVD_TO_ALL_JOBS, false);
    }
    for (size_t i = 0; i < p->pl_dirty.n; i++) {
        gvd_pipeline *pl = gvd_pipelines_get(p->jobs, p->pl_dirty.slots[i].key);
        if (!pl)
            continue; /* deleted since: its removal went out above */
        char *text = gvd_dump(gvd_pipeline_json(pl));
        if (text)
            gvd_deliver_text(p, GVD_MSG_PIPELINE, "{\"type\":\"pipeline\",\"pipeline\":", text, "}",
                             GVD_KEY_PIPELINE(gvd_pipeline_id(pl)), GVD_TO_ALL_JOBS, false);
        free(text);
    }
}

/* ---- ?v=2: one update frame per flush -------------------------------------- */

/* `now` against `old`: {"id":N, ...the keys whose value differs...} (a key
 * gone is null) in *out, or NULL when nothing differs.  -1 when out of
 * memory. */
static int gvd_job_delta(json_t *old, json_t *now, json_t **out)
{
    json_t *d = json_pack("{s:O}", "id", json_object_get(now, "id"));
    const char *k;
    json_t *v;
    size_t n = 0;
    *out = NULL;
    if (!d)
        return -1;
    json_object_foreach(now, k, v) {
        json_t *o = json_object_get(old, k);
        if (o && json_equal(o, v))
            continue;
        if (json_object_set(d, k, v) != 0)
            goto fail;
        n++;
    }
    json_object_foreach(old, k, v) {
        if (json_object_get(now, k))
            continue;
        if (json_object_set_new(d, k, json_null()) != 0)
            goto fail;
        n++;
    }
    if (n == 0)
        json_decref(d);
    else
        *out = d;
    return 0;
fail:
    json_decref(d);
    return -1;
}

/* The job's entry in this flush's update (NULL: nothing visible changed),
 * and `sent` brought up to date.  A finished job leaves `sent` (it rarely
 * changes again; if it does, it goes whole), so `sent` holds the active
 * jobs only. */
static json_t *gvd_update_entry(gvd_push *p, gvd_job *job)
{
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)gvd_job_id(job));
    json_t *now = gvd_job_json(job);
    if (!now) {
        json_object_del(p->sent, key); /* its next change goes whole */
        return NULL;
    }
    json_t *old = json_object_get(p->sent, key), *entry = NULL;
    if (!old || gvd_job_delta(old, now, &entry) != 0)
        entry = json_incref(now); /* first sight (or no memory for a delta): the whole object */
    if (gvd_status_finished(gvd_job_status(job)) || json_object_set(p->sent, key, now) != 0)
        json_object_del(p->sent, key);
    json_decref(now);
    return entry;
}

/* {"type":"update","jobs":[...],"removed":[...],"counts":{...},
 *  "pipelines":[...],"pipelines_removed":[...]}: the members that have
 * something.  NULL when nothing changed (or out of memory: then `sent` is
 * forgotten, so that every job's next change goes whole). */
static json_t *gvd_update_msg(gvd_push *p)
{
    json_t *m = json_pack("{s:s, s:[], s:[], s:[], s:[]}", "type", "update", "jobs", "removed", "pipelines",
                          "pipelines_removed");
    if (!m)
        goto oom;
    json_t *jobs = json_object_get(m, "jobs"), *removed = json_object_get(m, "removed");
    json_t *pls = json_object_get(m, "pipelines"), *plrm = json_object_get(m, "pipelines_removed");
    for (size_t i = 0; i < p->removed.n; i++) {
        char key[24];
        snprintf(key, sizeof key, "%lld", (long long)p->removed.slots[i].key);
        json_object_del(p->sent, key);
        if (json_array_append_new(removed, json_integer(p->removed.slots[i].key)) != 0)
            goto oom;
    }
    for (size_t i = 0; i < p->dirty.n; i++) {
        gvd_job *job = gvd_jobs_get(p->jobs, p->dirty.slots[i].key);
        json_t *e = job ? gvd_update_entry(p, job) : NULL;
        if (e && json_array_append_new(jobs, e) != 0)
            goto oom;
    }
    for (size_t i = 0; i < p->pl_removed.n; i++)
        if (json_array_append_new(plrm, json_integer(p->pl_removed.slots[i].key)) != 0)
            goto oom;
    for (size_t i = 0; i < p->pl_dirty.n; i++) {
        gvd_pipeline *pl = gvd_pipelines_get(p->jobs, p->pl_dirty.slots[i].key);
        if (pl && json_array_append_new(pls, gvd_pipeline_json(pl)) != 0)
            goto oom;
    }
    char *counts = gvd_counts_changed(p, &p->counts_sent2);
    if (counts) {
        int rc = json_object_set_new(m, "counts", json_loads(counts, 0, NULL));
        free(counts);
        if (rc != 0)
            goto oom;
    }
    static const char *const lists[] = {"jobs", "removed", "pipelines", "pipelines_removed"};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        if (json_array_size(json_object_get(m, lists[i])) == 0)
            json_object_del(m, lists[i]);
    if (json_object_size(m) > 1)
        return m;
    json_decref(m);
    return NULL;
oom:
    gvd_log(GVD_LOG_ERROR, "push.oom", "what=update");
    json_decref(m);
    json_object_clear(p->sent);
    return NULL;
}

static void gvd_flush_updates(gvd_push *p)
{
    if (p->nall2 == 0) {
        /* nobody holds `sent` any more: a later client starts from a
         * snapshot and whole objects */
        json_object_clear(p->sent);
        free(p->counts_sent2);
        p->counts_sent2 = NULL;
        return;
    }
    json_t *m = gvd_update_msg(p);
    if (!m)
        return;
    gvd_pbuf *b = gvd_pbuf_new(GVD_MSG_UPDATE, 512);
    if (b && json_dump_callback(m, gvd_dump_cb, &b, GVD_JSON_FLAGS) != 0) {
        gvd_pbuf_unref(b);
        b = NULL;
    }
    json_decref(m);
    if (!b) {
        json_object_clear(p->sent);
        return;
    }
    gvd_pbuf_seal(b);
    int64_t key = GVD_KEY_UPDATE(++p->update_seq);
    gvd_client *next;
    for (gvd_client *c = p->first; c; c = next) {
        next = c->next;
        if (c->closing || c->want_snapshot || c->stream != GVD_STREAM_UPDATES || c->job != 0)
            continue;
        if (c->nupdates >= GVD_UPDATES_MAX) {
            /* Too far behind: its unsent updates make way for a snapshot
             * (this flush's, which includes this update). */
            gvd_client_discard(c);
            c->want_snapshot = true;
            p->nwant++;
            p->stats.resyncs++;
            continue;
        }
        if (gvd_client_queue(c, key, b) == 0)
            c->nupdates++;
    }
    p->stats.encoded++;
    gvd_pbuf_unref(b);
}

/* One snapshot for every all-jobs client that arrived (or fell behind)
 * since the last flush. */
static void gvd_flush_snapshots(gvd_push *p)
{
    if (p->nwant == 0)
        return;
    gvd_pbuf *b = gvd_msg_snapshot(p, 0);
    if (!b) {
        gvd_push_arm(p); /* out of memory: they wait for the next flush */
        return;
    }
    p->stats.snapshots++;
    gvd_client *next;
    for (gvd_client *c = p->first; c && p->nwant > 0; c = next) {
        next = c->next;
        if (!c->want_snapshot)
            continue;
        c->want_snapshot = false;
        p->nwant--;
        if (!c->closing)
            (void)gvd_client_queue(c, GVD_KEY_SNAPSHOT, b); /* -1: dropped, nothing more to do */
    }
    gvd_pbuf_unref(b);
}

static void gvd_push_flush(gvd_push *p)
{
    if (!p->jobs || (p->dirty.n == 0 && p->removed.n == 0 && p->pl_dirty.n == 0 && p->pl_removed.n == 0 &&
                     p->nwant == 0))
        return;
    if (p->nclients > 0) {
        p->stats.flushes++;
        gvd_job *demo = gvd_jobs_demo(p->jobs);
        int64_t demo_id = demo ? gvd_job_id(demo) : 0;
        gvd_flush_removed(p);
        gvd_flush_dirty(p, demo_id);
        /* The newest demo job changed identity (deleted, or a new one that
         * has not changed yet): /ws clients follow the new one. */
        if (p->nseed > 0 && demo_id != p->demo_sent) {
            gvd_pbuf *b = gvd_msg_demo(p);
            if (b) {
                gvd_deliver(p, b, GVD_KEY_DEMO, GVD_TO_DEMO, false);
                gvd_demo_keep(p, b);
                gvd_pbuf_unref(b);
                p->demo_sent = demo_id;
            }
        }
        gvd_flush_counts(p);
        gvd_flush_pipelines(p);
        gvd_flush_updates(p);
        /* after every update: the snapshot is the state they lead to */
        gvd_flush_snapshots(p);
        /* a job that changed has often printed too: its followers get
         * the new bytes with this flush rather than at the next poll */
        if (p->nlog > 0)
            gvd_push_logs_poll(p, true);
    }
    gvd_queue_clear(&p->dirty);
    gvd_queue_clear(&p->removed);
    gvd_queue_clear(&p->pl_dirty);
    gvd_queue_clear(&p->pl_removed);
    gvd_push_kick_touched(p);
}

/* ---- change notifications, arming the flush ----------------------------- */

static void gvd_on_flush(uv_timer_t *t)
{
    gvd_push *p = t->data;
    p->flush_armed = false;
    p->last_flush = uv_now(p->loop);
    gvd_push_flush(p);
}

void gvd_push_job_changed(void *hub, gvd_job *job, bool removed)
{
    gvd_push *p = hub;
    if (p->closing)
        return;
    if (p->demo_frame) {
        /* it may be the demo: new /ws clients must not start from the old */
        gvd_pbuf_unref(p->demo_frame);
        p->demo_frame = NULL;
    }
    if (gvd_queue_put(removed ? &p->removed : &p->dirty, gvd_job_id(job), NULL, NULL) < 0) {
        gvd_log(GVD_LOG_ERROR, "push.oom", "job=%lld", (long long)gvd_job_id(job));
        return;
    }
    gvd_push_arm(p);
}

void gvd_push_pipeline_changed(void *hub, gvd_pipeline *pl, bool removed)
{
    gvd_push *p = hub;
    if (p->closing)
        return;
    if (gvd_queue_put(removed ? &p->pl_removed : &p->pl_dirty, gvd_pipeline_id(pl), NULL, NULL) < 0) {
        gvd_log(GVD_LOG_ERROR, "push.oom", "pipeline=%lld", (long long)gvd_pipeline_id(pl));
        return;
    }
    gvd_push_arm(p);
}

/* Flushes at least flush_ms apart; an isolated change goes out at once. */
void gvd_push_arm(gvd_push *p)
{
    if (p->flush_armed)
        return;
    uint64_t now = uv_now(p->loop), due = p->last_flush + p->opts.flush_ms;
    uv_timer_start(&p->flush_timer, gvd_on_flush, due > now ? due - now : 0, 0);
    p->flush_armed = true;
}
