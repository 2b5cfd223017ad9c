/*
 * wire.h — the small pure-C pieces galvanid and galvani-shim share: a
 * bounded line splitter, a growable byte buffer, and the escaping used on
 * the shim <-> daemon line protocol (docs/protocol.md, "The supervisor").
 *
 * Nothing here depends on libuv, SQLite or any other library: the shim is
 * built from these files, proc.c and its own, and stays a few tens of KB.
 *
 * Escaping: a protocol line is one '\n'-terminated line, but what it carries
 * (an argv element, an environment value, a job's output line) may contain
 * any byte.  Three bytes are escaped: '\\' -> "\\\\", '\n' -> "\\n",
 * NUL -> "\\0".  Everything else passes through, so a job's line reaches the
 * daemon's parser byte for byte.
 */
#ifndef GALVANI_DAEMON_WIRE_H
#define GALVANI_DAEMON_WIRE_H

#include <stdbool.h>
#include <stddef.h>

/* A growable buffer.  Zero-initialised is empty; gvd_buf_free releases it. */
typedef struct gvd_buf {
    char *p;
    size_t len, cap;
} gvd_buf;

int gvd_buf_add(gvd_buf *b, const void *data, size_t n); /* 0 or -ENOMEM */
int gvd_buf_addf(gvd_buf *b, const char *fmt, ...)       /* printf-append */
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Drop the first n bytes. */
void gvd_buf_consume(gvd_buf *b, size_t n);
void gvd_buf_free(gvd_buf *b);

/* Append "WORD ESCAPED(data)\n" to b. */
int gvd_wire_put(gvd_buf *b, const char *word, const char *data, size_t n);
/* Undo the escaping in place; returns the new length, or -1 for a bad
 * escape (a lone '\\' or an unknown one). */
long gvd_wire_unescape(char *s, size_t n);

/* A line splitter over a caller-provided buffer of `cap` bytes.  Lines that
 * outgrow it are dropped whole (counted in `dropped`). */
typedef struct gvd_lines {
    char *buf;
    size_t cap, len;
    bool overflow;
    unsigned long dropped;
} gvd_lines;

/* Called for each complete line, without its '\n'.  Returning false stops
 * the feed (the rest of the bytes are not looked at). */
typedef bool (*gvd_line_fn)(void *ud, char *line, size_t len);

void gvd_lines_init(gvd_lines *lb, char *buf, size_t cap);
/* Feed n bytes; false if fn asked to stop. */
bool gvd_lines_feed(gvd_lines *lb, const char *p, size_t n, gvd_line_fn fn, void *ud);
/* End of stream: a last line without its newline still counts. */
void gvd_lines_end(gvd_lines *lb, gvd_line_fn fn, void *ud);

/* Split "WORD REST" in place: returns the word's length; *rest points after
 * the single space (or at the end). */
size_t gvd_wire_word(char *line, size_t len, char **rest, size_t *restlen);
bool gvd_wire_is(const char *word, size_t n, const char *lit);

#endif
