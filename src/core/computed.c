/*
 * computed.c — derived values: lazy, cached, validated by version, with
 * failures cached like values and propagated to readers like exceptions.
 *
 * A read first brings the node up to date (gv__computed_refresh): a DIRTY
 * node runs; a node that may be stale (PENDING when watched, an old global
 * version when not) asks gv__deps_changed, and runs only if a dependency's
 * version moved.  A run re-collects the dependency list in read order,
 * re-using links, and then drops whatever was not read again.
 *
 * Equality cut-off: a run whose result equals the previous value (or whose
 * failure equals the previous failure) keeps the old value and its version,
 * so nothing downstream sees a change.
 *
 * The pull walk (gv__deps_changed) lives here too, so that the recompute in
 * its inner loop is inlined.
 *
 * Depth: a compute function that reads a never-computed computed runs it on the
 * C stack.  Past max_compute_depth the innermost one is refused with GV_EDEPTH
 * and left DIRTY, and remembered in rt->deep_retry; the outermost read (depth
 * 0) then resumes from there, so even a first read of a very long chain
 * completes in slices of max_compute_depth without overflowing the stack.
 */
#include "internal.h"

#include <string.h>

static const gv_value gv_none_value = {GV_NONE, {0}, NULL};
static const gv_error gv_cycle_error = {GV_ECYCLE, "cycle detected: a computed depends on itself", ""};

gv_computed *gv_computed_new(gv_compute_fn fn, void *ud)
{
    if (!fn)
        return NULL;
    gv_runtime *rt = gv__rt();
    gv_computed *c = gv__pool_alloc(rt, &rt->computed_pool, sizeof *c);
    if (!c)
        return NULL;
    c->node.kind = GV_KIND_COMPUTED;
    c->node.flags = GV_F_DIRTY;
    c->node.refs = 1;
    c->fn = fn;
    c->ud = ud;
    gv__live_add(rt, &c->node);
    rt->stats.computeds++;
    return c;
}

void gv_computed_set_ud_destroy(gv_computed *c, gv_destroy_fn destroy)
{
    gv__extra(&c->node)->ud_destroy = destroy;
}

const gv_value *gv_computed_cached(const gv_computed *c)
{
    return &c->value;
}

void gv_computed_free(gv_computed *c)
{
    if (c)
        gv__node_unref(gv__rt(), &c->node);
}

void gv__computed_destroy(gv_runtime *rt, gv_computed *c)
{
    if (c->node.extra && c->node.extra->ud_destroy)
        c->node.extra->ud_destroy(c->ud);
    gv__value_clear(&c->value);
    gv__err_unref(c->error);
    gv__live_remove(rt, &c->node);
    rt->stats.computeds--;
    gv__pool_free(&rt->computed_pool, c);
}

static bool gv_err_same(const gv_err *a, const gv_err *b)
{
    if (a == b)
        return true;
    /* A depth refusal must always look new: its retry relies on the change. */
    return a->pub.code == b->pub.code && a->pub.code != GV_EDEPTH && strcmp(a->pub.message, b->pub.message) == 0 &&
           strcmp(a->pub.origin, b->pub.origin) == 0;
}

static void gv_settle_failure(gv_computed *c, gv_err *prev_err, gv_value *out)
{
    gv_node *n = &c->node;
    gv__value_discard(out, &c->value);
    if ((n->flags & GV_F_FAILED) && prev_err && gv_err_same(prev_err, c->error)) {
        gv__err_unref(c->error);
        c->error = prev_err;
        return;
    }
    gv__err_unref(prev_err);
    gv__value_clear(&c->value);
    n->flags |= GV_F_FAILED;
    n->version++;
}

static void gv_settle_value(gv_computed *c, gv_err *prev_err, gv_value *out)
{
    gv_node *n = &c->node;
    gv__err_unref(prev_err);
    if (!(n->flags & GV_F_FAILED) && gv__equal(n, &c->value, out)) {
        gv__value_discard(out, &c->value);
        return;
    }
    n->flags &= (uint16_t)~GV_F_FAILED;
    n->version++;
    if (!gv__store(&c->value, out)) {
        c->error = gv__err_new(GV_EFAIL, "out of memory storing a computed value", gv__name(n));
        n->flags |= GV_F_FAILED;
    }
}

__attribute__((noinline, cold)) static void gv_refuse_deep(gv_runtime *rt, gv_computed *c)
{
    gv_node *n = &c->node;
    char msg[160];
    snprintf(msg, sizeof msg, "computeds nested more than %u deep (see gv_set_max_compute_depth)",
             gv__max_compute_depth(rt));
    gv__err_unref(c->error);
    c->error = gv__err_new(GV_EDEPTH, msg, gv__name(n));
    gv__value_clear(&c->value);
    n->flags = (uint16_t)((n->flags | GV_F_FAILED | GV_F_DIRTY) & ~(GV_F_PENDING | GV_F_STALE));
    n->version++;
    c->seen_global = rt->global_version;
    if (!rt->deep_retry) {
        n->refs++;
        rt->deep_retry = c;
    }
}

/* The result of a run, when it is not the common case handled inline by
 * gv__computed_run (a scalar of the same type, no failure, default equality). */
__attribute__((noinline)) static void gv_settle(gv_computed *c, gv_err *prev_err, gv_value *out)
{
    if (c->error)
        gv_settle_failure(c, prev_err, out);
    else
        gv_settle_value(c, prev_err, out);
}

__attribute__((always_inline)) static inline void gv_run(gv_runtime *rt, gv_computed *c)
{
    gv_node *n = &c->node;
    if (__builtin_expect(rt->compute_depth >= gv__max_compute_depth(rt), 0)) {
        gv_refuse_deep(rt, c);
        return;
    }
    gv_node *saved_active = rt->active, *saved_current = rt->current;
    /* Running nested inside another run may overwrite last_link of nodes
     * that run already read: it must de-duplicate by scanning from now on. */
    if (saved_current)
        saved_current->flags |= GV_F_RESCAN;
    rt->active = rt->current = n;
    rt->compute_depth++;
    uint16_t f = n->flags;
    n->flags = (uint16_t)((f | GV_F_RUNNING) & ~(GV_F_VOLATILE | GV_F_RESCAN));
    n->run = ++rt->run_counter;
    n->deps_tail = NULL;
    gv_err *prev_err = c->error;
    if (prev_err)
        c->error = NULL;
    gv_value out;
    out.type = GV_NONE;
    out.as.i = 0;
    out.destroy = NULL;

    /* A failed computed holds GV_NONE (gv_settle_failure clears it), so its
     * value is the right `prev` in every case. */
    c->fn(&out, &c->value, c->ud);

    rt->stats.computes++;
    rt->compute_depth--;
    rt->active = saved_active;
    rt->current = saved_current;
    f = (uint16_t)(n->flags & ~(GV_F_RUNNING | GV_F_DIRTY | GV_F_PENDING | GV_F_STALE));
    gv__purge_stale(rt, n);
    gv_type t = out.type;
    bool clean = ((uintptr_t)c->error | (uintptr_t)prev_err | (uintptr_t)n->extra) == 0;
    if (__builtin_expect(clean && t == c->value.type && gv__is_scalar(t), 1)) {
        bool same = t == GV_INT ? out.as.i == c->value.as.i
                  : t == GV_DOUBLE ? gv_value_equal(&out, &c->value)
                  : t == GV_BOOL ? out.as.b == c->value.as.b
                  : true;
        if (!same) {
            c->value.as = out.as;
            n->version++;
        }
        n->flags = f;
    } else {
        n->flags = f;
        gv_settle(c, prev_err, &out);
    }
    c->seen_global = rt->global_version;
    /* If the function dropped the last reference, the node is in the
     * graveyard: a run always happens under a hold, so it is freed only once
     * the outermost library call returns. */
}

void gv__computed_run(gv_runtime *rt, gv_computed *c)
{
    gv_run(rt, c);
}

/* ---- pull ------------------------------------------------------------- */

/* Did any dependency of `root` really change since root last ran?  Depth-first
 * over the dependency lists, bringing every computed it meets up to date and
 * recomputing those whose own dependencies changed; it stops at the first
 * change (the reader re-reads everything anyway).  A frame of the explicit
 * stack is (node, link): resume scanning `node` after `link`; a frame is only
 * pushed when the way back is ambiguous, because a computed with a single
 * subscriber link finds its reader through that link (as alien-signals does). */

/* The effect being validated was disposed by a compute function the walk
 * ran: stop, and run nothing more for it (what is left may be kept alive only
 * by the disposed effect's links).  Clear CHECKING from `node` up to the root;
 * the nodes keep PENDING or their old seen_global, so the next reader
 * validates them. */
__attribute__((noinline, cold)) static bool gv_abandon_walk(gv_runtime *rt, gv_node *node, gv_node *root,
                                                           size_t base)
{
    for (;;) {
        node->flags &= (uint16_t)~GV_F_CHECKING;
        if (node == root)
            break;
        size_t top = rt->stack_top;
        if (top > base && ((gv_link *)rt->stack[top - 1])->dep == node) {
            node = rt->stack[top - 2];
            rt->stack_top = top - 2;
        } else {
            node = node->subs->sub;
        }
    }
    rt->stack_top = base;
    return false;
}

bool gv__deps_changed(gv_runtime *rt, gv_node *root)
{
    size_t base = rt->stack_top;
    gv_node *node = root;
    gv_link *link = root->deps;
    root->flags |= GV_F_CHECKING;
    for (;;) {
        bool changed = false;
        while (link) {
            gv_node *dep = link->dep;
            if (dep->kind == GV_KIND_COMPUTED) {
                uint16_t f = dep->flags;
                if (f & (GV_F_RUNNING | GV_F_CHECKING)) {
                    /* A cycle: let the reader re-run and meet it as an error. */
                    changed = true;
                    break;
                }
                if (gv__must_run(rt, dep)) {
                    gv_run(rt, (gv_computed *)dep);
                    if (__builtin_expect(root->flags & GV_F_DISPOSED, 0))
                        return gv_abandon_walk(rt, node, root, base);
                } else if (gv__needs_check(rt, dep)) {
                    /* When `link` is dep's only subscriber link, the way back
                     * up is dep->subs itself; otherwise remember it. */
                    if (dep->subs != link || link->next_sub) {
                        if (rt->stack_top + 2 > rt->stack_cap)
                            gv__stack_reserve(rt, 2);
                        rt->stack[rt->stack_top++] = node;
                        rt->stack[rt->stack_top++] = link;
                    }
                    dep->flags |= GV_F_CHECKING;
                    node = dep;
                    link = dep->deps;
                    continue;
                }
            }
            if (dep->version != link->version) {
                changed = true;
                break;
            }
            link = link->next_dep;
        }
        /* `node`'s dependencies are scanned: up to date, changed or not. */
        for (;;) {
            node->flags &= (uint16_t)~GV_F_CHECKING;
            if (node == root) {
                rt->stack_top = base;
                return changed;
            }
            gv_computed *c = (gv_computed *)node;
            if (changed) {
                gv_run(rt, c);
                if (__builtin_expect(root->flags & GV_F_DISPOSED, 0))
                    return gv_abandon_walk(rt, node, root, base);
            } else {
                node->flags &= (uint16_t)~(GV_F_PENDING | GV_F_STALE);
                c->seen_global = rt->global_version;
            }
            size_t top = rt->stack_top;
            if (top > base && ((gv_link *)rt->stack[top - 1])->dep == node) {
                link = rt->stack[top - 1];
                node = rt->stack[top - 2];
                rt->stack_top = top - 2;
            } else { /* descended through the sole subscriber link */
                link = node->subs;
                node = link->sub;
            }
            if (c->node.version != link->version) {
                changed = true;
                continue; /* the parent changed too: finish it */
            }
            link = link->next_dep;
            break; /* resume scanning the parent */
        }
    }
}

void gv__computed_refresh(gv_runtime *rt, gv_computed *c)
{
    gv_node *n = &c->node;
    if (gv__must_run(rt, n) || gv__deps_changed(rt, n)) {
        gv__computed_run(rt, c);
    } else {
        n->flags &= (uint16_t)~(GV_F_PENDING | GV_F_STALE);
        c->seen_global = rt->global_version;
    }
}

/* Resume depth-refused evaluations from their deepest point (see top). */
static void gv_retry_deep(gv_runtime *rt, gv_computed *top)
{
    while (rt->deep_retry) {
        gv_computed *d = rt->deep_retry;
        rt->deep_retry = NULL;
        /* Its readers cached the refusal: make them look again, unwatched
         * ones through the global version, watched ones through PENDING. */
        rt->global_version++;
        gv__computed_run(rt, d);
        if (d->node.subs)
            gv__propagate(rt, d->node.subs);
        gv__node_unref(rt, &d->node);
    }
    if (gv__needs_refresh(rt, &top->node))
        gv__computed_refresh(rt, top);
    if (rt->batch_depth == 0)
        gv__batch_done(rt);
}

enum gv_read_mode { GV_READ_GET, GV_READ_CATCH, GV_READ_PEEK };

/* A read of a computed that is running: a cycle.  The read is refused and
 * not linked (a link would make the graph cyclic), so the reader can no longer
 * rely on its dependency list: it becomes volatile. */
__attribute__((noinline, cold)) static void gv_refuse_cycle(gv_runtime *rt, gv_node *n, enum gv_read_mode mode)
{
    if (mode == GV_READ_GET && rt->current) {
        const char *name = gv__name(n);
        char msg[200];
        if (*name)
            snprintf(msg, sizeof msg, "cycle detected: computed '%s' depends on itself", name);
        else
            snprintf(msg, sizeof msg, "%s", gv_cycle_error.message);
        gv__fail_current(rt, gv__err_new(GV_ECYCLE, msg, name));
    }
    if (mode != GV_READ_PEEK && rt->current && rt->current->kind == GV_KIND_COMPUTED)
        rt->current->flags |= GV_F_VOLATILE;
}

/* The read made a compute function that freed `c`'s last handle, and nobody
 * else reads it: it goes when the hold is released, so the reader gets
 * nothing rather than a pointer into it. */
static inline bool gv_gone(const gv_computed *c)
{
    return (c->node.flags & GV_F_DEAD) && c->node.refs == 0;
}

enum gv_read_result { GV_READ_REFUSED, GV_READ_OK, GV_READ_GONE };

/* Bring `c` up to date for a read: GV_READ_REFUSED if it is computing (a
 * cycle), GV_READ_GONE if the compute functions that ran freed it (then `c`
 * must not be touched any more).  Only a refresh runs user code, so only a
 * refresh holds the runtime. */
static enum gv_read_result gv_computed_read(gv_runtime *rt, gv_computed *c, enum gv_read_mode mode)
{
    gv_node *n = &c->node;
    if (__builtin_expect(n->flags & (GV_F_RUNNING | GV_F_CHECKING), 0)) {
        gv_refuse_cycle(rt, n, mode);
        return GV_READ_REFUSED;
    }
    if (!gv__needs_refresh(rt, n) && __builtin_expect(rt->deep_retry == NULL, 1)) {
        if (mode != GV_READ_PEEK && rt->active)
            gv__track(rt, n);
        return GV_READ_OK;
    }
    gv__hold(rt);
    if (gv__needs_refresh(rt, n))
        gv__computed_refresh(rt, c);
    if (__builtin_expect(rt->deep_retry != NULL, 0) && rt->compute_depth == 0) {
        n->refs++;
        gv_retry_deep(rt, c);
        n->refs--; /* the caller holds a handle: this is never the last */
    }
    if (mode != GV_READ_PEEK && rt->active)
        gv__track(rt, n);
    enum gv_read_result r = gv_gone(c) ? GV_READ_GONE : GV_READ_OK;
    gv__unhold(rt);
    return r;
}

__attribute__((noinline)) static const gv_value *gv_computed_value_slow(gv_runtime *rt, gv_computed *c)
{
    if (gv_computed_read(rt, c, GV_READ_GET) != GV_READ_OK)
        return &gv_none_value;
    if (c->node.flags & GV_F_FAILED) {
        if (rt->active)
            gv__fail_current(rt, gv__err_ref(c->error));
        return &gv_none_value;
    }
    return &c->value;
}

/* The read every compute function does.  Fast path: a watched computed that
 * no write has touched since it last ran is up to date: only link it.  (A
 * pending depth retry only arises inside a refresh, which is the slow path.) */
static inline const gv_value *gv_computed_value(gv_runtime *rt, gv_computed *c)
{
    gv_node *n = &c->node;
    const uint16_t slow =
        GV_F_RUNNING | GV_F_CHECKING | GV_F_DIRTY | GV_F_VOLATILE | GV_F_PENDING | GV_F_STALE | GV_F_FAILED;
    if (__builtin_expect((n->flags & (slow | GV_F_WATCHING)) != GV_F_WATCHING, 0))
        return gv_computed_value_slow(rt, c);
    if (rt->active)
        gv__track(rt, n);
    return &c->value;
}

const gv_value *gv_computed_get(gv_computed *c)
{
    return gv_computed_value(gv__rt(), c);
}

const gv_value *gv_computed_peek(gv_computed *c)
{
    gv_runtime *rt = gv__rt();
    if (gv_computed_read(rt, c, GV_READ_PEEK) != GV_READ_OK || (c->node.flags & GV_F_FAILED))
        return &gv_none_value;
    return &c->value;
}

const gv_error *gv_computed_error(gv_computed *c)
{
    gv_runtime *rt = gv__rt();
    switch (gv_computed_read(rt, c, GV_READ_CATCH)) {
    case GV_READ_REFUSED: return &gv_cycle_error;
    case GV_READ_GONE: return NULL;
    default: return (c->node.flags & GV_F_FAILED) ? &c->error->pub : NULL;
    }
}

int64_t gv_computed_get_int(gv_computed *c)
{
    const gv_value *v = gv_computed_value(gv__rt(), c);
    return v->type == GV_INT ? v->as.i : gv_value_to_int(v);
}

double gv_computed_get_double(gv_computed *c)
{
    const gv_value *v = gv_computed_value(gv__rt(), c);
    return v->type == GV_DOUBLE ? v->as.d : gv_value_to_double(v);
}

bool gv_computed_get_bool(gv_computed *c) { return gv_value_to_bool(gv_computed_value(gv__rt(), c)); }
const char *gv_computed_get_string(gv_computed *c) { return gv_value_to_string(gv_computed_value(gv__rt(), c)); }
void *gv_computed_get_pointer(gv_computed *c) { return gv_value_to_pointer(gv_computed_value(gv__rt(), c)); }

void gv_computed_set_equal(gv_computed *c, gv_equal_fn eq, void *ud)
{
    gv_extra *x = gv__extra(&c->node);
    x->equal = eq;
    x->equal_ud = ud;
}
