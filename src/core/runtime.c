/*
 * runtime.c — the per-thread runtime: link pool, work stack, live-node list,
 * errors and the error handler, batches, untracked reads, limits and stats.
 *
 * Each thread owns one gv_runtime in thread-local storage; all-zero is a valid
 * runtime, so there is nothing to set up.  The first time a thread allocates
 * a cache, a pthread key with a destructor is set so that the caches are
 * released when the thread exits: worker threads need no explicit call.
 *
 * Memory that the hot path needs (links, the work stack, the effect queue)
 * only grows: after a graph has run once, running it again allocates nothing.
 * Running out of memory for that bookkeeping aborts with a message, the way
 * Redis' zmalloc does: there is no sane way to continue a half-propagated
 * write.  Node constructors, which are not on the hot path, return NULL.
 */
#include "internal.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>

#define GV_LINKS_PER_SLAB 256

_Thread_local gv_runtime gv__tls_rt __attribute__((tls_model("initial-exec")));
_Thread_local gv_runtime *gv__tls_attached __attribute__((tls_model("initial-exec")));

static pthread_key_t gv_thread_key;
static pthread_once_t gv_thread_key_once = PTHREAD_ONCE_INIT;

static void gv_thread_exit(void *unused)
{
    (void)unused;
    gv_runtime_release();
}

static void gv_make_thread_key(void)
{
    if (pthread_key_create(&gv_thread_key, gv_thread_exit) != 0)
        gv__oom();
}

void gv__register_thread(gv_runtime *rt)
{
    if (rt->thread_registered)
        return;
    pthread_once(&gv_thread_key_once, gv_make_thread_key);
    /* Any non-NULL value makes the destructor run at thread exit. */
    if (pthread_setspecific(gv_thread_key, rt) != 0)
        gv__oom();
    rt->thread_registered = 1;
}

void gv__oom(void)
{
    fputs("galvani: out of memory for the signal graph's bookkeeping\n", stderr);
    abort();
}

/* ---- link pool -------------------------------------------------------- */

static void gv_add_slab(gv_runtime *rt)
{
    if (rt->nslabs == rt->slab_cap) {
        size_t cap = rt->slab_cap ? rt->slab_cap * 2 : 16;
        void **slabs = realloc(rt->slabs, cap * sizeof *slabs);
        if (!slabs)
            gv__oom();
        rt->slabs = slabs;
        rt->slab_cap = cap;
    }
    gv_link *slab = malloc(GV_LINKS_PER_SLAB * sizeof *slab);
    if (!slab)
        gv__oom();
    gv__register_thread(rt);
    rt->slabs[rt->nslabs++] = slab;
    for (size_t i = GV_LINKS_PER_SLAB; i-- > 0;) {
        slab[i].next_dep = rt->free_links;
        rt->free_links = &slab[i];
    }
}

gv_link *gv__link_alloc(gv_runtime *rt)
{
    if (!rt->free_links)
        gv_add_slab(rt);
    gv_link *l = rt->free_links;
    rt->free_links = l->next_dep;
    rt->stats.links++;
    return l;
}

void gv__link_release(gv_runtime *rt, gv_link *l)
{
    l->dep = l->sub = NULL;
    l->next_dep = rt->free_links;
    rt->free_links = l;
    rt->stats.links--;
}

/* ---- node pools ------------------------------------------------------- */

#define GV_NODES_PER_SLAB 64

#if defined(__SANITIZE_ADDRESS__)
#define GV_POOL_NODES 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GV_POOL_NODES 0
#endif
#endif
#ifndef GV_POOL_NODES
#define GV_POOL_NODES 1
#endif

void *gv__pool_alloc(gv_runtime *rt, gv_pool *p, size_t size)
{
    if (!GV_POOL_NODES)
        return calloc(1, size);
    if (!p->free) {
        if (p->nslabs == p->slab_cap) {
            size_t cap = p->slab_cap ? p->slab_cap * 2 : 16;
            void **slabs = realloc(p->slabs, cap * sizeof *slabs);
            if (!slabs)
                return NULL;
            p->slabs = slabs;
            p->slab_cap = cap;
        }
        char *slab = malloc(GV_NODES_PER_SLAB * size);
        if (!slab)
            return NULL;
        gv__register_thread(rt);
        p->slabs[p->nslabs++] = slab;
        for (size_t i = GV_NODES_PER_SLAB; i-- > 0;) {
            void *n = slab + i * size;
            *(void **)n = p->free;
            p->free = n;
        }
    }
    void *n = p->free;
    p->free = *(void **)n;
    memset(n, 0, size);
    return n;
}

void gv__pool_free(gv_pool *p, void *node)
{
    if (!GV_POOL_NODES) {
        free(node);
        return;
    }
    *(void **)node = p->free;
    p->free = node;
}

static void gv_pool_release(gv_pool *p)
{
    for (size_t i = 0; i < p->nslabs; i++)
        free(p->slabs[i]);
    free(p->slabs);
    memset(p, 0, sizeof *p);
}

void gv__stack_reserve(gv_runtime *rt, size_t more)
{
    size_t need = rt->stack_top + more;
    if (need <= rt->stack_cap)
        return;
    size_t cap = rt->stack_cap ? rt->stack_cap : 256;
    while (cap < need)
        cap *= 2;
    void **stack = realloc(rt->stack, cap * sizeof *stack);
    if (!stack)
        gv__oom();
    gv__register_thread(rt);
    rt->stack = stack;
    rt->stack_cap = cap;
}

/* ---- deferred destruction --------------------------------------------- */

void *gv__grow(gv_runtime *rt, void *arr, size_t *cap, size_t elem)
{
    size_t n = *cap ? *cap * 2 : 64;
    void *p = realloc(arr, n * elem);
    if (!p)
        gv__oom();
    gv__register_thread(rt);
    *cap = n;
    return p;
}

/* The graveyard only grows, like the other work arrays: after the first
 * disposals, disposing allocates nothing. */

void gv__bury(gv_runtime *rt, gv_node *n)
{
    if (n->flags & GV_F_DEAD)
        return;
    if (rt->ndead == rt->dead_cap)
        rt->dead = gv__grow(rt, rt->dead, &rt->dead_cap, sizeof *rt->dead);
    n->flags |= GV_F_DEAD;
    rt->dead[rt->ndead++] = n;
}

void gv__bury_scope(gv_runtime *rt, gv_scope *sc)
{
    if (rt->ndead_scopes == rt->dead_scopes_cap)
        rt->dead_scopes = gv__grow(rt, rt->dead_scopes, &rt->dead_scopes_cap, sizeof *rt->dead_scopes);
    rt->dead_scopes[rt->ndead_scopes++] = sc;
}

/* Free the graveyard.  Called with nothing of the library on the stack; it
 * holds the runtime itself, so what a value's destroy function disposes, or
 * what a destroyed node's links release, joins the graveyard and is freed by
 * this same loop. */
void gv__drain(gv_runtime *rt)
{
    rt->hold++;
    for (;;) {
        if (rt->ndead) {
            gv_node *n = rt->dead[--rt->ndead];
            n->flags &= (uint16_t)~GV_F_DEAD;
            if (n->kind == GV_KIND_EFFECT) {
                gv__effect_finalize(rt, (gv_effect *)n);
            } else if (n->refs) {
                continue; /* read again since it was buried: alive */
            } else if (n->kind == GV_KIND_COMPUTED) {
                /* Unreferenced, so nobody subscribes to it: its links are
                 * in no subscriber list. */
                gv__unlink_all(rt, n);
                gv__computed_destroy(rt, (gv_computed *)n);
            } else {
                gv__signal_destroy(rt, (gv_signal *)n);
            }
        } else if (rt->ndead_scopes) {
            gv__scope_finalize(rt, rt->dead_scopes[--rt->ndead_scopes]);
        } else {
            break;
        }
    }
    rt->hold--;
}

/* ---- live nodes, names ------------------------------------------------ */

void gv__live_add(gv_runtime *rt, gv_node *n)
{
    n->live_prev = NULL;
    n->live_next = rt->live;
    if (rt->live)
        rt->live->live_prev = n;
    rt->live = n;
}

void gv__live_remove(gv_runtime *rt, gv_node *n)
{
    if (n->live_prev)
        n->live_prev->live_next = n->live_next;
    else
        rt->live = n->live_next;
    if (n->live_next)
        n->live_next->live_prev = n->live_prev;
    if (n->extra) {
        free(n->extra->name);
        free(n->extra);
        n->extra = NULL;
    }
}

gv_extra *gv__extra(gv_node *n)
{
    if (!n->extra) {
        n->extra = calloc(1, sizeof *n->extra);
        if (!n->extra)
            gv__oom();
    }
    return n->extra;
}

const char *gv__name(const gv_node *n)
{
    return n->extra && n->extra->name ? n->extra->name : "";
}

void gv__set_name(gv_node *n, const char *name)
{
    gv_extra *x = gv__extra(n);
    char *copy = NULL;
    if (name && *name) {
        size_t len = strlen(name);
        copy = malloc(len + 1);
        if (!copy)
            gv__oom();
        memcpy(copy, name, len + 1);
    }
    free(x->name);
    x->name = copy;
}

/* ---- errors ----------------------------------------------------------- */

gv_err *gv__err_new(int code, const char *message, const char *origin)
{
    size_t mlen = strlen(message), olen = strlen(origin);
    gv_err *e = malloc(sizeof *e + mlen + 1 + olen + 1);
    if (!e)
        gv__oom();
    char *m = (char *)(e + 1);
    char *o = m + mlen + 1;
    memcpy(m, message, mlen + 1);
    memcpy(o, origin, olen + 1);
    e->refs = 1;
    e->pub.code = code;
    e->pub.message = m;
    e->pub.origin = o;
    return e;
}

static gv_err **gv_error_slot(gv_node *n)
{
    if (n->kind == GV_KIND_COMPUTED)
        return &((gv_computed *)n)->error;
    if (n->kind == GV_KIND_EFFECT)
        return &((gv_effect *)n)->error;
    return NULL;
}

void gv__fail_current(gv_runtime *rt, gv_err *e)
{
    gv_err **slot = rt->current ? gv_error_slot(rt->current) : NULL;
    if (!slot || *slot) { /* nobody to fail, or the first failure wins */
        gv__err_unref(e);
        return;
    }
    *slot = e;
}

bool gv_fail(int code, const char *fmt, ...)
{
    gv_runtime *rt = gv__rt();
    if (!rt->current)
        return false;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt ? fmt : "failed", ap);
    va_end(ap);
    if (n < 0)
        strcpy(buf, "failed (unformattable message)");
    gv__fail_current(rt, gv__err_new(code, buf, gv__name(rt->current)));
    return true;
}

static void gv_default_error_handler(const gv_error *err, const char *node_name, void *ud)
{
    (void)ud;
    fprintf(stderr, "galvani: effect%s%s%s failed (%d): %s%s%s\n", *node_name ? " '" : "", node_name,
            *node_name ? "'" : "", err->code, err->message, *err->origin ? " — from " : "", err->origin);
}

void gv_set_error_handler(gv_error_handler_fn fn, void *ud)
{
    gv_runtime *rt = gv__rt();
    rt->on_error = fn;
    rt->on_error_ud = ud;
}

void gv__report(gv_runtime *rt, const gv_error *err, const char *node_name)
{
    if (rt->on_error)
        rt->on_error(err, node_name, rt->on_error_ud);
    else
        gv_default_error_handler(err, node_name, NULL);
}

/* ---- batches, untracked ----------------------------------------------- */

void gv_batch_begin(void)
{
    gv__rt()->batch_depth++;
}

void gv_batch_end(void)
{
    gv_runtime *rt = gv__rt();
    if (rt->batch_depth == 0)
        return; /* unbalanced end: ignore rather than underflow */
    if (--rt->batch_depth == 0)
        gv__batch_done(rt);
}

gv_untracked_t gv_untracked_begin(void)
{
    gv_runtime *rt = gv__rt();
    gv_untracked_t t = {rt->active};
    rt->active = NULL;
    return t;
}

void gv_untracked_end(gv_untracked_t t)
{
    gv__rt()->active = t.saved;
}

/* ---- limits, stats, release ------------------------------------------- */

void gv_set_max_flush_rounds(unsigned rounds)
{
    gv__rt()->max_flush_rounds = rounds;
}

void gv_set_max_compute_depth(unsigned depth)
{
    gv__rt()->max_compute_depth = depth;
}

void gv_get_stats(gv_stats *out)
{
    *out = gv__rt()->stats;
    out->bytes_signal = sizeof(struct gv_signal);
    out->bytes_computed = sizeof(struct gv_computed);
    out->bytes_effect = sizeof(struct gv_effect);
    out->bytes_link = sizeof(struct gv_link);
}

static void gv_release_caches(gv_runtime *rt)
{
    free(rt->stack);
    rt->stack = NULL;
    rt->stack_top = rt->stack_cap = 0;
    free(rt->queue);
    rt->queue = NULL;
    rt->queue_len = rt->queue_cap = 0;
    /* Both are empty whenever no library call is under way. */
    free(rt->dead);
    rt->dead = NULL;
    rt->ndead = rt->dead_cap = 0;
    free(rt->dead_scopes);
    rt->dead_scopes = NULL;
    rt->ndead_scopes = rt->dead_scopes_cap = 0;
    /* Closed after every batch: its entries own nothing any more. */
    free(rt->journal);
    rt->journal = NULL;
    rt->njournal = rt->journal_cap = 0;
    /* Nodes and links still in use live in the slabs: keep those while any
     * exist. */
    if (rt->stats.signals == 0)
        gv_pool_release(&rt->signal_pool);
    if (rt->stats.computeds == 0)
        gv_pool_release(&rt->computed_pool);
    if (rt->stats.effects == 0)
        gv_pool_release(&rt->effect_pool);
    if (rt->stats.links == 0) {
        for (size_t i = 0; i < rt->nslabs; i++)
            free(rt->slabs[i]);
        free(rt->slabs);
        rt->slabs = NULL;
        rt->nslabs = rt->slab_cap = 0;
        rt->free_links = NULL;
    }
}

void gv_runtime_release(void)
{
    gv_release_caches(&gv__tls_rt);
}

/* ---- runtimes not tied to a thread ------------------------------------ */

gv_runtime *gv_runtime_new(void)
{
    gv_runtime *rt = calloc(1, sizeof *rt);
    if (!rt)
        return NULL;
    /* Its caches are freed by gv_runtime_free, not by the exit of whichever
     * thread happened to allocate them: mark it as registered so that no
     * thread-exit hook is ever tied to it. */
    rt->thread_registered = 1;
    return rt;
}

gv_runtime *gv_runtime_attach(gv_runtime *rt)
{
    gv_runtime *prev = gv__tls_attached;
    gv__tls_attached = rt;
    return prev;
}

bool gv_runtime_free(gv_runtime *rt)
{
    if (!rt)
        return true;
    if (rt == gv__tls_attached || rt->hold || rt->batch_depth || rt->stats.signals || rt->stats.computeds ||
        rt->stats.effects || rt->stats.scopes)
        return false;
    gv_release_caches(rt);
    free(rt);
    return true;
}
