/*
 * push_int.h — the push side's internals, shared by
 *   hub.c    subscriptions, client queues and their bounds, kicks,
 *            keep-alive duty, lifetime
 *   flush.c  dirty marks, the flush, the encoding of every message
 *   frame.c  shared frame buffers and the per-client "latest wins" queue
 *   ws.c     the WebSocket transport (own upgrade, wslay for client frames
 *            and control frames, hand-built headers for data frames)
 *   sse.c    the Server-Sent Events transport (an h2o streaming response)
 *   logs.c   a WebSocket client's subscription to one job's log bytes
 *
 * Life of a change: gvd_push_job_changed() puts the job id in the dirty set
 * and arms the flush timer.  The flush encodes each dirty job once into a
 * gvd_pbuf (payload with headroom for a WebSocket frame header, so the one
 * buffer serves both transports without a copy), queues a reference to it in
 * every interested client's `pending` queue (keyed by job id: a newer frame
 * for the same job replaces the unsent older one) and kicks each client.  A
 * transport with no write in flight moves all pending frames to `inflight`
 * and writes them in one call; they are released when the write completes.
 *
 * ?v=2 streams (GVD_STREAM_UPDATES) following every job do not get one
 * frame per job: each flush encodes ONE "update" frame with what changed
 * (a job's changed fields against `sent`, the state the stream last
 * carried; the whole object for a job `sent` does not hold) and queues that
 * one buffer to each of them under a key of its own (GVD_KEY_UPDATE(seq)):
 * updates are not replaced but applied in order.  Latest wins at a coarser
 * grain: a client still holding GVD_UPDATES_MAX unsent updates gets them
 * replaced by a snapshot (a "resync"), so it never holds more.
 *
 * A new all-jobs client is not served its snapshot at once: it waits for
 * the flush (armed by its arrival), which encodes ONE snapshot for every
 * client that arrived since — a connect storm costs one encoding per flush,
 * not one per client.
 *
 * Kicks are sliced: the flush marks clients touched and a walker writes to
 * at most GVD_KICK_SLICE of them per loop iteration (an idle handle carries
 * it on), cycling through the clients from where it stopped.  Between
 * slices the loop accepts connections and reads jobs: a fan-out to 10,000
 * clients (~50 ms of writes) never holds the loop that long at once.
 */
#ifndef GALVANI_DAEMON_PUSH_INT_H
#define GALVANI_DAEMON_PUSH_INT_H

#include <h2o.h>
#include <stdio.h>

#include "push.h"

/* Room for the longest server frame header (2 + 8 bytes; server frames are
 * not masked). */
#define GVD_PBUF_HEADROOM 10

/* How long a closing stream may take to say goodbye (WebSocket close
 * handshake, last SSE bytes) before its connection is cut. */
#define GVD_PUSH_CLOSE_WAIT_MS 1000

/* A stream socket's SO_SNDBUF: max_pending, within these (the kernel
 * doubles the value for its bookkeeping). */
#define GVD_PUSH_SNDBUF_MIN 8192
#define GVD_PUSH_SNDBUF_MAX (64 * 1024)

typedef enum gvd_msg_type {
    GVD_MSG_JOB = 0,   /* {"type":"job","job":{...}}   SSE event "job" */
    GVD_MSG_REMOVED,   /* {"type":"removed","id":N}    SSE event "removed" */
    GVD_MSG_COUNTS,    /* {"type":"counts",...}        SSE event "counts" */
    GVD_MSG_SNAPSHOT,  /* {"type":"snapshot",...}      SSE event "snapshot" */
    GVD_MSG_DEMO,      /* the seed's /ws frame (WebSocket only) */
    GVD_MSG_PIPELINE,  /* {"type":"pipeline","pipeline":{...}}  SSE event "pipeline" */
    GVD_MSG_PIPELINE_REMOVED, /* {"type":"pipeline_removed","id":N}  SSE event "pipeline_removed" */
    GVD_MSG_LOG,       /* {"type":"log","job":N,"offset":N,...} (WebSocket only: asked for by the client) */
    GVD_MSG_UPDATE,    /* {"type":"update",...}        SSE event "update" (?v=2) */
    GVD_MSG_RAW        /* SSE bytes as they are (the keep-alive comment) */
} gvd_msg_type;

/* A frame shared by every client it is queued for. */
typedef struct gvd_pbuf {
    unsigned refs;
    gvd_msg_type type;
    size_t head;  /* the WebSocket header starts at data + head */
    size_t hdr;   /* its length (0 until sealed) */
    size_t len;   /* payload bytes, at data + GVD_PBUF_HEADROOM */
    size_t cap;   /* payload capacity */
    char data[];
} gvd_pbuf;

gvd_pbuf *gvd_pbuf_new(gvd_msg_type type, size_t cap);
/* Append to the payload (before sealing); -1 on allocation failure.  May
 * move the buffer: pass its address. */
int gvd_pbuf_append(gvd_pbuf **b, const void *data, size_t len);
/* Write the WebSocket text frame header in front of the payload. */
void gvd_pbuf_seal(gvd_pbuf *b);
static inline gvd_pbuf *gvd_pbuf_ref(gvd_pbuf *b)
{
    b->refs++;
    return b;
}
void gvd_pbuf_unref(gvd_pbuf *b);
/* The bytes a transport writes for it: 1 iovec for WebSocket, up to 3 for
 * SSE ("event: job\ndata: ", payload, "\n\n").  Returns the count. */
#define GVD_PBUF_MAX_IOV 3
size_t gvd_pbuf_iov(const gvd_pbuf *b, bool ws, h2o_iovec_t *iov);
size_t gvd_pbuf_wire_len(const gvd_pbuf *b, bool ws);
/* Grow a transport's iovec array to hold `need` entries (doubling from
 * `first`).  0, or -1 when out of memory (the array is unchanged: the write
 * is retried on the next kick). */
int gvd_iov_reserve(h2o_iovec_t **iov, size_t *cap, size_t need, size_t first);

/* Insertion-ordered map key -> frame with O(1) replace; also used as an id
 * set (frame NULL). */
typedef struct gvd_slot {
    int64_t key;
    gvd_pbuf *buf;
} gvd_slot;

typedef struct gvd_queue {
    gvd_slot *slots;
    size_t n, cap;
    uint32_t *index; /* open addressing: slot number + 1, 0 = empty */
    size_t icap;     /* power of two, >= 2 * cap */
} gvd_queue;

/* Keys besides job ids (which are > 0). */
#define GVD_KEY_COUNTS (-1)
#define GVD_KEY_SNAPSHOT (-2)
#define GVD_KEY_KEEPALIVE (-3)
#define GVD_KEY_DEMO (-4)
#define GVD_KEY_LOG (-5)
/* A pipeline's frames (update or removal: latest wins) */
#define GVD_KEY_PIPELINE(id) (-16 - (int64_t)(id))
/* ?v=2: the update frame of flush `seq` (each kept: they apply in order) */
#define GVD_KEY_UPDATE(seq) (INT64_MIN + (int64_t)(seq))

/* Unsent update frames a ?v=2 client may hold before a snapshot replaces
 * them (one per flush: 0.3 s behind at 20 ms flushes). */
#define GVD_UPDATES_MAX 16
/* Clients kicked per loop iteration by the walker. */
#define GVD_KICK_SLICE 256

/* Put (taking a reference to buf if not NULL).  Returns 1 if it replaced an
 * entry with the same key (the old buffer is handed to *old, which the
 * caller releases), 0 if added, -1 on allocation failure. */
int gvd_queue_put(gvd_queue *q, int64_t key, gvd_pbuf *buf, gvd_pbuf **old);
void gvd_queue_clear(gvd_queue *q); /* releases the buffers, keeps the memory */
void gvd_queue_reset(gvd_queue *q); /* forgets the entries (their references moved elsewhere) */
void gvd_queue_free(gvd_queue *q);
bool gvd_queue_has(const gvd_queue *q, int64_t key);

typedef struct gvd_client gvd_client;

typedef struct gvd_client_ops {
    /* Frames were queued: write them if nothing is in flight. */
    void (*kick)(gvd_client *c);
    /* Start closing the stream: unsent frames are discarded, a WebSocket
     * gets a close frame with `code` (1000 normal, 1001 going away, 1008
     * too slow), an SSE response ends.  The client stays subscribed (it
     * receives nothing more) until it is gone. */
    void (*drop)(gvd_client *c, int code, const char *reason);
    /* Periodic duty: pings, keep-alive comments, close deadlines. */
    void (*tick)(gvd_client *c, uint64_t now);
    /* The hub is going away: detach now; close the connection at once if
     * possible, otherwise free yourself when it ends. */
    void (*abort)(gvd_client *c);
} gvd_client_ops;

struct gvd_client {
    gvd_push *hub;           /* NULL once detached: the transport alone owns it */
    const gvd_client_ops *ops;
    gvd_client *prev, *next;
    uint64_t id;             /* for log lines */
    bool ws;                 /* transport: WebSocket (else SSE) */
    gvd_stream stream;
    int64_t job;             /* job streams: 0 = every job, else this one */
    bool want_snapshot;      /* all-jobs stream: served the next flush's shared snapshot */
    unsigned nupdates;       /* ?v=2: update frames pending (not yet taken) */
    bool finish;             /* end the stream once everything queued is written */
    bool closing;            /* drop() ran: nothing more is queued */
    uint64_t close_by;       /* loop ms: cut the connection if still closing then */
    bool touched;            /* got frames in this flush: kick it */
    uint64_t queued_at;      /* loop ms: the first frame pending now was queued */

    gvd_queue pending;       /* not yet handed to the socket */
    size_t pending_bytes;
    gvd_pbuf **inflight;     /* handed to the socket, released when written */
    size_t ninflight, inflight_cap;
    size_t inflight_bytes;
    uint64_t over_since;     /* loop ms when unsent first exceeded max_pending, 0 = not over */

    /* logs.c: the one job whose log this client follows (0 = none) */
    int64_t log_job;
    uint64_t log_next;       /* the next byte of the log to send */
    bool log_new;            /* just subscribed: say where the log stands even if it is empty */
    bool log_queued;         /* a log frame is pending (at most one: the next read waits for it) */
};

struct gvd_push {
    uv_loop_t *loop;
    gvd_jobs *jobs;          /* NULL once closing */
    gvd_push_opts opts;

    gvd_client *first, *last;
    size_t nclients, nws, nseed;
    size_t nall, nsingle;    /* job streams (v1) following every job / one */
    size_t nall2, nsingle2;  /* ?v=2 streams following every job / one */
    size_t nwant;            /* clients waiting for the shared snapshot */
    uint64_t next_id;

    gvd_queue dirty;         /* job ids changed since the last flush */
    gvd_queue removed;       /* job ids deleted since the last flush */
    gvd_queue pl_dirty;      /* pipeline ids changed since the last flush */
    gvd_queue pl_removed;    /* pipeline ids deleted since the last flush */
    uv_timer_t flush_timer;
    bool flush_armed;
    uint64_t last_flush;     /* loop ms */
    int64_t demo_sent;       /* id of the demo job /ws clients last got, 0 = the idle frame */
    char *counts_sent;       /* the counts text "counts" messages last carried */
    char *counts_sent2;      /* ... and ?v=2 update frames */
    json_t *sent;            /* ?v=2: "id" -> the job object every update client holds (active jobs) */
    uint64_t update_seq;     /* update frames encoded */
    gvd_pbuf *demo_frame;    /* the /ws frame new clients get; dropped on any job change */

    /* the kick walker */
    uv_idle_t kick_idle;
    gvd_client *kick_cursor; /* next client it visits (NULL: the first) */
    size_t ntouched;         /* clients with frames not yet kicked */

    uv_timer_t tick_timer;
    unsigned tick_ms;
    gvd_pbuf *keepalive;     /* ":\n\n" */
    uv_timer_t log_timer;    /* logs.c: reads the followed logs while anyone follows one */
    size_t nlog;             /* clients following a log */
    gvd_push_stats stats;

    bool closing;
    void (*done)(void *ud);
    void *done_ud;
    uint64_t close_deadline;
    int open_handles;
};

/* hub.c, for the transports */
/* Subscribe and queue the first frame (snapshot / demo state).  -1 if the
 * hub is closing or on allocation failure (nothing to undo then). */
int gvd_client_attach(gvd_push *p, gvd_client *c);
/* Unsubscribe (idempotent).  The client keeps its frames. */
void gvd_client_detach(gvd_client *c);
/* Queue one frame (latest wins per key); may drop the client when its
 * unsent bytes pass the hard bound, so touch nothing after it but the
 * return value: -1 if the client was dropped. */
int gvd_client_queue(gvd_client *c, int64_t key, gvd_pbuf *buf);
/* Move pending frames to inflight (in order); returns how many. */
size_t gvd_client_take(gvd_client *c);
/* The write of the inflight frames finished (or was abandoned). */
void gvd_client_written(gvd_client *c);
/* Kick the clients that got frames since the last kick: one slice now, the
 * rest from the walker on the next loop iterations. */
void gvd_push_kick_touched(gvd_push *p);
/* Discard pending frames (a drop). */
void gvd_client_discard(gvd_client *c);
/* Release every frame and detach (before freeing the client). */
void gvd_client_release(gvd_client *c);
static inline size_t gvd_client_unsent(const gvd_client *c)
{
    return c->pending_bytes + c->inflight_bytes;
}
void gvd_push_count_write(gvd_push *p);
/* Cap the kernel's send buffer of a stream's socket (see hub.c). */
void gvd_push_bound_sndbuf(gvd_push *p, int fd);
void gvd_push_count_ping_drop(gvd_push *p);

/* flush.c, for hub.c */
/* Arm the flush timer: flushes at least flush_ms apart, an isolated change at once. */
void gvd_push_arm(gvd_push *p);
/* A "snapshot" frame: job `follow` alone, or (0) the whole daemon; NULL when out of memory. */
gvd_pbuf *gvd_msg_snapshot(gvd_push *p, int64_t follow);
/* A new /ws client's first frame (a new reference): the shared demo frame. */
gvd_pbuf *gvd_demo_first(gvd_push *p);

static inline void gvd_push_err(gvd_error *err, int http, const char *code, const char *msg)
{
    err->http = http;
    err->code = code;
    snprintf(err->message, sizeof err->message, "%s", msg);
}

/* sha1.c: SHA-1, and Sec-WebSocket-Accept for a 24-character client key */
void gvd_sha1(const void *data, size_t len, unsigned char out[20]);
void gvd_ws_accept_key(char out[29], const char *client_key);

/* logs.c */
/* Follow job `job`'s log from byte `offset` (job 0: stop).  Replaces the
 * client's previous subscription.  Ignored for a client that may not see
 * the job (a ?job= stream following another one). */
void gvd_client_log_follow(gvd_client *c, int64_t job, uint64_t offset);
/* Read what the followed logs gained and queue it (at most one frame per
 * client at a time; a client far behind skips ahead).  `only_dirty`: only
 * clients whose job is in the hub's dirty set (the flush). */
void gvd_push_logs_poll(gvd_push *p, bool only_dirty);
void gvd_push_log_timer_cb(uv_timer_t *t);

/* ws.c / sse.c */
int gvd_ws_accept(gvd_push *p, h2o_req_t *req, gvd_stream stream, int64_t job, gvd_error *err);
int gvd_sse_accept(gvd_push *p, h2o_req_t *req, gvd_stream stream, int64_t job, gvd_error *err);

#endif
