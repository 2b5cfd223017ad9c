/*
 * effect.c — effects, their owner tree (effects and scopes), cleanups, and the
 * flush loop that runs queued effects.
 *
 * Ownership.  Whoever is "current owner" when an effect or scope is created
 * owns it: the running effect, else the entered scope, else nobody (the caller
 * keeps the handle).  An effect disposes what it owns before each re-run and
 * when it is disposed, newest first, then runs its cleanups, newest first.
 *
 * Flushing.  Writes queue the effects they reach; the outermost write (or the
 * end of the outermost batch) runs the queue.  Effects queued while the queue
 * runs form the next "round"; after max_flush_rounds rounds the flush stops
 * with GV_ECYCLE rather than loop forever.  An effect whose owner effect is
 * also queued waits for it: the owner's re-run may dispose it.
 *
 * Disposal.  gv_effect_free, gv_scope_free and an owner's re-run may be
 * called from anywhere: a compute function validating this very effect, an
 * effect, a cleanup, the error handler.  Disposal does at once what can be
 * seen (the effect leaves the queue and its owner, its children are disposed,
 * its cleanups run, it never runs again) and leaves the memory, links
 * included, to gv__drain (internal.h, "Deferred destruction").
 */
#include "internal.h"

#define GV_EFFECT_OF(o) ((gv_effect *)(void *)((char *)(o) - offsetof(gv_effect, owner)))
#define GV_SCOPE_OF(o) ((gv_scope *)(void *)((char *)(o) - offsetof(gv_scope, owner)))

static void gv_owner_dispose(gv_runtime *rt, gv_owner *o);
static void gv_dequeue(gv_runtime *rt, gv_effect *e);

/* ---- owner tree ------------------------------------------------------- */

static void gv_owner_attach(gv_owner *o, gv_owner *parent)
{
    o->parent = parent;
    o->next_sibling = NULL;
    o->prev_sibling = parent ? parent->last_child : NULL;
    if (!parent)
        return;
    if (parent->last_child)
        parent->last_child->next_sibling = o;
    else
        parent->first_child = o;
    parent->last_child = o;
}

static void gv_owner_detach(gv_owner *o)
{
    gv_owner *p = o->parent;
    if (!p)
        return;
    if (o->prev_sibling)
        o->prev_sibling->next_sibling = o->next_sibling;
    else
        p->first_child = o->next_sibling;
    if (o->next_sibling)
        o->next_sibling->prev_sibling = o->prev_sibling;
    else
        p->last_child = o->prev_sibling;
    o->parent = o->prev_sibling = o->next_sibling = NULL;
}

/* Newest first.  Each disposal detaches the child, and a child's cleanup may
 * dispose its siblings too: re-read last_child every time. */
static void gv_dispose_children(gv_runtime *rt, gv_owner *o)
{
    while (o->last_child)
        gv_owner_dispose(rt, o->last_child);
}

/* The owner that effects created now belong to: the running effect or the
 * entered scope, but not from inside a compute function (a computed re-runs
 * when it likes and must not take effects down with it).  An owner disposed
 * in the meantime still takes them: it disposes them when its run returns
 * (an effect) or when its memory goes (a scope). */
static gv_owner *gv_current_owner(gv_runtime *rt)
{
    if (rt->current && rt->current->kind == GV_KIND_COMPUTED)
        return NULL;
    return rt->owner;
}

/* ---- effects ---------------------------------------------------------- */

/* Dispose owned effects, then run the cleanups, untracked and unowned.  Each
 * cleanup is popped before it runs, so one that disposes this very effect
 * (which cleans up again) runs no cleanup twice. */
static void gv_effect_cleanup_slow(gv_runtime *rt, gv_effect *e)
{
    gv_node *saved_active = rt->active, *saved_current = rt->current;
    gv_owner *saved_owner = rt->owner;
    rt->active = rt->current = NULL;
    rt->owner = NULL;
    gv_dispose_children(rt, &e->owner);
    while (e->ncleanups) {
        gv_cleanup c = e->cleanups[--e->ncleanups];
        c.fn(c.ud);
    }
    rt->active = saved_active;
    rt->current = saved_current;
    rt->owner = saved_owner;
}

static inline void gv_effect_cleanup(gv_runtime *rt, gv_effect *e)
{
    if (e->owner.last_child || e->ncleanups)
        gv_effect_cleanup_slow(rt, e);
}

/* Dispose `e` now: everything observable happens here (it leaves the queue
 * and the owner tree, its children are disposed and its cleanups run, and it
 * never runs again); its memory and links go when the runtime is no longer
 * held (internal.h, "Deferred destruction").  PENDING stays set for good, so
 * writes never queue it again (propagate skips pending nodes). */
static void gv_effect_dispose(gv_runtime *rt, gv_effect *e)
{
    gv_node *n = &e->node;
    n->flags |= GV_F_DISPOSED | GV_F_PENDING;
    if (n->flags & GV_F_QUEUED)
        gv_dequeue(rt, e);
    gv_owner_detach(&e->owner);
    if (n->flags & GV_F_RUNNING)
        return; /* gv_effect_execute finishes the job when the run returns */
    gv_effect_cleanup(rt, e);
    gv__bury(rt, n);
}

void gv__effect_finalize(gv_runtime *rt, gv_effect *e)
{
    /* Neither can happen (disposal dequeues it and takes its children, and
     * PENDING keeps writes from queueing it again); kept cheap insurance. */
    if (e->node.flags & GV_F_QUEUED)
        gv_dequeue(rt, e);
    gv_dispose_children(rt, &e->owner);
    gv__unlink_all(rt, &e->node);
    gv__err_unref(e->error);
    gv__live_remove(rt, &e->node);
    free(e->cleanups);
    rt->stats.effects--;
    gv__pool_free(&rt->effect_pool, e);
}

/* Run the effect's function now.  Returns false if the effect was disposed,
 * before the run (by one of its own cleanups) or during it. */
static bool gv_effect_execute(gv_runtime *rt, gv_effect *e)
{
    gv_node *n = &e->node;
    if (e->owner.last_child || e->ncleanups) {
        gv_effect_cleanup_slow(rt, e);
        if (n->flags & GV_F_DISPOSED) /* by one of its own cleanups */
            return false;
    }
    gv_node *saved_active = rt->active, *saved_current = rt->current;
    gv_owner *saved_owner = rt->owner;
    if (saved_current) /* see gv__computed_run */
        saved_current->flags |= GV_F_RESCAN;
    rt->active = rt->current = n;
    rt->owner = &e->owner;
    n->flags = (uint16_t)((n->flags | GV_F_RUNNING) & ~(GV_F_PENDING | GV_F_DIRTY | GV_F_RESCAN));
    n->run = ++rt->run_counter;
    n->deps_tail = NULL;

    e->fn(e->ud);

    rt->stats.effect_runs++;
    rt->active = saved_active;
    rt->current = saved_current;
    rt->owner = saved_owner;
    n->flags &= (uint16_t)~GV_F_RUNNING;
    gv__purge_stale(rt, n);
    if (e->error) {
        gv_err *err = e->error;
        e->error = NULL;
        gv__report(rt, &err->pub, gv__name(n)); /* the handler may dispose `e` */
        gv__err_unref(err);
    }
    if (n->flags & GV_F_DISPOSED) {
        /* Disposed while it ran: what it created or registered since goes now. */
        n->flags |= GV_F_PENDING;
        gv_effect_cleanup(rt, e);
        gv__bury(rt, n);
        return false;
    }
    return true;
}

/* Run if a dependency really changed (or it never ran).  Validation runs
 * compute functions, which may dispose `e`: check before running it. */
static void gv_effect_update(gv_runtime *rt, gv_effect *e)
{
    gv_node *n = &e->node;
    if (n->flags & GV_F_DIRTY) {
        gv_effect_execute(rt, e);
    } else if (n->flags & GV_F_PENDING) {
        bool changed = gv__deps_changed(rt, n);
        if (n->flags & GV_F_DISPOSED)
            return;
        if (changed)
            gv_effect_execute(rt, e);
        else
            n->flags &= (uint16_t)~GV_F_PENDING;
    }
}

static gv_effect *gv_effect_create(gv_effect_fn fn, void *ud, bool owned)
{
    if (!fn)
        return NULL;
    gv_runtime *rt = gv__rt();
    gv_effect *e = gv__pool_alloc(rt, &rt->effect_pool, sizeof *e);
    if (!e)
        return NULL;
    e->node.kind = GV_KIND_EFFECT;
    e->node.flags = GV_F_DIRTY | GV_F_WATCHING;
    e->owner.is_effect = 1;
    e->fn = fn;
    e->ud = ud;
    gv_owner_attach(&e->owner, owned ? gv_current_owner(rt) : NULL);
    gv__live_add(rt, &e->node);
    rt->stats.effects++;

    /* The first run is a batch: what it writes flushes once it is done. */
    gv__hold(rt);
    rt->batch_depth++;
    gv_effect_execute(rt, e);
    if (--rt->batch_depth == 0)
        gv__batch_done(rt);
    /* Disposed during its first run or the flush after it: its memory goes
     * with the hold, and the caller gets no handle. */
    gv_effect *alive = (e->node.flags & GV_F_DISPOSED) ? NULL : e;
    gv__unhold(rt);
    return alive;
}

gv_effect *gv_effect_new(gv_effect_fn fn, void *ud)
{
    return gv_effect_create(fn, ud, true);
}

gv_effect *gv_effect_new_root(gv_effect_fn fn, void *ud)
{
    return gv_effect_create(fn, ud, false);
}

void gv_effect_free(gv_effect *e)
{
    if (!e || (e->node.flags & GV_F_DISPOSED))
        return;
    gv_runtime *rt = gv__rt();
    gv__hold(rt);
    gv_effect_dispose(rt, e);
    gv__unhold(rt);
}

bool gv_on_cleanup(gv_cleanup_fn fn, void *ud)
{
    gv_runtime *rt = gv__rt();
    gv_node *cur = rt->current;
    if (!fn || !cur || cur->kind != GV_KIND_EFFECT)
        return false;
    gv_effect *e = (gv_effect *)cur;
    if (e->ncleanups == e->cleanup_cap) {
        uint32_t cap = e->cleanup_cap ? e->cleanup_cap * 2 : 4;
        gv_cleanup *c = realloc(e->cleanups, cap * sizeof *c);
        if (!c)
            gv__oom();
        e->cleanups = c;
        e->cleanup_cap = cap;
    }
    e->cleanups[e->ncleanups].fn = fn;
    e->cleanups[e->ncleanups].ud = ud;
    e->ncleanups++;
    return true;
}

void gv_effect_set_name(gv_effect *e, const char *name) { gv__set_name(&e->node, name); }
const char *gv_effect_name(const gv_effect *e) { return gv__name(&e->node); }

/* ---- scopes ----------------------------------------------------------- */

gv_scope *gv_scope_new(void)
{
    gv_runtime *rt = gv__rt();
    gv_scope *sc = calloc(1, sizeof *sc);
    if (!sc)
        return NULL;
    gv_owner_attach(&sc->owner, gv_current_owner(rt));
    rt->stats.scopes++;
    return sc;
}

void gv_scope_enter(gv_scope *sc)
{
    gv_runtime *rt = gv__rt();
    sc->saved = rt->owner;
    rt->owner = &sc->owner;
}

void gv_scope_leave(gv_scope *sc)
{
    gv_runtime *rt = gv__rt();
    if (rt->owner == &sc->owner)
        rt->owner = sc->saved;
}

/* Like an effect: disposed now (children newest first), freed later. */
static void gv_scope_dispose(gv_runtime *rt, gv_scope *sc)
{
    sc->owner.disposed = 1;
    gv_owner_detach(&sc->owner);
    gv_dispose_children(rt, &sc->owner);
    if (rt->owner == &sc->owner)
        rt->owner = sc->saved;
    gv__bury_scope(rt, sc);
}

void gv__scope_finalize(gv_runtime *rt, gv_scope *sc)
{
    /* A disposed scope that is still entered somewhere up the stack is left
     * for the owner it was entered from. */
    while (rt->owner && !rt->owner->is_effect && rt->owner->disposed)
        rt->owner = GV_SCOPE_OF(rt->owner)->saved;
    gv_dispose_children(rt, &sc->owner);
    rt->stats.scopes--;
    free(sc);
}

void gv_scope_free(gv_scope *sc)
{
    if (!sc || sc->owner.disposed)
        return;
    gv_runtime *rt = gv__rt();
    gv__hold(rt);
    gv_scope_dispose(rt, sc);
    gv__unhold(rt);
}

static void gv_owner_dispose(gv_runtime *rt, gv_owner *o)
{
    if (o->is_effect)
        gv_effect_dispose(rt, GV_EFFECT_OF(o));
    else
        gv_scope_dispose(rt, GV_SCOPE_OF(o));
}

/* ---- the queue -------------------------------------------------------- */

void gv__queue_grow(gv_runtime *rt)
{
    rt->queue = gv__grow(rt, rt->queue, &rt->queue_cap, sizeof *rt->queue);
}

static void gv_dequeue(gv_runtime *rt, gv_effect *e)
{
    rt->queue[e->queue_slot] = NULL;
    e->node.flags &= (uint16_t)~GV_F_QUEUED;
}

/* The outermost queued effect among e's owners, or NULL. */
static gv_effect *gv_queued_ancestor(gv_effect *e)
{
    gv_effect *top = NULL;
    for (gv_owner *o = e->owner.parent; o; o = o->parent)
        if (o->is_effect && (GV_EFFECT_OF(o)->node.flags & GV_F_QUEUED))
            top = GV_EFFECT_OF(o);
    return top;
}

static void gv_abort_flush(gv_runtime *rt, size_t from)
{
    gv_effect *first = NULL;
    for (size_t i = from; i < rt->queue_len; i++) {
        gv_effect *e = rt->queue[i];
        if (!e)
            continue;
        if (!first)
            first = e;
        rt->queue[i] = NULL;
        e->node.flags &= (uint16_t)~GV_F_QUEUED;
        gv__unpend_upstream(rt, &e->node);
    }
    if (!first)
        return;
    char msg[200];
    snprintf(msg, sizeof msg, "effects kept re-triggering each other for %u flush rounds; stopped",
             gv__max_flush_rounds(rt));
    gv_err *err = gv__err_new(GV_ECYCLE, msg, gv__name(&first->node));
    gv__report(rt, &err->pub, gv__name(&first->node));
    gv__err_unref(err);
}

void gv__flush(gv_runtime *rt)
{
    if (rt->flushing || rt->batch_depth || rt->queue_len == 0)
        return;
    /* The batch that ends here is settled: the flush's own writes are
     * compared with the values it starts from, not the batch's. */
    if (rt->journal_dirty)
        gv__journal_close(rt);
    rt->flushing = 1;
    gv__hold(rt);
    size_t i = 0, round_end = rt->queue_len;
    unsigned rounds = 0;
    while (i < rt->queue_len) {
        if (i == round_end) {
            if (++rounds >= gv__max_flush_rounds(rt)) {
                gv_abort_flush(rt, i);
                break;
            }
            round_end = rt->queue_len;
        }
        gv_effect *e = rt->queue[i];
        if (!e) {
            i++;
            continue;
        }
        gv_effect *top = gv_queued_ancestor(e);
        if (top) { /* run the owner first; it may dispose `e` */
            gv_dequeue(rt, top);
            gv_effect_update(rt, top);
            continue;
        }
        gv_dequeue(rt, e);
        i++;
        gv_effect_update(rt, e);
    }
    rt->queue_len = 0;
    rt->flushing = 0;
    if (rt->journal_dirty)
        gv__journal_close(rt);
    gv__unhold(rt);
}
