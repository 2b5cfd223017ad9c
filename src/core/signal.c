/*
 * signal.c — writable values.
 *
 * A write that changes the value gives the signal a new version (from the
 * thread's global counter), marks everything downstream PENDING
 * (gv__propagate) and, unless a batch or a flush is already under way, runs
 * the queued effects before returning — so synchronous code sees its effects
 * done.  Inside a batch or a flush the journal (internal.h) makes a value
 * written back to its start value a no-op for every reader that did not see
 * the values in between.
 */
#include "internal.h"

#include <string.h>

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

/* ---- the batch journal (internal.h, "Batches and the journal") -------- */

/* Record a string or pointer start value in the journal.  A pointer is taken
 * over rather than copied: until the batch ends the start value stays alive,
 * so a new object allocated at the same address cannot pass for it. */
__attribute__((noinline)) static void gv_journal_record_owned(gv_runtime *rt, gv_signal *s)
{
    if (rt->njournal == rt->journal_cap)
        rt->journal = gv__grow(rt, rt->journal, &rt->journal_cap, sizeof *rt->journal);
    gv_journal_entry *e = &rt->journal[rt->njournal];
    if (s->value.type == GV_POINTER) {
        e->value = s->value;
        s->value.destroy = NULL;
    } else {
        e->value = gv_none();
        if (!gv__value_store(&e->value, &s->value))
            gv__oom();
    }
    s->node.start_type = GV_START_IN_JOURNAL;
    s->node.start_bits = rt->njournal++;
}

/* The very same pointer (not merely equal by the node's equality). */
static inline bool gv_same_pointer(const gv_value *a, const gv_value *b)
{
    return a->type == GV_POINTER && b->type == GV_POINTER && a->as.p == b->as.p;
}

/* Before a write: the signal holds its very start pointer again (written back
 * earlier in this batch); the journal owns it while something else is
 * stored. */
__attribute__((noinline)) static void gv_journal_retake(gv_runtime *rt, gv_signal *s)
{
    gv_journal_entry *e = &rt->journal[s->node.start_bits];
    if (gv_same_pointer(&s->value, &e->value) && s->value.destroy) {
        e->value.destroy = s->value.destroy;
        s->value.destroy = NULL;
    }
}

__attribute__((noinline)) static bool gv_journal_equal_owned(gv_runtime *rt, gv_signal *s)
{
    gv_journal_entry *e = &rt->journal[s->node.start_bits];
    if (!gv__equal(&s->node, &e->value, &s->value))
        return false;
    if (gv_same_pointer(&e->value, &s->value))
        e->value.destroy = NULL; /* the very start pointer: the signal owns it */
    return true;
}

/* Store a write made inside a batch or a flush, and give the signal back its
 * version from the batch's start if the value is equal to that start value.
 * Out of line, so that the unbatched write keeps no registers for it. */
__attribute__((noinline)) static void gv_signal_store_journaled(gv_runtime *rt, gv_signal *s, const gv_value *v)
{
    gv_node *n = &s->node;
    uint64_t epoch = rt->journal_epoch + 1;
    if (n->start_epoch != epoch) { /* the batch's first write: record */
        if (__builtin_expect(gv__is_scalar(s->value.type), 1)) {
            n->start_type = (uint8_t)s->value.type;
            memcpy(&n->start_bits, &s->value.as, sizeof n->start_bits);
        } else {
            gv_journal_record_owned(rt, s);
        }
        n->start_epoch = epoch;
        n->start_version = n->version;
        rt->journal_dirty = 1;
    } else if (__builtin_expect(n->start_type == GV_START_IN_JOURNAL, 0)) {
        gv_journal_retake(rt, s);
    }
    (void)gv__store(&s->value, v);
    bool back;
    /* Ints first, without building a gv_value for gv__equal: measured 12
     * instructions per batched write (callgrind, avoidablePropagation). */
    if (n->start_type == GV_INT && s->value.type == GV_INT && !n->extra) {
        int64_t start;
        memcpy(&start, &n->start_bits, sizeof start);
        back = start == s->value.as.i;
    } else if (__builtin_expect(n->start_type != GV_START_IN_JOURNAL, 1)) {
        gv_value start = {(gv_type)n->start_type, {0}, NULL};
        memcpy(&start.as, &n->start_bits, sizeof start.as);
        back = gv__equal(n, &start, &s->value);
    } else {
        back = gv_journal_equal_owned(rt, s);
    }
    n->version = back ? n->start_version : rt->global_version;
}

void gv__journal_release(gv_runtime *rt)
{
    /* From the end, moving each value out before releasing it: a destroy
     * function may write signals, even open a batch of its own. */
    gv__hold(rt);
    while (rt->njournal) {
        gv_journal_entry *e = &rt->journal[--rt->njournal];
        gv_value old = e->value;
        e->value = gv_none();
        gv__value_clear(&old);
    }
    gv__unhold(rt);
}

__attribute__((noinline, cold)) static bool gv_signal_refuse_write(gv_runtime *rt, gv_signal *s, gv_value *v)
{
    /* Writes from a compute function would make reads order-dependent. */
    gv__value_discard(v, &s->value);
    const char *name = gv__name(&s->node);
    char msg[200];
    snprintf(msg, sizeof msg, "signal%s%s%s written inside a compute function", *name ? " '" : "", name,
             *name ? "'" : "");
    gv__fail_current(rt, gv__err_new(GV_ESIDEEFFECT, msg, gv__name(rt->current)));
    return false;
}

/* The write itself, once it is known to change the value. */
__attribute__((always_inline)) static inline void gv_signal_write(gv_runtime *rt, gv_signal *s, gv_value *v)
{
    rt->global_version++;
    /* On OOM the signal holds GV_NONE: still a change, so readers see it. */
    if (__builtin_expect((rt->batch_depth | (unsigned)rt->flushing) == 0, 1)) {
        (void)gv__store(&s->value, v);
        s->node.version = rt->global_version;
    } else {
        gv_signal_store_journaled(rt, s, v);
    }
    if (s->node.subs) {
        gv__propagate(rt, s->node.subs);
        if (rt->batch_depth == 0)
            gv__flush(rt);
    }
}

/* Strings, pointers, custom equality: an equality or a destroy function runs
 * user code, which may dispose anything, `s` included. */
__attribute__((noinline)) static bool gv_signal_set_slow(gv_runtime *rt, gv_signal *s, gv_value *v)
{
    gv__hold(rt);
    bool changed = !gv__equal(&s->node, &s->value, v);
    if (changed)
        gv_signal_write(rt, s, v);
    else
        gv__value_discard(v, &s->value);
    gv__unhold(rt);
    return changed;
}

bool gv_signal_set(gv_signal *s, gv_value v)
{
    gv_runtime *rt = gv__rt();
    if (__builtin_expect(rt->current && rt->current->kind == GV_KIND_COMPUTED, 0))
        return gv_signal_refuse_write(rt, s, &v);
    /* An int or a bool replacing one, default equality: no user code runs
     * before the flush, which holds the runtime itself. */
    if (__builtin_expect(s->node.extra || v.type != s->value.type || (v.type != GV_INT && v.type != GV_BOOL), 0))
        return gv_signal_set_slow(rt, s, &v);
    if (v.type == GV_INT ? v.as.i == s->value.as.i : v.as.b == s->value.as.b)
        return false;
    gv_signal_write(rt, s, &v);
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
