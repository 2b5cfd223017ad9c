/*
 * value.c — the gv_value model: conversions, equality and storage.
 *
 * A stored string lives in a heap buffer with its capacity in a small header
 * just before the characters, so that writing a string no longer than the one
 * a node held before re-uses the buffer instead of allocating.
 */
#include "internal.h"

#include <string.h>

typedef struct gv_strbuf {
    size_t cap; /* bytes available for characters, including the NUL */
    char chars[];
} gv_strbuf;

static gv_strbuf *gv_strbuf_of(const char *s)
{
    return (gv_strbuf *)(void *)((char *)(uintptr_t)s - offsetof(gv_strbuf, chars));
}

/* The destroy function that marks a GV_STRING as an owned gv_strbuf (made by
 * gv_str_copy) rather than a view: storing it takes the buffer over. */
static void gv_strbuf_release(void *chars)
{
    free(gv_strbuf_of(chars));
}

static bool gv_is_owned_string(const gv_value *v)
{
    return v->type == GV_STRING && v->destroy == gv_strbuf_release;
}

gv_value gv_str_copy(const char *s)
{
    if (!s)
        s = "";
    size_t len = strlen(s);
    gv_strbuf *b = malloc(sizeof *b + len + 1);
    if (!b)
        return gv_none();
    b->cap = len + 1;
    memcpy(b->chars, s, len + 1);
    gv_value v = gv_str(b->chars);
    v.destroy = gv_strbuf_release;
    return v;
}

int64_t gv_value_to_int(const gv_value *v)
{
    switch (v->type) {
    case GV_INT: return v->as.i;
    case GV_DOUBLE: return (int64_t)v->as.d;
    case GV_BOOL: return v->as.b;
    default: return 0;
    }
}

double gv_value_to_double(const gv_value *v)
{
    switch (v->type) {
    case GV_INT: return (double)v->as.i;
    case GV_DOUBLE: return v->as.d;
    case GV_BOOL: return v->as.b;
    default: return 0.0;
    }
}

bool gv_value_to_bool(const gv_value *v)
{
    switch (v->type) {
    case GV_INT: return v->as.i != 0;
    case GV_DOUBLE: return v->as.d != 0.0;
    case GV_BOOL: return v->as.b;
    default: return false;
    }
}

const char *gv_value_to_string(const gv_value *v)
{
    return v->type == GV_STRING ? v->as.s : NULL;
}

void *gv_value_to_pointer(const gv_value *v)
{
    return v->type == GV_POINTER ? v->as.p : NULL;
}

bool gv_value_equal(const gv_value *a, const gv_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case GV_NONE: return true;
    case GV_INT: return a->as.i == b->as.i;
    /* Bitwise-identical doubles, plus -0 == 0: NaN equals itself so that
     * writing NaN twice does not notify twice. */
    case GV_DOUBLE: return a->as.d == b->as.d || memcmp(&a->as.d, &b->as.d, sizeof(double)) == 0;
    case GV_BOOL: return a->as.b == b->as.b;
    case GV_STRING: return a->as.s == b->as.s || strcmp(a->as.s, b->as.s) == 0;
    case GV_POINTER: return a->as.p == b->as.p;
    }
    return false;
}

bool gv__equal_slow(const gv_node *n, const gv_value *a, const gv_value *b)
{
    if (n->extra && n->extra->equal)
        return n->extra->equal(a, b, n->extra->equal_ud);
    return gv_value_equal(a, b);
}

void gv__value_clear(gv_value *slot)
{
    if (slot->type == GV_STRING)
        free(gv_strbuf_of(slot->as.s));
    else if (slot->type == GV_POINTER && slot->destroy && slot->as.p)
        slot->destroy(slot->as.p);
    *slot = gv_none();
}

bool gv__value_store(gv_value *slot, const gv_value *in)
{
    if (gv_is_owned_string(in)) { /* take the buffer over */
        gv__value_clear(slot);
        slot->type = GV_STRING;
        slot->as.s = in->as.s;
        slot->destroy = NULL;
        return true;
    }
    if (in->type == GV_STRING) {
        const char *src = in->as.s ? in->as.s : "";
        size_t len = strlen(src);
        if (slot->type == GV_STRING) {
            gv_strbuf *b = gv_strbuf_of(slot->as.s);
            if (b->cap > len) {
                /* memmove: the caller may pass our own buffer back to us */
                memmove(b->chars, src, len + 1);
                return true;
            }
        }
        gv_strbuf *b = malloc(sizeof *b + len + 1);
        if (!b) {
            gv__value_clear(slot);
            return false;
        }
        b->cap = len + 1;
        memcpy(b->chars, src, len + 1);
        gv__value_clear(slot);
        slot->type = GV_STRING;
        slot->as.s = b->chars;
        slot->destroy = NULL;
        return true;
    }
    /* Storing the very pointer we already hold must not destroy it. */
    if (!(in->type == GV_POINTER && slot->type == GV_POINTER && in->as.p == slot->as.p))
        gv__value_clear(slot);
    *slot = *in;
    if (slot->type != GV_POINTER)
        slot->destroy = NULL;
    return true;
}

void gv__value_discard(const gv_value *in, const gv_value *kept)
{
    if (gv_is_owned_string(in)) {
        if (!(kept->type == GV_STRING && kept->as.s == in->as.s))
            gv_strbuf_release((void *)(uintptr_t)in->as.s);
        return;
    }
    if (in->type == GV_POINTER && in->destroy && in->as.p &&
        !(kept->type == GV_POINTER && kept->as.p == in->as.p))
        in->destroy(in->as.p);
}
