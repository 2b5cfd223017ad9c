/*
 * signal.c — writable values.
 *
 * A write that changes the value bumps the signal's version and the thread's
 * global version, marks everything downstream PENDING (gv__propagate) and,
 * unless a batch or a flush is already under way, runs the queued effects
 * before returning — so synchronous code sees its effects done.
 */
#include "internal.h"

gv_signal *gv_signal_new(gv_value initial)
{
    static const gv_value none = {GV_NONE, {0}, NULL};
    gv_runtime *rt = gv__rt();
    gv_signal *s = gv__pool_alloc(rt, &rt->signal_pool, sizeof *s);
    if (!s) {
        gv__value_discard(&initial, &none);
        return NULL;
    }
    if (!gv__value_store(&s->value, &initial)) {
        gv__pool_free(&rt->signal_pool, s);
        return NULL;
    }
    s->node.kind = GV_KIND_SIGNAL;
    s->node.refs = 1;
    gv__live_add(rt, &s->node);
    rt->stats.signals++;
    return s;
}

void gv_signal_free(gv_signal *s)
{
    if (s)
        gv__node_unref(gv__rt(), &s->node);
}

void gv__signal_destroy(gv_runtime *rt, gv_signal *s)
{
    gv__value_clear(&s->value);
    gv__live_remove(rt, &s->node);
    rt->stats.signals--;
    gv__pool_free(&rt->signal_pool, s);
}

/* Every tracked read: link the running reader (if any) and hand out the
 * value.  Inlined into each getter: reads are the hottest path there is. */
__attribute__((always_inline)) static inline const gv_value *gv_signal_read(gv_signal *s)
{
    gv_runtime *rt = gv__rt();
    if (rt->active)
        gv__track(rt, &s->node);
    return &s->value;
}

const gv_value *gv_signal_get(gv_signal *s)
{
    return gv_signal_read(s);
}

const gv_value *gv_signal_peek(gv_signal *s)
{
    return &s->value;
}

int64_t gv_signal_get_int(gv_signal *s)
{
    const gv_value *v = gv_signal_read(s);
    return v->type == GV_INT ? v->as.i : gv_value_to_int(v);
}

double gv_signal_get_double(gv_signal *s)
{
    const gv_value *v = gv_signal_read(s);
    return v->type == GV_DOUBLE ? v->as.d : gv_value_to_double(v);
}

bool gv_signal_get_bool(gv_signal *s) { return gv_value_to_bool(gv_signal_read(s)); }
const char *gv_signal_get_string(gv_signal *s) { return gv_value_to_string(gv_signal_get(s)); }
void *gv_signal_get_pointer(gv_signal *s) { return gv_value_to_pointer(gv_signal_get(s)); }

bool gv_signal_set(gv_signal *s, gv_value v)
{
    gv_runtime *rt = gv__rt();
    if (rt->current && rt->current->kind == GV_KIND_COMPUTED) {
        /* Writes from a compute function would make reads order-dependent. */
        gv__value_discard(&v, &s->value);
        const char *name = gv__name(&s->node);
        char msg[200];
        snprintf(msg, sizeof msg, "signal%s%s%s written inside a compute function", *name ? " '" : "", name,
                 *name ? "'" : "");
        gv__fail_current(rt, gv__err_new(GV_ESIDEEFFECT, msg, gv__name(rt->current)));
        return false;
    }
    if (gv__equal(&s->node, &s->value, &v)) {
        gv__value_discard(&v, &s->value);
        return false;
    }
    /* On OOM the signal holds GV_NONE: still a change, so readers see it. */
    (void)gv__store(&s->value, &v);
    s->node.version++;
    rt->global_version++;
    if (s->node.subs) {
        gv__propagate(rt, s->node.subs);
        if (rt->batch_depth == 0)
            gv__flush(rt);
    }
    return true;
}

bool gv_signal_set_int(gv_signal *s, int64_t i) { return gv_signal_set(s, gv_int(i)); }
bool gv_signal_set_double(gv_signal *s, double d) { return gv_signal_set(s, gv_double(d)); }
bool gv_signal_set_bool(gv_signal *s, bool b) { return gv_signal_set(s, gv_bool(b)); }
bool gv_signal_set_string(gv_signal *s, const char *str) { return gv_signal_set(s, gv_str(str)); }

bool gv_signal_update(gv_signal *s, gv_update_fn fn, void *ud)
{
    return gv_signal_set(s, fn(&s->value, ud));
}

void gv_signal_set_equal(gv_signal *s, gv_equal_fn eq, void *ud)
{
    gv_extra *x = gv__extra(&s->node);
    x->equal = eq;
    x->equal_ud = ud;
}
