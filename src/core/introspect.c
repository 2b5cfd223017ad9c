/*
 * introspect.c — names, counts and the Graphviz DOT dump of the live graph.
 */
#include "internal.h"

#include <inttypes.h>

void gv_signal_set_name(gv_signal *s, const char *name) { gv__set_name(&s->node, name); }
void gv_computed_set_name(gv_computed *c, const char *name) { gv__set_name(&c->node, name); }
const char *gv_signal_name(const gv_signal *s) { return gv__name(&s->node); }
const char *gv_computed_name(const gv_computed *c) { return gv__name(&c->node); }

static size_t gv_count_subs(const gv_node *n)
{
    size_t k = 0;
    for (const gv_link *l = n->subs; l; l = l->next_sub)
        k++;
    return k;
}

static size_t gv_count_deps(const gv_node *n)
{
    size_t k = 0;
    for (const gv_link *l = n->deps; l; l = l->next_dep)
        k++;
    return k;
}

size_t gv_signal_subscriber_count(const gv_signal *s) { return gv_count_subs(&s->node); }
size_t gv_computed_subscriber_count(const gv_computed *c) { return gv_count_subs(&c->node); }
size_t gv_computed_dependency_count(const gv_computed *c) { return gv_count_deps(&c->node); }
size_t gv_effect_dependency_count(const gv_effect *e) { return gv_count_deps(&e->node); }

/* Write `s` as the inside of a DOT double-quoted string. */
static int gv_dot_escape(FILE *out, const char *s, size_t max)
{
    size_t k = 0;
    for (; *s && k < max; s++, k++) {
        int r;
        if (*s == '"' || *s == '\\')
            r = fprintf(out, "\\%c", *s);
        else if (*s == '\n')
            r = fputs("\\n", out);
        else if ((unsigned char)*s < 0x20)
            r = fputc(' ', out);
        else
            r = fputc(*s, out);
        if (r < 0)
            return -1;
    }
    if (*s && fputs("...", out) < 0)
        return -1;
    return 0;
}

static int gv_dot_value(FILE *out, const gv_node *n)
{
    const gv_value *v = NULL;
    if (n->kind == GV_KIND_SIGNAL)
        v = &((const gv_signal *)n)->value;
    else if (n->kind == GV_KIND_COMPUTED) {
        const gv_computed *c = (const gv_computed *)n;
        if (n->flags & GV_F_DIRTY)
            return fputs("\\n(not computed)", out) < 0 ? -1 : 0;
        if ((n->flags & GV_F_FAILED) && c->error) {
            if (fprintf(out, "\\nerror %d: ", c->error->pub.code) < 0)
                return -1;
            return gv_dot_escape(out, c->error->pub.message, 60);
        }
        v = &c->value;
    } else
        return 0;
    switch (v->type) {
    case GV_NONE: return fputs("\\n(none)", out) < 0 ? -1 : 0;
    case GV_INT: return fprintf(out, "\\n%" PRId64, v->as.i) < 0 ? -1 : 0;
    case GV_DOUBLE: return fprintf(out, "\\n%g", v->as.d) < 0 ? -1 : 0;
    case GV_BOOL: return fputs(v->as.b ? "\\ntrue" : "\\nfalse", out) < 0 ? -1 : 0;
    case GV_STRING:
        if (fputs("\\n\\\"", out) < 0 || gv_dot_escape(out, v->as.s, 40) < 0)
            return -1;
        return fputs("\\\"", out) < 0 ? -1 : 0;
    case GV_POINTER: return fprintf(out, "\\n(pointer %p)", v->as.p) < 0 ? -1 : 0;
    }
    return 0;
}

int gv_dump_dot(FILE *out)
{
    static const char *const kind_name[] = {"?", "signal", "computed", "effect"};
    static const char *const kind_shape[] = {"box", "ellipse", "box", "octagon"};
    gv_runtime *rt = gv__rt();
    if (fputs("digraph galvani {\n  rankdir=LR;\n", out) < 0)
        return -1;
    for (const gv_node *n = rt->live; n; n = n->live_next) {
        const char *name = gv__name(n);
        if (fprintf(out, "  n%p [shape=%s, label=\"", (const void *)n, kind_shape[n->kind]) < 0)
            return -1;
        if (*name ? gv_dot_escape(out, name, 80) : (fputs(kind_name[n->kind], out) < 0 ? -1 : 0))
            return -1;
        if (gv_dot_value(out, n) < 0 || fputs("\"];\n", out) < 0)
            return -1;
    }
    for (const gv_node *n = rt->live; n; n = n->live_next)
        for (const gv_link *l = n->kind == GV_KIND_SIGNAL ? NULL : n->deps; l; l = l->next_dep)
            if (fprintf(out, "  n%p -> n%p;\n", (const void *)l->dep, (const void *)n) < 0)
                return -1;
    return fputs("}\n", out) < 0 ? -1 : 0;
}
