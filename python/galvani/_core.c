/*
 * _core.c — galvani's CPython extension: reaktiv's Signal, ComputeSignal and
 * Effect on libgalvani's graph.  The Python half (galvani/__init__.py) adds
 * the factories, decorators and the long tail of reaktiv's API on top.
 *
 * The module is four files, one concern each:
 *   _core.c         this file: the graph (its lock, the work queued for the
 *                   outermost call, errors), batch() and untracked(), the
 *                   module functions and PyInit__core;
 *   _core_signal.c  Signal and ComputeSignal (values, equality, compute
 *                   functions and their failures);
 *   _core_effect.c  Effect (runs, cleanups, async runs, weak handles);
 *   _core.h         what they share.
 * The graph's state stays static here: the types only enter and leave, queue
 * references and hand disposals over, through the functions in _core.h.
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
 * Disposals from threads that cannot enter
 * ----------------------------------------
 * A tp_dealloc may run on a thread that cannot enter the graph right now
 * (another thread holds it) and must not wait for it.  It hands the node (or
 * the effect's box, _core_effect.c) to the thread inside (g_pend), which
 * frees it when it leaves.
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
#include "_core.h"

#include <stdlib.h>

/* Deep first reads of never-computed chains nest Python frames; past this
 * depth libgalvani resumes them slice by slice (signals.h,
 * gv_set_max_compute_depth), which keeps Python's recursion limit out of
 * reach. */
#define PYG_MAX_COMPUTE_DEPTH 150

PyMODINIT_FUNC PyInit__core(void);

/* ---- the graph lock ---------------------------------------------------- */

static gv_runtime *g_rt;
static PyThread_type_lock g_lock;
unsigned long pyg_owner;      /* thread inside the graph (valid while g_depth) */
static unsigned g_depth;      /* nesting of enter() on that thread */
static int g_locked;          /* g_lock is taken by the current entry */
static int g_thread_safety = 1;
int pyg_compute_depth;        /* > 0: a compute function is the innermost run */
static PyObject *g_pending_exc; /* raised by the outermost leave() */
PyObject *pyg_schedule_async; /* galvani._schedule_async(coro, first, loop) */

/* References dropped when the outermost call leaves (see the top). */
static PyObject **g_release;
static size_t g_nrelease, g_release_cap;

/* Disposals handed over by threads that could not enter (see the top). */
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
void pyg_defer_decref(PyObject *o)
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

void pyg_value_release(void *p)
{
    pyg_defer_decref((PyObject *)p);
}

static void pyg_error_handler(const gv_error *err, const char *node_name, void *ud);

static void pyg_attach(void)
{
    gv_runtime_attach(g_rt);
    pyg_owner = PyThread_get_thread_ident();
    g_depth = 1;
}

/* Enter the graph; 0, or -1 with an exception set. */
int pyg_enter(void)
{
    unsigned long me = PyThread_get_thread_ident();
    if (g_depth) {
        if (pyg_owner == me) {
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
int pyg_enter_nowait(void)
{
    if (g_depth) {
        if (pyg_owner != PyThread_get_thread_ident())
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
int pyg_leave(void)
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
    pyg_owner = 0;
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
void pyg_pend_push(int kind, void *handle)
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
void pyg_report_exception(void)
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
    Py_XSETREF(pyg_readonly_type, readonly);
    Py_INCREF(schedule);
    Py_XSETREF(pyg_schedule_async, schedule);
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
