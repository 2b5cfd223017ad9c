/* bl_json.c — see bl_json.h.  A recursive-descent JSON checker that keeps
 * track of the keys at depth 1 and 2, which is all the paths it extracts. */
#include "bl_json.h"

#include <string.h>

#define BL_JSON_MAX_DEPTH 64

typedef struct {
    const char *p, *end;
    bl_frame *f;
    bool in_item; /* inside an object of the top-level "jobs" array */
    bl_item item;
} bl_js;

typedef struct {
    const char *s;
    size_t n;
} bl_str;

static bool bl_str_is(bl_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.s, lit, n) == 0;
}

static void bl_ws(bl_js *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static bool bl_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string token; *out is its raw (still escaped) content.  The fields we
 * extract never contain escapes, so the raw bytes are what we compare. */
static bool bl_string(bl_js *j, bl_str *out)
{
    if (j->p >= j->end || *j->p != '"')
        return false;
    const char *s = ++j->p;
    while (j->p < j->end) {
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            out->s = s;
            out->n = (size_t)(j->p - s);
            j->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (++j->p >= j->end)
                return false;
            char e = *j->p;
            if (e == 'u') {
                if (j->end - j->p < 5 || !bl_hex(j->p[1]) || !bl_hex(j->p[2]) || !bl_hex(j->p[3]) || !bl_hex(j->p[4]))
                    return false;
                j->p += 4;
            } else if (!strchr("\"\\/bfnrt", e)) {
                return false;
            }
        }
        j->p++;
    }
    return false;
}

/* A number by JSON's grammar; its value as a double (exact for integers up
 * to 2^53, which covers unix milliseconds). */
static bool bl_number(bl_js *j, double *out)
{
    const char *p = j->p;
    bool neg = false;
    if (p < j->end && *p == '-') {
        neg = true;
        p++;
    }
    if (p >= j->end || *p < '0' || *p > '9')
        return false;
    double v = 0;
    if (*p == '0')
        p++;
    else
        while (p < j->end && *p >= '0' && *p <= '9')
            v = v * 10 + (*p++ - '0');
    if (p < j->end && *p == '.') {
        p++;
        if (p >= j->end || *p < '0' || *p > '9')
            return false;
        double scale = 0.1;
        while (p < j->end && *p >= '0' && *p <= '9') {
            v += (*p++ - '0') * scale;
            scale /= 10;
        }
    }
    if (p < j->end && (*p == 'e' || *p == 'E')) {
        p++;
        bool eneg = false;
        if (p < j->end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= j->end || *p < '0' || *p > '9')
            return false;
        int e = 0;
        while (p < j->end && *p >= '0' && *p <= '9') {
            if (e < 400)
                e = e * 10 + (*p - '0');
            p++;
        }
        for (; e > 0; e--)
            v = eneg ? v / 10 : v * 10;
    }
    j->p = p;
    *out = neg ? -v : v;
    return true;
}

static bool bl_literal(bl_js *j, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
        return false;
    j->p += n;
    return true;
}

static void bl_copy(char *dst, size_t cap, bl_str s)
{
    size_t n = s.n < cap - 1 ? s.n : cap - 1;
    memcpy(dst, s.s, n);
    dst[n] = '\0';
}

/* "t=<digits>" at the start of a status text: into *t_ms. */
static void bl_stamp(int64_t *t_ms, bl_str s)
{
    if (s.n < 3 || s.s[0] != 't' || s.s[1] != '=')
        return;
    int64_t v = 0;
    size_t i = 2;
    for (; i < s.n && s.s[i] >= '0' && s.s[i] <= '9'; i++)
        v = v * 10 + (s.s[i] - '0');
    if (i > 2)
        *t_ms = v;
}

static void bl_stamp_from_message(bl_frame *f, bl_str s)
{
    bl_stamp(&f->t_ms, s);
}

/* What a scalar at this position means.  `top` is the key at depth 1, `sub`
 * the key at depth 2 when inside the top-level "job" object. */
static void bl_scalar_string(bl_frame *f, int depth, bl_str top, bl_str sub, bl_str v)
{
    if (depth == 1) {
        if (bl_str_is(top, "type"))
            bl_copy(f->type, sizeof f->type, v);
        else if (bl_str_is(top, "status"))
            bl_copy(f->status, sizeof f->status, v);
        else if (bl_str_is(top, "message"))
            bl_stamp_from_message(f, v);
    } else if (depth == 2 && bl_str_is(top, "job")) {
        if (bl_str_is(sub, "status"))
            bl_copy(f->status, sizeof f->status, v);
        else if (bl_str_is(sub, "message"))
            bl_stamp_from_message(f, v);
    }
}

static void bl_scalar_number(bl_frame *f, int depth, bl_str top, bl_str sub, double v)
{
    const bool job = depth == 2 && bl_str_is(top, "job");
    bl_str key = depth == 1 ? top : sub;
    if (depth != 1 && !job)
        return;
    if (bl_str_is(key, "id"))
        f->id = (int64_t)v;
    else if (bl_str_is(key, "progress"))
        f->progress = v;
    else if (depth == 1 && bl_str_is(key, "t"))
        f->t_ms = (int64_t)v;
}

static bool bl_value(bl_js *j, int depth, bl_str top, bl_str sub);

static bool bl_item_end(bl_js *j, bool item)
{
    if (item) {
        j->in_item = false;
        j->f->on_item(j->f->ud, &j->item);
    }
    return true;
}

/* A member of a "jobs" element: the fields an entry has, and the rest
 * checked like any value (nothing under it is extracted: depth 3+). */
static bool bl_item_value(bl_js *j, bl_str key)
{
    bl_ws(j);
    if (j->p < j->end && *j->p == '"') {
        bl_str s;
        if (!bl_string(j, &s))
            return false;
        if (bl_str_is(key, "status"))
            bl_copy(j->item.status, sizeof j->item.status, s);
        else if (bl_str_is(key, "message"))
            bl_stamp(&j->item.t_ms, s);
        return true;
    }
    if (j->p < j->end && (*j->p == '-' || (*j->p >= '0' && *j->p <= '9'))) {
        double v;
        if (!bl_number(j, &v))
            return false;
        if (bl_str_is(key, "id"))
            j->item.id = (int64_t)v;
        return true;
    }
    bl_str none = {"", 0};
    return bl_value(j, 3, none, none);
}

/* depth: of the value being parsed (the whole frame is depth 0).  key: the
 * key this value sits under in its parent object (empty in an array). */
static bool bl_value(bl_js *j, int depth, bl_str top, bl_str sub)
{
    if (depth > BL_JSON_MAX_DEPTH)
        return false;
    bl_ws(j);
    if (j->p >= j->end)
        return false;
    char c = *j->p;
    if (c == '{') {
        /* an element of the top-level "jobs" array, with someone to tell */
        bool item = depth == 2 && sub.n == 0 && bl_str_is(top, "jobs") && j->f->on_item && !j->in_item;
        if (item) {
            j->in_item = true;
            j->item = (bl_item){.id = -1, .status = "", .t_ms = -1};
        }
        j->p++;
        bl_ws(j);
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            return bl_item_end(j, item);
        }
        for (;;) {
            bl_str k;
            bl_ws(j);
            if (!bl_string(j, &k))
                return false;
            bl_ws(j);
            if (j->p >= j->end || *j->p != ':')
                return false;
            j->p++;
            /* The keys of the object at depth d name values at depth d+1. */
            bl_str ntop = depth == 0 ? k : top;
            bl_str nsub = depth == 1 ? k : sub;
            if (item && !bl_item_value(j, k))
                return false;
            if (!item && !bl_value(j, depth + 1, ntop, nsub))
                return false;
            bl_ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == '}') {
                j->p++;
                return bl_item_end(j, item);
            }
            return false;
        }
    }
    if (c == '[') {
        j->p++;
        bl_str none = {"", 0};
        long count = 0;
        bl_ws(j);
        if (j->p < j->end && *j->p == ']') {
            j->p++;
        } else {
            for (;;) {
                /* Array elements have no key: nothing below them is extracted. */
                if (!bl_value(j, depth + 1, depth == 0 ? none : top, none))
                    return false;
                count++;
                bl_ws(j);
                if (j->p < j->end && *j->p == ',') {
                    j->p++;
                    continue;
                }
                if (j->p < j->end && *j->p == ']') {
                    j->p++;
                    break;
                }
                return false;
            }
        }
        if (depth == 1 && bl_str_is(top, "jobs"))
            j->f->items = count;
        return true;
    }
    if (c == '"') {
        bl_str s;
        if (!bl_string(j, &s))
            return false;
        bl_scalar_string(j->f, depth, top, sub, s);
        return true;
    }
    if (c == 't')
        return bl_literal(j, "true");
    if (c == 'f')
        return bl_literal(j, "false");
    if (c == 'n')
        return bl_literal(j, "null");
    double v;
    if (!bl_number(j, &v))
        return false;
    bl_scalar_number(j->f, depth, top, sub, v);
    return true;
}

bool bl_json_scan(const char *buf, size_t len, bl_frame *f)
{
    f->type[0] = '\0';
    f->status[0] = '\0';
    f->id = -1;
    f->progress = -1;
    f->t_ms = -1;
    f->items = -1;
    bl_js j = {buf, buf + len, f, false, {0}};
    bl_str none = {"", 0};
    if (!bl_value(&j, 0, none, none))
        return false;
    bl_ws(&j);
    return j.p == j.end;
}
