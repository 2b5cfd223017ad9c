/*
 * internal.h — the data structures shared by the files of libgalvani's core.
 *
 * The graph
 * ---------
 * Every signal, computed and effect starts with a gv_node.  A dependency is a
 * gv_link that sits in two intrusive doubly linked lists at once: the `deps`
 * list of its reader (the subscriber, `sub`) and the `subs` list of what it
 * reads (`dep`).  Links are pooled, so a graph that re-reads the same nodes in
 * the same order re-uses its links and allocates nothing.
 *
 * Push, then pull
 * ---------------
 * A write bumps the signal's version and the thread's global version, then
 * walks the subscriber lists marking everything downstream PENDING and queuing
 * the effects it reaches (propagate).  Nothing is recomputed then.  When an
 * effect runs or a computed is read, its dependencies are validated depth-first
 * (refresh): a dependency changed iff its version differs from the version the
 * link recorded when the reader last read it.  Only then is the function
 * re-run.  That ordering is what makes reads glitch-free: a reader only ever
 * runs after everything it reads is up to date.
 *
 * Watched and unwatched computeds
 * -------------------------------
 * Only effects and computeds that somebody subscribes to ("watched") have
 * their links in their dependencies' subscriber lists.  A computed nobody
 * watches keeps its dependency list (with versions and references) but is not
 * in any subscriber list: writes never visit it, and it is validated on read by
 * comparing the global version it last saw, then the link versions.  When it
 * gains its first subscriber its links join the subscriber lists (watch
 * cascade); when it loses its last one they leave (unwatch cascade).
 *
 * Lifetime
 * --------
 * Signals and computeds are reference counted: one reference for the user's
 * handle, one for each link that reads them.  A reader keeps what it reads
 * alive; nothing keeps its readers alive.  The dependency graph is acyclic
 * (a read of a node that is computing is refused as a cycle and not linked),
 * so counting is enough.  Effects are owned by an owner tree (gv_owner).
 *
 * Deferred destruction
 * --------------------
 * User code runs in the middle of the library's walks: a compute function
 * while an effect is being validated, an effect or a cleanup during a flush,
 * the error handler, a value's destroy function.  Any of them may dispose any
 * node, including one the walk holds a pointer to.  So no node's memory (nor
 * its links) is given back while library code is on the stack: every entry
 * point that can call user code holds the runtime (rt->hold), and a node
 * whose life ends meanwhile is only marked (DEAD; an effect also DISPOSED) and
 * put in the graveyard (rt->dead).  What is observable happens at once: a
 * disposed effect leaves the queue and the owner tree, runs its cleanups and
 * never runs again.  The memory is reclaimed by gv__drain when the outermost
 * hold is released, with nothing of the library left on the stack.
 *
 * Batches and the journal
 * -----------------------
 * Versions of signals are drawn from the thread's global counter, so a
 * version is never reused.  The first write to a signal inside a batch (or a
 * flush) records its version and value: a scalar in the node itself, a string
 * or a pointer in the journal, which owns it until the batch ends.  A later
 * write in the same batch that makes the value equal to the recorded one puts
 * the recorded version back.  A reader that did not see the intermediate value then finds
 * its link's version unchanged: the round trip was a no-op for it, while a
 * reader that did see it finds a version it never read and re-runs.
 *
 * No recursion
 * ------------
 * propagate, refresh and the cascades walk with an explicit stack kept in the
 * runtime, so a chain of 100,000 computeds needs no C stack.  Only a compute
 * function that reads a never-computed computed nests on the C stack, bounded
 * by max_compute_depth.
 */
#ifndef GALVANI_CORE_INTERNAL_H
#define GALVANI_CORE_INTERNAL_H

#include "galvani/signals.h"

#include <stdint.h>
#include <stdlib.h>

typedef struct gv_node gv_node;
typedef struct gv_link gv_link;
typedef struct gv_owner gv_owner;
typedef struct gv_err gv_err;

enum gv_kind { GV_KIND_SIGNAL = 1, GV_KIND_COMPUTED = 2, GV_KIND_EFFECT = 3 };

enum gv_flag {
    GV_F_PENDING = 1u << 0,  /* something upstream may have changed */
    GV_F_DIRTY = 1u << 1,    /* must run: never ran, or forced */
    GV_F_QUEUED = 1u << 2,   /* effect: waiting in the flush queue */
    GV_F_RUNNING = 1u << 3,  /* computed/effect function on the stack */
    GV_F_DISPOSED = 1u << 4, /* effect: disposed, freed once its run ends */
    GV_F_FAILED = 1u << 5,   /* computed: holds an error, not a value */
    GV_F_WATCHING = 1u << 6, /* its links are in its dependencies' subscriber
                                lists: always for effects, for computeds while
                                they have subscribers */
    GV_F_VOLATILE = 1u << 7, /* computed: its last run met a cycle, so a read
                                was refused and not linked; it re-runs after any
                                write rather than trust its dependency list */
    GV_F_CHECKING = 1u << 9, /* on the path of a gv__deps_changed walk: its
                                reader is being validated, so a compute
                                function reading it now closes a cycle */
    GV_F_RESCAN = 1u << 8,   /* running: another node ran nested inside this
                                run and may have overwritten the last_link of
                                one of its dependencies, so duplicate reads
                                must be found by scanning (see gv__track) */
    GV_F_DEAD = 1u << 10,    /* in the graveyard: freed by gv__drain (unless a
                                signal or computed was referenced again) */
    GV_F_STALE = 1u << 11    /* computed: joined the subscriber lists without
                                having been validated since the last write, so
                                reads must validate it; unlike PENDING it does
                                not stop propagate, whose invariant is that
                                below a PENDING node everything is PENDING or
                                queued — not true of a reader that subscribes
                                after the write */
};


struct gv_link {
    gv_node *dep;       /* what is read */
    gv_node *sub;       /* who reads it */
    gv_link *prev_dep;  /* sub's dependency list */
    gv_link *next_dep;
    gv_link *prev_sub;  /* dep's subscriber list (only while sub is watched) */
    gv_link *next_sub;
    uint64_t version;   /* dep->version when sub last read it */
    uint64_t run;       /* sub->run when this link was last read */
};

/* Rarely used per-node data, allocated on demand. */
typedef struct gv_extra {
    char *name;
    gv_equal_fn equal;
    void *equal_ud;
    gv_destroy_fn ud_destroy; /* computeds: releases `ud` when the node dies */
} gv_extra;

/* A signal's start_type when its start value is kept in rt->journal (a
 * string or a pointer: the journal owns it) rather than in the node. */
#define GV_START_IN_JOURNAL 0xff

struct gv_node {
    uint8_t kind;
    uint8_t start_type;  /* signals: type of the batch's start value */
    uint16_t flags;
    uint32_t refs;       /* signals/computeds: handle + readers' links */
    uint64_t version;    /* changes whenever the value changes */
    union {
        struct {         /* computeds and effects */
            uint64_t run;              /* stamp of the current run */
            gv_link *deps, *deps_tail; /* tail: last link confirmed in this run */
        };
        struct {         /* signals: the batch journal's record (internal.h) */
            uint64_t start_epoch;   /* journal epoch of the batch it is for */
            uint64_t start_version; /* version when the batch first wrote it */
            uint64_t start_bits;    /* scalar start value, or its journal index */
        };
    };
    gv_link *subs, *subs_tail;
    gv_link *last_link;  /* the link most recently read from this node */
    gv_node *live_prev, *live_next; /* the thread's list of live nodes */
    gv_extra *extra;
};

struct gv_signal {
    gv_node node;
    gv_value value;
};

struct gv_computed {
    gv_node node;
    gv_value value;
    gv_compute_fn fn;
    void *ud;
    uint64_t seen_global; /* global version at the last validation */
    gv_err *error;        /* set iff GV_F_FAILED (or during a failing run) */
};

/* An owner of effects: an effect or a scope.  Children form a doubly linked
 * list so that any of them can leave in O(1). */
struct gv_owner {
    uint8_t is_effect;
    uint8_t disposed;
    gv_owner *parent;
    gv_owner *first_child, *last_child;
    gv_owner *prev_sibling, *next_sibling;
};

typedef struct gv_cleanup {
    gv_cleanup_fn fn;
    void *ud;
} gv_cleanup;

struct gv_effect {
    gv_node node;
    gv_owner owner;
    gv_effect_fn fn;
    void *ud;
    gv_err *error;       /* failure of the current run */
    gv_cleanup *cleanups;
    uint32_t ncleanups, cleanup_cap;
    size_t queue_slot;   /* index in the flush queue while QUEUED */
};

struct gv_scope {
    gv_owner owner;
    gv_owner *saved; /* the owner that was current before gv_scope_enter */
};

/* A shared, reference-counted error: propagation shares one object. */
struct gv_err {
    uint32_t refs;
    gv_error pub;
    /* message and origin strings follow */
};

/* A free-list allocator for one node size: slabs of GV_NODES_PER_SLAB,
 * freed nodes threaded through their first word.  Under AddressSanitizer
 * nodes come straight from calloc/free so that use-after-free stays
 * detectable. */
typedef struct gv_pool {
    void *free;
    void **slabs;
    size_t nslabs, slab_cap;
} gv_pool;

/* The start value of a signal whose value is a string or a pointer when a
 * batch first writes it (see the top; scalars stay in the node). */
typedef struct gv_journal_entry {
    gv_value value; /* owned: a copy of the string, the handed-over pointer */
} gv_journal_entry;

typedef struct gv_runtime {
    gv_node *active;   /* who subscribes to reads now (NULL: untracked) */
    gv_node *current;  /* whose function runs now (computed or effect) */
    gv_owner *owner;   /* who owns effects created now */
    uint64_t global_version;
    uint64_t run_counter;
    unsigned batch_depth;
    unsigned compute_depth;
    unsigned max_compute_depth;
    unsigned max_flush_rounds;
    int flushing;
    gv_computed *deep_retry; /* deepest computed refused by max_compute_depth */

    /* effect queue */
    gv_effect **queue;
    size_t queue_len, queue_cap;

    /* explicit work stack for the iterative walks */
    void **stack;
    size_t stack_top, stack_cap;

    /* link pool */
    gv_link *free_links;
    void **slabs;
    size_t nslabs, slab_cap;

    /* deferred destruction (see the top) */
    unsigned hold;          /* entry points on the stack that may run user code */
    gv_node **dead;         /* graveyard: nodes to free once hold drops to 0 */
    size_t ndead, dead_cap;
    gv_scope **dead_scopes; /* disposed scopes, likewise */
    size_t ndead_scopes, dead_scopes_cap;

    /* batch journal (see the top): a signal is recorded for the current
     * batch iff its start_epoch is journal_epoch + 1, so closing the journal
     * is one increment */
    uint64_t journal_epoch;
    int journal_dirty;          /* something was recorded since the last close */
    gv_journal_entry *journal;  /* start values that are strings or pointers */
    size_t njournal, journal_cap;

    gv_node *live; /* all live nodes (for the DOT dump) */
    gv_pool signal_pool, computed_pool, effect_pool;

    gv_error_handler_fn on_error;
    void *on_error_ud;

    int thread_registered;
    gv_stats stats;
} gv_runtime;


#define GV_DEFAULT_MAX_FLUSH_ROUNDS 100
#define GV_DEFAULT_MAX_COMPUTE_DEPTH 2000

/* The calling thread's runtime.  All-zero is its valid initial state (zero
 * limits mean "the default"), so getting it is one TLS address computation;
 * the thread-exit hook is registered the first time a cache is allocated. */
extern _Thread_local gv_runtime gv__tls_rt __attribute__((tls_model("initial-exec")));
/* A runtime made by gv_runtime_new and attached to this thread, or NULL: the
 * thread's own.  One load and a predictable branch per entry point. */
extern _Thread_local gv_runtime *gv__tls_attached __attribute__((tls_model("initial-exec")));
static inline gv_runtime *gv__rt(void)
{
    gv_runtime *a = gv__tls_attached;
    return __builtin_expect(a != NULL, 0) ? a : &gv__tls_rt;
}
static inline unsigned gv__max_compute_depth(const gv_runtime *rt)
{
    return rt->max_compute_depth ? rt->max_compute_depth : GV_DEFAULT_MAX_COMPUTE_DEPTH;
}
static inline unsigned gv__max_flush_rounds(const gv_runtime *rt)
{
    return rt->max_flush_rounds ? rt->max_flush_rounds : GV_DEFAULT_MAX_FLUSH_ROUNDS;
}
void gv__register_thread(gv_runtime *rt);

/* runtime.c */
void gv__oom(void) __attribute__((noreturn));
gv_link *gv__link_alloc(gv_runtime *rt);
void gv__link_release(gv_runtime *rt, gv_link *l);
void *gv__pool_alloc(gv_runtime *rt, gv_pool *p, size_t size); /* zeroed; NULL if out of memory */
void gv__pool_free(gv_pool *p, void *node);
void gv__stack_reserve(gv_runtime *rt, size_t more);
/* Double a work array (64 elements the first time); it never shrinks, so
 * the hot path stops allocating once the graph has run.  Aborts on OOM. */
void *gv__grow(gv_runtime *rt, void *arr, size_t *cap, size_t elem);
static inline void gv__push(gv_runtime *rt, void *p)
{
    if (rt->stack_top == rt->stack_cap)
        gv__stack_reserve(rt, 1);
    rt->stack[rt->stack_top++] = p;
}
void gv__live_add(gv_runtime *rt, gv_node *n);
void gv__live_remove(gv_runtime *rt, gv_node *n);
gv_extra *gv__extra(gv_node *n); /* allocates on demand; aborts on OOM */
const char *gv__name(const gv_node *n);
void gv__set_name(gv_node *n, const char *name);
void gv__report(gv_runtime *rt, const gv_error *err, const char *node_name);

/* deferred destruction (runtime.c) */
void gv__bury(gv_runtime *rt, gv_node *n);
void gv__bury_scope(gv_runtime *rt, gv_scope *sc);
void gv__drain(gv_runtime *rt);
static inline void gv__hold(gv_runtime *rt) { rt->hold++; }
static inline void gv__unhold(gv_runtime *rt)
{
    if (--rt->hold == 0 && __builtin_expect((rt->ndead | rt->ndead_scopes) != 0, 0))
        gv__drain(rt);
}


/* errors (runtime.c) */
gv_err *gv__err_new(int code, const char *message, const char *origin);
static inline gv_err *gv__err_ref(gv_err *e) { e->refs++; return e; }
static inline void gv__err_unref(gv_err *e)
{
    if (e && --e->refs == 0)
        free(e);
}
/* Record a failure on the running node (first failure wins). */
void gv__fail_current(gv_runtime *rt, gv_err *e);

/* value.c */
/* Store `in` into *slot: strings are copied (re-using the slot's buffer when it
 * is large enough), pointers taken over.  The previous content is released.
 * Returns false on OOM (the slot then holds GV_NONE). */
bool gv__value_store(gv_value *slot, const gv_value *in);
void gv__value_clear(gv_value *slot);
/* Release a value that was handed over but not stored. */
void gv__value_discard(const gv_value *in, const gv_value *kept);
bool gv__equal_slow(const gv_node *n, const gv_value *a, const gv_value *b);

/* Scalars are the hot path: compare and store them inline. */
static inline bool gv__is_scalar(gv_type t) { return t < GV_STRING; }
static inline bool gv__equal(const gv_node *n, const gv_value *a, const gv_value *b)
{
    if (!n->extra && a->type == b->type && (a->type == GV_INT || a->type == GV_BOOL))
        return a->type == GV_INT ? a->as.i == b->as.i : a->as.b == b->as.b;
    return gv__equal_slow(n, a, b);
}
static inline bool gv__store(gv_value *slot, const gv_value *in)
{
    if (gv__is_scalar(slot->type) && gv__is_scalar(in->type)) {
        slot->type = in->type;
        slot->as = in->as;
        slot->destroy = NULL;
        return true;
    }
    return gv__value_store(slot, in);
}

/* graph.c */
void gv__track_slow(gv_runtime *rt, gv_node *dep, gv_link *tail, gv_link *next);
/* Record that the active reader read `dep` (rt->active must be set).  The
 * common cases, re-reading in the same order as the last run, are inline. */
__attribute__((always_inline)) static inline void gv__track(gv_runtime *rt, gv_node *dep)
{
    gv_node *sub = rt->active;
    gv_link *tail = sub->deps_tail;
    if (tail && tail->dep == dep)
        return; /* the same node read twice in a row */
    gv_link *next = tail ? tail->next_dep : sub->deps;
    if (next && next->dep == dep) { /* same order as last run: reuse */
        next->version = dep->version;
        next->run = sub->run;
        sub->deps_tail = next;
        dep->last_link = next;
        return;
    }
    gv__track_slow(rt, dep, tail, next);
}
void gv__purge_from(gv_runtime *rt, gv_link *from);
/* Drop the links of `sub` that its run did not read again. */
static inline void gv__purge_stale(gv_runtime *rt, gv_node *sub)
{
    gv_link *from = sub->deps_tail ? sub->deps_tail->next_dep : sub->deps;
    if (from)
        gv__purge_from(rt, from);
}
void gv__unlink_all(gv_runtime *rt, gv_node *sub);
void gv__node_release(gv_runtime *rt, gv_node *n);
static inline void gv__node_unref(gv_runtime *rt, gv_node *n)
{
    if (--n->refs == 0)
        gv__node_release(rt, n);
}
void gv__propagate(gv_runtime *rt, gv_link *subs);
bool gv__deps_changed(gv_runtime *rt, gv_node *root);

/* A computed must run: never ran (or forced), or met a cycle last time and
 * something was written since. */
static inline bool gv__must_run(const gv_runtime *rt, const gv_node *n)
{
    return (n->flags & GV_F_DIRTY) ||
           ((n->flags & GV_F_VOLATILE) && ((const gv_computed *)n)->seen_global != rt->global_version);
}
/* A computed may be stale and its dependencies must be checked: when watched,
 * iff a write marked it PENDING; when not, iff anything was written since it
 * was last validated. */
static inline bool gv__needs_check(const gv_runtime *rt, const gv_node *n)
{
    if (n->flags & GV_F_WATCHING)
        return n->flags & (GV_F_PENDING | GV_F_STALE);
    return ((const gv_computed *)n)->seen_global != rt->global_version;
}
static inline bool gv__needs_refresh(const gv_runtime *rt, const gv_node *n)
{
    return gv__must_run(rt, n) || gv__needs_check(rt, n);
}
void gv__unpend_upstream(gv_runtime *rt, gv_node *e);

/* computed.c */
/* Bring a computed up to date (recompute or validate as needed). */
void gv__computed_refresh(gv_runtime *rt, gv_computed *c);
void gv__computed_run(gv_runtime *rt, gv_computed *c);
void gv__computed_destroy(gv_runtime *rt, gv_computed *c);

/* effect.c */
void gv__queue_grow(gv_runtime *rt);
static inline void gv__enqueue(gv_runtime *rt, gv_effect *e)
{
    if (__builtin_expect(rt->queue_len == rt->queue_cap, 0))
        gv__queue_grow(rt);
    e->node.flags |= GV_F_QUEUED;
    e->queue_slot = rt->queue_len;
    rt->queue[rt->queue_len++] = e;
}
void gv__flush(gv_runtime *rt);
/* Close the journal: every record made so far goes stale at once; only
 * strings and pointers kept in rt->journal need releasing (signal.c). */
void gv__journal_release(gv_runtime *rt);
static inline void gv__journal_close(gv_runtime *rt)
{
    rt->journal_epoch++;
    rt->journal_dirty = 0;
    if (__builtin_expect(rt->njournal != 0, 0))
        gv__journal_release(rt);
}
/* The outermost batch (or an effect's first run) ended: flush the queue, and
 * close the journal unless a flush is still under way further up. */
static inline void gv__batch_done(gv_runtime *rt)
{
    gv__flush(rt);
    if (!rt->flushing && rt->journal_dirty)
        gv__journal_close(rt);
}
void gv__effect_finalize(gv_runtime *rt, gv_effect *e);
void gv__scope_finalize(gv_runtime *rt, gv_scope *sc);

/* signal.c */
void gv__signal_destroy(gv_runtime *rt, gv_signal *s);

#endif
