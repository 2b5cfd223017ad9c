/*
 * hub.c — the subscription core shared by both transports: the clients,
 * their queues and bounds, the kick walker, the periodic tick, lifetime.
 *
 * A transport attaches its client here; the flush (flush.c) queues shared
 * frames to it with gvd_client_queue() (latest wins per key) and marks it
 * touched; the kick walker then has the transport write what is pending,
 * a slice of clients per loop iteration.
 *
 * A client that cannot keep up is bounded twice: its queue holds at most one
 * frame per key (job id, counts, snapshot; a ?v=2 client at most
 * GVD_UPDATES_MAX update frames, then a snapshot instead), and the tick
 * drops it once its unsent bytes stay above max_pending for slow_ms (or at
 * once above eight times that).
 */
#include "push_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../obs/obs.h"
#include "../pipeline/pipeline.h"
#include "../util/log.h"

static void gvd_on_tick(uv_timer_t *t);

/* ---- clients ------------------------------------------------------------- */

static void gvd_count_client(gvd_push *p, const gvd_client *c, int d)
{
    size_t *n = c->stream == GVD_STREAM_DEMO      ? &p->nseed
                : c->stream == GVD_STREAM_UPDATES ? (c->job ? &p->nsingle2 : &p->nall2)
                                                  : (c->job ? &p->nsingle : &p->nall);
    *n += (size_t)d; /* d = -1 wraps as intended */
    p->nclients += (size_t)d;
    p->nws += c->ws ? (size_t)d : 0;
}

int gvd_client_attach(gvd_push *p, gvd_client *c)
{
    if (p->closing || !p->jobs)
        return -1;
    /* A client following every job waits for the flush's shared snapshot. */
    bool shared = c->stream != GVD_STREAM_DEMO && c->job == 0;
    gvd_pbuf *first = NULL;
    if (!shared) {
        first = c->stream == GVD_STREAM_DEMO ? gvd_demo_first(p) : gvd_msg_snapshot(p, c->job);
        if (!first)
            return -1;
    }
    c->hub = p;
    c->id = ++p->next_id;
    c->prev = p->last;
    c->next = NULL;
    if (p->last)
        p->last->next = c;
    else
        p->first = c;
    p->last = c;
    gvd_count_client(p, c, +1);
    if (shared) {
        c->want_snapshot = true;
        p->nwant++;
        gvd_push_arm(p);
    } else {
        /* The first frame bypasses the unsent bound (a large snapshot is
         * still one frame) and cannot replace anything. */
        int rc = gvd_queue_put(&c->pending, c->stream == GVD_STREAM_DEMO ? GVD_KEY_DEMO : GVD_KEY_SNAPSHOT, first,
                               NULL);
        if (rc == 0) {
            c->pending_bytes += gvd_pbuf_wire_len(first, c->ws);
            if (c->pending_bytes > p->stats.max_unsent)
                p->stats.max_unsent = c->pending_bytes;
        }
        gvd_pbuf_unref(first);
        if (rc != 0) {
            gvd_client_detach(c);
            return -1;
        }
    }
    if (c->stream == GVD_STREAM_DEMO && p->nseed == 1) {
        /* demo_sent is what every /ws client last got; with the first one
         * it is what this one got.  (With others present it must stay: a
         * demo job deleted just now is still theirs until the flush.) */
        gvd_job *demo = gvd_jobs_demo(p->jobs);
        p->demo_sent = demo ? gvd_job_id(demo) : 0;
    }
    char target[32] = "all";
    if (c->stream != GVD_STREAM_DEMO && c->job)
        snprintf(target, sizeof target, "%lld", (long long)c->job);
    gvd_log(GVD_LOG_INFO, "push.connect", "client=%llu transport=%s stream=%s job=%s clients=%zu",
            (unsigned long long)c->id, c->ws ? "ws" : "sse", c->stream == GVD_STREAM_DEMO ? "demo" : c->stream == GVD_STREAM_JOBS ? "jobs" : "updates",
            c->stream == GVD_STREAM_DEMO ? "demo" : target, p->nclients);
    return 0;
}

void gvd_client_detach(gvd_client *c)
{
    gvd_push *p = c->hub;
    if (!p)
        return;
    if (p->kick_cursor == c)
        p->kick_cursor = c->next;
    if (c->touched) {
        c->touched = false;
        p->ntouched--;
    }
    if (c->want_snapshot) {
        c->want_snapshot = false;
        p->nwant--;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        p->first = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        p->last = c->prev;
    c->prev = c->next = NULL;
    if (c->log_job) {
        p->nlog--;
        c->log_job = 0;
    }
    gvd_count_client(p, c, -1);
    c->hub = NULL;
    gvd_log(GVD_LOG_INFO, "push.disconnect", "client=%llu transport=%s clients=%zu", (unsigned long long)c->id,
            c->ws ? "ws" : "sse", p->nclients);
    /* A closing hub notices the last client on its next tick. */
    if (p->closing && p->nclients == 0)
        uv_timer_start(&p->tick_timer, gvd_on_tick, 0, p->tick_ms);
}

static gvd_obs_transport gvd_transport(const gvd_client *c)
{
    return c->ws ? GVD_OBS_WS : GVD_OBS_SSE;
}

int gvd_client_queue(gvd_client *c, int64_t key, gvd_pbuf *buf)
{
    gvd_push *p = c->hub;
    gvd_pbuf *old = NULL;
    bool first = c->pending.n == 0;
    int r = gvd_queue_put(&c->pending, key, buf, &old);
    if (r < 0) {
        c->ops->drop(c, 1011, "out of memory");
        return -1;
    }
    if (old) {
        c->pending_bytes -= gvd_pbuf_wire_len(old, c->ws);
        gvd_pbuf_unref(old);
        gvd_obs_frames_dropped(gvd_transport(c), GVD_OBS_COALESCED, 1);
    }
    c->pending_bytes += gvd_pbuf_wire_len(buf, c->ws);
    if (!p)
        return 0;
    if (first)
        c->queued_at = uv_now(p->loop);
    if (!c->touched) {
        c->touched = true;
        p->ntouched++;
    }
    p->stats.queued++;
    p->stats.coalesced += r == 1;
    size_t unsent = gvd_client_unsent(c);
    if (unsent > p->stats.max_unsent)
        p->stats.max_unsent = unsent;
    if (unsent > 8 * p->opts.max_pending) {
        p->stats.dropped_slow++;
        gvd_log(GVD_LOG_WARN, "push.drop", "client=%llu reason=too_slow unsent=%zu", (unsigned long long)c->id,
                unsent);
        c->ops->drop(c, 1008, "client too slow");
        return -1;
    }
    return 0;
}

size_t gvd_client_take(gvd_client *c)
{
    size_t n = c->pending.n;
    if (c->inflight_cap < n) {
        size_t cap = c->inflight_cap ? c->inflight_cap : 8;
        while (cap < n)
            cap *= 2;
        gvd_pbuf **v = realloc(c->inflight, cap * sizeof *v);
        if (!v)
            return 0; /* try again on the next kick; the frames stay pending */
        c->inflight = v;
        c->inflight_cap = cap;
    }
    for (size_t i = 0; i < n; i++)
        c->inflight[i] = c->pending.slots[i].buf;
    c->ninflight = n;
    gvd_obs_frames_sent(gvd_transport(c), n);
    if (c->hub && n > 0) {
        uint64_t now = uv_now(c->hub->loop);
        gvd_obs_stream_written(now > c->queued_at ? now - c->queued_at : 0);
    }
    c->inflight_bytes = c->pending_bytes;
    c->pending_bytes = 0;
    c->log_queued = false; /* on its way: the next log bytes may be read */
    c->nupdates = 0;
    gvd_queue_reset(&c->pending);
    return n;
}

void gvd_client_written(gvd_client *c)
{
    for (size_t i = 0; i < c->ninflight; i++)
        gvd_pbuf_unref(c->inflight[i]);
    c->ninflight = 0;
    c->inflight_bytes = 0;
}

void gvd_client_discard(gvd_client *c)
{
    gvd_obs_frames_dropped(gvd_transport(c), GVD_OBS_DISCARDED, c->pending.n);
    gvd_queue_clear(&c->pending);
    c->pending_bytes = 0;
    c->log_queued = false;
    c->nupdates = 0;
}

void gvd_client_release(gvd_client *c)
{
    gvd_client_detach(c);
    gvd_client_written(c);
    free(c->inflight);
    c->inflight = NULL;
    c->inflight_cap = 0;
    gvd_obs_frames_dropped(gvd_transport(c), GVD_OBS_DISCARDED, c->pending.n);
    gvd_queue_free(&c->pending);
    c->pending_bytes = 0;
}

/* Our accounting (unsent bytes) only sees what the socket has not taken
 * yet.  Linux autotunes a TCP send buffer up to tcp_wmem's maximum (4 MiB
 * by default), so a client that never reads could park megabytes in the
 * kernel before a single byte counted as unsent: measured, 2.7 MB per idle
 * client, 5.5 GB of kernel memory for 2,000 of them, and none was ever
 * dropped.  A fixed SO_SNDBUF (which also turns autotuning off) makes the
 * kernel's share bounded and lets the drop logic see a stuck client.  A
 * stream needs little: frames are small and coalesced (64 KiB per round
 * trip is still 640 KB/s at 100 ms). */
void gvd_push_bound_sndbuf(gvd_push *p, int fd)
{
    size_t want = p->opts.max_pending;
    if (want > GVD_PUSH_SNDBUF_MAX)
        want = GVD_PUSH_SNDBUF_MAX;
    if (want < GVD_PUSH_SNDBUF_MIN)
        want = GVD_PUSH_SNDBUF_MIN;
    int v = (int)want;
    if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v) != 0)
        gvd_log(GVD_LOG_WARN, "push.sndbuf", "error=%s", strerror(errno));
}

void gvd_push_count_write(gvd_push *p)
{
    if (p)
        p->stats.writes++;
}

void gvd_push_count_ping_drop(gvd_push *p)
{
    if (p)
        p->stats.dropped_ping++;
}

/* ---- the kick walker ------------------------------------------------------- */

static void gvd_on_kick_idle(uv_idle_t *h)
{
    gvd_push_kick_touched(h->data);
}

void gvd_push_kick_touched(gvd_push *p)
{
    size_t kicks = 0, visits = 0, limit = p->nclients;
    while (p->ntouched > 0 && kicks < GVD_KICK_SLICE) {
        gvd_client *c = p->kick_cursor ? p->kick_cursor : p->first;
        if (!c || visits++ > limit) {
            /* every client seen and none touched: the count is wrong */
            gvd_log(GVD_LOG_ERROR, "push.kick", "touched=%zu not found", p->ntouched);
            p->ntouched = 0;
            break;
        }
        p->kick_cursor = c->next; /* NULL: from the first again */
        if (c->touched) {
            c->touched = false;
            p->ntouched--;
            kicks++;
            c->ops->kick(c); /* may free c (detach moves the cursor past it) */
        }
    }
    if (p->ntouched > 0 && !p->closing)
        uv_idle_start(&p->kick_idle, gvd_on_kick_idle);
    else
        uv_idle_stop(&p->kick_idle);
}

/* ---- periodic duty, lifetime ----------------------------------------------- */

static void gvd_push_on_closed(uv_handle_t *h)
{
    gvd_push *p = h->data;
    if (--p->open_handles > 0)
        return;
    gvd_queue_free(&p->dirty);
    gvd_queue_free(&p->removed);
    gvd_queue_free(&p->pl_dirty);
    gvd_queue_free(&p->pl_removed);
    gvd_pbuf_unref(p->keepalive);
    gvd_pbuf_unref(p->demo_frame);
    json_decref(p->sent);
    free(p->counts_sent);
    free(p->counts_sent2);
    free(p);
}

static void gvd_push_finish_close(gvd_push *p)
{
    gvd_client *next;
    for (gvd_client *c = p->first; c; c = next) {
        next = c->next;
        c->ops->abort(c);
    }
    uv_timer_stop(&p->tick_timer);
    uv_idle_stop(&p->kick_idle);
    void (*done)(void *) = p->done;
    p->done = NULL;
    uv_close((uv_handle_t *)&p->flush_timer, gvd_push_on_closed);
    uv_close((uv_handle_t *)&p->tick_timer, gvd_push_on_closed);
    uv_close((uv_handle_t *)&p->log_timer, gvd_push_on_closed);
    uv_close((uv_handle_t *)&p->kick_idle, gvd_push_on_closed);
    if (done)
        done(p->done_ud);
}

static void gvd_on_tick(uv_timer_t *t)
{
    gvd_push *p = t->data;
    uint64_t now = uv_now(p->loop);
    gvd_client *next;
    for (gvd_client *c = p->first; c; c = next) {
        next = c->next;
        if (!c->closing) {
            if (gvd_client_unsent(c) <= p->opts.max_pending) {
                c->over_since = 0;
            } else if (!c->over_since) {
                c->over_since = now ? now : 1;
            } else if (now - c->over_since >= p->opts.slow_ms) {
                p->stats.dropped_slow++;
                gvd_log(GVD_LOG_WARN, "push.drop", "client=%llu reason=too_slow unsent=%zu for_ms=%llu",
                        (unsigned long long)c->id, gvd_client_unsent(c),
                        (unsigned long long)(now - c->over_since));
                c->ops->drop(c, 1008, "client too slow");
                continue;
            }
        }
        c->ops->tick(c, now);
    }
    if (p->closing && p->done && (p->nclients == 0 || now >= p->close_deadline))
        gvd_push_finish_close(p);
}

static unsigned gvd_default(unsigned v, unsigned d)
{
    return v ? v : d;
}

gvd_push *gvd_push_new(uv_loop_t *loop, gvd_jobs *jobs, const gvd_push_opts *opts)
{
    gvd_push *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    gvd_push_opts o = opts ? *opts : (gvd_push_opts){0};
    o.flush_ms = gvd_default(o.flush_ms, 20);
    o.ping_ms = gvd_default(o.ping_ms, 30000);
    o.keepalive_ms = gvd_default(o.keepalive_ms, 15000);
    o.slow_ms = gvd_default(o.slow_ms, 10000);
    if (!o.max_pending)
        o.max_pending = 1u << 20;
    if (!o.snapshot_limit)
        o.snapshot_limit = 1000;
    p->opts = o;
    p->loop = loop;
    p->jobs = jobs;
    p->keepalive = gvd_pbuf_new(GVD_MSG_RAW, 8);
    p->sent = json_object();
    if (!p->keepalive || !p->sent || gvd_pbuf_append(&p->keepalive, ":\n\n", 3) != 0) {
        gvd_pbuf_unref(p->keepalive);
        json_decref(p->sent);
        free(p);
        return NULL;
    }
    /* The tick must be finer than the shortest duty it serves. */
    unsigned shortest = o.ping_ms < o.keepalive_ms ? o.ping_ms : o.keepalive_ms;
    if (o.slow_ms < shortest)
        shortest = o.slow_ms;
    p->tick_ms = shortest / 4;
    if (p->tick_ms < 10)
        p->tick_ms = 10;
    if (p->tick_ms > 1000)
        p->tick_ms = 1000;
    uv_timer_init(loop, &p->flush_timer);
    uv_timer_init(loop, &p->tick_timer);
    uv_timer_init(loop, &p->log_timer);
    uv_idle_init(loop, &p->kick_idle);
    p->flush_timer.data = p->tick_timer.data = p->log_timer.data = p->kick_idle.data = p;
    p->open_handles = 4;
    uv_timer_start(&p->tick_timer, gvd_on_tick, p->tick_ms, p->tick_ms);
    gvd_jobs_on_change(jobs, gvd_push_job_changed, p);
    gvd_pipelines_on_change(jobs, gvd_push_pipeline_changed, p);
    return p;
}

void gvd_push_close(gvd_push *p, void (*done)(void *ud), void *ud)
{
    if (p->closing)
        return;
    p->closing = true;
    p->done = done;
    p->done_ud = ud;
    gvd_jobs_on_change(p->jobs, NULL, NULL);
    gvd_pipelines_on_change(p->jobs, NULL, NULL);
    p->jobs = NULL;
    uv_timer_stop(&p->flush_timer);
    uv_timer_stop(&p->log_timer);
    p->flush_armed = false;
    gvd_queue_clear(&p->dirty);
    gvd_queue_clear(&p->removed);
    gvd_queue_clear(&p->pl_dirty);
    gvd_queue_clear(&p->pl_removed);
    p->close_deadline = uv_now(p->loop) + GVD_PUSH_CLOSE_WAIT_MS;
    gvd_client *next;
    for (gvd_client *c = p->first; c; c = next) {
        next = c->next;
        c->ops->drop(c, 1001, "server shutting down");
    }
    /* Check for completion soon and often until it is done. */
    p->tick_ms = 10;
    uv_timer_start(&p->tick_timer, gvd_on_tick, 0, p->tick_ms);
}

void gvd_push_stats_get(const gvd_push *p, gvd_push_stats *out)
{
    *out = p->stats;
    out->ws_clients = p->nws;
    out->sse_clients = p->nclients - p->nws;
}

int gvd_push_ws(gvd_push *p, h2o_req_t *req, gvd_stream stream, int64_t job, gvd_error *err)
{
    return gvd_ws_accept(p, req, stream, job, err);
}

int gvd_push_sse(gvd_push *p, h2o_req_t *req, gvd_stream stream, int64_t job, gvd_error *err)
{
    return gvd_sse_accept(p, req, stream, job, err);
}
