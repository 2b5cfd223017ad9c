/*
 * fuzz_protocol.c — libFuzzer target for the job line protocol: what a
 * job's stdout and control-fd bytes go through before they reach the job
 * model.  The parser (gvd_msg_parse, runner/protocol.c), and the pieces of
 * runner/wire.c in front of it: the bounded line splitter (gvd_lines, used
 * by the supervisor on the job's output and by the daemon on the
 * supervisor's connection) and the escaping that carries a job's line
 * byte for byte from the supervisor to the daemon.
 *
 * Input: byte 0 picks the stream (bit 0: stdout, where only "::" lines are
 * protocol, else the control fd), byte 1 seeds how the rest is cut into
 * reads and which line limit the splitter gets (1, 2, 7, 64, 255 or 4096
 * bytes: small ones make dropping a long line as common as keeping one);
 * the rest is what the job wrote.
 *
 * Checks, beyond "no crash / no sanitizer report":
 *   1. A line parsed in both modes obeys the parser's contract
 *      (protocol.h): a known kind; text NUL-terminated inside its buffer,
 *      valid UTF-8 (jansson accepts it) and free of control characters;
 *      progress finite with 0 <= current <= total, total > 0, total 100
 *      unless given; a metric's value finite and its name non-empty from the
 *      allowed characters; an INVALID message has a reason; a stdout line
 *      without "::" is never a message.  Checked on the whole input and on
 *      every line the splitter delivers.
 *   2. The splitter, fed the bytes in arbitrary reads, delivers exactly the
 *      lines of a reference split done here: every '\n'-terminated line of
 *      at most `limit` bytes, in order, plus the unterminated last one at
 *      the end of the stream; never a line longer than the limit or holding
 *      a '\n'; its drop count is the number of longer lines.
 *   3. Each line, escaped onto the wire ("out ESCAPED\n") and split again by
 *      a splitter of 2 x limit + 64 bytes (the daemon's bound), comes out
 *      exactly once and unescapes to the same bytes; unescaping arbitrary
 *      bytes fails cleanly or shrinks them.
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "runner/protocol.h"
#include "runner/wire.h"

/* ---- 1. one line --------------------------------------------------------- */

static bool text_ok(const char *text)
{
    const char *nul = memchr(text, '\0', GVD_MSG_TEXT_MAX);
    if (!nul)
        return false;
    for (const char *p = text; p < nul; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7F)
            return false;
    json_t *s = json_stringn(text, (size_t)(nul - text)); /* NULL if not UTF-8 */
    json_decref(s);
    return s != NULL;
}

static bool metric_name_ok(const char *name)
{
    if (!*name)
        return false;
    for (const char *p = name; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/:", *p))
            return false;
    return true;
}

static void check_one_line(const uint8_t *line, size_t len, bool require_prefix)
{
    gvd_msg m;
    gvd_msg_kind k = gvd_msg_parse((const char *)line, len, require_prefix, &m);
    FUZZ_CHECK(k == m.kind);
    FUZZ_CHECK(k >= GVD_MSG_NONE && k <= GVD_MSG_ACK);
    FUZZ_CHECK(memchr(m.text, '\0', sizeof m.text) != NULL);
    if (require_prefix && (len < 2 || line[0] != ':' || line[1] != ':'))
        FUZZ_CHECK(k == GVD_MSG_NONE);
    switch (k) {
    case GVD_MSG_NONE:
        break;
    case GVD_MSG_INVALID:
        FUZZ_CHECK(m.reason != NULL && m.reason[0] != '\0');
        FUZZ_CHECK(text_ok(m.text));
        break;
    case GVD_MSG_PROGRESS:
        FUZZ_CHECK(isfinite(m.current) && isfinite(m.total));
        FUZZ_CHECK(m.current >= 0 && m.total > 0 && m.current <= m.total);
        FUZZ_CHECK(m.has_total || m.total == 100.0);
        break;
    case GVD_MSG_STATUS:
        FUZZ_CHECK(text_ok(m.text));
        break;
    case GVD_MSG_METRIC:
        FUZZ_CHECK(isfinite(m.value));
        FUZZ_CHECK(metric_name_ok(m.text));
        break;
    case GVD_MSG_ACK:
        FUZZ_CHECK(strcmp(m.text, "pause") == 0 || strcmp(m.text, "resume") == 0 ||
                   strcmp(m.text, "cancel") == 0 || strcmp(m.text, "params") == 0);
        break;
    }
}

/* ---- 2. the splitter and the shim's wire ----------------------------------- */

typedef struct line_list {
    char *bytes;     /* the lines, back to back */
    size_t *len;     /* each line's length */
    size_t n, cap, used, bytes_cap;
    size_t limit;    /* no line may be longer */
} line_list;

static void line_list_push(line_list *l, const char *line, size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->len = realloc(l->len, l->cap * sizeof *l->len);
        FUZZ_CHECK(l->len != NULL);
    }
    if (l->used + len > l->bytes_cap) {
        l->bytes_cap = 2 * (l->used + len) + 64;
        l->bytes = realloc(l->bytes, l->bytes_cap);
        FUZZ_CHECK(l->bytes != NULL);
    }
    if (len)
        memcpy(l->bytes + l->used, line, len);
    l->used += len;
    l->len[l->n++] = len;
}

static bool on_line(void *ud, char *line, size_t len)
{
    line_list *l = ud;
    FUZZ_CHECK(len <= l->limit);
    FUZZ_CHECK(memchr(line, '\n', len) == NULL);
    line_list_push(l, line, len);
    return true;
}

/* The wire side: each line must come out of the daemon's splitter exactly
 * once, and unescape to the bytes that went in. */
typedef struct wire_check {
    const line_list *sent;
    size_t next, next_off; /* the line expected next, and where its bytes start */
    size_t limit;
} wire_check;

static bool on_wire_line(void *ud, char *line, size_t len)
{
    wire_check *w = ud;
    FUZZ_CHECK(len <= w->limit);
    FUZZ_CHECK(w->next < w->sent->n);
    char *rest;
    size_t rest_len;
    size_t wl = gvd_wire_word(line, len, &rest, &rest_len);
    FUZZ_CHECK(gvd_wire_is(line, wl, "out"));
    long n = gvd_wire_unescape(rest, rest_len);
    FUZZ_CHECK(n >= 0 && (size_t)n == w->sent->len[w->next]);
    FUZZ_CHECK(memcmp(rest, w->sent->bytes + w->next_off, (size_t)n) == 0);
    w->next_off += (size_t)n;
    w->next++;
    return true;
}

static void check_splitter(const uint8_t *data, size_t size, bool is_stdout, uint8_t seed)
{
    /* Small limits make the overflow path as common as the normal one. */
    static const size_t limits[] = {1, 2, 7, 64, 255, 4096};
    size_t limit = limits[seed % (sizeof limits / sizeof *limits)];
    static char buf[4096], wbuf[2 * 4096 + 64];
    gvd_lines lb;
    gvd_lines_init(&lb, buf, limit);
    line_list got = {.limit = limit, .bytes = malloc(64), .bytes_cap = 64};
    FUZZ_CHECK(got.bytes != NULL);
    fuzz_rng rng = fuzz_rng_init(seed);
    for (size_t off = 0; off < size;) {
        size_t n = fuzz_chunk(&rng, size - off);
        FUZZ_CHECK(gvd_lines_feed(&lb, (const char *)data + off, n, on_line, &got));
        FUZZ_CHECK(lb.len <= limit);
        off += n;
    }
    size_t complete = got.n;
    gvd_lines_end(&lb, on_line, &got);

    /* The reference split: every line of at most `limit` bytes, in order;
     * the last one without its '\n' only at the end of the stream. */
    size_t k = 0, off = 0, dropped = 0;
    for (size_t start = 0; start < size;) {
        const uint8_t *nl = memchr(data + start, '\n', size - start);
        size_t len = nl ? (size_t)(nl - (data + start)) : size - start;
        if (len <= limit) {
            FUZZ_CHECK(k < got.n && got.len[k] == len && memcmp(got.bytes + off, data + start, len) == 0);
            off += len;
            k++;
        } else {
            dropped++;
        }
        start += len + 1;
    }
    FUZZ_CHECK(k == got.n);
    FUZZ_CHECK(lb.dropped == dropped);
    FUZZ_CHECK(complete <= got.n && got.n - complete <= 1);

    /* Every line through the shim's wire and back, split by the daemon's
     * bounded splitter; each must then parse as a protocol line. */
    gvd_buf wire = {0};
    for (size_t i = 0, o = 0; i < got.n; o += got.len[i], i++)
        FUZZ_CHECK(gvd_wire_put(&wire, "out", got.bytes + o, got.len[i]) == 0);
    gvd_lines wl;
    gvd_lines_init(&wl, wbuf, 2 * limit + 64);
    wire_check w = {&got, 0, 0, 2 * limit + 64};
    for (size_t o = 0; o < wire.len;) {
        size_t n = fuzz_chunk(&rng, wire.len - o);
        FUZZ_CHECK(gvd_lines_feed(&wl, wire.p + o, n, on_wire_line, &w));
        o += n;
    }
    FUZZ_CHECK(w.next == got.n && wl.dropped == 0 && wl.len == 0);
    /* (The first lines only: thousands of one-byte lines would otherwise
     * make a run slow without exploring anything new.) */
    for (size_t i = 0, o = 0; i < got.n && i < 32; o += got.len[i], i++)
        check_one_line((const uint8_t *)got.bytes + o, got.len[i], is_stdout);

    /* And unescaping arbitrary bytes (a corrupt wire line) is safe. */
    char *raw = malloc(size + 1);
    FUZZ_CHECK(raw != NULL);
    memcpy(raw, data, size);
    long u = gvd_wire_unescape(raw, size);
    FUZZ_CHECK(u >= -1 && u <= (long)size);
    free(raw);

    gvd_buf_free(&wire);
    free(got.bytes);
    free(got.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    bool is_stdout = data[0] & 1;
    uint8_t seed = data[1];
    data += 2;
    size -= 2;
    if (size <= 8192) { /* longer lines are dropped before the parser */
        check_one_line(data, size, true);
        check_one_line(data, size, false);
    }
    check_splitter(data, size, is_stdout, seed);
    return 0;
}
