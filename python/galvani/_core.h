/*
 * _core.h — what the files of galvani._core share (internal: included by
 * _core.c, _core_signal.c and _core_effect.c, installed nowhere).
 *
 * The extension is one shared object, built from these files and, by
 * setup.py, from libgalvani's sources too: everything declared here has the
 * module's prefix (pyg_, Pyg, PYG_), and everything else stays static in its
 * file.  It is what the types need from the graph's owner (_core.c: entering
 * and leaving, the references queued for the outermost leave, the hand-over
 * of disposals, reporting an effect's exception), and what _core.c needs
 * back from them (the types, an effect box's disposal).
 */
#ifndef GALVANI_PY_CORE_H
#define GALVANI_PY_CORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "galvani/signals.h"

/* Slot functions take the object's own struct type; calling them through the
 * generic slot types is how CPython works.  The cast goes through
 * void (*)(void), which -Wcast-function-type accepts. */
#define PYG_FN(f) ((void (*)(void))(f))

/* ---- the graph (_core.c) ------------------------------------------------ */

/* The thread inside the graph (valid while it is entered). */
extern unsigned long pyg_owner;
/* > 0: a compute function is the innermost run (writes raise). */
extern int pyg_compute_depth;
/* galvani._schedule_async(coro, first, loop), set by _register. */
extern PyObject *pyg_schedule_async;

/* Enter the graph, waiting for it with the GIL released; 0, or -1 with an
 * exception set. */
int pyg_enter(void);
/* Enter without waiting (for tp_dealloc): 1 if entered, 0 if another thread
 * is inside. */
int pyg_enter_nowait(void);
/* Leave the graph; 0, or -1 with an exception set when the outermost call
 * has one to raise. */
int pyg_leave(void);

/* Queue a reference to drop at the outermost leave (steals it). */
void pyg_defer_decref(PyObject *o);
/* A value's destroy function: pyg_defer_decref. */
void pyg_value_release(void *p);

/* A Python object as a node's value; the node owns the reference. */
static inline gv_value pyg_value(PyObject *o)
{
    return gv_ptr(o, pyg_value_release);
}

/* A node's value as a borrowed Python object (None for no value). */
static inline PyObject *pyg_obj(const gv_value *v)
{
    return v->type == GV_POINTER ? (PyObject *)v->as.p : Py_None;
}

/* What a disposal handed to the thread inside is (pyg_pend_push). */
enum { PYG_PEND_SIGNAL, PYG_PEND_COMPUTED, PYG_PEND_EFFECT };
/* Hand a disposal to the thread that is inside (tp_dealloc elsewhere). */
void pyg_pend_push(int kind, void *handle);

/* Print the current exception, or keep a BaseException for the outermost
 * leave (what effects and cleanups do with what they raise). */
void pyg_report_exception(void);

/* ---- Signal and ComputeSignal (_core_signal.c) -------------------------- */

extern PyTypeObject PygSignal_Type;
extern PyTypeObject PygComputeSignal_Type; /* tp_base set by PyInit__core */
/* galvani.ReadonlySignal, set by _register. */
extern PyObject *pyg_readonly_type;
/* reaktiv's message for a write from inside a compute function. */
extern const char pyg_side_effect_msg[];

/* ---- Effect (_core_effect.c) -------------------------------------------- */

extern PyTypeObject PygEffect_Type;
/* An effect's C side, which may outlive its Python object. */
typedef struct pyg_ebox pyg_ebox;
/* Dispose the C effect (its cleanups run), cancel its async rest, free the
 * box.  Called inside the graph. */
void pyg_ebox_dispose(pyg_ebox *b);

#endif
