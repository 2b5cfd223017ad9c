/*
 * _core_signal.c — Signal and ComputeSignal: one Python type (PygSignal)
 * over either a libgalvani signal or a computed node; ComputeSignal is its
 * subclass with another constructor (_core.c has the whole picture).
 *
 * Who owns what
 * -------------
 * A node holds one reference to its value (pyg_value: a gv_ptr whose destroy
 * function queues the reference for the outermost leave).  Writing or
 * computing the very object the node already holds adds no reference:
 * libgalvani keeps that value as is.  A computed's Python side (its function,
 * its equality, the exception of its last run) lives in a malloc'd box owned
 * by the node, not by the Python object, because readers keep the node alive
 * after the Python object is gone; the node releases it through
 * gv_computed_set_ud_destroy.  A Signal's custom equality is the Python
 * object's, so the node's equality callback is unset before the object lets
 * go of the node.
 *
 * Python called from the graph
 * ----------------------------
 * libgalvani calls compute functions and equalities from inside a read or a
 * write, on the thread inside the graph, which holds the GIL (it entered the
 * graph from Python and only ever drops the GIL to wait for the lock).  While
 * a compute function runs, pyg_compute_depth is non-zero, so that a write
 * from inside it raises reaktiv's side-effect error.  A compute function that
 * raises fails its node (gv_fail, with a new message each time, so that every
 * failure is a change); the exception object stays in the box and reads
 * raise it again (pyg_raise_failure).  An equality that raises means
 * "different", as in reaktiv.
 *
 * The garbage collector
 * ---------------------
 * A value, a compute function or a kept traceback may refer back to the
 * signal, so tp_traverse visits what the node holds for Python, and
 * tp_clear lets go of the node (a later read raises "cleared").
 */
#include "_core.h"

#include <stdlib.h>

const char pyg_side_effect_msg[] =
    "Side effect detected: Cannot set Signal from within a ComputeSignal computation";

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

PyObject *pyg_readonly_type; /* galvani.ReadonlySignal, set by __init__ */

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
    pyg_compute_depth++;
    PyObject *r = PyObject_CallNoArgs(b->fn);
    pyg_compute_depth--;
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
    if (pyg_compute_depth > 0 && pyg_owner == PyThread_get_thread_ident()) {
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
        if (!pyg_readonly_type) {
            PyErr_SetString(PyExc_RuntimeError, "galvani: ReadonlySignal is not registered");
            return NULL;
        }
        self->readonly = PyObject_CallOneArg(pyg_readonly_type, (PyObject *)self);
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

PyTypeObject PygSignal_Type = {
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

PyTypeObject PygComputeSignal_Type = {
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
