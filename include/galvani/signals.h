/*
 * galvani/signals.h — fine-grained reactive state for C (libgalvani).
 *
 * Three kinds of node form a dependency graph:
 *
 *   gv_signal    a writable value.  Reading it inside a computed or an effect
 *                subscribes the reader; writing it notifies every reader.
 *   gv_computed  a value derived by a function of other nodes.  Lazy (nothing
 *                runs until somebody reads it), cached, recomputed only when a
 *                dependency really changed, and glitch-free: a reader never sees
 *                a mix of old and new values.
 *   gv_effect    a function re-run whenever something it read changed.  It is
 *                where side effects live (logging, persistence, pushing state).
 *
 * Dependencies are discovered automatically: whatever a computed or an effect
 * reads through a tracked getter during its last run is what it depends on.
 *
 *     gv_signal *count = gv_signal_new(gv_int(1));
 *     gv_computed *twice = gv_computed_new(double_it, count);
 *     gv_effect *log = gv_effect_new(print_it, twice);   // prints 2
 *     gv_signal_set_int(count, 5);                       // prints 10
 *     gv_effect_free(log); gv_computed_free(twice); gv_signal_free(count);
 *
 * Values.  Every node holds one gv_value: an int64, a double, a bool, a string
 * or an opaque pointer (or GV_NONE).  Scalars never allocate.  Strings are
 * copied into the graph; pointers are *owned* by the graph from the moment they
 * are handed to it and released with the value's destroy function.
 *
 * Ownership, in one place:
 *   - Values passed in (gv_signal_set, gv_signal_new, a compute function's
 *     result): a string is copied (the caller keeps its buffer); a pointer is
 *     taken over (the graph calls `destroy` on it once it drops the value).
 *   - Values handed out (gv_signal_get, gv_computed_get, ...): borrowed.  A
 *     string or pointer stays valid until the node's value next changes or the
 *     node is destroyed.  Copy what you keep longer.
 *   - Nodes: gv_signal_new / gv_computed_new return a handle the caller owns and
 *     releases with gv_signal_free / gv_computed_free.  A node that some
 *     computed or effect still depends on lives on until that dependency goes
 *     away; a node never keeps its *readers* alive, so a computed nobody
 *     observes is not held by its sources.
 *   - Effects are owned by whoever was running when they were created: the
 *     enclosing effect (which disposes them before it re-runs and when it is
 *     disposed), else the current scope, else the caller, who disposes them
 *     with gv_effect_free.
 *
 * Threads.  Each thread has its own graph (a thread-local runtime).  A node
 * may only be touched by the thread that created it; other threads must post
 * their updates to the owner thread (galvanid does this through its libuv
 * loop, e.g. with uv_async_send).
 *
 * Allocation.  After a graph has run once, set -> propagate -> recompute ->
 * effects allocates nothing (links are reused, work stacks keep their size),
 * except where a value itself needs storage (a string longer than any the node
 * held before).
 */
#ifndef GALVANI_SIGNALS_H
#define GALVANI_SIGNALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GV_VERSION_MAJOR 0
#define GV_VERSION_MINOR 1
#define GV_VERSION_PATCH 0

/* ------------------------------------------------------------------------ */
/* Values                                                                    */
/* ------------------------------------------------------------------------ */

typedef enum gv_type {
    GV_NONE = 0, /* no value (a failed computed, a fresh gv_value) */
    GV_INT,      /* as.i */
    GV_DOUBLE,   /* as.d */
    GV_BOOL,     /* as.b */
    GV_STRING,   /* as.s, NUL-terminated */
    GV_POINTER   /* as.p, released with `destroy` when the graph drops it */
} gv_type;

typedef void (*gv_destroy_fn)(void *ptr);

typedef struct gv_value {
    gv_type type;
    union {
        int64_t i;
        double d;
        bool b;
        const char *s;
        void *p;
    } as;
    gv_destroy_fn destroy; /* GV_POINTER only; NULL means "nothing to free" */
} gv_value;

/* Constructors.  gv_str() makes a *view* of the caller's string: the graph
 * copies it when it stores the value.  gv_ptr() hands the pointer over (see
 * ownership above). */
static inline gv_value gv_none(void) { gv_value v = {GV_NONE, {0}, NULL}; return v; }
static inline gv_value gv_int(int64_t i) { gv_value v = {GV_INT, {0}, NULL}; v.as.i = i; return v; }
static inline gv_value gv_double(double d) { gv_value v = {GV_DOUBLE, {0}, NULL}; v.as.d = d; return v; }
static inline gv_value gv_bool(bool b) { gv_value v = {GV_BOOL, {0}, NULL}; v.as.b = b; return v; }
static inline gv_value gv_str(const char *s) { gv_value v = {GV_STRING, {0}, NULL}; v.as.s = s ? s : ""; return v; }
static inline gv_value gv_ptr(void *p, gv_destroy_fn destroy) { gv_value v = {GV_POINTER, {0}, destroy}; v.as.p = p; return v; }

/* A string value that owns a heap copy of `s`, for strings that will not
 * outlive the call: a compute function formatting into a stack buffer writes
 * `*out = gv_str_copy(buf)`.  Handing it to the graph (a compute result,
 * gv_signal_set, gv_signal_new) hands the copy over, without a second copy.
 * Returns GV_NONE if out of memory. */
gv_value gv_str_copy(const char *s);

/* Conversions used by the typed getters: numbers and bools convert into each
 * other (double -> int truncates); anything else reads as 0 / false / NULL. */
int64_t gv_value_to_int(const gv_value *v);
double gv_value_to_double(const gv_value *v);
bool gv_value_to_bool(const gv_value *v);
const char *gv_value_to_string(const gv_value *v); /* NULL unless GV_STRING */
void *gv_value_to_pointer(const gv_value *v);      /* NULL unless GV_POINTER */

/* The default equality: same type and same scalar, same string contents, or
 * the same pointer (identity). */
bool gv_value_equal(const gv_value *a, const gv_value *b);

/* Custom equality for a node.  Return true when `a` and `b` are "the same", in
 * which case a write (or a recompute) changes nothing and notifies nobody. */
typedef bool (*gv_equal_fn)(const gv_value *a, const gv_value *b, void *ud);

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

enum {
    GV_OK = 0,
    GV_ECYCLE = -1,      /* a computed read itself, or effects kept re-triggering */
    GV_EDEPTH = -2,      /* computeds nested deeper than the runtime allows */
    GV_ESIDEEFFECT = -3, /* a signal was written inside a compute function */
    GV_EFAIL = -5        /* generic failure code for gv_fail callers */
    /* Positive codes are free for applications. */
};

/* A failure recorded by a compute or effect function.  Read-only for users; it
 * stays valid as long as the node that reports it keeps it (until the node
 * recomputes or is destroyed). */
typedef struct gv_error {
    int code;
    const char *message; /* never NULL */
    const char *origin;  /* name of the node that first failed, or "" */
} gv_error;

/* Fail the compute or effect function that is running now, like raising an
 * exception: the function should return right after.  A failed computed caches
 * the error and reports it to every reader until one of its dependencies
 * changes.  Called with no function running, it does nothing and returns false. */
bool gv_fail(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Failures nobody can read (an effect failed, effects cycled) go to the error
 * handler of the thread.  The default prints one line to stderr.  `node_name`
 * is the failing effect's name ("" if unnamed). */
typedef void (*gv_error_handler_fn)(const gv_error *err, const char *node_name, void *ud);
void gv_set_error_handler(gv_error_handler_fn fn, void *ud);

/* ------------------------------------------------------------------------ */
/* Signals                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct gv_signal gv_signal;

/* A new signal holding `initial` (strings copied, pointers taken over).
 * Returns NULL only when out of memory (a pointer value is then destroyed). */
gv_signal *gv_signal_new(gv_value initial);
/* Release the caller's handle.  The node dies once no computed or effect
 * depends on it any more.  NULL is a no-op. */
void gv_signal_free(gv_signal *s);

/* Read the value; inside a computed or effect this subscribes the reader. */
const gv_value *gv_signal_get(gv_signal *s);
/* Read without subscribing. */
const gv_value *gv_signal_peek(gv_signal *s);

int64_t gv_signal_get_int(gv_signal *s);
double gv_signal_get_double(gv_signal *s);
bool gv_signal_get_bool(gv_signal *s);
const char *gv_signal_get_string(gv_signal *s); /* NULL unless a string */
void *gv_signal_get_pointer(gv_signal *s);

/* Write.  Equal to the current value (see gv_signal_set_equal): nothing
 * happens and false is returned (a handed-over pointer that is not the very
 * pointer already held is destroyed).  Otherwise the value is replaced, every
 * dependent is notified and, outside a batch, effects run before this returns;
 * returns true.  Writing inside a compute function is refused: the computation
 * fails with GV_ESIDEEFFECT and false is returned. */
bool gv_signal_set(gv_signal *s, gv_value v);
bool gv_signal_set_int(gv_signal *s, int64_t i);
bool gv_signal_set_double(gv_signal *s, double d);
bool gv_signal_set_bool(gv_signal *s, bool b);
bool gv_signal_set_string(gv_signal *s, const char *str);

/* Write fn(current) — the current value is read without subscribing. */
typedef gv_value (*gv_update_fn)(const gv_value *current, void *ud);
bool gv_signal_update(gv_signal *s, gv_update_fn fn, void *ud);

/* Replace the equality used to decide whether a write changes anything.
 * NULL restores the default (gv_value_equal). */
void gv_signal_set_equal(gv_signal *s, gv_equal_fn eq, void *ud);

/* ------------------------------------------------------------------------ */
/* Computeds                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct gv_computed gv_computed;

/* Compute the value from other nodes, read through tracked getters, and store
 * it in *out (which starts as GV_NONE).  `prev` is the value of the previous
 * run (GV_NONE the first time, or after a failure); it stays valid until the
 * function returns.  A string written to *out with gv_str() is copied after
 * the function returns, so it must outlive the call (a buffer in `ud`, a
 * literal, `prev`'s string, a string read from a node); for a stack buffer
 * use gv_str_copy().  A pointer written to *out is handed over.  To fail, call
 * gv_fail() and return. */
typedef void (*gv_compute_fn)(gv_value *out, const gv_value *prev, void *ud);

/* A new computed.  Nothing runs until somebody reads it.  `ud` is borrowed: it
 * must outlive the node.  Returns NULL only when out of memory. */
gv_computed *gv_computed_new(gv_compute_fn fn, void *ud);
/* Release the caller's handle (the node lives on while readers depend on it). */
void gv_computed_free(gv_computed *c);

/* Bring the value up to date and return it.  Inside a computed or effect the
 * reader subscribes, and if this computed failed the reader fails with the same
 * error (the error propagates like an exception).  Outside any function the
 * failed value reads as GV_NONE: use gv_computed_error to tell. */
const gv_value *gv_computed_get(gv_computed *c);
/* Same, without subscribing (and so without propagating failure). */
const gv_value *gv_computed_peek(gv_computed *c);

/* Bring the value up to date and return its error, or NULL if it succeeded.
 * Subscribes like gv_computed_get but never propagates the failure: this is the
 * way to "catch" a failing dependency inside a compute function. */
const gv_error *gv_computed_error(gv_computed *c);

int64_t gv_computed_get_int(gv_computed *c);
double gv_computed_get_double(gv_computed *c);
bool gv_computed_get_bool(gv_computed *c);
const char *gv_computed_get_string(gv_computed *c);
void *gv_computed_get_pointer(gv_computed *c);

/* Equality cut-off: a recompute whose result is equal to the previous value
 * keeps the old value and notifies nobody downstream.  NULL: gv_value_equal. */
void gv_computed_set_equal(gv_computed *c, gv_equal_fn eq, void *ud);

/* Hand `ud` over to the node: destroy(ud) is called once, when the node's
 * memory is released — which may be long after gv_computed_free, since the
 * computeds and effects that read it keep it alive and may still run its
 * function.  For bindings whose compute function needs state of its own (a
 * Python callable).  It runs while the library frees nodes: it must not call
 * the library.  NULL: nothing is called. */
void gv_computed_set_ud_destroy(gv_computed *c, gv_destroy_fn destroy);

/* The value stored by the last run, without bringing it up to date, running
 * anything or subscribing (GV_NONE if it never ran or failed).  For walking
 * what the node holds, e.g. a garbage collector's traversal. */
const gv_value *gv_computed_cached(const gv_computed *c);

/* ------------------------------------------------------------------------ */
/* Effects                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct gv_effect gv_effect;

typedef void (*gv_effect_fn)(void *ud);
typedef void (*gv_cleanup_fn)(void *ud);

/* A new effect: runs `fn` once now, then again after anything it read changed
 * (once per write, or once per outermost batch).  `ud` is borrowed.  Effects
 * created while another effect runs are owned by it; while a scope is entered,
 * by the scope.  Returns NULL when out of memory, or when the effect was
 * disposed during that first run or the flush after it.  An owned effect's
 * handle is valid until its owner re-runs or is disposed — including an owner
 * disposed from its own run, whose children go when that run returns. */
gv_effect *gv_effect_new(gv_effect_fn fn, void *ud);

/* Like gv_effect_new, but owned by the caller even when created while an
 * effect runs or a scope is entered: nobody else disposes it (reaktiv's and
 * Python's model, where an effect lives as long as its handle). */
gv_effect *gv_effect_new_root(gv_effect_fn fn, void *ud);

/* Dispose: dispose owned effects, run the pending cleanups, unsubscribe, free.
 * NULL is a no-op.  The handle of an effect owned by another effect or a scope
 * is invalid once that owner re-runs or is disposed.
 *
 * Disposal is allowed from anywhere: a compute function (even one run to
 * validate this very effect), an effect, a cleanup, the error handler, a
 * value's destroy function, during a flush — of the effect itself or of any
 * other node (this holds for gv_scope_free, gv_computed_free and
 * gv_signal_free too).  The rule: what can be observed happens at once — the
 * effect leaves the queue and its owner, its owned effects are disposed, its
 * cleanups run, and it never runs again (disposed from its own run, the
 * cleanups run when the run returns) — while the memory, links included, is
 * freed only when the outermost library call on the stack returns. */
void gv_effect_free(gv_effect *e);

/* Register a cleanup for the effect that is running now.  Cleanups run before
 * the effect's next run and when it is disposed: first the owned effects are
 * disposed (newest first), then the cleanups run newest first (release in the
 * reverse order of acquisition; docs/signals.md says why).  Returns false (and
 * does nothing) when no effect is running. */
bool gv_on_cleanup(gv_cleanup_fn fn, void *ud);

/* ------------------------------------------------------------------------ */
/* Scopes                                                                    */
/* ------------------------------------------------------------------------ */

/* A scope owns the effects (and scopes) created while it is entered, so a
 * group can be disposed at once. */
typedef struct gv_scope gv_scope;

gv_scope *gv_scope_new(void);
/* Enter / leave: effects created in between belong to the scope.  Enter and
 * leave must pair up (they nest like a stack). */
void gv_scope_enter(gv_scope *sc);
void gv_scope_leave(gv_scope *sc);
/* Dispose every effect and scope it owns (newest first), then free it. */
void gv_scope_free(gv_scope *sc);

/* ------------------------------------------------------------------------ */
/* Batches and untracked reads                                               */
/* ------------------------------------------------------------------------ */

/* Writes inside a batch notify effects once, when the outermost batch ends.
 * Reads inside a batch see the new values (computeds recompute on demand).
 * A signal whose value when the outermost batch ends is equal (by its
 * equality) to its value when it began has not changed: nothing downstream
 * re-evaluates or re-runs, unless a reader saw a value in between.  The same
 * holds for writes made by effects during a flush. */
void gv_batch_begin(void);
void gv_batch_end(void);

/* Reads between these do not subscribe the running computed or effect.
 *     gv_untracked_t t = gv_untracked_begin(); ...; gv_untracked_end(t); */
typedef struct gv_untracked_t {
    void *saved;
} gv_untracked_t;
gv_untracked_t gv_untracked_begin(void);
void gv_untracked_end(gv_untracked_t t);

/* ------------------------------------------------------------------------ */
/* Introspection                                                             */
/* ------------------------------------------------------------------------ */

/* Names are copied; they appear in errors and in the DOT dump. */
void gv_signal_set_name(gv_signal *s, const char *name);
void gv_computed_set_name(gv_computed *c, const char *name);
void gv_effect_set_name(gv_effect *e, const char *name);
const char *gv_signal_name(const gv_signal *s);     /* "" if unnamed */
const char *gv_computed_name(const gv_computed *c); /* "" if unnamed */
const char *gv_effect_name(const gv_effect *e);     /* "" if unnamed */

/* Write the thread's live dependency graph in Graphviz DOT: one vertex per
 * node (shape by kind, label = name and value), one edge per dependency, from
 * the source to its reader.  Returns 0, or -1 if writing failed. */
int gv_dump_dot(FILE *out);

/* Counters of the thread's runtime, for tests, benchmarks and dashboards. */
typedef struct gv_stats {
    size_t signals, computeds, effects, scopes; /* live nodes */
    size_t links;                               /* live dependency links */
    uint64_t computes;                          /* compute function runs, total */
    uint64_t effect_runs;                       /* effect function runs, total */
    size_t bytes_signal, bytes_computed, bytes_effect, bytes_link; /* sizes */
} gv_stats;
void gv_get_stats(gv_stats *out);

/* Number of readers subscribed to a node (its live "watchers"). */
size_t gv_signal_subscriber_count(const gv_signal *s);
size_t gv_computed_subscriber_count(const gv_computed *c);
/* Number of nodes it currently depends on. */
size_t gv_computed_dependency_count(const gv_computed *c);
size_t gv_effect_dependency_count(const gv_effect *e);

/* ------------------------------------------------------------------------ */
/* Runtime limits                                                            */
/* ------------------------------------------------------------------------ */

/* Effects re-triggering each other are stopped after this many flush rounds
 * with a GV_ECYCLE error (default 100, like preact and reaktiv). */
void gv_set_max_flush_rounds(unsigned rounds);
/* A compute function that reads a not-yet-computed computed runs it right
 * away, on the C stack.  Nesting deeper than this is cut: the innermost
 * computed is refused with GV_EDEPTH, and the outermost read (the one made by
 * an effect or by code outside any compute function) resumes the evaluation
 * from that point, slice by slice, so even a first read of a 100,000-long
 * chain completes without overflowing the stack (default 2000).  Inside a
 * compute function the cut can be seen as GV_EDEPTH through
 * gv_computed_error.  Re-validation after a write is iterative and has no such
 * limit. */
void gv_set_max_compute_depth(unsigned depth);

/* Runtimes not tied to a thread.  By default each thread has its own graph.
 * A runtime made by gv_runtime_new is a graph that any thread may use while
 * it is attached to it: gv_runtime_attach(rt) makes every call of the thread
 * work on `rt` until gv_runtime_attach(NULL) (or the previous value, which it
 * returns) switches back.  The caller must make sure that at most one thread
 * at a time is attached and calling (a mutex around each outermost use, as
 * the Python binding does with its graph lock), and may switch only with no
 * library call on its stack.  gv_runtime_free frees an unattached runtime
 * once all its nodes are gone; it returns false (and frees nothing) if any
 * node or scope is alive or a call is under way. */
typedef struct gv_runtime gv_runtime;
gv_runtime *gv_runtime_new(void);
gv_runtime *gv_runtime_attach(gv_runtime *rt);
bool gv_runtime_free(gv_runtime *rt);

/* Free the thread's runtime caches (link pools, work stacks).  Call after the
 * last node of the thread is gone, e.g. before a worker thread exits; threads
 * that exit without calling it release them automatically. */
void gv_runtime_release(void);

#ifdef __cplusplus
}
#endif

#endif /* GALVANI_SIGNALS_H */
