/*
 * logs.c — a WebSocket client's subscription to one job's log.
 *
 * The client sends {"type":"log","job":ID,"offset":N} on /ws/jobs (ws.c
 * parses it) and from then on gets {"type":"log","job":ID,"offset":N,
 * "next":M,"data":"..."} with the bytes [N, M) of the job's log as they are
 * appended (docs/api.md, "Streams").  One subscription per connection; a new
 * one replaces it, job null ends it.
 *
 * The job's own output does not go through galvanid's model (only its "::"
 * lines do), so nothing signals new bytes: the log is read when its job
 * changed (the flush: a progress line usually comes with output) and by a
 * poll every GVD_LOG_POLL_MS while anyone follows a log.  A poll costs one
 * open+fstat per follower, and a read only when the file grew.
 *
 * Bounded like the other messages, but log bytes cannot be coalesced to a
 * latest state: a client has at most one log frame pending (the next read
 * waits until the socket took it), a read takes at most GVD_LOG_CHUNK bytes,
 * and a client that is slow (unsent bytes over half the bound) is not read
 * for at all; once it is more than GVD_LOG_BEHIND_MAX behind the end of the
 * file it skips to the last GVD_LOG_CHUNK bytes, and that message says how
 * many were skipped ("skipped": n).  So a follower costs at most one chunk
 * of memory however fast the job writes.
 *
 * The data is a JSON string, so it must be valid UTF-8 (a browser also
 * fails a WebSocket connection on an invalid text frame): a sequence cut by
 * the end of a read is held back for the next one, invalid bytes become
 * U+FFFD.  Offsets always count the file's bytes.
 */
#include "push_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/log.h"

#define GVD_LOG_POLL_MS 200
#define GVD_LOG_CHUNK (32 * 1024)
#define GVD_LOG_BEHIND_MAX (256 * 1024)

void gvd_client_log_follow(gvd_client *c, int64_t job, uint64_t offset)
{
    gvd_push *p = c->hub;
    if (!p || c->closing || c->stream == GVD_STREAM_DEMO || job < 0 || (c->job != 0 && job != 0 && job != c->job))
        return;
    if (c->log_job == 0 && job != 0)
        p->nlog++;
    else if (c->log_job != 0 && job == 0)
        p->nlog--;
    c->log_job = job;
    c->log_next = offset;
    c->log_new = job != 0;
    /* read at once (the loop's next turn), then every GVD_LOG_POLL_MS */
    if (job != 0)
        uv_timer_start(&p->log_timer, gvd_push_log_timer_cb, 0, GVD_LOG_POLL_MS);
}

/* Length of the valid UTF-8 sequence at s[0..n), 0 if invalid, -1 if it is
 * valid so far but cut by the end. */
static int gvd_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    int len;
    unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range (RFC 3629) */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else
        return 0;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n)
            return -1;
        unsigned char lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xBF;
        if (s[i] < lo_i || s[i] > hi_i)
            return 0;
    }
    return len;
}

/* Escape s[0..n) as the inside of a JSON string into out (room for 6n
 * bytes).  Stops before a UTF-8 sequence cut by the end of s (the next read
 * brings the rest); *used gets the bytes consumed.  Returns the length
 * written. */
static size_t gvd_json_escape(const unsigned char *s, size_t n, char *out, size_t *used)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0, o = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            int len = gvd_utf8_len(s + i, n - i);
            if (len < 0)
                break; /* the rest comes with the next read */
            if (len == 0) {
                memcpy(out + o, "\\ufffd", 6);
                o += 6;
                i++;
                continue;
            }
            memcpy(out + o, s + i, (size_t)len);
            o += (size_t)len;
            i += (size_t)len;
            continue;
        }
        /* the two-character escapes JSON has, for the bytes logs hold most */
        char short_esc = c == '"' ? '"' : c == '\\' ? '\\' : c == '\n' ? 'n' : c == '\t' ? 't' : 0;
        if (short_esc) {
            out[o++] = '\\';
            out[o++] = short_esc;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(out + o, "\\u00", 4);
            out[o + 4] = hex[c >> 4];
            out[o + 5] = hex[c & 15];
            o += 6;
        } else {
            out[o++] = (char)c;
        }
        i++;
    }
    *used = i;
    return o;
}

/* {"type":"log","job":J,"offset":F,"next":T[,"skipped":S],"data":"..."} */
static gvd_pbuf *gvd_log_msg(int64_t job, uint64_t from, uint64_t skipped, const unsigned char *data, size_t n,
                             uint64_t *next)
{
    char *esc = malloc(6 * n + 1);
    if (!esc)
        return NULL;
    size_t used = 0, elen = gvd_json_escape(data, n, esc, &used);
    *next = from + used;
    char head[192];
    int hn = skipped
                 ? snprintf(head, sizeof head,
                            "{\"type\":\"log\",\"job\":%" PRId64 ",\"offset\":%" PRIu64 ",\"next\":%" PRIu64
                            ",\"skipped\":%" PRIu64 ",\"data\":\"",
                            job, from, *next, skipped)
                 : snprintf(head, sizeof head,
                            "{\"type\":\"log\",\"job\":%" PRId64 ",\"offset\":%" PRIu64 ",\"next\":%" PRIu64
                            ",\"data\":\"",
                            job, from, *next);
    gvd_pbuf *b = hn > 0 && (size_t)hn < sizeof head ? gvd_pbuf_new(GVD_MSG_LOG, (size_t)hn + elen + 2) : NULL;
    if (b) {
        /* Cannot fail: the capacity was reserved above. */
        (void)gvd_pbuf_append(&b, head, (size_t)hn);
        (void)gvd_pbuf_append(&b, esc, elen);
        (void)gvd_pbuf_append(&b, "\"}", 2);
        gvd_pbuf_seal(b);
    }
    free(esc);
    return b;
}

/* The log's bytes from c->log_next (or the file's size when it has none
 * yet), at most one chunk, into a frame; NULL when there is nothing to send
 * or it cannot be read now (the next poll tries again). */
static gvd_pbuf *gvd_log_read(gvd_client *c, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    uint64_t size = 0;
    if (fd >= 0 && fstat(fd, &st) == 0)
        size = (uint64_t)st.st_size;
    else if (fd < 0 && errno != ENOENT)
        gvd_log(GVD_LOG_DEBUG, "push.log_unreadable", "job=%" PRId64 " error=%s", c->log_job, strerror(errno));
    if (c->log_next > size)
        c->log_next = size; /* asked for bytes the log does not have (yet): from its end */
    uint64_t from = c->log_next, skipped = 0;
    if (size - from > GVD_LOG_BEHIND_MAX) {
        skipped = size - GVD_LOG_CHUNK - from;
        from = size - GVD_LOG_CHUNK;
    }
    size_t want = size - from < GVD_LOG_CHUNK ? (size_t)(size - from) : GVD_LOG_CHUNK;
    unsigned char *buf = want ? malloc(want) : NULL;
    ssize_t got = 0;
    if (buf) {
        do
            got = pread(fd, buf, want, (off_t)from);
        while (got < 0 && errno == EINTR);
    }
    if (fd >= 0)
        close(fd);
    gvd_pbuf *b = NULL;
    if (got < 0 || (want && !buf)) {
        /* out of memory or a read error: nothing now, the next poll retries */
    } else if (got > 0 || c->log_new) {
        size_t lead = 0;
        /* a skip may land inside a UTF-8 sequence: start at the next one */
        while (skipped && lead < 3 && lead < (size_t)got && (buf[lead] & 0xC0) == 0x80)
            lead++;
        uint64_t next;
        b = gvd_log_msg(c->log_job, from + lead, skipped + lead, buf + lead, (size_t)got - lead, &next);
        if (b && next == from + lead && !c->log_new && !skipped) {
            gvd_pbuf_unref(b); /* only a cut sequence: wait for the rest */
            b = NULL;
        } else if (b) {
            c->log_next = next;
            c->log_new = false;
        }
    }
    free(buf);
    return b;
}

static void gvd_log_poll_client(gvd_push *p, gvd_client *c)
{
    if (!c->log_job || c->closing || c->finish || c->log_queued || gvd_client_unsent(c) > p->opts.max_pending / 2)
        return;
    gvd_job *job = gvd_jobs_get(p->jobs, c->log_job);
    const char *path = job ? gvd_job_log_path(job) : NULL;
    if (!path)
        return; /* no such job (any more), or the demo (no log) */
    gvd_pbuf *b = gvd_log_read(c, path);
    if (!b)
        return;
    if (gvd_client_queue(c, GVD_KEY_LOG, b) == 0)
        c->log_queued = true;
    gvd_pbuf_unref(b);
}

void gvd_push_logs_poll(gvd_push *p, bool only_dirty)
{
    if (!p->jobs)
        return;
    gvd_client *next;
    for (gvd_client *c = p->first; c; c = next) {
        next = c->next; /* a queue may drop the client */
        if (c->log_job && (!only_dirty || gvd_queue_has(&p->dirty, c->log_job)))
            gvd_log_poll_client(p, c);
    }
}

void gvd_push_log_timer_cb(uv_timer_t *t)
{
    gvd_push *p = t->data;
    if (p->nlog == 0 || p->closing) {
        uv_timer_stop(t);
        return;
    }
    gvd_push_logs_poll(p, false);
    gvd_push_kick_touched(p);
}
