/* wsload — N WebSocket clients on one libuv loop, for measuring a push server
 * (galvanid's /ws and /ws/jobs, the seed app's, the bare h2o broadcaster's).
 *
 * The client side of RFC 6455 is written here on libuv rather than taken
 * from wslay: a load client needs only to read unmasked server frames, answer
 * pings and send its handshake, and owning the read path lets every client
 * share one read buffer (only a frame split across reads is copied), which
 * is what keeps 10,000 clients cheap enough that the server stays the thing
 * being measured.
 *
 * Per update it records the latency from the change to its receipt: the
 * change time is a stamp the job itself printed (`::status t=<unix ms>`, or
 * the ceiling's top-level "t"), compared with CLOCK_REALTIME twice: when
 * the bytes reached the client's socket (the kernel's receive timestamp,
 * SO_TIMESTAMPNS: "latency") and when this process read them ("read
 * latency").  With 10,000 clients on one core the load generator itself
 * falls behind (it reads and parses ~400 MB/s of JSON), and the second
 * figure then measures its own backlog; the first is the server's.  libuv's
 * stream reads do not return ancillary data, so libuv only connects and
 * writes the handshake; from then on a uv_poll_t on the same descriptor
 * says when to recvmsg(), and the few control frames a client sends
 * (pongs) go out with send().  A read that takes several frames gives them
 * all the timestamp of its last segment, which can only overstate the
 * latency; a read without one (the kernel turns timestamping on in the
 * background, so the very first reads may have none) counts at its read
 * time.  "reads" in the output says how many were stamped.
 *
 * Output: a human table on stderr, one JSON line on stdout.  Targets outside
 * 127.0.0.0/8 are refused. */
#include "bl_common.h"
#include "bl_json.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#ifndef SCM_TIMESTAMPNS
#define SCM_TIMESTAMPNS SO_TIMESTAMPNS /* as the kernel's asm-generic/socket.h has it */
#endif

typedef enum { WSL_SEED, WSL_JOBS, WSL_BCAST } wsl_mode;
typedef enum { WSL_IDLE, WSL_CONNECTING, WSL_HANDSHAKE, WSL_OPEN, WSL_DONE } wsl_state;

/* A job's last stamp per slot, with this bit set once its final state was
 * seen (so a repeated final message is not counted twice). */
#define WSL_FINAL_BIT ((int64_t)1 << 62)

struct wsl_run;

/* What --metrics reads of galvanid's GET /metrics. */
#define WSL_MAX_BUCKETS 24
typedef struct {
    double writes, flushes; /* galvanid_stream_{writes,flushes}_total; -1 unknown */
    int nb;                 /* galvanid_stream_write_delay_seconds: buckets read */
    double le[WSL_MAX_BUCKETS], cum[WSL_MAX_BUCKETS];
} wsl_counters;

typedef struct {
    uv_tcp_t tcp; /* first: handle callbacks get the client back by a cast */
    uv_connect_t connect;
    uv_write_t hs_write;
    uv_poll_t poll; /* the reads, from the connect on (on tcp's descriptor) */
    int fd;         /* tcp's descriptor, valid while has_poll */
    bool has_poll;  /* poll initialised: it must be closed */
    struct wsl_run *run;
    wsl_state state;
    bool in_window; /* open when the window started: counted in the per-client rates */
    bool has_tcp;   /* uv_tcp_init succeeded: the handle must be closed */
    int64_t t_start, t_open, t_first; /* monotonic us; 0 = not yet */
    char accept[32];                  /* the Sec-WebSocket-Accept we expect */
    char request[320];                /* the handshake request (lives until written) */
    /* Bytes of a frame (or of the handshake) split across reads. */
    char *pend;
    size_t pend_len, pend_cap;
    /* A fragmented message being reassembled (rare: galvanid sends whole frames). */
    char *msg;
    size_t msg_len, msg_cap;
    int msg_op;
    uint64_t updates, frames, bytes; /* within the window */
    uint64_t progress_steps;         /* seed: distinct demo progress values in the window */
    double last_progress;
    int64_t last_t;
    int64_t *slot_t; /* jobs: last stamp per job slot (id % job_slots) */
    uint32_t finals; /* jobs: final states seen (succeeded/failed/cancelled), once per job */
} wsl_client;

typedef struct wsl_run {
    uv_loop_t *loop;
    /* options */
    struct sockaddr_in addr;
    char host[64], path[256];
    int port;
    int clients;
    double rate; /* connections per second; 0: as fast as possible */
    double duration_s, ramp_timeout_s, settle_s;
    wsl_mode mode;
    pid_t server_pid;
    int src_addrs;
    int job_slots;
    bool strict, check;
    bool metrics; /* read galvanid's stream counters at the window's edges */
    const char *label;
    /* state */
    wsl_client *c;
    int opened;  /* connect attempts started */
    int settled; /* clients that reached OPEN or DONE (failed) */
    int open_now;
    uint64_t rng;
    int64_t t0;         /* monotonic start of the run */
    int64_t t_last_open;
    int64_t win_start, win_end; /* monotonic; 0 = not started/ended */
    bool measuring;
    bool ramp_over;
    uv_timer_t pace, phase, sample;
    /* results */
    bl_hist lat, lat_read, hs, first;
    uint64_t err_connect, err_handshake, err_closed, err_eof, err_protocol, err_parse;
    uint64_t err_control; /* control frames (pongs) the socket did not take at once */
    uint64_t reads, reads_stamped; /* recvmsg() calls that returned bytes / with a kernel timestamp */
    int last_close_code;
    long long cpu0, cpu1;
    int64_t self_cpu0, self_cpu1;
    long rss_base, rss_max, rss_end, rss_win_start;
    wsl_counters k0, k1; /* galvanid's counters at the window's start and end (--metrics) */
    int in_window_count, open_at_end;
    char hs_reject[96]; /* the first non-101 status line, for the report */
} wsl_run;

static const char WSL_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
static char wsl_rbuf[256 * 1024]; /* the one read buffer every client shares */

/* ---- small helpers ------------------------------------------------------------------------- */

static uint64_t wsl_rand(wsl_run *r)
{
    /* xorshift64*: handshake keys and masks need to differ, not to be secret. */
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return r->rng * 2685821657736338717ULL;
}

static int wsl_append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n > *cap) {
        size_t ncap = *cap ? *cap : 1024;
        while (ncap < *len + n)
            ncap *= 2;
        char *nb = realloc(*buf, ncap);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    return 0;
}

static int wsl_make_key(wsl_run *r, wsl_client *c, char key[32])
{
    unsigned char raw[16];
    for (int i = 0; i < 16; i += 8) {
        uint64_t v = wsl_rand(r);
        memcpy(raw + i, &v, 8);
    }
    if (EVP_EncodeBlock((unsigned char *)key, raw, 16) != 24)
        return -1;
    char cat[64];
    int n = snprintf(cat, sizeof cat, "%s%s", key, WSL_GUID);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (n <= 0 || !EVP_Digest(cat, (size_t)n, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
        return -1;
    return EVP_EncodeBlock((unsigned char *)c->accept, md, 20) == 28 ? 0 : -1;
}

/* ---- closing ------------------------------------------------------------------------------- */

static void wsl_maybe_finish_ramp(wsl_run *r);

/* The socket's handles: the poll first (it does not own the descriptor),
 * then the stream, which closes it. */
static void wsl_close_handles(wsl_client *c)
{
    if (c->has_poll && !uv_is_closing((uv_handle_t *)&c->poll))
        uv_close((uv_handle_t *)&c->poll, NULL);
    if (c->has_tcp && !uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, NULL);
}

static void wsl_fail(wsl_client *c, uint64_t *counter)
{
    wsl_run *r = c->run;
    if (c->state == WSL_DONE)
        return;
    if (counter)
        (*counter)++;
    bool was_open = c->state == WSL_OPEN;
    c->state = WSL_DONE;
    if (was_open)
        r->open_now--;
    else
        r->settled++; /* a failed attempt is settled too: the ramp does not wait for it */
    wsl_close_handles(c);
    wsl_maybe_finish_ramp(r);
}

/* ---- writing (handshake, pong, close) ------------------------------------------------------ */

/* A masked control frame (clients must mask everything they send),
 * written at once: at most 131 bytes on a socket that sends nothing else,
 * so the send buffer has room; if not, the frame is lost and counted. */
static void wsl_send_control(wsl_client *c, int op, const char *payload, size_t n)
{
    if (n > 125)
        n = 125;
    unsigned char p[6 + 125];
    p[0] = (unsigned char)(0x80 | op);
    p[1] = (unsigned char)(0x80 | n);
    uint32_t mask = (uint32_t)wsl_rand(c->run);
    memcpy(p + 2, &mask, 4);
    for (size_t i = 0; i < n; i++)
        p[6 + i] = (unsigned char)payload[i] ^ p[2 + (i & 3)];
    ssize_t w;
    do
        w = send(c->fd, p, 6 + n, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)(6 + n))
        c->run->err_control++;
}

/* When a frame's bytes reached the client's socket (kernel) and when we
 * read them; CLOCK_REALTIME microseconds, like the stamps. */
typedef struct {
    int64_t arrived, read;
} wsl_when;

/* ---- messages ------------------------------------------------------------------------------ */

static bool wsl_is_final(const char *status)
{
    return strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0;
}

/* One job's state reached the client (a "job" message, or an entry of a
 * ?v=2 "update"). */
static void wsl_job_update(wsl_client *c, int64_t id, const char *status, int64_t t_ms, wsl_when w)
{
    wsl_run *r = c->run;
    c->updates++;
    int64_t *slot = &c->slot_t[id % r->job_slots];
    /* A repeated state (after the snapshot, say) is not a new change. */
    if (t_ms >= 0 && t_ms != (*slot & ~WSL_FINAL_BIT)) {
        *slot = t_ms | (*slot & WSL_FINAL_BIT);
        bl_hist_add(&r->lat, w.arrived - t_ms * 1000);
        bl_hist_add(&r->lat_read, w.read - t_ms * 1000);
    }
    if (wsl_is_final(status) && !(*slot & WSL_FINAL_BIT)) {
        *slot |= WSL_FINAL_BIT;
        c->finals++;
    }
}

typedef struct {
    wsl_client *c;
    const bl_frame *f;
    wsl_when when;
} wsl_item_ctx;

static void wsl_on_item(void *ud, const bl_item *it)
{
    wsl_item_ctx *x = ud;
    /* galvanid writes "type" first: by now it is known */
    if (strcmp(x->f->type, "update") == 0 && it->id >= 0)
        wsl_job_update(x->c, it->id, it->status, it->t_ms, x->when);
}

static void wsl_on_message(wsl_client *c, const char *data, size_t len, wsl_when when, int64_t now_mono)
{
    wsl_run *r = c->run;
    if (!c->t_first) {
        c->t_first = now_mono;
        bl_hist_add(&r->first, now_mono - c->t_start);
    }
    if (r->strict) {
        json_error_t jerr;
        json_t *v = json_loadb(data, len, JSON_DECODE_ANY, &jerr);
        if (!v)
            r->err_parse++;
        json_decref(v);
    }
    bl_frame f = {0};
    wsl_item_ctx ictx = {c, &f, when};
    if (r->mode == WSL_JOBS && r->measuring) {
        f.on_item = wsl_on_item; /* ?v=2: every entry of an update */
        f.ud = &ictx;
    }
    if (!bl_json_scan(data, len, &f)) {
        r->err_parse++;
        return;
    }
    if (!r->measuring)
        return;
    c->frames++;
    c->bytes += len;
    int64_t lat_us = f.t_ms >= 0 ? when.arrived - f.t_ms * 1000 : 0;
    int64_t lat_read_us = f.t_ms >= 0 ? when.read - f.t_ms * 1000 : 0;
    switch (r->mode) {
    case WSL_SEED:
        /* Every frame on /ws is the demo job's state after a change. */
        c->updates++;
        if (f.progress >= 0 && f.progress != c->last_progress) {
            c->progress_steps++;
            c->last_progress = f.progress;
        }
        if (f.t_ms >= 0 && f.t_ms != c->last_t) {
            c->last_t = f.t_ms;
            bl_hist_add(&r->lat, lat_us);
            bl_hist_add(&r->lat_read, lat_read_us);
        }
        break;
    case WSL_JOBS:
        /* snapshot, counts, pipeline, removed: frames, not job updates; a
         * ?v=2 update's entries were counted by wsl_on_item */
        if (strcmp(f.type, "job") == 0 && f.id >= 0)
            wsl_job_update(c, f.id, f.status, f.t_ms, when);
        break;
    case WSL_BCAST:
        /* The ceiling's frame carries every job's state: each entry is an update. */
        if (f.items > 0) {
            c->updates += (uint64_t)f.items;
            if (f.t_ms >= 0)
            {
                bl_hist_add_n(&r->lat, lat_us, (uint32_t)f.items);
                bl_hist_add_n(&r->lat_read, lat_read_us, (uint32_t)f.items);
            }
        }
        break;
    }
}

/* Parses as many whole frames as data holds; returns the bytes consumed, or
 * (size_t)-1 after a protocol error (the client is then closed). */
static size_t wsl_frames(wsl_client *c, const char *data, size_t len, wsl_when when, int64_t now_mono)
{
    wsl_run *r = c->run;
    size_t off = 0;
    while (len - off >= 2) {
        const unsigned char *h = (const unsigned char *)data + off;
        bool fin = h[0] & 0x80;
        int op = h[0] & 0x0f;
        if (h[1] & 0x80) { /* a server must not mask */
            wsl_fail(c, &r->err_protocol);
            return (size_t)-1;
        }
        uint64_t plen = h[1] & 0x7f;
        size_t hl = 2;
        if (plen == 126) {
            if (len - off < 4)
                break;
            plen = ((uint64_t)h[2] << 8) | h[3];
            hl = 4;
        } else if (plen == 127) {
            if (len - off < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = (plen << 8) | h[2 + i];
            hl = 10;
        }
        if (plen > (uint64_t)64 * 1024 * 1024) {
            wsl_fail(c, &r->err_protocol);
            return (size_t)-1;
        }
        if (len - off - hl < plen)
            break;
        const char *payload = data + off + hl;
        off += hl + (size_t)plen;
        switch (op) {
        case 0x1:
        case 0x2:
            if (fin) {
                wsl_on_message(c, payload, (size_t)plen, when, now_mono);
            } else {
                c->msg_len = 0;
                c->msg_op = op;
                if (wsl_append(&c->msg, &c->msg_len, &c->msg_cap, payload, (size_t)plen) != 0) {
                    wsl_fail(c, &r->err_protocol);
                    return (size_t)-1;
                }
            }
            break;
        case 0x0:
            if (!c->msg_op || wsl_append(&c->msg, &c->msg_len, &c->msg_cap, payload, (size_t)plen) != 0) {
                wsl_fail(c, &r->err_protocol);
                return (size_t)-1;
            }
            if (fin) {
                wsl_on_message(c, c->msg, c->msg_len, when, now_mono);
                c->msg_op = 0;
            }
            break;
        case 0x8:
            r->last_close_code = plen >= 2 ? ((unsigned char)payload[0] << 8) | (unsigned char)payload[1] : 1005;
            wsl_fail(c, &r->err_closed);
            return (size_t)-1;
        case 0x9:
            wsl_send_control(c, 0xA, payload, (size_t)plen);
            break;
        case 0xA:
            break;
        default:
            wsl_fail(c, &r->err_protocol);
            return (size_t)-1;
        }
    }
    return off;
}

/* ---- the handshake's answer ---------------------------------------------------------------- */

/* Returns the length of the response head, 0 if incomplete, -1 if refused. */
static long wsl_handshake(wsl_client *c, const char *data, size_t len)
{
    wsl_run *r = c->run;
    const char *end = NULL;
    for (size_t i = 3; i < len; i++)
        if (data[i] == '\n' && data[i - 1] == '\r' && data[i - 2] == '\n' && data[i - 3] == '\r') {
            end = data + i + 1;
            break;
        }
    if (!end)
        return len > 16384 ? -1 : 0;
    size_t head = (size_t)(end - data);
    if (head < 12 || memcmp(data, "HTTP/1.1 101", 12) != 0) {
        if (!r->hs_reject[0]) {
            size_t n = strcspn(data, "\r");
            if (n >= sizeof r->hs_reject)
                n = sizeof r->hs_reject - 1;
            memcpy(r->hs_reject, data, n);
            r->hs_reject[n] = '\0';
        }
        return -1;
    }
    /* Sec-WebSocket-Accept, case-insensitively, as the RFC requires. */
    static const char name[] = "\r\nsec-websocket-accept:";
    for (const char *p = data; p + sizeof name - 1 < end; p++) {
        if (strncasecmp(p, name, sizeof name - 1) == 0) {
            const char *v = p + sizeof name - 1;
            while (*v == ' ')
                v++;
            return strncmp(v, c->accept, 28) == 0 ? (long)head : -1;
        }
    }
    return -1;
}

static void wsl_on_open(wsl_client *c, int64_t now_mono)
{
    wsl_run *r = c->run;
    c->state = WSL_OPEN;
    c->t_open = now_mono;
    r->t_last_open = now_mono;
    r->open_now++;
    r->settled++;
    bl_hist_add(&r->hs, now_mono - c->t_start);
    wsl_maybe_finish_ramp(r);
}

/* Bytes read from the socket at `when`: the handshake's answer, then
 * frames (a frame split across reads waits in c->pend). */
static void wsl_on_bytes(wsl_client *c, const char *data, size_t len, wsl_when when)
{
    wsl_run *r = c->run;
    if (len == 0 || c->state == WSL_DONE)
        return;
    int64_t now_mono = bl_mono_us();
    /* Only bytes that continue an earlier read are copied. */
    if (c->pend_len) {
        if (wsl_append(&c->pend, &c->pend_len, &c->pend_cap, data, len) != 0) {
            wsl_fail(c, &r->err_protocol);
            return;
        }
        data = c->pend;
        len = c->pend_len;
    }
    size_t off = 0;
    if (c->state == WSL_HANDSHAKE) {
        long head = wsl_handshake(c, data, len);
        if (head < 0) {
            wsl_fail(c, &r->err_handshake);
            return;
        }
        if (head == 0) {
            if (!c->pend_len && wsl_append(&c->pend, &c->pend_len, &c->pend_cap, data, len) != 0)
                wsl_fail(c, &r->err_protocol);
            return;
        }
        off = (size_t)head;
        wsl_on_open(c, now_mono);
    }
    size_t used = wsl_frames(c, data + off, len - off, when, now_mono);
    if (used == (size_t)-1)
        return;
    off += used;
    size_t rest = len - off;
    if (data == c->pend) {
        memmove(c->pend, c->pend + off, rest);
        c->pend_len = rest;
    } else if (rest && wsl_append(&c->pend, &c->pend_len, &c->pend_cap, data + off, rest) != 0) {
        wsl_fail(c, &r->err_protocol);
    }
}

static void wsl_on_poll(uv_poll_t *h, int status, int events)
{
    (void)events;
    wsl_client *c = h->data;
    wsl_run *r = c->run;
    if (c->state == WSL_DONE)
        return;
    if (status < 0) {
        wsl_fail(c, &r->err_protocol);
        return;
    }
    struct iovec iov = {wsl_rbuf, sizeof wsl_rbuf};
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } ctl;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    ssize_t n = recvmsg(c->fd, &msg, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        wsl_fail(c, n == 0 ? &r->err_eof : &r->err_protocol);
        return;
    }
    int64_t now = bl_now_us();
    wsl_when when = {now, now};
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(cm), sizeof ts);
            when.arrived = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
            r->reads_stamped++;
        }
    r->reads++;
    wsl_on_bytes(c, wsl_rbuf, (size_t)n, when);
}

static void wsl_on_hs_written(uv_write_t *req, int status)
{
    wsl_client *c = req->data;
    if (status < 0)
        wsl_fail(c, &c->run->err_connect);
}

static void wsl_on_connect(uv_connect_t *req, int status)
{
    wsl_client *c = req->data;
    wsl_run *r = c->run;
    if (status < 0) {
        wsl_fail(c, &r->err_connect);
        return;
    }
    c->state = WSL_HANDSHAKE;
    char key[32];
    if (wsl_make_key(r, c, key) != 0) {
        wsl_fail(c, &r->err_protocol);
        return;
    }
    int n = snprintf(c->request, sizeof c->request,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     r->path, r->host, r->port, key);
    if (n <= 0 || (size_t)n >= sizeof c->request) {
        wsl_fail(c, &r->err_protocol);
        return;
    }
    uv_buf_t b = uv_buf_init(c->request, (unsigned)n);
    c->hs_write.data = c;
    if (uv_write(&c->hs_write, (uv_stream_t *)&c->tcp, &b, 1, wsl_on_hs_written) != 0) {
        wsl_fail(c, &r->err_connect);
        return;
    }
    /* Every read from here on (the handshake's answer included) is a
     * recvmsg() with the kernel's receive timestamp (see the top). */
    uv_os_fd_t fd;
    int on = 1;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 || setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0 ||
        uv_poll_init_socket(r->loop, &c->poll, fd) != 0) {
        wsl_fail(c, &r->err_connect);
        return;
    }
    c->fd = fd;
    c->has_poll = true;
    c->poll.data = c;
    if (uv_poll_start(&c->poll, UV_READABLE, wsl_on_poll) != 0)
        wsl_fail(c, &r->err_connect);
}

static void wsl_start_client(wsl_run *r, wsl_client *c)
{
    c->state = WSL_CONNECTING;
    c->t_start = bl_mono_us();
    if (uv_tcp_init(r->loop, &c->tcp) != 0) {
        c->state = WSL_DONE;
        r->err_connect++;
        r->settled++;
        return;
    }
    c->has_tcp = true;
    /* Many source addresses: each has its own ephemeral port range, so runs
     * of 10,000 clients back to back do not run out of ports while the last
     * run's sockets sit in TIME_WAIT. */
    if (r->src_addrs > 1) {
        struct sockaddr_in src = {0};
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl((127u << 24) | (10u + (unsigned)(c - r->c) % (unsigned)r->src_addrs));
        if (uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0) != 0) {
            wsl_fail(c, &r->err_connect);
            return;
        }
    }
    (void)uv_tcp_nodelay(&c->tcp, 1); /* best effort: only our rare pongs are small writes */
    c->connect.data = c;
    if (uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&r->addr, wsl_on_connect) != 0)
        wsl_fail(c, &r->err_connect);
}

/* ---- phases: ramp, settle, window ---------------------------------------------------------- */

static void wsl_sample_server(wsl_run *r)
{
    if (r->server_pid <= 0)
        return;
    long rss = bl_proc_rss_kb(r->server_pid);
    if (rss > r->rss_max)
        r->rss_max = rss;
}

static void wsl_close_all(wsl_run *r)
{
    uv_timer_stop(&r->pace);
    uv_timer_stop(&r->phase);
    uv_timer_stop(&r->sample);
    uv_close((uv_handle_t *)&r->pace, NULL);
    uv_close((uv_handle_t *)&r->phase, NULL);
    uv_close((uv_handle_t *)&r->sample, NULL);
    for (int i = 0; i < r->opened; i++) {
        wsl_client *c = &r->c[i];
        if (c->state == WSL_OPEN)
            r->open_at_end++;
        wsl_close_handles(c);
        c->state = WSL_DONE;
    }
}

/* galvanid's stream counters so far.  A blocking GET on the loop, twice a
 * run: the clients wait a millisecond. */
static void wsl_read_counters(wsl_run *r, wsl_counters *k)
{
    k->writes = k->flushes = -1;
    k->nb = 0;
    if (!r->metrics)
        return;
    char *page = bl_http_get(&r->addr, r->host, "/metrics");
    if (!page)
        return;
    k->writes = bl_metric(page, "galvanid_stream_writes_total");
    k->flushes = bl_metric(page, "galvanid_stream_flushes_total");
    static const char bucket[] = "galvanid_stream_write_delay_seconds_bucket{le=\"";
    for (const char *line = page; line && *line; line = bl_next_line(line)) {
        if (strncmp(line, bucket, sizeof bucket - 1) != 0 || k->nb == WSL_MAX_BUCKETS)
            continue;
        const char *v = line + sizeof bucket - 1, *sp = strchr(v, ' ');
        if (!sp)
            continue;
        k->le[k->nb] = strncmp(v, "+Inf", 4) == 0 ? INFINITY : strtod(v, NULL);
        k->cum[k->nb++] = strtod(sp + 1, NULL);
    }
    free(page);
}

/* Quantile q of the write delays between two reads, as the upper bound of
 * its bucket in ms; -1 if unknown or beyond the last finite bound. */
static double wsl_delay_pct_ms(const wsl_counters *a, const wsl_counters *b, double q)
{
    if (a->nb == 0 || a->nb != b->nb)
        return -1;
    double total = b->cum[b->nb - 1] - a->cum[a->nb - 1];
    for (int i = 0; total > 0 && i < b->nb; i++)
        if (b->cum[i] - a->cum[i] >= q * total)
            return isinf(b->le[i]) ? -1 : b->le[i] * 1000;
    return -1;
}

static void wsl_on_window_end(uv_timer_t *t)
{
    wsl_run *r = t->data;
    r->measuring = false;
    r->win_end = bl_mono_us();
    wsl_read_counters(r, &r->k1);
    if (r->server_pid > 0) {
        r->cpu1 = bl_proc_cpu_ticks(r->server_pid);
        r->rss_end = bl_proc_rss_kb(r->server_pid);
        wsl_sample_server(r);
    }
    r->self_cpu1 = bl_self_cpu_us();
    wsl_close_all(r);
}

static void wsl_on_window_start(uv_timer_t *t)
{
    wsl_run *r = t->data;
    wsl_read_counters(r, &r->k0);
    r->win_start = bl_mono_us();
    r->measuring = true;
    for (int i = 0; i < r->opened; i++) {
        wsl_client *c = &r->c[i];
        c->in_window = c->state == WSL_OPEN;
        r->in_window_count += c->in_window;
        c->updates = c->frames = c->bytes = c->progress_steps = 0;
    }
    if (r->server_pid > 0) {
        r->cpu0 = bl_proc_cpu_ticks(r->server_pid);
        r->rss_win_start = bl_proc_rss_kb(r->server_pid);
    }
    r->self_cpu0 = bl_self_cpu_us();
    if (uv_timer_start(&r->phase, wsl_on_window_end, (uint64_t)(r->duration_s * 1000), 0) != 0)
        wsl_on_window_end(&r->phase);
}

/* The ramp is over when every client is open or has failed, or at the ramp
 * timeout (clients still connecting then are not counted in the rates). */
static void wsl_end_ramp(wsl_run *r)
{
    if (r->ramp_over)
        return;
    r->ramp_over = true;
    uv_timer_stop(&r->pace);
    uv_timer_stop(&r->phase); /* the ramp timeout, when every client settled before it */
    if (uv_timer_start(&r->phase, wsl_on_window_start, (uint64_t)(r->settle_s * 1000), 0) != 0)
        wsl_on_window_start(&r->phase);
}

static void wsl_maybe_finish_ramp(wsl_run *r)
{
    if (r->opened == r->clients && r->settled >= r->clients)
        wsl_end_ramp(r);
}

static void wsl_on_ramp_timeout(uv_timer_t *t)
{
    wsl_run *r = t->data;
    uv_timer_stop(t);
    wsl_end_ramp(r);
}

static void wsl_on_pace(uv_timer_t *t)
{
    wsl_run *r = t->data;
    double elapsed = (double)(bl_mono_us() - r->t0) / 1e6;
    long due = r->rate > 0 ? (long)(r->rate * elapsed) + 1 : r->clients;
    /* Without a rate, still at most 500 per tick: the loop must read the
     * answers of the first ones while the rest connect. */
    long batch = 0;
    while (r->opened < r->clients && r->opened < due && batch < 500) {
        wsl_start_client(r, &r->c[r->opened++]);
        batch++;
    }
    if (r->opened == r->clients)
        uv_timer_stop(t);
    wsl_maybe_finish_ramp(r);
}

static void wsl_on_sample(uv_timer_t *t) { wsl_sample_server(t->data); }

/* ---- report -------------------------------------------------------------------------------- */

static const char *wsl_mode_name(wsl_mode m) { return m == WSL_SEED ? "seed" : m == WSL_JOBS ? "jobs" : "bcast"; }

static void wsl_print_hist(FILE *o, const char *name, const bl_hist *h, const char *what)
{
    fprintf(o, "  %s n %llu  p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f%s\n", name, (unsigned long long)h->n,
            bl_hist_pct_ms(h, 0.5), bl_hist_pct_ms(h, 0.99), bl_hist_pct_ms(h, 0.999),
            h->n ? (double)h->max_us / 1000 : -1.0, what);
}

/* ,"name":{"n":..,"p50":..,"p99":..,"p999":..,"max":..} */
static void wsl_json_hist(FILE *j, const char *name, const bl_hist *h)
{
    fprintf(j, ",\"%s\":{\"n\":%llu,\"p50\":", name, (unsigned long long)h->n);
    bl_json_num(j, bl_hist_pct_ms(h, 0.5), 2);
    fputs(",\"p99\":", j);
    bl_json_num(j, bl_hist_pct_ms(h, 0.99), 2);
    fputs(",\"p999\":", j);
    bl_json_num(j, bl_hist_pct_ms(h, 0.999), 2);
    fputs(",\"max\":", j);
    bl_json_num(j, h->n ? (double)h->max_us / 1000 : -1, 2);
    fputc('}', j);
}

static void wsl_report(wsl_run *r)
{
    double win = r->win_end > r->win_start ? (double)(r->win_end - r->win_start) / 1e6 : 0;
    double sum = 0, min = -1, fsum = 0, bsum = 0, steps_max = 0;
    long fin_min = -1, fin_max = 0;
    for (int i = 0; i < r->opened; i++) {
        wsl_client *c = &r->c[i];
        if (!c->in_window || win <= 0)
            continue;
        double u = (double)c->updates / win;
        sum += u;
        fsum += (double)c->frames / win;
        bsum += (double)c->bytes / win;
        if (min < 0 || u < min)
            min = u;
        if ((double)c->progress_steps / win > steps_max)
            steps_max = (double)c->progress_steps / win;
        if (fin_min < 0 || (long)c->finals < fin_min)
            fin_min = c->finals;
        if ((long)c->finals > fin_max)
            fin_max = c->finals;
    }
    int n = r->in_window_count;
    double mean = n ? sum / n : -1, fmean = n ? fsum / n : -1, bmean = n ? bsum / n : -1;
    double ramp_s = r->t_last_open > r->t0 ? (double)(r->t_last_open - r->t0) / 1e6 : 0;
    double connect_rate = ramp_s > 0 ? (double)r->hs.n / ramp_s : -1;
    double served_all_s = -1;
    int served = 0;
    for (int i = 0; i < r->opened; i++)
        if (r->c[i].t_first) {
            served++;
            double s = (double)(r->c[i].t_first - r->t0) / 1e6;
            if (s > served_all_s)
                served_all_s = s;
        }
    long ticks = sysconf(_SC_CLK_TCK);
    double cpu = (r->server_pid > 0 && r->cpu0 >= 0 && r->cpu1 >= 0 && win > 0 && ticks > 0)
                     ? 100.0 * (double)(r->cpu1 - r->cpu0) / (double)ticks / win
                     : -1;
    double self_cpu = win > 0 ? 100.0 * (double)(r->self_cpu1 - r->self_cpu0) / 1e6 / win : -1;
    double rss_per = (r->server_pid > 0 && r->rss_end > 0 && r->rss_base > 0 && n > 0)
                         ? (double)(r->rss_end - r->rss_base) * 1024.0 / n
                         : -1;
    uint64_t errors = r->err_connect + r->err_handshake + r->err_closed + r->err_eof + r->err_protocol + r->err_parse;

    FILE *o = stderr;
    fprintf(o, "wsload %s  ws://%s:%d%s  mode %s\n", r->label ? r->label : "", r->host, r->port, r->path,
            wsl_mode_name(r->mode));
    fprintf(o, "  clients          %d asked, %d open in the window, %d open at the end, %d got a frame\n",
            r->clients, n, r->open_at_end, served);
    fprintf(o, "  connect          %.0f/s achieved; handshake p50 %.1f ms, p99 %.1f ms; all served in %.2f s\n",
            connect_rate, bl_hist_pct_ms(&r->hs, 0.5), bl_hist_pct_ms(&r->hs, 0.99), served_all_s);
    fprintf(o, "  window           %.2f s\n", win);
    fprintf(o, "  updates/client/s mean %.2f, min %.2f   (frames/client/s %.2f, %.0f B/s)\n", mean, min, fmean,
            bmean);
    if (r->mode == WSL_SEED)
        fprintf(o, "  demo pace        %.2f progress steps/s (best client)\n", steps_max);
    if (r->mode == WSL_JOBS)
        fprintf(o, "  final states     min %ld, max %ld per client\n", fin_min, fin_max);
    wsl_print_hist(o, "latency (ms)    ", &r->lat, " (change -> the client's socket)");
    wsl_print_hist(o, "read latency    ", &r->lat_read, " (change -> read by this process)");
    fprintf(o, "  reads            %llu, %llu with the kernel's receive timestamp\n", (unsigned long long)r->reads,
            (unsigned long long)r->reads_stamped);
    fprintf(o, "  errors           %llu (connect %llu, handshake %llu, closed %llu [last code %d], eof %llu, "
               "protocol %llu, parse %llu); pongs not sent %llu%s%s\n",
            (unsigned long long)errors, (unsigned long long)r->err_connect, (unsigned long long)r->err_handshake,
            (unsigned long long)r->err_closed, r->last_close_code, (unsigned long long)r->err_eof,
            (unsigned long long)r->err_protocol, (unsigned long long)r->err_parse, (unsigned long long)r->err_control,
            r->hs_reject[0] ? "; first refusal: " : "",
            r->hs_reject);
    if (r->server_pid > 0)
        fprintf(o, "  server pid %ld    CPU %.1f %%, RSS base %ld KiB, end %ld KiB, max %ld KiB (%.0f B/connection)\n",
                (long)r->server_pid, cpu, r->rss_base, r->rss_end, r->rss_max, rss_per);
    double wpc = -1, fps = -1;
    double d50 = wsl_delay_pct_ms(&r->k0, &r->k1, 0.5), d99 = wsl_delay_pct_ms(&r->k0, &r->k1, 0.99);
    if (r->k0.writes >= 0 && r->k1.writes >= 0 && r->k0.flushes >= 0 && r->k1.flushes >= 0 && win > 0 && n > 0) {
        wpc = (r->k1.writes - r->k0.writes) / win / n;
        fps = (r->k1.flushes - r->k0.flushes) / win;
        fprintf(o, "  server writes    %.2f per client per second, %.2f flushes per second; frames waited in galvanid "
                   "p50 <= %.1f ms, p99 <= %.1f ms\n",
                wpc, fps, d50, d99);
    }
    fprintf(o, "  load generator   CPU %.1f %%\n", self_cpu);

    FILE *j = stdout;
    fprintf(j, "{\"tool\":\"wsload\",\"label\":\"%s\",\"url\":\"ws://%s:%d%s\",\"mode\":\"%s\",\"clients\":%d,",
            r->label ? r->label : "", r->host, r->port, r->path, wsl_mode_name(r->mode), r->clients);
    fprintf(j, "\"connected\":%d,\"open_at_end\":%d,\"served\":%d,\"connect_rate\":", n, r->open_at_end, served);
    bl_json_num(j, connect_rate, 1);
    bl_json_p50_p99(j, "handshake_ms", bl_hist_pct_ms(&r->hs, 0.5), bl_hist_pct_ms(&r->hs, 0.99), 2);
    bl_json_p50_p99(j, "first_frame_ms", bl_hist_pct_ms(&r->first, 0.5), bl_hist_pct_ms(&r->first, 0.99), 2);
    fputs(",\"served_all_s\":", j);
    bl_json_num(j, served_all_s, 3);
    fputs(",\"window_s\":", j);
    bl_json_num(j, win, 3);
    fputs(",\"updates_per_client_s\":{\"mean\":", j);
    bl_json_num(j, mean, 2);
    fputs(",\"min\":", j);
    bl_json_num(j, min, 2);
    fputs("},\"frames_per_client_s\":", j);
    bl_json_num(j, fmean, 2);
    fputs(",\"bytes_per_client_s\":", j);
    bl_json_num(j, bmean, 0);
    fputs(",\"demo_steps_s\":", j);
    bl_json_num(j, r->mode == WSL_SEED ? steps_max : -1, 2);
    fprintf(j, ",\"finals\":{\"min\":%ld,\"max\":%ld}", fin_min, fin_max);
    wsl_json_hist(j, "latency_ms", &r->lat);
    wsl_json_hist(j, "read_latency_ms", &r->lat_read);
    fprintf(j, ",\"reads\":{\"total\":%llu,\"stamped\":%llu}", (unsigned long long)r->reads,
            (unsigned long long)r->reads_stamped);
    fprintf(j,
            ",\"errors\":{\"total\":%llu,\"connect\":%llu,\"handshake\":%llu,\"closed\":%llu,\"last_close_code\":%d,"
            "\"eof\":%llu,\"protocol\":%llu,\"parse\":%llu,\"control\":%llu},",
            (unsigned long long)errors, (unsigned long long)r->err_connect, (unsigned long long)r->err_handshake,
            (unsigned long long)r->err_closed, r->last_close_code, (unsigned long long)r->err_eof,
            (unsigned long long)r->err_protocol, (unsigned long long)r->err_parse, (unsigned long long)r->err_control);
    fprintf(j, "\"server\":{\"pid\":%ld,\"cpu_pct\":", (long)r->server_pid);
    bl_json_num(j, cpu, 1);
    fprintf(j, ",\"rss_base_kb\":%ld,\"rss_end_kb\":%ld,\"rss_max_kb\":%ld,\"rss_per_conn_b\":", r->rss_base,
            r->rss_end, r->rss_max);
    bl_json_num(j, rss_per, 0);
    fputs(",\"writes_per_client_s\":", j);
    bl_json_num(j, wpc, 2);
    fputs(",\"flushes_per_s\":", j);
    bl_json_num(j, fps, 2);
    bl_json_p50_p99(j, "write_delay_ms", d50, d99, 1);
    fputs("},\"loadgen_cpu_pct\":", j);
    bl_json_num(j, self_cpu, 1);
    fputs("}\n", j);
    fflush(j);
}

/* ---- main ---------------------------------------------------------------------------------- */

static void wsl_usage(FILE *o)
{
    fputs("usage: wsload --url ws://127.0.0.1:PORT/PATH [options]\n"
          "  -c, --clients N        connections (default 10)\n"
          "  -r, --rate R           new connections per second (default 1000; 0: as fast as possible)\n"
          "  -d, --duration S       measurement window, after the ramp (default 10)\n"
          "      --ramp-timeout S   stop waiting for connections after S (default 60)\n"
          "      --settle S         pause between the ramp and the window (default 0.5)\n"
          "  -m, --mode M           seed (/ws: each frame is the demo job), jobs (/ws/jobs messages),\n"
          "                         bcast (the ceiling: {\"t\":MS,\"jobs\":[...]}, one update per entry);\n"
          "                         default from the path\n"
          "  -p, --pid PID          the server's pid: its CPU and RSS over the run, from /proc\n"
          "      --src-addrs K      spread clients over K source addresses 127.0.0.10.. (default 16)\n"
          "      --job-slots N      jobs tracked per client for repeats and final states (default 256)\n"
          "      --strict           also parse every frame with jansson (slow: for tests)\n"
          "      --check            exit 1 unless every client connected, got a frame, and nothing failed\n"
          "      --label TEXT       copied into the JSON line\n"
          "      --metrics          the server is galvanid: read its stream writes and flushes from\n"
          "                         GET /metrics at the window's start and end\n"
          "Human table on stderr, one JSON line on stdout.  Only 127.0.0.0/8 targets are accepted.\n",
          o);
}

static int wsl_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static wsl_run run;
    wsl_run *r = &run;
    r->clients = 10;
    r->rate = 1000;
    r->duration_s = 10;
    r->ramp_timeout_s = 60;
    r->settle_s = 0.5;
    r->src_addrs = 16;
    r->job_slots = 256;
    r->mode = (wsl_mode)-1;
    const char *url = NULL;
    static const struct option opts[] = {
        {"url", required_argument, 0, 'u'},       {"clients", required_argument, 0, 'c'},
        {"rate", required_argument, 0, 'r'},      {"duration", required_argument, 0, 'd'},
        {"ramp-timeout", required_argument, 0, 'T'}, {"settle", required_argument, 0, 'S'},
        {"mode", required_argument, 0, 'm'},      {"pid", required_argument, 0, 'p'},
        {"src-addrs", required_argument, 0, 'A'}, {"job-slots", required_argument, 0, 'J'},
        {"strict", no_argument, 0, 's'},          {"check", no_argument, 0, 'k'},
        {"label", required_argument, 0, 'L'},     {"help", no_argument, 0, 'h'},
        {"metrics", no_argument, 0, 'M'},
        {0, 0, 0, 0}};
    int o;
    double v;
    while ((o = getopt_long(argc, argv, "u:c:r:d:m:p:h", opts, NULL)) != -1) {
        int bad = 0;
        switch (o) {
        case 'u': url = optarg; break;
        case 'c': bad = wsl_num(optarg, 1, 1000000, &v); r->clients = (int)v; break;
        case 'r': bad = wsl_num(optarg, 0, 1e7, &r->rate); break;
        case 'd': bad = wsl_num(optarg, 0.1, 86400, &r->duration_s); break;
        case 'T': bad = wsl_num(optarg, 0.1, 86400, &r->ramp_timeout_s); break;
        case 'S': bad = wsl_num(optarg, 0, 3600, &r->settle_s); break;
        case 'p': bad = wsl_num(optarg, 1, 1e9, &v); r->server_pid = (pid_t)v; break;
        case 'A': bad = wsl_num(optarg, 1, 240, &v); r->src_addrs = (int)v; break;
        case 'J': bad = wsl_num(optarg, 1, 1 << 20, &v); r->job_slots = (int)v; break;
        case 's': r->strict = true; break;
        case 'k': r->check = true; break;
        case 'M': r->metrics = true; break;
        case 'L': r->label = optarg; break;
        case 'm':
            if (strcmp(optarg, "seed") == 0)
                r->mode = WSL_SEED;
            else if (strcmp(optarg, "jobs") == 0)
                r->mode = WSL_JOBS;
            else if (strcmp(optarg, "bcast") == 0)
                r->mode = WSL_BCAST;
            else
                bad = 1;
            break;
        case 'h': wsl_usage(stdout); return 0;
        default: wsl_usage(stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "wsload: bad value for -%c: '%s'\n", o, optarg);
            return 2;
        }
    }
    if (!url || optind != argc) {
        wsl_usage(stderr);
        return 2;
    }
    char err[256];
    if (bl_parse_url(url, "ws", &r->addr, r->host, sizeof r->host, r->path, sizeof r->path, err, sizeof err) != 0) {
        fprintf(stderr, "wsload: %s\n", err);
        return 2;
    }
    r->port = ntohs(r->addr.sin_port);
    if ((int)r->mode < 0) {
        if (strncmp(r->path, "/ws/jobs", 8) == 0)
            r->mode = WSL_JOBS;
        else if (strcmp(r->path, "/ws") == 0)
            r->mode = WSL_SEED;
        else
            r->mode = WSL_BCAST;
    }
    /* Every client is one descriptor; libuv and stdio need a few more. */
    long lim = bl_raise_nofile((long)r->clients + 64);
    if (lim < (long)r->clients + 16) {
        fprintf(stderr, "wsload: %d clients need %d open files; the limit is %ld (hard limit: ulimit -Hn)\n",
                r->clients, r->clients + 16, lim);
        return 2;
    }
    r->c = calloc((size_t)r->clients, sizeof *r->c);
    if (!r->c || bl_hist_init(&r->lat) || bl_hist_init(&r->lat_read) || bl_hist_init(&r->hs) || bl_hist_init(&r->first)) {
        fprintf(stderr, "wsload: out of memory\n");
        return 1;
    }
    for (int i = 0; i < r->clients; i++) {
        r->c[i].run = r;
        r->c[i].last_progress = -1;
        r->c[i].last_t = -1;
        if (r->mode == WSL_JOBS) {
            r->c[i].slot_t = malloc((size_t)r->job_slots * sizeof *r->c[i].slot_t);
            if (!r->c[i].slot_t) {
                fprintf(stderr, "wsload: out of memory (lower --job-slots)\n");
                return 1;
            }
            for (int k = 0; k < r->job_slots; k++)
                r->c[i].slot_t[k] = -1 & ~WSL_FINAL_BIT;
        }
    }
    r->rng = (uint64_t)bl_now_us() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
    r->loop = uv_default_loop();
    if (uv_timer_init(r->loop, &r->pace) || uv_timer_init(r->loop, &r->phase) || uv_timer_init(r->loop, &r->sample)) {
        fprintf(stderr, "wsload: cannot create timers\n");
        return 1;
    }
    r->pace.data = r->phase.data = r->sample.data = r;
    r->cpu0 = r->cpu1 = -1;
    if (r->server_pid > 0) {
        r->rss_base = bl_proc_rss_kb(r->server_pid);
        if (r->rss_base < 0) {
            fprintf(stderr, "wsload: cannot read /proc/%ld/status: no such server process?\n", (long)r->server_pid);
            return 2;
        }
        r->rss_max = r->rss_base;
    }
    r->t0 = bl_mono_us();
    /* The ramp timeout lives on `phase`, which the window timers reuse. */
    if (uv_timer_start(&r->pace, wsl_on_pace, 0, 2) || uv_timer_start(&r->sample, wsl_on_sample, 1000, 1000) ||
        uv_timer_start(&r->phase, wsl_on_ramp_timeout, (uint64_t)(r->ramp_timeout_s * 1000), 0)) {
        fprintf(stderr, "wsload: cannot start timers\n");
        return 1;
    }
    int rc = uv_run(r->loop, UV_RUN_DEFAULT);
    if (rc != 0 && uv_loop_alive(r->loop))
        fprintf(stderr, "wsload: loop ended with handles still active\n");
    wsl_report(r);
    int ok = 0;
    if (r->check) {
        int got = 0;
        for (int i = 0; i < r->clients; i++)
            got += r->c[i].t_first != 0;
        uint64_t errors = r->err_connect + r->err_handshake + r->err_closed + r->err_eof + r->err_protocol +
                          r->err_parse;
        if (r->in_window_count != r->clients || got != r->clients || errors != 0) {
            fprintf(stderr, "wsload: check failed: %d of %d connected, %d got a frame, %llu errors\n",
                    r->in_window_count, r->clients, got, (unsigned long long)errors);
            ok = 1;
        }
    }
    for (int i = 0; i < r->clients; i++) {
        free(r->c[i].pend);
        free(r->c[i].msg);
        free(r->c[i].slot_t);
    }
    free(r->c);
    bl_hist_free(&r->lat);
    bl_hist_free(&r->lat_read);
    bl_hist_free(&r->hs);
    bl_hist_free(&r->first);
    (void)uv_loop_close(r->loop);
    return ok;
}
