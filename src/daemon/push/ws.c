/*
 * ws.c — the WebSocket transport.
 *
 * h2o 2.2.5's own WebSocket connection (h2o_upgrade_to_websocket) sends
 * every message through wslay, which copies it and writes header and payload
 * separately (two write() calls and two copies per frame per client: the
 * fan-out ceiling measured in docs/api.md).  So this transport does the
 * upgrade itself (h2o_is_websocket_handshake, then h2o_http1_upgrade with
 * the accept key from sha1.c) and owns the socket:
 *
 *   - data frames are the hub's shared buffers, header included, written
 *     as they are: no copy per client;
 *   - wslay parses what the client sends and produces the control frames
 *     (pong replies, close); its send callback only appends them to `ctrl`;
 *   - a single writer: at most one write in flight (h2o's rule);
 *     `ctrl` and every pending frame leave together in the next write, one
 *     sendmsg on the socket itself, h2o_socket_write only for what the
 *     socket did not take at once (gvd_ws_write_now).
 *
 * Client messages: only {"type":"log",...} (logs.c) is understood; wslay
 * hands us each frame's payload in chunks (no_buffering), and a text
 * message of at most GVD_WS_CMD_MAX bytes is gathered in `cmd` and parsed
 * when its last frame ends.  Anything else a client sends is ignored.
 *
 * wslay is only asked to send between writes and always accepts the whole
 * frame into `ctrl`, so `ctrl` always holds whole frames and data frames
 * can follow it in the same write.  Once a close frame is queued (ours or
 * wslay's reply to the client's) no data frame is queued after it.
 *
 * wslay's context costs ~8.6 KB (two 4 KiB buffers), three quarters of
 * what an idle connection used to cost (massif, 1,000 idle clients).  A
 * push client hardly ever speaks (a pong every 30 s), so the context exists
 * only while it is needed: made when bytes arrive (or a close is queued),
 * dropped again once everything wslay was given has been parsed into whole
 * frames, no fragmented message is open and wslay has nothing to send.
 * The byte count is exact (a client frame is its header, 2/4/10 bytes plus
 * the 4-byte mask, and its payload), so a dropped context never held a
 * partial frame.  Our own pings need no context: {0x89, 0x00}.
 */
#include "push_int.h"

#include <h2o/http1.h>
#include <h2o/websocket.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "../util/log.h"

/* Control bytes buffered before we stop reading from the client (a client
 * that floods pings without reading its pongs gets TCP back-pressure). */
#define GVD_WS_CTRL_MAX 16384
/* Largest message a client may send us; wslay closes with 1009 beyond. */
#define GVD_WS_MAX_MSG 65536
/* Largest client message that is understood (a log subscription is ~60
 * bytes); longer ones are read and ignored. */
#define GVD_WS_CMD_MAX 512
/* Buffers one sendmsg may take (Linux's IOV_MAX; a write with more is left
 * to h2o, which libuv splits). */
#define GVD_WS_IOV_MAX 1024
/* Unread client bytes discarded at close so that it ends with a FIN. */
#define GVD_WS_DRAIN_MAX (1024 * 1024)

typedef struct gvd_ws {
    gvd_client c;                 /* first: the hub hands us &c */
    uv_loop_t *loop;
    h2o_socket_t *sock;           /* NULL until the 101 response is written */
    int fd;                       /* sock's descriptor (asked once: uv_fileno per write was 1 % of a fan-out) */
    wslay_event_context_ptr wslay;
    char *ctrl, *ctrl_wr;         /* wslay's output: queued / being written */
    size_t ctrl_len, ctrl_cap, ctrl_wr_len, ctrl_wr_cap;
    h2o_iovec_t *iov;
    size_t iov_cap;
    bool upgrading;               /* h2o still owes us the upgrade callback */
    bool bad_close;               /* the client's close frame had a 1-byte payload */
    bool writing;
    bool reading;
    uint64_t last_recv, last_ping;
    /* the client's text message being received (frame by frame) */
    char cmd[GVD_WS_CMD_MAX];
    size_t cmd_len;
    bool cmd_text;      /* the current data message is text, and fits so far */
    bool frame_ctrl;    /* the frame being received is a control frame */
    bool frame_fin;
    /* whether wslay's context may be dropped (see the top) */
    uint64_t fed, parsed; /* bytes handed to wslay / in frames it finished */
    uint64_t frame_size;  /* header + payload of the frame being received */
    bool frame_open;      /* a frame started and has not ended */
    bool msg_open;        /* a fragmented data message awaits its last frame */
} gvd_ws;

static uint64_t gvd_ws_now(gvd_ws *ws)
{
    return uv_now(ws->loop);
}

static void gvd_ws_free(gvd_ws *ws)
{
    gvd_client_release(&ws->c);
    if (ws->wslay)
        wslay_event_context_free(ws->wslay);
    free(ws->ctrl);
    free(ws->ctrl_wr);
    free(ws->iov);
    free(ws);
}

/* Read and discard what the client sent that nobody read, at most
 * GVD_WS_DRAIN_MAX bytes, without blocking. */
static void gvd_ws_drain(int fd)
{
    char buf[16384];
    size_t total = 0;
    while (fd >= 0 && total < GVD_WS_DRAIN_MAX) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0)
            break; /* EAGAIN (nothing more), EOF or an error */
        total += (size_t)n;
    }
}

/* Close the socket and free everything, now.  Not while h2o still owes us
 * the upgrade callback: then only detach, and that callback finishes. */
static void gvd_ws_close_now(gvd_ws *ws, const char *why)
{
    gvd_log(GVD_LOG_DEBUG, "push.ws.close", "client=%llu why=%s", (unsigned long long)ws->c.id, why);
    if (ws->upgrading) {
        gvd_client_detach(&ws->c);
        ws->c.closing = true;
        return;
    }
    if (ws->sock) {
        /* Closing a socket whose receive queue still holds bytes makes the
         * kernel send a reset instead of a FIN, and a reset destroys what
         * the client has not read yet — our close frame (1009 after a
         * too-big message, whose tail we never read) included.  So first
         * drop what has arrived (bounded; a client still streaming may
         * still get a reset). */
        gvd_ws_drain(h2o_socket_get_fd(ws->sock));
        /* h2o drops the write callback of a closed socket and libuv no
         * longer reads our buffers once the fd is closed, so the frames in
         * flight can go at once (gvd_ws_free). */
        h2o_socket_close(ws->sock);
        ws->sock = NULL;
    }
    gvd_ws_free(ws);
}

/* ---- wslay callbacks (they never close anything: flags only) ---- */

static ssize_t gvd_ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    (void)flags;
    gvd_ws *ws = ud;
    h2o_buffer_t *in = ws->sock->input;
    if (in->size == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (len > in->size)
        len = in->size;
    memcpy(buf, in->bytes, len);
    h2o_buffer_consume(&ws->sock->input, len);
    ws->fed += len;
    return (ssize_t)len;
}

static ssize_t gvd_ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)flags;
    gvd_ws *ws = ud;
    if (ws->ctrl_cap - ws->ctrl_len < len) {
        size_t cap = ws->ctrl_cap ? ws->ctrl_cap : 256;
        while (cap - ws->ctrl_len < len)
            cap *= 2;
        char *n = realloc(ws->ctrl, cap);
        if (!n) {
            if (ctx) /* NULL for our own frames (a ping, a 1002) */
                wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
            return -1;
        }
        ws->ctrl = n;
        ws->ctrl_cap = cap;
    }
    memcpy(ws->ctrl + ws->ctrl_len, data, len);
    ws->ctrl_len += len;
    return (ssize_t)len;
}

static void gvd_ws_frame_start_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_start_arg *arg,
                                  void *ud)
{
    (void)ctx;
    gvd_ws *ws = ud;
    uint64_t len = arg->payload_length;
    ws->frame_size = (len < 126 ? 2 : len < 65536 ? 4 : 10) + 4 + len; /* client frames are masked */
    ws->frame_open = true;
    ws->frame_ctrl = (arg->opcode & 0x8) != 0; /* control frames may come between fragments */
    if (ws->frame_ctrl)
        return;
    ws->frame_fin = arg->fin != 0;
    ws->msg_open = !ws->frame_fin;
    if (arg->opcode == WSLAY_TEXT_FRAME) {
        ws->cmd_text = true;
        ws->cmd_len = 0;
    } else if (arg->opcode != WSLAY_CONTINUATION_FRAME) {
        ws->cmd_text = false;
    }
    if (arg->payload_length > GVD_WS_CMD_MAX - ws->cmd_len)
        ws->cmd_text = false;
}

static void gvd_ws_frame_chunk_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_chunk_arg *arg,
                                  void *ud)
{
    (void)ctx;
    gvd_ws *ws = ud;
    if (ws->frame_ctrl || !ws->cmd_text)
        return;
    if (arg->data_length > GVD_WS_CMD_MAX - ws->cmd_len) {
        ws->cmd_text = false;
        return;
    }
    memcpy(ws->cmd + ws->cmd_len, arg->data, arg->data_length);
    ws->cmd_len += arg->data_length;
}

/* {"type":"log","job":ID|null,"offset":N}: follow that job's log. */
static void gvd_ws_command(gvd_ws *ws)
{
    json_t *m = json_loadb(ws->cmd, ws->cmd_len, 0, NULL);
    const char *type = json_string_value(json_object_get(m, "type"));
    json_t *job = json_object_get(m, "job"), *off = json_object_get(m, "offset");
    if (type && strcmp(type, "log") == 0 && (json_is_null(job) || (json_is_integer(job) && json_integer_value(job) > 0))) {
        json_int_t o = json_is_integer(off) ? json_integer_value(off) : 0;
        gvd_client_log_follow(&ws->c, json_is_null(job) ? 0 : (int64_t)json_integer_value(job),
                              o > 0 ? (uint64_t)o : 0);
    }
    json_decref(m);
}

static void gvd_ws_frame_end_cb(wslay_event_context_ptr ctx, void *ud)
{
    (void)ctx;
    gvd_ws *ws = ud;
    ws->frame_open = false;
    ws->parsed += ws->frame_size;
    if (ws->frame_ctrl || !ws->cmd_text || !ws->frame_fin)
        return;
    ws->cmd_text = false;
    if (!ws->c.closing)
        gvd_ws_command(ws);
}

static void gvd_ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
    (void)ctx;
    gvd_ws *ws = ud;
    if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        /* wslay queues the close reply; nothing may follow it. */
        ws->c.closing = true;
        gvd_client_discard(&ws->c);
        /* A close payload is empty or a 2-byte code (RFC 6455 5.5.1): one
         * byte is a protocol error, owed a 1002, but wslay takes it for "no
         * code" and has queued an empty close.  gvd_ws_pump sends ours
         * instead. */
        if (arg->msg_length == 1)
            ws->bad_close = true;
    }
    /* Pongs only prove liveness (last_recv, set on every read).  Data
     * messages are not assembled by wslay (no_buffering): the frame
     * callbacks above read the one kind we understand. */
}

/* ---- wslay's context, on demand ---- */

static const struct wslay_event_callbacks gvd_ws_callbacks = {
    gvd_ws_recv_cb, gvd_ws_send_cb, NULL, gvd_ws_frame_start_cb, gvd_ws_frame_chunk_cb, gvd_ws_frame_end_cb,
    gvd_ws_msg_cb};

/* 0, or -1 when out of memory. */
static int gvd_ws_context(gvd_ws *ws)
{
    if (ws->wslay)
        return 0;
    if (wslay_event_context_server_init(&ws->wslay, &gvd_ws_callbacks, ws) != 0) {
        ws->wslay = NULL;
        return -1;
    }
    wslay_event_config_set_no_buffering(ws->wslay, 1);
    wslay_event_config_set_max_recv_msg_length(ws->wslay, GVD_WS_MAX_MSG);
    ws->fed = ws->parsed = 0;
    return 0;
}

/* Drop the context if it holds nothing: every byte it got is in a finished
 * frame, no message is half received, nothing waits to be sent, and no
 * close handshake is under way. */
static void gvd_ws_context_idle(gvd_ws *ws)
{
    if (ws->wslay && !ws->c.closing && !ws->bad_close && !ws->frame_open && !ws->msg_open &&
        ws->fed == ws->parsed && ws->sock && ws->sock->input->size == 0 && !wslay_event_want_write(ws->wslay)) {
        wslay_event_context_free(ws->wslay);
        ws->wslay = NULL;
    }
}

static bool gvd_ws_want_read(gvd_ws *ws)
{
    return ws->wslay ? wslay_event_want_read(ws->wslay) != 0 : !ws->c.closing;
}

static bool gvd_ws_want_write(gvd_ws *ws)
{
    return ws->wslay && wslay_event_want_write(ws->wslay);
}

/* ---- the writer ---- */

static void gvd_ws_pump(gvd_ws *ws);
static void gvd_ws_drop(gvd_client *c, int code, const char *reason);
static void gvd_ws_on_read(h2o_socket_t *sock, const char *err);

static void gvd_ws_on_written(h2o_socket_t *sock, const char *err)
{
    gvd_ws *ws = sock->data;
    ws->writing = false;
    ws->ctrl_wr_len = 0;
    gvd_client_written(&ws->c);
    if (err) {
        gvd_ws_close_now(ws, "write failed");
        return;
    }
    gvd_ws_pump(ws);
}

/* Hand the socket what it takes now, without libuv (one sendmsg): a write through
 * h2o_socket_write is a uv_write, whose completion comes back one loop
 * iteration later and makes libuv re-arm the socket's epoll registration
 * (libuv 1.44's uv__drain queues an epoll_ctl even though nothing changed):
 * two syscalls per frame per client, and at 10,000 clients the second one
 * was half of everything the fan-out asked of the kernel (strace over a
 * connect storm: 388,000 writes, 418,000 epoll_ctl).  Only when no h2o
 * write is in flight (ws->writing is false), so the order of the bytes is
 * kept, and only on a plain socket (TLS bytes must go through h2o).
 * Returns the number of bytes written (0 on EAGAIN or an error: h2o then
 * writes everything and reports the error itself). */
static size_t gvd_ws_write_now(gvd_ws *ws, h2o_iovec_t *iov, size_t k)
{
    _Static_assert(sizeof(h2o_iovec_t) == sizeof(struct iovec) &&
                       offsetof(h2o_iovec_t, base) == offsetof(struct iovec, iov_base) &&
                       offsetof(h2o_iovec_t, len) == offsetof(struct iovec, iov_len),
                   "h2o_iovec_t is laid out as struct iovec");
    if (ws->sock->ssl != NULL || ws->fd < 0 || k > GVD_WS_IOV_MAX)
        return 0;
    /* sendmsg for MSG_NOSIGNAL: a client gone meanwhile is an error code
     * here whatever the process does with SIGPIPE (libuv's write would
     * raise it). */
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = k};
    ssize_t w;
    do
        w = sendmsg(ws->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (w < 0 && errno == EINTR);
    return w > 0 ? (size_t)w : 0;
}

/* Write ctrl and every pending frame.  Returns true if all of it was taken
 * at once (nothing in flight: the caller goes on as after a write's
 * callback), false if nothing was to be written or h2o writes the rest. */
static bool gvd_ws_write(gvd_ws *ws)
{
    if (ws->writing || !ws->sock || (ws->ctrl_len == 0 && ws->c.pending.n == 0))
        return false;
    if (gvd_iov_reserve(&ws->iov, &ws->iov_cap, 1 + ws->c.pending.n, 8) != 0)
        return false; /* retried on the next kick */
    size_t k = 0;
    if (ws->ctrl_len) {
        /* swap the buffers: wslay may append to `ctrl` while this is written */
        char *t = ws->ctrl_wr;
        size_t tcap = ws->ctrl_wr_cap;
        ws->ctrl_wr = ws->ctrl;
        ws->ctrl_wr_cap = ws->ctrl_cap;
        ws->ctrl_wr_len = ws->ctrl_len;
        ws->ctrl = t;
        ws->ctrl_cap = tcap;
        ws->ctrl_len = 0;
        ws->iov[k++] = h2o_iovec_init(ws->ctrl_wr, ws->ctrl_wr_len);
    }
    size_t n = gvd_client_take(&ws->c);
    for (size_t i = 0; i < n; i++)
        k += gvd_pbuf_iov(ws->c.inflight[i], true, ws->iov + k);
    if (k == 0)
        return false;
    gvd_push_count_write(ws->c.hub);
    size_t done = gvd_ws_write_now(ws, ws->iov, k);
    h2o_iovec_t *rest = ws->iov;
    while (k > 0 && done >= rest->len) {
        done -= rest->len;
        rest++;
        k--;
    }
    if (k == 0) {
        ws->ctrl_wr_len = 0;
        gvd_client_written(&ws->c);
        return true;
    }
    rest->base += done;
    rest->len -= done;
    ws->writing = true;
    h2o_socket_write(ws->sock, rest, k, gvd_ws_on_written);
    return false;
}

/* An idle WebSocket sends nothing for 30 s at a time (a pong), but h2o
 * keeps the socket's read buffer (8 KiB, allocated for the first read and
 * reused) for the connection's life: most of what an idle client costs.
 * Handing it back once it is empty makes it a heap block the next read,
 * of this client or another, reuses; h2o allocates one again when bytes
 * arrive (h2o_buffer_reserve on the initial prototype buffer). */
static void gvd_ws_release_input(gvd_ws *ws)
{
    h2o_buffer_t *in = ws->sock->input;
    if (in->size == 0 && in->bytes != NULL) {
        h2o_buffer_prototype_t *proto = in->_prototype; /* the socket's own */
        h2o_buffer_dispose(&ws->sock->input);
        h2o_buffer_init(&ws->sock->input, proto);
    }
}

/* Read what arrived, let wslay answer, write, and decide whether to keep
 * reading.  May free ws. */
static void gvd_ws_pump(gvd_ws *ws)
{
    if (!ws->sock)
        return;
    if (ws->sock->input->size > 0 && gvd_ws_want_read(ws) && !ws->bad_close) {
        if (gvd_ws_context(ws) != 0) {
            gvd_ws_close_now(ws, "out of memory");
            return;
        }
        if (wslay_event_recv(ws->wslay) != 0) {
            gvd_ws_close_now(ws, "protocol error");
            return;
        }
        gvd_ws_release_input(ws);
        if (ws->bad_close) {
            /* Our close frame (unmasked, 2-byte code), through the same
             * buffer as wslay's frames; wslay's queued reply is never
             * sent, and the socket closes once ours is written. */
            static const uint8_t close_1002[] = {0x88, 0x02, 0x03, 0xEA};
            if (gvd_ws_send_cb(ws->wslay, close_1002, sizeof close_1002, 0, ws) < 0) {
                gvd_ws_close_now(ws, "out of memory");
                return;
            }
        }
    }
    if (ws->bad_close) {
        gvd_ws_write(ws);
        if (!ws->writing && ws->ctrl_len == 0)
            gvd_ws_close_now(ws, "protocol error: 1-byte close payload");
        return;
    }
    if (gvd_ws_want_write(ws) && ws->ctrl_len < GVD_WS_CTRL_MAX) {
        if (wslay_event_send(ws->wslay) != 0) {
            gvd_ws_close_now(ws, "wslay send failed");
            return;
        }
    }
    /* A stream whose job was deleted ends once its last frame is out:
     * a close frame may not overtake data (ctrl leaves first). */
    if (ws->c.finish && !ws->c.closing && ws->c.pending.n == 0 && !ws->writing) {
        gvd_ws_drop(&ws->c, 1000, "job removed");
        return;
    }
    if (gvd_ws_write(ws)) {
        /* all of it went at once: what a write's callback would do next
         * (a removed job's stream ends, a finished close handshake) */
        gvd_ws_pump(ws);
        return;
    }
    if (!gvd_ws_want_read(ws) && !gvd_ws_want_write(ws) && !ws->writing && ws->ctrl_len == 0) {
        /* Close frames went both ways (or wslay gave up): done. */
        gvd_ws_close_now(ws, "closed");
        return;
    }
    gvd_ws_context_idle(ws);
    bool read = gvd_ws_want_read(ws) && ws->ctrl_len < GVD_WS_CTRL_MAX;
    if (read != ws->reading) {
        ws->reading = read;
        if (read)
            h2o_socket_read_start(ws->sock, gvd_ws_on_read);
        else
            h2o_socket_read_stop(ws->sock);
    }
}

static void gvd_ws_on_read(h2o_socket_t *sock, const char *err)
{
    gvd_ws *ws = sock->data;
    if (err) {
        gvd_ws_close_now(ws, "peer gone");
        return;
    }
    ws->last_recv = gvd_ws_now(ws);
    gvd_ws_pump(ws);
}

static void gvd_ws_on_upgraded(void *data, h2o_socket_t *sock, size_t reqsize)
{
    gvd_ws *ws = data;
    ws->upgrading = false;
    if (!sock) {
        gvd_ws_free(ws);
        return;
    }
    ws->sock = sock;
    ws->fd = h2o_socket_get_fd(sock);
    sock->data = ws;
    h2o_buffer_consume(&sock->input, reqsize);
    gvd_ws_release_input(ws);
    if (ws->c.hub)
        gvd_push_bound_sndbuf(ws->c.hub, ws->fd);
    if (!ws->c.hub) {
        /* the hub went away while the 101 was being written */
        gvd_ws_close_now(ws, "server closing");
        return;
    }
    ws->last_recv = ws->last_ping = gvd_ws_now(ws);
    ws->reading = true;
    h2o_socket_read_start(sock, gvd_ws_on_read);
    gvd_ws_pump(ws);
}

/* ---- gvd_client_ops ---- */

static void gvd_ws_kick(gvd_client *c)
{
    gvd_ws_pump((gvd_ws *)c);
}

static void gvd_ws_drop(gvd_client *c, int code, const char *reason)
{
    gvd_ws *ws = (gvd_ws *)c;
    if (c->closing)
        return;
    c->closing = true;
    c->close_by = gvd_ws_now(ws) + GVD_PUSH_CLOSE_WAIT_MS;
    gvd_client_discard(c);
    if (gvd_ws_context(ws) != 0) {
        gvd_ws_close_now(ws, "out of memory");
        return;
    }
    wslay_event_queue_close(ws->wslay, (uint16_t)code, (const uint8_t *)reason, strlen(reason));
    gvd_ws_pump(ws);
}

static void gvd_ws_tick(gvd_client *c, uint64_t now)
{
    gvd_ws *ws = (gvd_ws *)c;
    if (!ws->sock)
        return; /* still upgrading */
    if (c->closing) {
        /* the peer did not complete the close handshake in time */
        if (c->close_by && now >= c->close_by)
            gvd_ws_close_now(ws, "close timeout");
        return;
    }
    unsigned ping_ms = c->hub->opts.ping_ms;
    if (now - ws->last_recv >= 2 * (uint64_t)ping_ms) {
        gvd_push_count_ping_drop(c->hub);
        gvd_log(GVD_LOG_WARN, "push.drop", "client=%llu reason=ping_timeout silent_ms=%llu",
                (unsigned long long)c->id, (unsigned long long)(now - ws->last_recv));
        gvd_ws_close_now(ws, "ping timeout");
        return;
    }
    if (now - ws->last_ping >= ping_ms) {
        /* an empty ping, unmasked (server to client), whole into ctrl */
        static const uint8_t ping[] = {0x89, 0x00};
        ws->last_ping = now;
        if (gvd_ws_send_cb(ws->wslay, ping, sizeof ping, 0, ws) == (ssize_t)sizeof ping)
            gvd_ws_pump(ws);
    }
}

static void gvd_ws_abort(gvd_client *c)
{
    gvd_ws_close_now((gvd_ws *)c, "server closing");
}

static const gvd_client_ops gvd_ws_ops = {gvd_ws_kick, gvd_ws_drop, gvd_ws_tick, gvd_ws_abort};

int gvd_ws_accept(gvd_push *p, h2o_req_t *req, gvd_stream stream, int64_t job, gvd_error *err)
{
    const char *key = NULL;
    if (req->version >= 0x200 || h2o_is_websocket_handshake(req, &key) != 0 || key == NULL) {
        gvd_push_err(err, 400, "websocket_required",
                      "this is a WebSocket endpoint: connect with a WebSocket client (HTTP/1.1 GET with "
                      "\"Upgrade: websocket\" and a valid Sec-WebSocket-Key)");
        return -1;
    }
    gvd_ws *ws = calloc(1, sizeof *ws);
    if (!ws) {
        gvd_push_err(err, 503, "out_of_memory", "out of memory");
        return -1;
    }
    ws->c.ops = &gvd_ws_ops;
    ws->loop = p->loop;
    ws->c.ws = true;
    ws->c.stream = stream;
    ws->c.job = job;
    /* wslay's context comes with the first bytes the client sends */
    if (gvd_client_attach(p, &ws->c) != 0) {
        gvd_ws_free(ws);
        gvd_push_err(err, 503, p->closing ? "shutting_down" : "out_of_memory",
                      p->closing ? "the server is shutting down" : "out of memory");
        return -1;
    }

    char accept[29];
    gvd_ws_accept_key(accept, key);
    req->res.status = 101;
    req->res.reason = "Switching Protocols";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_UPGRADE, NULL, H2O_STRLIT("websocket"));
    h2o_iovec_t v = h2o_strdup(&req->pool, accept, 28);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("sec-websocket-accept"), 0, NULL, v.base, v.len);
    ws->upgrading = true;
    /* Frames queued until the 101 is written wait in `pending`. */
    h2o_http1_upgrade(req, NULL, 0, gvd_ws_on_upgraded, ws);
    return 0;
}
