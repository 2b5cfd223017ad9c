/*
 * _core_effect.c — Effect: an effect function run by libgalvani's graph
 * whenever what it read changes, with reaktiv's cleanups and async effects
 * (_core.c has the whole picture).
 *
 * Effects are weakly held, as in reaktiv
 * --------------------------------------
 * The graph never references a Python Effect object: when the last Python
 * reference goes, tp_dealloc disposes the C effect (running its cleanups).
 * The C side's state (function, cleanups, task) lives in a malloc'd box so
 * that a dealloc on a thread that cannot enter the graph right now (another
 * thread holds it) can hand the disposal to that thread (g_pend in _core.c),
 * which does it when it leaves; meanwhile the orphaned effect does nothing.
 *
 * How a run calls Python
 * ----------------------
 * libgalvani calls pyg_effect_run once when the effect is made, and again
 * when it flushes effects after something the last run read changed; always
 * on the thread inside the graph, which holds the GIL.  The run keeps the
 * Python object alive until the outermost leave, and clears
 * pyg_compute_depth for its duration: an effect may write, even one made by
 * a compute function.  Cleanups registered during a run (the returned
 * callable, or on_cleanup for functions that take one argument) are kept in
 * a list and handed to libgalvani as one gv_on_cleanup, which calls them in
 * registration order before the next run and on dispose.  An async effect
 * function's first step runs inside the run, where its reads are tracked;
 * the rest goes to galvani._schedule_async on the event loop.  Exceptions
 * are reported (pyg_report_exception: printed, or a BaseException kept for
 * the outermost leave); they never stop the flush.
 */
#include "_core.h"

#include <stdint.h>
#include <stdlib.h>

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
    PyObject *task = pyg_schedule_async ? PyObject_CallFunctionObjArgs(pyg_schedule_async, coro, first, loop, NULL) : NULL;
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
    int saved_compute = pyg_compute_depth;
    pyg_compute_depth = 0;
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
    pyg_compute_depth = saved_compute;
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
void pyg_ebox_dispose(pyg_ebox *b)
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

PyTypeObject PygEffect_Type = {
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
