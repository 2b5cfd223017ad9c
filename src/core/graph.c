/*
 * graph.c — links, subscription cascades, lifetime, push and pull.
 *
 * Three walks live here, all iterative (an explicit stack in the runtime);
 * the fourth, the pull side (gv__deps_changed), is in computed.c, next to the
 * recompute it calls in its inner loop.
 *
 *   propagate       on a write: mark everything downstream PENDING and queue
 *                   the effects reached.  A node already PENDING is skipped,
 *                   together with what is below it: invariant, a PENDING
 *                   computed only has PENDING (or queued) nodes downstream.
 *   watch/unwatch   a computed gaining its first / losing its last subscriber
 *                   moves its links into / out of its dependencies' subscriber
 *                   lists, and so on upstream.
 *   release         a node whose last reference went away goes to the
 *                   graveyard; gv__drain destroys it and drops the
 *                   references it held in turn (internal.h, "Deferred
 *                   destruction").
 *
 * The stack may be reallocated by any user callback (a compute function that
 * reads something nested), so walks keep indices, never pointers into it.
 */
#include "internal.h"

/* ---- subscriber lists ------------------------------------------------- */

static void gv_subs_append(gv_node *dep, gv_link *l)
{
    l->next_sub = NULL;
    l->prev_sub = dep->subs_tail;
    if (dep->subs_tail)
        dep->subs_tail->next_sub = l;
    else
        dep->subs = l;
    dep->subs_tail = l;
}

static void gv_subs_remove(gv_node *dep, gv_link *l)
{
    if (l->prev_sub)
        l->prev_sub->next_sub = l->next_sub;
    else
        dep->subs = l->next_sub;
    if (l->next_sub)
        l->next_sub->prev_sub = l->prev_sub;
    else
        dep->subs_tail = l->prev_sub;
    l->prev_sub = l->next_sub = NULL;
}

/* `c` (a computed) just got its first subscriber: subscribe its links, and
 * upstream the computeds that become watched by that.  A computed that was not
 * validated since the last write is marked STALE as it joins, so that a read
 * validates it instead of trusting it (see GV_F_STALE for why not PENDING). */
static void gv_watch(gv_runtime *rt, gv_node *c)
{
    size_t base = rt->stack_top;
    gv__push(rt, c);
    while (rt->stack_top > base) {
        gv_node *n = rt->stack[--rt->stack_top];
        n->flags |= GV_F_WATCHING;
        if (((gv_computed *)n)->seen_global != rt->global_version)
            n->flags |= GV_F_STALE;
        for (gv_link *l = n->deps; l; l = l->next_dep) {
            gv_node *d = l->dep;
            bool first = d->subs == NULL;
            gv_subs_append(d, l);
            if (first && d->kind == GV_KIND_COMPUTED)
                gv__push(rt, d);
        }
    }
}

/* `c` lost its last subscriber: take its links out of the subscriber lists, and
 * upstream likewise.  It keeps its dependency list and references. */
static void gv_unwatch(gv_runtime *rt, gv_node *c)
{
    size_t base = rt->stack_top;
    gv__push(rt, c);
    while (rt->stack_top > base) {
        gv_node *n = rt->stack[--rt->stack_top];
        n->flags &= (uint16_t)~(GV_F_WATCHING | GV_F_STALE);
        for (gv_link *l = n->deps; l; l = l->next_dep) {
            gv_node *d = l->dep;
            gv_subs_remove(d, l);
            if (!d->subs && d->kind == GV_KIND_COMPUTED && (d->flags & GV_F_WATCHING))
                gv__push(rt, d);
        }
    }
}

/* ---- tracking --------------------------------------------------------- */

void gv__track_slow(gv_runtime *rt, gv_node *dep, gv_link *tail, gv_link *next)
{
    gv_node *sub = rt->active;
    gv_link *last = dep->last_link;
    if (last && last->sub == sub && last->run == sub->run)
        return; /* already read earlier in this run */
    if (sub->flags & GV_F_RESCAN) {
        /* A nested run clobbered last_link: look among this run's links. */
        for (gv_link *l = sub->deps; l; l = l->next_dep) {
            if (l->dep == dep) {
                dep->last_link = l;
                return;
            }
            if (l == tail)
                break;
        }
    }

    gv_link *l = gv__link_alloc(rt);
    l->dep = dep;
    l->sub = sub;
    l->version = dep->version;
    l->run = sub->run;
    l->prev_dep = tail;
    l->next_dep = next;
    l->prev_sub = l->next_sub = NULL;
    if (next)
        next->prev_dep = l;
    if (tail)
        tail->next_dep = l;
    else
        sub->deps = l;
    sub->deps_tail = l;
    dep->refs++;
    dep->last_link = l;
    if (sub->flags & GV_F_WATCHING) {
        bool first = dep->subs == NULL;
        gv_subs_append(dep, l);
        if (first && dep->kind == GV_KIND_COMPUTED)
            gv_watch(rt, dep);
    }
}

/* ---- dropping links and releasing nodes ------------------------------- */

/* Remove one link everywhere.  If that released the last reference to its
 * dependency, the dependency goes to the graveyard (gv__bury). */
static void gv_drop_link(gv_runtime *rt, gv_link *l)
{
    gv_node *dep = l->dep, *sub = l->sub;
    if (sub->flags & GV_F_WATCHING) {
        gv_subs_remove(dep, l);
        if (!dep->subs && dep->kind == GV_KIND_COMPUTED && (dep->flags & GV_F_WATCHING))
            gv_unwatch(rt, dep);
    }
    if (l->prev_dep)
        l->prev_dep->next_dep = l->next_dep;
    else
        sub->deps = l->next_dep;
    if (l->next_dep)
        l->next_dep->prev_dep = l->prev_dep;
    if (sub->deps_tail == l)
        sub->deps_tail = l->prev_dep;
    if (dep->last_link == l)
        dep->last_link = NULL;
    gv__link_release(rt, l);
    if (--dep->refs == 0)
        gv__bury(rt, dep);
}

void gv__purge_from(gv_runtime *rt, gv_link *from)
{
    while (from) {
        gv_link *next = from->next_dep;
        gv_drop_link(rt, from);
        from = next;
    }
}

void gv__unlink_all(gv_runtime *rt, gv_node *sub)
{
    sub->deps_tail = NULL;
    if (sub->deps)
        gv__purge_from(rt, sub->deps);
}

void gv__node_release(gv_runtime *rt, gv_node *n)
{
    gv__bury(rt, n);
    if (!rt->hold)
        gv__drain(rt);
}

/* ---- push ------------------------------------------------------------- */

void gv__propagate(gv_runtime *rt, gv_link *link)
{
    size_t base = rt->stack_top;
    for (;;) {
        while (link) {
            gv_node *sub = link->sub;
            gv_link *next = link->next_sub;
            uint16_t f = sub->flags;
            if (!(f & GV_F_PENDING)) {
                sub->flags = (uint16_t)(f | GV_F_PENDING);
                if (sub->kind == GV_KIND_EFFECT) {
                    gv__enqueue(rt, (gv_effect *)sub);
                } else if (sub->subs) {
                    if (next)
                        gv__push(rt, next);
                    link = sub->subs;
                    continue;
                }
            }
            link = next;
        }
        if (rt->stack_top == base)
            return;
        link = rt->stack[--rt->stack_top];
    }
}

/* After an aborted flush: the effects left in the queue were marked PENDING
 * but will not run, so what they read may stay PENDING with nobody below it
 * queued — which would stop future writes at those nodes.  Turn PENDING into
 * DIRTY upstream of `e` so the next write propagates through again and the
 * next read recomputes. */
void gv__unpend_upstream(gv_runtime *rt, gv_node *e)
{
    size_t base = rt->stack_top;
    gv__push(rt, e);
    while (rt->stack_top > base) {
        gv_node *n = rt->stack[--rt->stack_top];
        n->flags = (uint16_t)((n->flags & ~GV_F_PENDING) | GV_F_DIRTY);
        for (gv_link *l = n->deps; l; l = l->next_dep)
            if (l->dep->kind == GV_KIND_COMPUTED && (l->dep->flags & GV_F_PENDING))
                gv__push(rt, l->dep);
    }
}
