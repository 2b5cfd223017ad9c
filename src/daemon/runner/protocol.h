/*
 * protocol.h — galvani's job line protocol (docs/protocol.md).
 *
 * A job reports by writing lines to the control fd ($GALVANI_CONTROL_FD) or,
 * for plain scripts, "::"-prefixed marker lines on stdout:
 *
 *     ::progress 54          percent done
 *     ::progress 54/200      current / total
 *     ::status compiling     a short free-text status message
 *     ::metric loss 0.31     a named number (a time series in the dashboard)
 *     ::ack pause            cooperative acknowledgements: pause, resume,
 *                            cancel, params; "ack params N" names the
 *                            params revision the job now runs with
 *
 * On the control fd the "::" prefix is optional.  The daemon writes commands
 * to cooperative jobs on the same fd: "pause", "resume", "cancel",
 * "params N {json}" (N: the params revision).  A malformed line is reported as GVD_MSG_INVALID with a
 * reason; it is logged and ignored, never fatal.  The parser is a pure
 * function (no allocation, no I/O), which makes it easy to fuzz.
 */
#ifndef GALVANI_DAEMON_PROTOCOL_H
#define GALVANI_DAEMON_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>

#define GVD_MSG_TEXT_MAX 256 /* status text / metric name, bytes incl. NUL */

typedef enum gvd_msg_kind {
    GVD_MSG_NONE = 0,  /* not a protocol line (an ordinary stdout line) */
    GVD_MSG_INVALID,   /* looked like one, but malformed: see reason */
    GVD_MSG_PROGRESS,  /* current (and total if has_total) */
    GVD_MSG_STATUS,    /* text */
    GVD_MSG_METRIC,    /* name (text), value */
    GVD_MSG_ACK        /* text: pause | resume | cancel | params */
} gvd_msg_kind;

typedef struct gvd_msg {
    gvd_msg_kind kind;
    double current, total; /* PROGRESS; total = 100 unless given */
    bool has_total;
    double value;          /* METRIC */
    long long revision;    /* ACK params N: N (has_revision); "ack params" alone means the latest */
    bool has_revision;
    char text[GVD_MSG_TEXT_MAX];
    const char *reason;    /* INVALID: static string */
} gvd_msg;

/* Parse one line (without its newline; a trailing '\r' is ignored).
 * `require_prefix`: true for stdout (only "::" lines are protocol), false for
 * the control fd.  Fills *msg and returns its kind. */
gvd_msg_kind gvd_msg_parse(const char *line, size_t len, bool require_prefix, gvd_msg *msg);

#endif
