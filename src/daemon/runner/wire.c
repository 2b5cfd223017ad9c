/*
 * wire.c — the line splitter, buffer and escaping shared by galvanid and
 * galvani-shim (see wire.h).  Pure C, no dependency beyond libc.
 */
#include "wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for `need` more bytes (capacity doubles, so appends are amortised
 * O(1)).  0 or -ENOMEM, the buffer unchanged then. */
static int gvd_buf_reserve(gvd_buf *b, size_t need)
{
    if (b->len + need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int gvd_buf_add(gvd_buf *b, const void *data, size_t n)
{
    if (n == 0)
        return 0;
    if (gvd_buf_reserve(b, n) != 0)
        return -ENOMEM;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

int gvd_buf_addf(gvd_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return -EINVAL; /* only short control lines are formatted */
    return gvd_buf_add(b, tmp, (size_t)n);
}

void gvd_buf_consume(gvd_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

void gvd_buf_free(gvd_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int gvd_wire_put(gvd_buf *b, const char *word, const char *data, size_t n)
{
    size_t wl = strlen(word);
    /* Worst case every byte doubles: reserve once, then write in place. */
    if (gvd_buf_reserve(b, wl + 1 + 2 * n + 1) != 0)
        return -ENOMEM;
    char *o = b->p + b->len;
    memcpy(o, word, wl);
    o += wl;
    *o++ = ' ';
    for (size_t i = 0; i < n; i++) {
        char c = data[i];
        if (c == '\\' || c == '\n' || c == '\0') {
            *o++ = '\\';
            *o++ = c == '\\' ? '\\' : c == '\n' ? 'n' : '0';
        } else {
            *o++ = c;
        }
    }
    *o++ = '\n';
    b->len = (size_t)(o - b->p);
    return 0;
}

long gvd_wire_unescape(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            s[o++] = s[i];
            continue;
        }
        if (++i == n)
            return -1;
        switch (s[i]) {
        case '\\': s[o++] = '\\'; break;
        case 'n': s[o++] = '\n'; break;
        case '0': s[o++] = '\0'; break;
        default: return -1;
        }
    }
    return (long)o;
}

void gvd_lines_init(gvd_lines *lb, char *buf, size_t cap)
{
    memset(lb, 0, sizeof *lb);
    lb->buf = buf;
    lb->cap = cap;
}

bool gvd_lines_feed(gvd_lines *lb, const char *p, size_t n, gvd_line_fn fn, void *ud)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t chunk = nl ? (size_t)(nl - p) : n;
        if (!lb->overflow) {
            if (lb->len + chunk > lb->cap) {
                lb->overflow = true;
                lb->len = 0;
                lb->dropped++;
            } else {
                memcpy(lb->buf + lb->len, p, chunk);
                lb->len += chunk;
            }
        }
        if (!nl)
            return true;
        bool go = true;
        if (!lb->overflow) {
            size_t len = lb->len;
            lb->len = 0;
            go = fn(ud, lb->buf, len);
        }
        lb->len = 0;
        lb->overflow = false;
        p = nl + 1;
        n -= chunk + 1;
        if (!go)
            return false;
    }
    return true;
}

void gvd_lines_end(gvd_lines *lb, gvd_line_fn fn, void *ud)
{
    if (!lb->overflow && lb->len > 0) {
        size_t len = lb->len;
        lb->len = 0;
        (void)fn(ud, lb->buf, len);
    }
    lb->len = 0;
    lb->overflow = false;
}

size_t gvd_wire_word(char *line, size_t len, char **rest, size_t *restlen)
{
    size_t i = 0;
    while (i < len && line[i] != ' ')
        i++;
    *rest = i < len ? line + i + 1 : line + len;
    *restlen = i < len ? len - i - 1 : 0;
    return i;
}

bool gvd_wire_is(const char *word, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(word, lit, n) == 0;
}
