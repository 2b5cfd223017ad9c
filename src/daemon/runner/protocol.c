/*
 * protocol.c — the job line protocol parser (see protocol.h and
 * docs/protocol.md).
 *
 * Design:
 *   - Pure: no allocation, no I/O, no global state, so it can be fuzzed and is
 *     safe to call on any bytes a job writes.  Numbers go through strtod on a
 *     bounded stack copy (the input is not NUL-terminated).
 *   - Strict: a line either is exactly one of the documented forms or is
 *     INVALID with a static reason naming what is wrong.  Being lenient here
 *     would make typos silently change meaning ("::progres 50" ignored, or
 *     "::progress 50 100" read as 50 %); a clear reason in the daemon's log is
 *     kinder to job authors.  The only leniency is whitespace: spaces and tabs
 *     around words are ignored, as is a trailing '\r' (CRLF writers).
 *   - Text that reaches the rest of the daemon (status messages, metric
 *     names) is valid UTF-8 without control characters, because it ends up in
 *     JSON (jansson refuses invalid UTF-8) and in dashboards.  Status text
 *     longer than GVD_MSG_TEXT_MAX - 1 bytes is cut at a character boundary
 *     (a long message is still a useful message); a metric name that long is
 *     rejected instead (cutting it could merge two series).
 *   - Numbers are plain decimal (digits, '.', 'e', sign): strtod alone would
 *     also take "inf", "nan" and hex floats, none of which is a sensible
 *     progress value.  The daemon never calls setlocale, so strtod's decimal
 *     point is '.'.
 *   - For INVALID lines, msg->text holds a sanitised copy of the line (cut to
 *     fit, bad bytes as '?') so that the caller can log what the job sent.
 */
#include "protocol.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GVD_NUM_MAX 64 /* longest number token accepted, bytes */

typedef struct gvd_span {
    const char *p;
    size_t n;
} gvd_span;

static bool gvd_is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static gvd_span gvd_trim(gvd_span s)
{
    while (s.n > 0 && gvd_is_ws(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && gvd_is_ws(s.p[s.n - 1]))
        s.n--;
    return s;
}

/* Split the next whitespace-delimited word off the front of *rest. */
static gvd_span gvd_next_word(gvd_span *rest)
{
    *rest = gvd_trim(*rest);
    size_t i = 0;
    while (i < rest->n && !gvd_is_ws(rest->p[i]))
        i++;
    gvd_span w = {rest->p, i};
    rest->p += i;
    rest->n -= i;
    *rest = gvd_trim(*rest);
    return w;
}

static bool gvd_span_is(gvd_span s, const char *word)
{
    size_t n = strlen(word);
    return s.n == n && memcmp(s.p, word, n) == 0;
}

/* Length of the well-formed UTF-8 sequence starting at s (1..4), or 0 if the
 * bytes there are not one (overlong forms, surrogates, > U+10FFFF and
 * truncated sequences are all rejected). */
static size_t gvd_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

static bool gvd_is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7F;
}

/* Copy s into out (GVD_MSG_TEXT_MAX bytes, NUL-terminated), never cutting a
 * character in half.  With `sanitise`, invalid bytes and control characters
 * become '?' (used for the INVALID echo); without it the caller has already
 * checked the text. */
static void gvd_copy_text(char *out, gvd_span s, bool sanitise)
{
    size_t o = 0, i = 0;
    while (i < s.n) {
        const unsigned char *u = (const unsigned char *)s.p + i;
        size_t len = gvd_utf8_len(u, s.n - i);
        if (len == 0 || (len == 1 && gvd_is_control(u[0]) && u[0] != '\t')) {
            if (!sanitise)
                break; /* unreachable for checked text */
            if (o + 1 >= GVD_MSG_TEXT_MAX)
                break;
            out[o++] = '?';
            i++;
            continue;
        }
        if (o + len >= GVD_MSG_TEXT_MAX)
            break;
        for (size_t k = 0; k < len; k++)
            out[o + k] = (u[0] == '\t' && len == 1) ? ' ' : (char)u[k];
        o += len;
        i += len;
    }
    out[o] = '\0';
}

static gvd_msg_kind gvd_invalid(gvd_msg *msg, const char *reason, gvd_span line)
{
    msg->kind = GVD_MSG_INVALID;
    msg->reason = reason;
    gvd_copy_text(msg->text, line, true);
    return GVD_MSG_INVALID;
}

/* A plain decimal number, finite, consumed entirely.  -0 becomes 0. */
static bool gvd_parse_number(gvd_span s, double *out)
{
    if (s.n == 0 || s.n >= GVD_NUM_MAX)
        return false;
    char buf[GVD_NUM_MAX];
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'))
            return false;
        buf[i] = c;
    }
    buf[s.n] = '\0';
    char *end = NULL;
    errno = 0;
    double v = strtod(buf, &end);
    if (end != buf + s.n || !isfinite(v))
        return false;
    *out = v + 0.0;
    return true;
}

static gvd_msg_kind gvd_parse_progress(gvd_msg *msg, gvd_span args, gvd_span line)
{
    if (args.n == 0)
        return gvd_invalid(msg, "progress needs a value: N (percent) or N/TOTAL", line);
    const char *slash = memchr(args.p, '/', args.n);
    gvd_span cur = args, tot = {NULL, 0};
    if (slash) {
        cur = gvd_trim((gvd_span){args.p, (size_t)(slash - args.p)});
        tot = gvd_trim((gvd_span){slash + 1, args.n - (size_t)(slash - args.p) - 1});
    }
    double c, t = 100.0;
    if (!gvd_parse_number(cur, &c))
        return gvd_invalid(msg, "progress value is not a finite decimal number (expected N or N/TOTAL)", line);
    if (slash && !gvd_parse_number(tot, &t))
        return gvd_invalid(msg, "progress total is not a finite decimal number (expected N/TOTAL)", line);
    if (c < 0)
        return gvd_invalid(msg, "progress value is negative", line);
    if (t <= 0)
        return gvd_invalid(msg, "progress total must be greater than 0", line);
    if (c > t)
        return gvd_invalid(msg, slash ? "progress value exceeds the total" : "progress percent above 100", line);
    msg->kind = GVD_MSG_PROGRESS;
    msg->current = c;
    msg->total = t;
    msg->has_total = slash != NULL;
    return GVD_MSG_PROGRESS;
}

static gvd_msg_kind gvd_parse_status(gvd_msg *msg, gvd_span args, gvd_span line)
{
    /* The whole line is already known to be valid UTF-8; refuse control
     * characters other than tab (escape sequences, bells...). */
    for (size_t i = 0; i < args.n; i++) {
        unsigned char c = (unsigned char)args.p[i];
        if (gvd_is_control(c) && c != '\t')
            return gvd_invalid(msg, "status text contains a control character", line);
    }
    msg->kind = GVD_MSG_STATUS;
    gvd_copy_text(msg->text, args, false); /* an empty status clears the message */
    return GVD_MSG_STATUS;
}

static bool gvd_metric_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-' || c == '/' || c == ':';
}

static gvd_msg_kind gvd_parse_metric(gvd_msg *msg, gvd_span args, gvd_span line)
{
    gvd_span name = gvd_next_word(&args);
    gvd_span value = gvd_next_word(&args);
    if (name.n == 0 || value.n == 0)
        return gvd_invalid(msg, "metric needs a name and a value: metric NAME VALUE", line);
    if (args.n != 0)
        return gvd_invalid(msg, "unexpected text after the metric value", line);
    if (name.n >= GVD_MSG_TEXT_MAX)
        return gvd_invalid(msg, "metric name too long (at most 255 bytes)", line);
    for (size_t i = 0; i < name.n; i++)
        if (!gvd_metric_name_char(name.p[i]))
            return gvd_invalid(msg, "metric name may only use A-Z a-z 0-9 _ . - / :", line);
    double v;
    if (!gvd_parse_number(value, &v))
        return gvd_invalid(msg, "metric value is not a finite decimal number", line);
    msg->kind = GVD_MSG_METRIC;
    msg->value = v;
    memcpy(msg->text, name.p, name.n);
    msg->text[name.n] = '\0';
    return GVD_MSG_METRIC;
}

static gvd_msg_kind gvd_parse_ack(gvd_msg *msg, gvd_span args, gvd_span line)
{
    static const char *const words[] = {"pause", "resume", "cancel", "params"};
    gvd_span w = gvd_next_word(&args);
    if (w.n == 0)
        return gvd_invalid(msg, "ack needs a word: pause, resume, cancel or params", line);
    if (args.n != 0 && gvd_span_is(w, "params")) {
        /* "ack params N": the revision, 1 to 18 decimal digits. */
        gvd_span n = gvd_next_word(&args);
        if (args.n != 0)
            return gvd_invalid(msg, "unexpected text after the params revision", line);
        long long rev = 0;
        for (size_t i = 0; i < n.n; i++) {
            if (n.p[i] < '0' || n.p[i] > '9')
                return gvd_invalid(msg, "unexpected text after the ack word", line);
            if (n.n > 18)
                return gvd_invalid(msg, "params revision too large (ack params N)", line);
            rev = rev * 10 + (n.p[i] - '0');
        }
        msg->revision = rev;
        msg->has_revision = true;
    } else if (args.n != 0) {
        return gvd_invalid(msg, "unexpected text after the ack word", line);
    }
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
        if (gvd_span_is(w, words[i])) {
            msg->kind = GVD_MSG_ACK;
            memcpy(msg->text, words[i], strlen(words[i]) + 1);
            return GVD_MSG_ACK;
        }
    }
    return gvd_invalid(msg, "unknown ack (expected pause, resume, cancel or params)", line);
}

gvd_msg_kind gvd_msg_parse(const char *line, size_t len, bool require_prefix, gvd_msg *msg)
{
    memset(msg, 0, sizeof *msg);
    msg->kind = GVD_MSG_NONE;
    msg->total = 100.0;
    if (!line)
        len = 0;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    gvd_span all = {line, len};
    gvd_span rest = all;

    if (require_prefix) {
        /* stdout: only lines starting exactly with "::" are ours; anything
         * else is the job's ordinary output. */
        if (len < 2 || line[0] != ':' || line[1] != ':')
            return GVD_MSG_NONE;
        rest.p += 2;
        rest.n -= 2;
    } else {
        /* control fd: every line is a message; "::" is optional and a blank
         * line is nothing. */
        rest = gvd_trim(rest);
        if (rest.n == 0)
            return GVD_MSG_NONE;
        if (rest.n >= 2 && rest.p[0] == ':' && rest.p[1] == ':') {
            rest.p += 2;
            rest.n -= 2;
        }
    }

    if (memchr(line, '\0', len))
        return gvd_invalid(msg, "line contains a NUL byte", all);
    for (size_t i = 0; i < len;) {
        size_t n = gvd_utf8_len((const unsigned char *)line + i, len - i);
        if (n == 0)
            return gvd_invalid(msg, "line is not valid UTF-8", all);
        i += n;
    }

    gvd_span word = gvd_next_word(&rest);
    if (word.n == 0)
        return gvd_invalid(msg, "empty message (expected progress, status, metric or ack)", all);
    if (gvd_span_is(word, "progress"))
        return gvd_parse_progress(msg, rest, all);
    if (gvd_span_is(word, "status"))
        return gvd_parse_status(msg, rest, all);
    if (gvd_span_is(word, "metric"))
        return gvd_parse_metric(msg, rest, all);
    if (gvd_span_is(word, "ack"))
        return gvd_parse_ack(msg, rest, all);
    return gvd_invalid(msg, "unknown message type (expected progress, status, metric or ack)", all);
}
