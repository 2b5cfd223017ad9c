/*
 * frame.c — shared frame buffers and the per-client "latest wins" queue.
 *
 * A gvd_pbuf holds one encoded message.  Its payload starts
 * GVD_PBUF_HEADROOM bytes into the allocation; sealing writes the WebSocket
 * frame header right in front of it, so a WebSocket client writes one
 * contiguous slice and an SSE client writes the bare payload between a
 * static "event: ...\ndata: " prefix and "\n\n".  Nothing is copied per
 * client: every client's queue holds a reference to the same buffer.
 */
#include "push_int.h"

#include <stdlib.h>
#include <string.h>

gvd_pbuf *gvd_pbuf_new(gvd_msg_type type, size_t cap)
{
    if (cap < 64)
        cap = 64;
    gvd_pbuf *b = malloc(sizeof *b + GVD_PBUF_HEADROOM + cap);
    if (!b)
        return NULL;
    b->refs = 1;
    b->type = type;
    b->head = GVD_PBUF_HEADROOM;
    b->hdr = 0;
    b->len = 0;
    b->cap = cap;
    return b;
}

int gvd_pbuf_append(gvd_pbuf **bp, const void *data, size_t len)
{
    gvd_pbuf *b = *bp;
    if (b->cap - b->len < len) {
        size_t cap = b->cap;
        while (cap - b->len < len) {
            if (cap > SIZE_MAX / 4)
                return -1;
            cap *= 2;
        }
        gvd_pbuf *nb = realloc(b, sizeof *b + GVD_PBUF_HEADROOM + cap);
        if (!nb)
            return -1;
        nb->cap = cap;
        *bp = b = nb;
    }
    memcpy(b->data + GVD_PBUF_HEADROOM + b->len, data, len);
    b->len += len;
    return 0;
}

void gvd_pbuf_seal(gvd_pbuf *b)
{
    /* RFC 6455 5.2: FIN + opcode 1 (text); a server frame is not masked, so
     * the header is the length in 7, 7+16 or 7+64 bits. */
    unsigned char h[GVD_PBUF_HEADROOM];
    size_t n;
    uint64_t len = b->len;
    h[0] = 0x81;
    if (len < 126) {
        h[1] = (unsigned char)len;
        n = 2;
    } else if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        n = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)(len >> (56 - 8 * i));
        n = 10;
    }
    b->head = GVD_PBUF_HEADROOM - n;
    b->hdr = n;
    memcpy(b->data + b->head, h, n);
}

void gvd_pbuf_unref(gvd_pbuf *b)
{
    if (b && --b->refs == 0)
        free(b);
}

static const h2o_iovec_t gvd_sse_prefix[] = {
    [GVD_MSG_JOB] = {H2O_STRLIT("event: job\ndata: ")},
    [GVD_MSG_REMOVED] = {H2O_STRLIT("event: removed\ndata: ")},
    [GVD_MSG_COUNTS] = {H2O_STRLIT("event: counts\ndata: ")},
    [GVD_MSG_SNAPSHOT] = {H2O_STRLIT("event: snapshot\ndata: ")},
    [GVD_MSG_DEMO] = {H2O_STRLIT("data: ")},
    [GVD_MSG_PIPELINE] = {H2O_STRLIT("event: pipeline\ndata: ")},
    [GVD_MSG_PIPELINE_REMOVED] = {H2O_STRLIT("event: pipeline_removed\ndata: ")},
    [GVD_MSG_LOG] = {H2O_STRLIT("event: log\ndata: ")},
    [GVD_MSG_UPDATE] = {H2O_STRLIT("event: update\ndata: ")},
    [GVD_MSG_RAW] = {NULL, 0},
};

size_t gvd_pbuf_iov(const gvd_pbuf *b, bool ws, h2o_iovec_t *iov)
{
    char *payload = (char *)b->data + GVD_PBUF_HEADROOM;
    if (ws) {
        iov[0] = h2o_iovec_init(b->data + b->head, b->hdr + b->len);
        return 1;
    }
    if (b->type == GVD_MSG_RAW) {
        iov[0] = h2o_iovec_init(payload, b->len);
        return 1;
    }
    /* JSON encoded compactly never contains a raw newline, so the whole
     * message is one "data:" line. */
    iov[0] = gvd_sse_prefix[b->type];
    iov[1] = h2o_iovec_init(payload, b->len);
    iov[2] = h2o_iovec_init(H2O_STRLIT("\n\n"));
    return 3;
}

size_t gvd_pbuf_wire_len(const gvd_pbuf *b, bool ws)
{
    if (ws)
        return b->hdr + b->len;
    if (b->type == GVD_MSG_RAW)
        return b->len;
    return gvd_sse_prefix[b->type].len + b->len + 2;
}

int gvd_iov_reserve(h2o_iovec_t **iov, size_t *cap, size_t need, size_t first)
{
    if (*cap >= need)
        return 0;
    size_t n = *cap ? *cap : first;
    while (n < need)
        n *= 2;
    h2o_iovec_t *v = realloc(*iov, n * sizeof *v);
    if (!v)
        return -1;
    *iov = v;
    *cap = n;
    return 0;
}

/* ---- the queue ---------------------------------------------------------- */

static size_t gvd_queue_hash(int64_t key, size_t mask)
{
    uint64_t h = (uint64_t)key * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 32) & mask;
}

static int gvd_queue_reindex(gvd_queue *q, size_t icap)
{
    uint32_t *ix = calloc(icap, sizeof *ix);
    if (!ix)
        return -1;
    for (size_t i = 0; i < q->n; i++) {
        size_t h = gvd_queue_hash(q->slots[i].key, icap - 1);
        while (ix[h])
            h = (h + 1) & (icap - 1);
        ix[h] = (uint32_t)(i + 1);
    }
    free(q->index);
    q->index = ix;
    q->icap = icap;
    return 0;
}

static size_t gvd_queue_find(const gvd_queue *q, int64_t key)
{
    if (!q->icap)
        return SIZE_MAX;
    size_t mask = q->icap - 1;
    for (size_t h = gvd_queue_hash(key, mask); q->index[h]; h = (h + 1) & mask) {
        size_t i = q->index[h] - 1;
        if (q->slots[i].key == key)
            return i;
    }
    return SIZE_MAX;
}

bool gvd_queue_has(const gvd_queue *q, int64_t key)
{
    return gvd_queue_find(q, key) != SIZE_MAX;
}

int gvd_queue_put(gvd_queue *q, int64_t key, gvd_pbuf *buf, gvd_pbuf **old)
{
    size_t i = gvd_queue_find(q, key);
    if (i != SIZE_MAX) {
        gvd_pbuf *prev = q->slots[i].buf;
        q->slots[i].buf = buf ? gvd_pbuf_ref(buf) : NULL;
        if (old)
            *old = prev;
        else
            gvd_pbuf_unref(prev);
        return 1;
    }
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 8;
        if (cap > UINT32_MAX / 2)
            return -1;
        gvd_slot *s = realloc(q->slots, cap * sizeof *s);
        if (!s)
            return -1;
        q->slots = s;
        q->cap = cap;
    }
    if (q->icap < 2 * q->cap && gvd_queue_reindex(q, 2 * q->cap) != 0)
        return -1;
    q->slots[q->n].key = key;
    q->slots[q->n].buf = buf ? gvd_pbuf_ref(buf) : NULL;
    size_t mask = q->icap - 1, h = gvd_queue_hash(key, mask);
    while (q->index[h])
        h = (h + 1) & mask;
    q->index[h] = (uint32_t)(++q->n);
    return 0;
}

void gvd_queue_reset(gvd_queue *q)
{
    q->n = 0;
    if (q->index)
        memset(q->index, 0, q->icap * sizeof *q->index);
}

void gvd_queue_clear(gvd_queue *q)
{
    for (size_t i = 0; i < q->n; i++)
        gvd_pbuf_unref(q->slots[i].buf);
    gvd_queue_reset(q);
}

void gvd_queue_free(gvd_queue *q)
{
    gvd_queue_clear(q);
    free(q->slots);
    free(q->index);
    memset(q, 0, sizeof *q);
}
