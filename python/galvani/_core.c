/*
 * _core.c — galvani's CPython extension: reaktiv's Signal, ComputeSignal and
 * Effect on libgalvani's graph.  The Python half (galvani/__init__.py) adds
 * the factories, decorators and the long tail of reaktiv's API on top.
 *
 * One graph per interpreter
 * -------------------------
 * reaktiv has one graph that every thread may use.  libgalvani's graphs are
 * per thread by default, so the module makes one runtime (gv_runtime_new)
 * and attaches it to whichever thread enters the module.  Entering takes the
 * graph lock (a mutex, re-entrant per thread through g_depth), waiting for it
 * with the GIL released; leaving the outermost call releases it.  The GIL is
 * held whenever Python code runs, never across the wait.  With
 * set_thread_safety(False) the mutex is skipped, and a thread entering while
 * another one is inside gets a RuntimeError instead of corrupted memory.
 *
 * No Python code from inside libgalvani's bookkeeping
 * ---------------------------------------------------
 * Values are PyObject pointers (gv_ptr) whose destroy function only queues
 * the reference; the outermost leave() drops the queue.  A compute box
 * released by the core is queued the same way.  So a __del__ never runs
 * while libgalvani is in the middle of freeing nodes; it runs when the
 * outermost call returns, as if the release had happened then.  Compute and
 * effect functions, equality functions and cleanups are ordinary user code
 * for the core, which supports them doing anything, disposal included.
 *
 * Effects are weakly held, as in reaktiv
 * --------------------------------------
 * The graph never references a Python Effect object: when the last Python
 * reference goes, tp_dealloc disposes the C effect (running its cleanups).
 * The C side's state (function, cleanups, task) lives in a malloc'd box so
 * that a dealloc on a thread that cannot enter the graph right now (another
 * thread holds it) can hand the disposal to that thread (g_pending), which
 * does it when it leaves; meanwhile the orphaned effect does nothing.
 *
 * Errors
 * ------
 * A compute function that raises fails its node with gv_fail; the exception
 * object is kept in the node's box and re-raised to every reader until a
 * dependency changes, as reaktiv does.  Reads use gv_computed_error, which
 * never propagates, and raise on the Python side: an uncaught exception then
 * propagates through the reader's own compute function like any other.
 * Effects print exceptions (traceback) and carry on, like reaktiv; a
 * BaseException that is not an Exception (KeyboardInterrupt, SystemExit) is
 * re-raised by the outermost call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "galvani/signals.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Deep first reads of never-computed chains nest Python frames; past this
 * depth libgalvani resumes them slice by slice (signals.h,
 * gv_set_max_compute_depth), which keeps Python's recursion limit out of
 * reach. */
#define PYG_MAX_COMPUTE_DEPTH 150

/* Slot functions take the object's own struct type; calling them through the
 * generic slot types is how CPython works.  The cast goes through
 * void (*)(void), which -Wcast-function-type accepts. */
#define PYG_FN(f) ((void (*)(void))(f))

PyMODINIT_FUNC PyInit__core(void);

static const char pyg_side_effect_msg[] =
    "Side effect detected: Cannot set Signal from within a ComputeSignal computation";

/* ---- the graph lock ---------------------------------------------------- */

static gv_runtime *g_rt;
static PyThread_type_lock g_lock;
static unsigned long g_owner; /* thread inside the graph (valid while g_depth) */
static unsigned g_depth;      /* nesting of enter() on that thread */
static int g_locked;          /* g_lock is taken by the current entry */
static int g_thread_safety = 1;
static int g_compute_depth;   /* > 0: a compute function is the innermost run */
static PyObject *g_pending_exc; /* raised by the outermost leave() */
static PyObject *g_schedule_async; /* galvani._schedule_async(coro, first, loop) */

/* References dropped when the outermost call leaves (see the top). */
static PyObject **g_release;
static size_t g_nrelease, g_release_cap;

typedef struct pyg_ebox pyg_ebox;

/* Disposals handed over by threads that could not enter (see the top). */
enum { PYG_PEND_SIGNAL, PYG_PEND_COMPUTED, PYG_PEND_EFFECT };
typedef struct pyg_pend {
    int kind;
    void *handle;
} pyg_pend;
static pyg_pend *g_pend;
static size_t g_npend, g_pend_cap;

static int pyg_grow(void **arr, size_t *cap, size_t elem)
{
    size_t n = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, n * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = n;
    return 0;
}

/* Queue a reference to drop at the outermost leave (steals it). */
static void pyg_defer_decref(PyObject *o)
{
    if (!o)
        return;
    if (g_depth == 0 || (g_nrelease == g_release_cap &&
                         pyg_grow((void **)&g_release, &g_release_cap, sizeof *g_release) < 0)) {
        Py_DECREF(o); /* nobody inside, or out of memory: drop it now */
        return;
    }
    g_release[g_nrelease++] = o;
}

static void pyg_value_release(void *p)
{
    pyg_defer_decref((PyObject *)p);
}

static inline gv_value pyg_value(PyObject *o)
{
    return gv_ptr(o, pyg_value_release);
}

static inline PyObject *pyg_obj(const gv_value *v)
{
    return v->type == GV_POINTER ? (PyObject *)v->as.p : Py_None;
}

static void pyg_error_handler(const gv_error *err, const char *node_name, void *ud);

static void pyg_attach(void)
{
    gv_runtime_attach(g_rt);
    g_owner = PyThread_get_thread_ident();
    g_depth = 1;
}

/* Enter the graph; 0, or -1 with an exception set. */
static int pyg_enter(void)
{
    unsigned long me = PyThread_get_thread_ident();
    if (g_depth) {
        if (g_owner == me) {
            g_depth++;
            return 0;
        }
        /* Waiting is only possible for a thread that took the lock. */
        if (!g_thread_safety || !g_locked) {
            PyErr_SetString(PyExc_RuntimeError,
                            "galvani: the graph is in use by another thread and thread safety is disabled "
                            "(set_thread_safety(True))");
            return -1;
        }
    }
    if (g_thread_safety) {
        if (!PyThread_acquire_lock(g_lock, NOWAIT_LOCK)) {
            Py_BEGIN_ALLOW_THREADS
            PyThread_acquire_lock(g_lock, WAIT_LOCK);
            Py_END_ALLOW_THREADS
        }
        g_locked = 1;
    }
    pyg_attach();
    return 0;
}

/* Enter without waiting (for tp_dealloc): 1 if entered, 0 if another thread
 * is inside. */
static int pyg_enter_nowait(void)
{
    if (g_depth) {
        if (g_owner != PyThread_get_thread_ident())
            return 0;
        g_depth++;
        return 1;
    }
    if (g_thread_safety) {
        if (!PyThread_acquire_lock(g_lock, NOWAIT_LOCK))
            return 0;
        g_locked = 1;
    }
    pyg_attach();
    return 1;
}

static void pyg_ebox_dispose(pyg_ebox *b);

/* Work queued for the outermost call: disposals handed over by other
 * threads, then dropped references (which may queue more of both). */
static void pyg_drain(void)
{
    for (;;) {
        if (g_npend) {
            pyg_pend p = g_pend[--g_npend];
            if (p.kind == PYG_PEND_SIGNAL) {
                /* Its Python object is gone: no custom equality any more. */
                gv_signal_set_equal(p.handle, NULL, NULL);
                gv_signal_free(p.handle);
            }
            else if (p.kind == PYG_PEND_COMPUTED)
                gv_computed_free(p.handle);
            else
                pyg_ebox_dispose(p.handle);
        } else if (g_nrelease) {
            PyObject *o = g_release[--g_nrelease];
            Py_DECREF(o);
        } else {
            break;
        }
    }
}

/* Leave the graph; 0, or -1 with an exception set when the outermost call
 * has one to raise (an effect's KeyboardInterrupt, an effect cycle). */
static int pyg_leave(void)
{
    if (g_depth > 1) {
        g_depth--;
        return 0;
    }
    /* Still inside while draining: what the drained code does nests. */
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    pyg_drain();
    PyErr_Restore(et, ev, tb);
    g_depth = 0;
    g_owner = 0;
    gv_runtime_attach(NULL);
    if (g_locked) {
        g_locked = 0;
        PyThread_release_lock(g_lock);
    }
    if (g_pending_exc) {
        PyObject *e = g_pending_exc;
        g_pending_exc = NULL;
        if (PyErr_Occurred()) {
            Py_DECREF(e);
            return -1;
        }
        PyErr_SetObject((PyObject *)Py_TYPE(e), e);
        Py_DECREF(e);
        return -1;
    }
    return 0;
}

/* Hand a disposal to the thread that is inside (tp_dealloc elsewhere). */
static void pyg_pend_push(int kind, void *handle)
{
    if (g_npend == g_pend_cap && pyg_grow((void **)&g_pend, &g_pend_cap, sizeof *g_pend) < 0) {
        /* Out of memory: leaking the node is the only safe choice. */
        return;
    }
    g_pend[g_npend].kind = kind;
    g_pend[g_npend].handle = handle;
    g_npend++;
}

/* Keep the first BaseException an effect or cleanup raised for the
 * outermost leave(); print ordinary exceptions with their traceback. */
static void pyg_report_exception(void)
{
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    if (!et)
        return;
    PyErr_NormalizeException(&et, &ev, &tb);
    if (tb && ev)
        PyException_SetTraceback(ev, tb);
    if (ev && !PyErr_GivenExceptionMatches(et, PyExc_Exception)) {
        if (!g_pending_exc) {
            g_pending_exc = ev;
            ev = NULL;
        }
    } else if (ev) {
        PyErr_Display(et, ev, tb);
    }
    Py_XDECREF(et);
    Py_XDECREF(ev);
    Py_XDECREF(tb);
}

/* Failures nobody can read reach here: effect cycles (the flush gave up). */
static void pyg_error_handler(const gv_error *err, const char *node_name, void *ud)
{
    (void)node_name;
    (void)ud;
    if (g_pending_exc)
        return;
    const char *msg = err->code == GV_ECYCLE ? "Reactive cycle detected (effect iterations exceeded)" : err->message;
    g_pending_exc = PyObject_CallFunction(PyExc_RuntimeError, "s", msg);
    if (!g_pending_exc)
        PyErr_Clear();
}

/* ---- equality ---------------------------------------------------------- */

/* A custom equality: equal(old, new).  reaktiv treats a raising equality as
 * "different". */
static bool pyg_call_equal(PyObject *eq, const gv_value *a, const gv_value *b)
{
    if (a->type != GV_POINTER || b->type != GV_POINTER)
        return a->type == b->type && a->type == GV_NONE;
    PyObject *r = PyObject_CallFunctionObjArgs(eq, pyg_obj(a), pyg_obj(b), NULL);
    if (!r) {
        PyErr_Clear();
        return false;
    }
    int t = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (t < 0) {
        PyErr_Clear();
        return false;
    }
    return t == 1;
}

/* ---- Signal and ComputeSignal ------------------------------------------ */

/* What a computed node needs from Python; owned by the node (released
 * through gv_computed_set_ud_destroy when the node dies). */
typedef struct pyg_cbox {
    PyObject *fn;
    PyObject *equal; /* or NULL */
    PyObject *exc;   /* the exception of the last run, while it failed */
} pyg_cbox;

static unsigned long long g_fail_seq; /* makes every failure a new one */

static void pyg_cbox_release(void *p)
{
    pyg_cbox *b = p;
    pyg_defer_decref(b->fn);
    pyg_defer_decref(b->equal);
    pyg_defer_decref(b->exc);
    free(b);
}

typedef struct PygSignal {
    PyObject_HEAD
    gv_signal *sig;      /* Signal */
    gv_computed *comp;   /* ComputeSignal */
    pyg_cbox *box;       /* ComputeSignal: borrowed from the node */
    PyObject *equal;     /* Signal's custom equality, or NULL */
    PyObject *readonly;  /* as_readonly() cache */
    PyObject *weakrefs;
} PygSignal;

static PyTypeObject PygSignal_Type;
static PyTypeObject PygComputeSignal_Type;
static PyObject *g_readonly_type; /* galvani.ReadonlySignal, set by __init__ */

static bool pyg_signal_equal(const gv_value *a, const gv_value *b, void *ud)
{
    return pyg_call_equal(((PygSignal *)ud)->equal, a, b);
}

static bool pyg_computed_equal(const gv_value *a, const gv_value *b, void *ud)
{
    return pyg_call_equal(((pyg_cbox *)ud)->equal, a, b);
}

static PyObject *PygSignal_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"value", "equal", NULL};
    PyObject *value, *equal = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$O:Signal", kwlist, &value, &equal))
        return NULL;
    PygSignal *self = (PygSignal *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    if (pyg_enter() < 0) {
        Py_DECREF(self);
        return NULL;
    }
    Py_INCREF(value);
    self->sig = gv_signal_new(pyg_value(value));
    if (self->sig && equal != Py_None) {
        Py_INCREF(equal);
        self->equal = equal;
        gv_signal_set_equal(self->sig, pyg_signal_equal, self);
    }
    if (pyg_leave() < 0 || !self->sig) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void pyg_compute(gv_value *out, const gv_value *prev, void *ud)
{
    pyg_cbox *b = ud;
    g_compute_depth++;
    PyObject *r = PyObject_CallNoArgs(b->fn);
    g_compute_depth--;
    if (!r) {
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        PyErr_NormalizeException(&et, &ev, &tb);
        if (tb && ev)
            PyException_SetTraceback(ev, tb);
        Py_XDECREF(et);
        Py_XDECREF(tb);
        pyg_defer_decref(b->exc);
        b->exc = ev;
        gv_fail(GV_EFAIL, "python exception %llu", ++g_fail_seq);
        return;
    }
    pyg_defer_decref(b->exc);
    b->exc = NULL;
    /* The node already holds a reference to its previous value: handing the
     * very same object back must not add one (libgalvani keeps it as is). */
    if (prev->type == GV_POINTER && prev->as.p == r)
        Py_DECREF(r);
    *out = pyg_value(r);
}

static PyObject *PygComputeSignal_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"compute_fn", "equal", NULL};
    PyObject *fn, *equal = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$O:ComputeSignal", kwlist, &fn, &equal))
        return NULL;
    if (!PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "ComputeSignal: compute_fn must be callable");
        return NULL;
    }
    PygSignal *self = (PygSignal *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    pyg_cbox *b = calloc(1, sizeof *b);
    if (!b) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    Py_INCREF(fn);
    b->fn = fn;
    if (equal != Py_None) {
        Py_INCREF(equal);
        b->equal = equal;
    }
    if (pyg_enter() < 0) {
        pyg_cbox_release(b);
        Py_DECREF(self);
        return NULL;
    }
    self->comp = gv_computed_new(pyg_compute, b);
    if (self->comp) {
        self->box = b;
        gv_computed_set_ud_destroy(self->comp, pyg_cbox_release);
        if (b->equal)
            gv_computed_set_equal(self->comp, pyg_computed_equal, b);
    } else {
        pyg_cbox_release(b);
    }
    if (pyg_leave() < 0 || !self->comp) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* Release the node handle: now if this thread can enter, else by the thread
 * inside, when it leaves. */
static void pyg_signal_release_node(PygSignal *self)
{
    void *h = self->sig ? (void *)self->sig : (void *)self->comp;
    int kind = self->sig ? PYG_PEND_SIGNAL : PYG_PEND_COMPUTED;
    if (!h)
        return;
    self->sig = NULL;
    self->comp = NULL;
    self->box = NULL;
    if (!pyg_enter_nowait()) {
        pyg_pend_push(kind, h);
        return;
    }
    if (kind == PYG_PEND_SIGNAL) {
        /* The node may outlive this object (readers keep it): its equality
         * must not call back into freed memory. */
        gv_signal_set_equal(h, NULL, NULL);
        gv_signal_free(h);
    } else {
        gv_computed_free(h);
    }
    if (pyg_leave() < 0)
        PyErr_WriteUnraisable(NULL);
}

static int PygSignal_traverse(PygSignal *self, visitproc visit, void *arg)
{
    Py_VISIT(self->equal);
    Py_VISIT(self->readonly);
    if (self->sig) {
        Py_VISIT(pyg_obj(gv_signal_peek(self->sig)));
    } else if (self->comp && self->box) {
        Py_VISIT(pyg_obj(gv_computed_cached(self->comp)));
        Py_VISIT(self->box->fn);
        Py_VISIT(self->box->equal);
        Py_VISIT(self->box->exc); /* its traceback's frames may hold us */
    }
    return 0;
}

static int PygSignal_clear(PygSignal *self)
{
    Py_CLEAR(self->readonly);
    pyg_signal_release_node(self);
    Py_CLEAR(self->equal);
    return 0;
}

static void PygSignal_dealloc(PygSignal *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    PygSignal_clear(self);
    /* A Python subclass's subtype_dealloc drops the type's reference. */
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int pyg_check_node(PygSignal *self)
{
    if (self->sig || self->comp)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "galvani: signal was cleared by the garbage collector");
    return -1;
}

/* Raise what a failed computed holds. */
static void pyg_raise_failure(PygSignal *self, const gv_error *err)
{
    if (err->code == GV_EFAIL && self->box && self->box->exc) {
        PyObject *e = self->box->exc;
        PyObject *tb = PyException_GetTraceback(e);
        Py_INCREF(Py_TYPE(e));
        Py_INCREF(e);
        PyErr_Restore((PyObject *)Py_TYPE(e), e, tb);
    } else if (err->code == GV_ECYCLE) {
        PyErr_SetString(PyExc_RuntimeError, "Circular dependency detected");
    } else if (err->code == GV_ESIDEEFFECT) {
        PyErr_SetString(PyExc_RuntimeError, pyg_side_effect_msg);
    } else if (err->code == GV_EDEPTH) {
        /* Seen only inside a compute function; the outermost read resumes. */
        PyErr_SetString(PyExc_RecursionError, "galvani: computeds nested too deeply (resumed by the outermost read)");
    } else {
        PyErr_Format(PyExc_RuntimeError, "galvani: %s", err->message);
    }
}

/* The tracked read behind __call__ and get(). */
static PyObject *pyg_read(PygSignal *self, int tracked)
{
    if (pyg_check_node(self) < 0 || pyg_enter() < 0)
        return NULL;
    PyObject *r = NULL;
    if (self->sig) {
        r = pyg_obj(tracked ? gv_signal_get(self->sig) : gv_signal_peek(self->sig));
        Py_INCREF(r);
    } else {
        gv_untracked_t t = {0};
        if (!tracked)
            t = gv_untracked_begin();
        const gv_error *err = gv_computed_error(self->comp);
        if (!tracked)
            gv_untracked_end(t);
        if (err) {
            pyg_raise_failure(self, err);
        } else {
            r = pyg_obj(gv_computed_cached(self->comp));
            Py_INCREF(r);
        }
    }
    if (pyg_leave() < 0) {
        Py_XDECREF(r);
        return NULL;
    }
    return r;
}

static PyObject *PygSignal_call(PygSignal *self, PyObject *args, PyObject *kw)
{
    if (PyTuple_GET_SIZE(args) || (kw && PyDict_GET_SIZE(kw))) {
        PyErr_SetString(PyExc_TypeError, "a signal is called without arguments");
        return NULL;
    }
    return pyg_read(self, 1);
}

static PyObject *PygSignal_get(PygSignal *self, PyObject *unused)
{
    (void)unused;
    return pyg_read(self, 1);
}

static PyObject *PygSignal_peek(PygSignal *self, PyObject *unused)
{
    (void)unused;
    return pyg_read(self, 0);
}

/* Write `v` (borrowed) inside the graph. */
static void pyg_write(PygSignal *self, PyObject *v)
{
    PyObject *cur = pyg_obj(gv_signal_peek(self->sig));
    if (v == cur && !self->equal)
        return; /* identity: equal, nothing happens */
    /* The node keeps a reference of its own; the very object it already
     * holds is kept as is (see signals.h, gv_signal_set). */
    if (v != cur)
        Py_INCREF(v);
    gv_signal_set(self->sig, pyg_value(v));
}

static int pyg_check_writable(PygSignal *self)
{
    if (self->comp) {
        PyErr_SetString(PyExc_AttributeError, "Cannot manually set value of ComputeSignal");
        return -1;
    }
    if (pyg_check_node(self) < 0)
        return -1;
    if (g_compute_depth > 0 && g_owner == PyThread_get_thread_ident()) {
        PyErr_SetString(PyExc_RuntimeError, pyg_side_effect_msg);
        return -1;
    }
    return 0;
}

static PyObject *PygSignal_set(PygSignal *self, PyObject *v)
{
    if (pyg_check_writable(self) < 0 || pyg_enter() < 0)
        return NULL;
    pyg_write(self, v);
    if (pyg_leave() < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *PygSignal_update(PygSignal *self, PyObject *fn)
{
    if (pyg_check_writable(self) < 0 || pyg_enter() < 0)
        return NULL;
    /* Read-modify-write under the graph lock, like reaktiv's signal lock. */
    PyObject *v = PyObject_CallOneArg(fn, pyg_obj(gv_signal_peek(self->sig)));
    if (v) {
        if (self->sig)
            pyg_write(self, v);
        Py_DECREF(v);
    }
    if (pyg_leave() < 0 || !v)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *PygSignal_as_readonly(PygSignal *self, PyObject *unused)
{
    (void)unused;
    if (!self->readonly) {
        if (!g_readonly_type) {
            PyErr_SetString(PyExc_RuntimeError, "galvani: ReadonlySignal is not registered");
            return NULL;
        }
        self->readonly = PyObject_CallOneArg(g_readonly_type, (PyObject *)self);
        if (!self->readonly)
            return NULL;
    }
    Py_INCREF(self->readonly);
    return self->readonly;
}

static PyObject *PygSignal_repr(PygSignal *self)
{
    const char *name = self->comp ? "Computed" : "Signal";
    if (!self->sig && !self->comp)
        return PyUnicode_FromFormat("%s(<cleared>)", name);
    if (self->comp) {
        /* Like reaktiv: the stored value, without computing anything. */
        return PyUnicode_FromFormat("%s(value=%R)", name, pyg_obj(gv_computed_cached(self->comp)));
    }
    return PyUnicode_FromFormat("%s(value=%R)", name, pyg_obj(gv_signal_peek(self->sig)));
}

/* Introspection used by the tests: subscriber and dependency counts. */
static PyObject *PygSignal_subscribers(PygSignal *self, PyObject *unused)
{
    (void)unused;
    if (pyg_check_node(self) < 0 || pyg_enter() < 0)
        return NULL;
    size_t n = self->sig ? gv_signal_subscriber_count(self->sig) : gv_computed_subscriber_count(self->comp);
    if (pyg_leave() < 0)
        return NULL;
    return PyLong_FromSize_t(n);
}

static PyMethodDef PygSignal_methods[] = {
    {"get", (PyCFunction)PYG_FN(PygSignal_get), METH_NOARGS, "Read the value (tracked inside a computed or effect)."},
    {"peek", (PyCFunction)PYG_FN(PygSignal_peek), METH_NOARGS, "Read the value without tracking."},
    {"set", (PyCFunction)PYG_FN(PygSignal_set), METH_O, "Write a new value; notifies readers unless equal."},
    {"update", (PyCFunction)PYG_FN(PygSignal_update), METH_O, "Write fn(current value)."},
    {"as_readonly", (PyCFunction)PYG_FN(PygSignal_as_readonly), METH_NOARGS, "A read-only view of this signal."},
    {"_subscriber_count", (PyCFunction)PYG_FN(PygSignal_subscribers), METH_NOARGS, NULL},
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PygSignal_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "galvani.Signal",
    .tp_basicsize = sizeof(PygSignal),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Signal(value, *, equal=None): a writable reactive value (reaktiv's Signal).",
    .tp_new = PygSignal_new,
    .tp_dealloc = (destructor)PYG_FN(PygSignal_dealloc),
    .tp_traverse = (traverseproc)PYG_FN(PygSignal_traverse),
    .tp_clear = (inquiry)PYG_FN(PygSignal_clear),
    .tp_call = (ternaryfunc)PYG_FN(PygSignal_call),
    .tp_repr = (reprfunc)PYG_FN(PygSignal_repr),
    .tp_methods = PygSignal_methods,
    .tp_weaklistoffset = offsetof(PygSignal, weakrefs),
};

static PyTypeObject PygComputeSignal_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "galvani.ComputeSignal",
    .tp_basicsize = sizeof(PygSignal),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "ComputeSignal(compute_fn, *, equal=None): a lazy, cached derived value (reaktiv's Computed).",
    .tp_new = PygComputeSignal_new,
    .tp_dealloc = (destructor)PYG_FN(PygSignal_dealloc),
    .tp_traverse = (traverseproc)PYG_FN(PygSignal_traverse),
    .tp_clear = (inquiry)PYG_FN(PygSignal_clear),
    .tp_call = (ternaryfunc)PYG_FN(PygSignal_call),
    .tp_repr = (reprfunc)PYG_FN(PygSignal_repr),
    .tp_weaklistoffset = offsetof(PygSignal, weakrefs),
};

/* ---- Effect ------------------------------------------------------------ */

/* The C side of an effect (see the top: it may outlive the Python object
 * until the thread inside the graph disposes it). */
struct pyg_ebox {
    gv_effect *eff;       /* NULL once disposed */
    PyObject *self;       /* the Python Effect (borrowed), NULL once it died */
    PyObject *fn;
    PyObject *run_cleanups;  /* cleanups of the last run, in registration order */
    PyObject *new_cleanups;  /* collected by the run under way */
    PyObject *task;       /* async: the rest of the last run, on the loop */
    PyObject *loop;       /* async: the loop running when it was created */
    uint8_t is_async, accepts_cleanup, running, orphan;
};

typedef struct PygEffect {
    PyObject_HEAD
    pyg_ebox *box;
    PyObject *weakrefs;
} PygEffect;

static PyTypeObject PygEffect_Type;

/* Cancel the asynchronous rest of the previous run, if still going. */
static void pyg_cancel_task(pyg_ebox *b)
{
    PyObject *task = b->task;
    if (!task)
        return;
    b->task = NULL;
    PyObject *r = PyObject_CallMethod(task, "cancel", NULL);
    if (!r)
        pyg_report_exception();
    Py_XDECREF(r);
    pyg_defer_decref(task);
}

/* libgalvani cleanup registered by each run that collected any: calls them
 * in registration order (reaktiv's), see docs/signals.md. */
static void pyg_effect_cleanups(void *ud)
{
    pyg_ebox *b = ud;
    PyObject *list = b->run_cleanups;
    b->run_cleanups = NULL;
    if (!list)
        return;
    Py_ssize_t n = PyList_GET_SIZE(list);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *r = PyObject_CallNoArgs(PyList_GET_ITEM(list, i));
        if (!r)
            pyg_report_exception();
        Py_XDECREF(r);
    }
    pyg_defer_decref(list);
}

static int pyg_add_cleanup(pyg_ebox *b, PyObject *fn)
{
    if (!b->new_cleanups) {
        b->new_cleanups = PyList_New(0);
        if (!b->new_cleanups)
            return -1;
    }
    return PyList_Append(b->new_cleanups, fn);
}

/* on_cleanup(fn): the registrar handed to effect functions that take one
 * argument. */
static PyObject *pyg_on_cleanup(PyObject *capsule, PyObject *fn)
{
    pyg_ebox *b = PyCapsule_GetPointer(capsule, "galvani.ebox");
    if (!b)
        return NULL;
    if (!PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "on_cleanup expects a callable");
        return NULL;
    }
    if (!b->running || b->orphan)
        Py_RETURN_NONE; /* the run is over: nothing would ever call it */
    if (pyg_add_cleanup(b, fn) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef pyg_on_cleanup_def = {"on_cleanup", (PyCFunction)PYG_FN(pyg_on_cleanup), METH_O,
                                         "Register a function to run before the next run and on dispose."};

/* Start an async run: call the coroutine function, run its first step here,
 * where reads are tracked, and hand the rest to the loop (README: async). */
static PyObject *pyg_effect_start_async(pyg_ebox *b, PyObject *coro)
{
    PyObject *first = NULL;
    PySendResult res = PyIter_Send(coro, Py_None, &first);
    if (res == PYGEN_ERROR)
        return NULL;
    if (res == PYGEN_RETURN) {
        Py_XDECREF(first);
        Py_RETURN_NONE;
    }
    PyObject *loop = b->loop ? b->loop : Py_None;
    PyObject *task = g_schedule_async ? PyObject_CallFunctionObjArgs(g_schedule_async, coro, first, loop, NULL) : NULL;
    Py_DECREF(first);
    if (!task) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "galvani: async effects need galvani's scheduler");
        PyObject *r = PyObject_CallMethod(coro, "close", NULL);
        Py_XDECREF(r);
        return NULL;
    }
    b->task = task;
    Py_RETURN_NONE;
}

static void pyg_effect_run(void *ud)
{
    pyg_ebox *b = ud;
    if (b->orphan || !b->fn)
        return;
    /* The Python object stays alive for the run (reaktiv's effect is
     * referenced by its own running frame); dropped at the outermost leave. */
    if (b->self)
        Py_INCREF(b->self);
    PyObject *keep = b->self;
    pyg_cancel_task(b);
    int saved_compute = g_compute_depth;
    g_compute_depth = 0;
    b->running = 1;
    PyObject *r;
    if (b->accepts_cleanup) {
        PyObject *cap = PyCapsule_New(b, "galvani.ebox", NULL);
        PyObject *reg = cap ? PyCFunction_New(&pyg_on_cleanup_def, cap) : NULL;
        Py_XDECREF(cap);
        r = reg ? PyObject_CallOneArg(b->fn, reg) : NULL;
        Py_XDECREF(reg);
    } else {
        r = PyObject_CallNoArgs(b->fn);
    }
    if (r && b->is_async && PyCoro_CheckExact(r)) {
        PyObject *s = pyg_effect_start_async(b, r);
        Py_DECREF(r);
        r = s;
    } else if (r && r != Py_None && PyCallable_Check(r)) {
        if (pyg_add_cleanup(b, r) < 0) {
            Py_DECREF(r);
            r = NULL;
        }
    }
    if (!r)
        pyg_report_exception();
    Py_XDECREF(r);
    b->running = 0;
    g_compute_depth = saved_compute;
    if (b->new_cleanups) {
        pyg_defer_decref(b->run_cleanups); /* ran already, at the start of this run */
        b->run_cleanups = b->new_cleanups;
        b->new_cleanups = NULL;
        if (!gv_on_cleanup(pyg_effect_cleanups, b))
            Py_CLEAR(b->run_cleanups);
    }
    pyg_defer_decref(keep);
}

static void pyg_ebox_free(pyg_ebox *b)
{
    pyg_defer_decref(b->fn);
    pyg_defer_decref(b->run_cleanups);
    pyg_defer_decref(b->new_cleanups);
    pyg_defer_decref(b->loop);
    free(b);
}

/* Dispose the C effect (its cleanups run), cancel its async rest, free the
 * box.  Called inside the graph. */
static void pyg_ebox_dispose(pyg_ebox *b)
{
    gv_effect *e = b->eff;
    b->eff = NULL;
    b->orphan = 1;
    gv_effect_free(e);
    pyg_cancel_task(b);
    pyg_ebox_free(b);
}

static PyObject *PygEffect_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"func", "is_async", "accepts_cleanup", NULL};
    PyObject *fn;
    int is_async = 0, accepts = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|pp:Effect", kwlist, &fn, &is_async, &accepts))
        return NULL;
    if (!PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "Effect: func must be callable");
        return NULL;
    }
    PygEffect *self = (PygEffect *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    pyg_ebox *b = calloc(1, sizeof *b);
    if (!b) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    Py_INCREF(fn);
    b->fn = fn;
    b->self = (PyObject *)self;
    b->is_async = (uint8_t)is_async;
    b->accepts_cleanup = (uint8_t)accepts;
    if (is_async) {
        /* Reruns triggered from another thread go to this loop. */
        PyObject *asyncio = PyImport_ImportModule("asyncio");
        PyObject *loop = asyncio ? PyObject_CallMethod(asyncio, "get_running_loop", NULL) : NULL;
        Py_XDECREF(asyncio);
        if (!loop)
            PyErr_Clear(); /* no loop running now: found when a run needs one */
        b->loop = loop;
    }
    self->box = b;
    if (pyg_enter() < 0) {
        Py_DECREF(self);
        return NULL;
    }
    /* A root effect: it lives as long as its Python handle, even when made
     * inside another effect (reaktiv has no ownership between effects). */
    b->eff = gv_effect_new_root(pyg_effect_run, b);
    if (!b->eff) /* disposed during its first run, or out of memory */
        b->orphan = 1;
    if (pyg_leave() < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* Detach the box from the Python object and dispose it: now, or by the
 * thread inside the graph. */
static void pyg_effect_release(PygEffect *self)
{
    pyg_ebox *b = self->box;
    if (!b)
        return;
    self->box = NULL;
    b->self = NULL;
    b->orphan = 1;
    if (!pyg_enter_nowait()) {
        pyg_pend_push(PYG_PEND_EFFECT, b);
        return;
    }
    pyg_ebox_dispose(b);
    if (pyg_leave() < 0)
        PyErr_WriteUnraisable(NULL);
}

static PyObject *PygEffect_dispose(PygEffect *self, PyObject *unused)
{
    (void)unused;
    pyg_ebox *b = self->box;
    if (!b || !b->eff) {
        if (b)
            b->orphan = 1;
        Py_RETURN_NONE;
    }
    if (pyg_enter() < 0)
        return NULL;
    gv_effect *e = b->eff;
    b->eff = NULL;
    b->orphan = 1;
    gv_effect_free(e); /* cleanups run now (or when its own run returns) */
    pyg_cancel_task(b);
    if (pyg_leave() < 0)
        return NULL;
    Py_RETURN_NONE;
}

static int PygEffect_traverse(PygEffect *self, visitproc visit, void *arg)
{
    pyg_ebox *b = self->box;
    if (b) {
        Py_VISIT(b->fn);
        Py_VISIT(b->run_cleanups);
        Py_VISIT(b->new_cleanups);
        Py_VISIT(b->task);
    }
    return 0;
}

static int PygEffect_clear(PygEffect *self)
{
    /* Unreachable: collected like reaktiv's weakly referenced effect. */
    pyg_effect_release(self);
    return 0;
}

static void PygEffect_dealloc(PygEffect *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    pyg_effect_release(self);
    /* A Python subclass's subtype_dealloc drops the type's reference. */
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *PygEffect_get_disposed(PygEffect *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(!self->box || !self->box->eff);
}

static PyObject *PygEffect_get_task(PygEffect *self, void *closure)
{
    (void)closure;
    PyObject *t = self->box && self->box->task ? self->box->task : Py_None;
    Py_INCREF(t);
    return t;
}

static PyObject *PygEffect_repr(PygEffect *self)
{
    return PyUnicode_FromFormat("Effect(fn=%R, disposed=%s)", self->box ? self->box->fn : Py_None,
                                (!self->box || !self->box->eff) ? "True" : "False");
}

static PyMethodDef PygEffect_methods[] = {
    {"dispose", (PyCFunction)PYG_FN(PygEffect_dispose), METH_NOARGS,
     "Stop the effect: run its cleanups, unsubscribe, cancel its async task."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef PygEffect_getset[] = {
    {"_disposed", (getter)PYG_FN(PygEffect_get_disposed), NULL, NULL, NULL},
    {"_task", (getter)PYG_FN(PygEffect_get_task), NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject PygEffect_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "galvani._core.Effect",
    .tp_basicsize = sizeof(PygEffect),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C base of galvani.Effect.",
    .tp_new = PygEffect_new,
    .tp_dealloc = (destructor)PYG_FN(PygEffect_dealloc),
    .tp_traverse = (traverseproc)PYG_FN(PygEffect_traverse),
    .tp_clear = (inquiry)PYG_FN(PygEffect_clear),
    .tp_repr = (reprfunc)PYG_FN(PygEffect_repr),
    .tp_methods = PygEffect_methods,
    .tp_getset = PygEffect_getset,
    .tp_weaklistoffset = offsetof(PygEffect, weakrefs),
};

/* ---- batch() and untracked() context managers -------------------------- */

typedef struct PygScope {
    PyObject_HEAD
    int untracked;       /* 0: batch, 1: untracked */
    int entered;
    gv_untracked_t saved;
} PygScope;

static PyTypeObject PygScope_Type;

static PyObject *PygScope_enter(PygScope *self, PyObject *unused)
{
    (void)unused;
    if (self->entered) {
        PyErr_SetString(PyExc_RuntimeError, "galvani: this context manager is already entered");
        return NULL;
    }
    /* The graph stays entered for the whole block, as a batch must. */
    if (pyg_enter() < 0)
        return NULL;
    self->entered = 1;
    if (self->untracked)
        self->saved = gv_untracked_begin();
    else
        gv_batch_begin();
    Py_RETURN_NONE;
}

static PyObject *PygScope_exit(PygScope *self, PyObject *args)
{
    (void)args;
    if (!self->entered)
        Py_RETURN_FALSE;
    self->entered = 0;
    if (self->untracked)
        gv_untracked_end(self->saved);
    else
        gv_batch_end();
    if (pyg_leave() < 0)
        return NULL;
    Py_RETURN_FALSE;
}

static void PygScope_dealloc(PygScope *self)
{
    if (self->entered) {
        /* Abandoned inside its block (a generator never resumed): close it. */
        PyObject *r = PygScope_exit(self, NULL);
        if (!r)
            PyErr_WriteUnraisable(NULL);
        Py_XDECREF(r);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef PygScope_methods[] = {
    {"__enter__", (PyCFunction)PYG_FN(PygScope_enter), METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)PYG_FN(PygScope_exit), METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PygScope_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "galvani._core.Scope",
    .tp_basicsize = sizeof(PygScope),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "batch() / untracked() context manager.",
    .tp_dealloc = (destructor)PYG_FN(PygScope_dealloc),
    .tp_methods = PygScope_methods,
};

static PyObject *pyg_new_scope(int untracked)
{
    PygScope *s = PyObject_New(PygScope, &PygScope_Type);
    if (!s)
        return NULL;
    s->untracked = untracked;
    s->entered = 0;
    s->saved.saved = NULL;
    return (PyObject *)s;
}

static PyObject *pyg_batch(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return pyg_new_scope(0);
}

static PyObject *pyg_untracked(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "untracked() takes at most one argument");
        return NULL;
    }
    if (nargs == 0 || args[0] == Py_None)
        return pyg_new_scope(1);
    if (pyg_enter() < 0)
        return NULL;
    gv_untracked_t t = gv_untracked_begin();
    PyObject *r = PyObject_CallNoArgs(args[0]);
    gv_untracked_end(t);
    if (pyg_leave() < 0) {
        Py_XDECREF(r);
        return NULL;
    }
    return r;
}

/* ---- module functions --------------------------------------------------- */

static PyObject *pyg_set_thread_safety(PyObject *mod, PyObject *arg)
{
    (void)mod;
    int on = PyObject_IsTrue(arg);
    if (on < 0)
        return NULL;
    g_thread_safety = on;
    Py_RETURN_NONE;
}

static PyObject *pyg_is_thread_safety_enabled(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return PyBool_FromLong(g_thread_safety);
}

static PyObject *pyg_stats(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    if (pyg_enter() < 0)
        return NULL;
    gv_stats st;
    gv_get_stats(&st);
    if (pyg_leave() < 0)
        return NULL;
    return Py_BuildValue("{s:n,s:n,s:n,s:n,s:K,s:K}", "signals", (Py_ssize_t)st.signals, "computeds",
                         (Py_ssize_t)st.computeds, "effects", (Py_ssize_t)st.effects, "links",
                         (Py_ssize_t)st.links, "computes", (unsigned long long)st.computes, "effect_runs",
                         (unsigned long long)st.effect_runs);
}

static PyObject *pyg_register(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *readonly, *schedule;
    if (!PyArg_ParseTuple(args, "OO:_register", &readonly, &schedule))
        return NULL;
    Py_INCREF(readonly);
    Py_XSETREF(g_readonly_type, readonly);
    Py_INCREF(schedule);
    Py_XSETREF(g_schedule_async, schedule);
    Py_RETURN_NONE;
}

static PyMethodDef pyg_functions[] = {
    {"batch", (PyCFunction)PYG_FN(pyg_batch), METH_NOARGS,
     "batch(): a context manager; effects run once when the outermost batch ends."},
    {"untracked", (PyCFunction)PYG_FN(pyg_untracked), METH_FASTCALL,
     "untracked(fn_or_signal=None): call without tracking, or a context manager."},
    {"set_thread_safety", (PyCFunction)PYG_FN(pyg_set_thread_safety), METH_O, "Enable or disable the graph lock."},
    {"is_thread_safety_enabled", (PyCFunction)PYG_FN(pyg_is_thread_safety_enabled), METH_NOARGS, NULL},
    {"_stats", (PyCFunction)PYG_FN(pyg_stats), METH_NOARGS, "libgalvani's live-node counters (tests)."},
    {"_register", (PyCFunction)PYG_FN(pyg_register), METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef pyg_module = {
    PyModuleDef_HEAD_INIT, "galvani._core", "libgalvani's graph for Python (see galvani).", -1, pyg_functions,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__core(void)
{
    PygComputeSignal_Type.tp_base = &PygSignal_Type;
    PyTypeObject *types[] = {&PygSignal_Type, &PygComputeSignal_Type, &PygEffect_Type, &PygScope_Type};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (PyType_Ready(types[i]) < 0)
            return NULL;
    if (!g_rt) {
        g_rt = gv_runtime_new();
        g_lock = PyThread_allocate_lock();
        if (!g_rt || !g_lock)
            return PyErr_NoMemory();
        gv_runtime *prev = gv_runtime_attach(g_rt);
        gv_set_error_handler(pyg_error_handler, NULL);
        gv_set_max_compute_depth(PYG_MAX_COMPUTE_DEPTH);
        gv_runtime_attach(prev);
    }
    PyObject *m = PyModule_Create(&pyg_module);
    if (!m)
        return NULL;
    if (PyModule_AddObjectRef(m, "Signal", (PyObject *)&PygSignal_Type) < 0 ||
        PyModule_AddObjectRef(m, "ComputeSignal", (PyObject *)&PygComputeSignal_Type) < 0 ||
        PyModule_AddObjectRef(m, "Effect", (PyObject *)&PygEffect_Type) < 0 ||
        PyModule_AddStringConstant(m, "SIDE_EFFECT_MESSAGE", pyg_side_effect_msg) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
