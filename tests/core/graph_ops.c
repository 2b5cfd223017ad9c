/*
 * graph_ops.c — the operation language of the randomized differential test,
 * its interpreter over the real libgalvani API, the reference model and the
 * checker (see graph_ops.h for the shape of a program).
 *
 * The model
 * ---------
 * Values.  Signals hold small ints (0..15).  A computed's value is a pure
 * function of the current signal values, given by its body: it mixes what its
 * reads return (acc = (acc * 3 + x) % 23), may branch on a value (read A; if
 * odd read B else C: dynamic dependencies), and may fail (gv_fail) when acc
 * hits a residue.  Untracked reads (peeks, reads between gv_untracked_begin
 * and end) are checked but do not feed the result: nothing re-runs when they
 * change, so a value built on them would depend on history.  The model evaluates a body naively from the program's
 * description, memoized only per "epoch" (bumped by every change of a signal
 * value), so it shares nothing with the library's caching.  Some nodes have a
 * custom equality, "equal modulo k"; the library then keeps an old value equal
 * to the new one, so a reader of such a node only uses its value modulo k and
 * values are compared by the node's equality.  Failures carry the code of the
 * computed that failed (100 + its slot): propagation keeps the origin's code.
 * Every value the library hands out — top-level reads, reads inside compute
 * functions, effects, cleanups, the error handler — must equal the model at
 * that moment.  That also checks glitch-freedom: a function never sees a mix
 * of old and new values.
 *
 * Runs.  The order in which the library runs things is its own business; what
 * is checked is, in lock-step:
 *   - no unjustified run: a compute or effect function that runs again must
 *     have had a reason, i.e. one of the nodes it read (tracked) in its
 *     previous run now has a different value (by that node's equality) than
 *     it saw, or that node's change counter moved since.  The
 *     counter follows the documented rules in an order-independent way: a
 *     computed's counter moves when an evaluation's result differs (by its
 *     equality) from its previous evaluation's; a signal's counter is its
 *     version as signals.h and docs/signals.md define it: a write that
 *     changes the value gives a new one, except that inside a batch, or a
 *     flush, a write that brings the value back to the one it had when the
 *     batch (flush) began gives back the version of then.  So a batch that
 *     sets a signal to a new value and back, unobserved in between, justifies
 *     nothing, and neither does an effect's write of a new value and back;
 *     a reader that saw the detour does re-run;
 *   - no missed run: at quiescence (after every top-level operation) every
 *     live effect saw, in its last run, the values the model gives now for
 *     every node it read;
 *   - disposal: an effect's function never runs after the effect was disposed
 *     (explicitly, by its owner's disposal, or by its owner's re-run), nor a
 *     compute function once nothing can need its computed (handle freed, no
 *     read of it in progress, no live reader read it in its last run); every
 *     cleanup runs exactly once, before the next run or at disposal, newest
 *     first, after the effects its run created were disposed (unless those
 *     are running, were freed explicitly, or the disposal was started by a
 *     cleanup: then theirs may still be on the stack); gv_effect_new returns
 *     NULL exactly when the new effect was disposed during its first run or
 *     the flush after it (not when its owner was disposed while the owner's
 *     function runs: that disposal completes when the run returns);
 *   - errors: the error handler is called exactly for the effect runs that the
 *     model says failed (reading a failing computed with a propagating read,
 *     or failing by itself), with that code;
 *   - at the end everything is freed and gv_get_stats shows as many live
 *     nodes, scopes and links as before the program.
 *
 * Well-formedness.  The interpreter keeps every program inside the API's
 * contract whatever the bytes say: a handle is never used after the program
 * freed it (handles of signals and computeds that a live body reads are
 * "pinned": freeing them is deferred until no live body can read them any
 * more; a body instantiated after a node it names was freed reads the
 * nearest live node instead); an effect's handle is forgotten the moment its owner re-runs or is
 * disposed (the interpreter tracks the owner tree itself); a scope is never
 * freed while it is entered; effects only write constants (possibly a value
 * and back), each signal has at most one writing body, and a body never
 * writes what it reads itself, so the writes converge; a cleanup or the error handler reads a computed only when
 * no compute function is running (a read of a computed that is being
 * validated is a cycle for the library).
 */
#include "graph_ops.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "galvani/signals.h"

/* ------------------------------------------------------------------------ */
/* The program                                                               */
/* ------------------------------------------------------------------------ */

#define GO_MAXV 24       /* signals + computeds */
#define GO_MAXOPS 600    /* top-level operations */
#define GO_MAXSTEPS 6    /* steps of one body */
#define GO_MAXBODIES 1024
#define GO_MAXDEPTH 2    /* nesting of child effect bodies */
#define GO_MAXI 1024     /* effect instances per program */
#define GO_MAXSC 256     /* scopes per program */
#define GO_MAXCL 4096    /* cleanup registrations per program */
#define GO_MAXR 16       /* tracked reads recorded per run */
#define GO_MAXSUB 4      /* operations in a batch */

enum go_step_kind { ST_READ, ST_COND, ST_FAIL, ST_ACT, ST_CHILD, ST_SCOPE_CHILD, ST_CLEANUP, ST_WRITE };
enum go_read_mode { RM_GET, RM_CATCH, RM_PEEK, RM_UNTRACKED };
enum go_act_kind { AC_DISPOSE, AC_FREE_SCOPE, AC_FREE_VAL, AC_READ };
enum go_op_kind {
    OP_NOP, OP_SIGNAL, OP_COMPUTED, OP_EFFECT, OP_SCOPE, OP_SET, OP_BATCH, OP_READ,
    OP_FREE_VAL, OP_FREE_EFFECT, OP_FREE_SCOPE, OP_HANDLER
};
enum go_sub_kind { SUB_SET, SUB_SETBACK, SUB_READ };

/* An action inside a callback.  `target` selects at run time among what
 * exists then (low 2 bits: self / owner / sibling / by index for effects);
 * `when` says on which run of the node it fires (0: every run). */
typedef struct go_act {
    uint8_t kind, target, when;
} go_act;

typedef struct go_step {
    uint8_t kind, mode;
    uint8_t a, b, c; /* node slots (READ, COND), modulus and residue (FAIL),
                        signal slot and constant (WRITE) */
    bool off;        /* decoded but inert (no node to read, no body left...) */
    go_act act;
    int child; /* body index (CHILD, SCOPE_CHILD) */
} go_step;

typedef struct go_body {
    bool effect;
    uint8_t nsteps, base;
    go_step steps[GO_MAXSTEPS];
} go_body;

typedef struct go_sub {
    uint8_t kind, slot, v;
    bool same;
} go_sub;

typedef struct go_op {
    uint8_t kind;
    uint8_t slot; /* node created / set / read / freed */
    uint8_t v, eqk, sel, nsub;
    bool same, in_scope;
    int body;
    go_act act;
    go_sub sub[GO_MAXSUB];
} go_op;

typedef struct go_prog {
    go_op ops[GO_MAXOPS];
    size_t nops;
    size_t starts[GO_MAXOPS];
    go_body bodies[GO_MAXBODIES];
    int nbodies;
    uint8_t vkind[GO_MAXV]; /* OP_SIGNAL or OP_COMPUTED */
    int nvals;
} go_prog;

/* ------------------------------------------------------------------------ */
/* Decoding: every byte string is a program                                  */
/* ------------------------------------------------------------------------ */

typedef struct go_rd {
    const uint8_t *p;
    size_t n, i;
} go_rd;

static uint8_t rd(go_rd *r)
{
    return r->i < r->n ? r->p[r->i++] : 0;
}

/* Weighted choice of the next top-level operation. */
static const uint8_t go_op_table[32] = {
    OP_SIGNAL, OP_SIGNAL, OP_SIGNAL, OP_COMPUTED, OP_COMPUTED, OP_COMPUTED, OP_COMPUTED, OP_COMPUTED,
    OP_EFFECT, OP_EFFECT, OP_EFFECT, OP_EFFECT, OP_EFFECT, OP_SCOPE, OP_SET, OP_SET,
    OP_SET, OP_SET, OP_SET, OP_SET, OP_SET, OP_BATCH, OP_BATCH, OP_BATCH,
    OP_READ, OP_READ, OP_READ, OP_FREE_VAL, OP_FREE_EFFECT, OP_FREE_EFFECT, OP_FREE_SCOPE, OP_HANDLER,
};

static int go_signal_ref(const go_prog *g, uint8_t byte)
{
    int nsig = 0;
    for (int i = 0; i < g->nvals; i++)
        nsig += g->vkind[i] == OP_SIGNAL;
    if (nsig == 0)
        return -1;
    int k = byte % nsig;
    for (int i = 0; i < g->nvals; i++)
        if (g->vkind[i] == OP_SIGNAL && k-- == 0)
            return i;
    return -1;
}

static bool go_body_reads(const go_body *b, int slot)
{
    for (int i = 0; i < b->nsteps; i++) {
        const go_step *s = &b->steps[i];
        if (s->off)
            continue;
        if (s->kind == ST_READ && s->a == slot)
            return true;
        if (s->kind == ST_COND && (s->a == slot || s->b == slot || s->c == slot))
            return true;
    }
    return false;
}

static int go_decode_body(go_prog *g, go_rd *r, bool effect, int depth)
{
    if (g->nbodies == GO_MAXBODIES)
        return -1;
    int id = g->nbodies++;
    go_body *b = &g->bodies[id];
    memset(b, 0, sizeof *b);
    b->effect = effect;
    b->nsteps = (uint8_t)(1 + rd(r) % GO_MAXSTEPS);
    b->base = rd(r) % 8;
    for (int i = 0; i < b->nsteps; i++) {
        go_step *s = &b->steps[i];
        uint8_t k = rd(r) % 16;
        if (!effect) {
            static const uint8_t ct[16] = {ST_READ, ST_READ, ST_READ, ST_READ, ST_READ, ST_READ, ST_COND, ST_COND,
                                           ST_FAIL, ST_FAIL, ST_ACT, ST_ACT, ST_READ, ST_READ, ST_COND, ST_ACT};
            s->kind = ct[k];
        } else {
            static const uint8_t et[16] = {ST_READ, ST_READ, ST_READ, ST_READ, ST_COND, ST_FAIL, ST_ACT, ST_ACT,
                                           ST_CHILD, ST_CHILD, ST_SCOPE_CHILD, ST_CLEANUP, ST_CLEANUP, ST_WRITE,
                                           ST_WRITE, ST_READ};
            s->kind = et[k];
        }
        switch (s->kind) {
        case ST_READ: {
            uint8_t node = rd(r), mode = rd(r) % 8;
            s->mode = mode < 4 ? RM_GET : mode < 6 ? RM_CATCH : mode == 6 ? RM_PEEK : RM_UNTRACKED;
            s->off = g->nvals == 0;
            s->a = g->nvals ? (uint8_t)(node % g->nvals) : 0;
            break;
        }
        case ST_COND: {
            uint8_t x = rd(r), y = rd(r), z = rd(r);
            s->off = g->nvals == 0;
            if (g->nvals) {
                s->a = (uint8_t)(x % g->nvals);
                s->b = (uint8_t)(y % g->nvals);
                s->c = (uint8_t)(z % g->nvals);
            }
            break;
        }
        case ST_FAIL:
            s->a = (uint8_t)(2 + rd(r) % 4);
            s->b = (uint8_t)(rd(r) % s->a);
            break;
        case ST_ACT: {
            static const uint8_t kinds[4] = {AC_DISPOSE, AC_DISPOSE, AC_FREE_SCOPE, AC_FREE_VAL};
            s->act.kind = kinds[rd(r) % 4];
            s->act.target = rd(r);
            s->act.when = rd(r);
            break;
        }
        case ST_CLEANUP:
            s->act.kind = rd(r) % 4;
            s->act.target = rd(r);
            break;
        case ST_CHILD:
        case ST_SCOPE_CHILD:
            if (depth >= GO_MAXDEPTH) {
                s->off = true;
                break;
            }
            s->child = go_decode_body(g, r, true, depth + 1);
            b = &g->bodies[id]; /* (the pool does not move; keep the pointer honest anyway) */
            s->off = s->child < 0;
            break;
        case ST_WRITE: {
            int sig = go_signal_ref(g, rd(r));
            uint8_t v = rd(r);
            s->b = v % 16;
            /* 1: and back (a detour inside the flush), 2: the same in a batch
             * of the effect's own (nested in the flush), 3: just in a batch */
            s->c = (uint8_t)((v >> 4) % 6 < 3 ? 0 : (v >> 4) % 6 - 2);
            s->off = sig < 0;
            s->a = sig < 0 ? 0 : (uint8_t)sig;
            break;
        }
        }
    }
    /* A body never writes what it reads itself, nor one signal twice: its
     * writes must converge. */
    for (int i = 0; i < b->nsteps; i++) {
        go_step *w = &b->steps[i];
        if (w->kind != ST_WRITE || w->off)
            continue;
        if (go_body_reads(b, w->a))
            w->off = true;
        for (int k = 0; k < i; k++)
            if (b->steps[k].kind == ST_WRITE && !b->steps[k].off && b->steps[k].a == w->a)
                w->off = true;
    }
    return id;
}

static uint8_t go_decode_eq(go_rd *r)
{
    uint8_t e = rd(r);
    return e % 4 == 0 ? (uint8_t)(2 + (e >> 2) % 3) : 0;
}

static void go_decode(go_prog *g, const uint8_t *data, size_t size)
{
    go_rd r = {data, size, 0};
    g->nops = 0;
    g->nbodies = 0;
    g->nvals = 0;
    while (r.i < r.n && g->nops < GO_MAXOPS) {
        g->starts[g->nops] = r.i;
        go_op *op = &g->ops[g->nops++];
        memset(op, 0, sizeof *op);
        op->body = -1;
        op->kind = go_op_table[rd(&r) % 32];
        /* Operations on nodes when there is none yet make a signal. */
        if (g->nvals == 0 && op->kind != OP_SCOPE && op->kind != OP_HANDLER && op->kind != OP_FREE_EFFECT &&
            op->kind != OP_FREE_SCOPE)
            op->kind = OP_SIGNAL;
        /* With every node slot taken, a new node becomes a write. */
        if ((op->kind == OP_SIGNAL || op->kind == OP_COMPUTED) && g->nvals == GO_MAXV)
            op->kind = OP_SET;
        switch (op->kind) {
        case OP_SIGNAL:
            op->v = rd(&r) % 16;
            op->eqk = go_decode_eq(&r);
            break;
        case OP_COMPUTED:
            op->body = go_decode_body(g, &r, false, 0);
            op->eqk = go_decode_eq(&r);
            break;
        case OP_EFFECT: {
            uint8_t x = rd(&r);
            op->in_scope = x % 4 == 0;
            op->sel = x >> 2;
            op->body = go_decode_body(g, &r, true, 0);
            if (op->body < 0)
                op->kind = OP_NOP;
            break;
        }
        case OP_SET: {
            int sig = go_signal_ref(g, rd(&r));
            uint8_t v = rd(&r);
            op->slot = (uint8_t)sig;
            op->v = v % 16;
            op->same = ((v >> 4) & 7) == 0;
            if (sig < 0)
                op->kind = OP_NOP;
            break;
        }
        case OP_BATCH:
            op->nsub = (uint8_t)(1 + rd(&r) % GO_MAXSUB);
            for (int i = 0; i < op->nsub; i++) {
                go_sub *s = &op->sub[i];
                uint8_t k = rd(&r) % 4;
                s->kind = k < 2 ? SUB_SET : k == 2 ? SUB_SETBACK : SUB_READ;
                uint8_t x = rd(&r), v = rd(&r);
                if (s->kind == SUB_READ) {
                    s->slot = (uint8_t)(x % g->nvals);
                } else {
                    int sig = go_signal_ref(g, x);
                    s->slot = (uint8_t)(sig < 0 ? 0 : sig);
                    if (sig < 0)
                        s->kind = SUB_READ;
                    s->v = v % 16;
                    s->same = ((v >> 4) & 7) == 0;
                }
            }
            break;
        case OP_READ:
        case OP_FREE_VAL:
            op->slot = (uint8_t)(rd(&r) % g->nvals);
            break;
        case OP_FREE_EFFECT:
        case OP_FREE_SCOPE:
            op->sel = rd(&r);
            break;
        case OP_HANDLER:
            op->act.kind = rd(&r) % 4;
            op->act.target = rd(&r);
            break;
        default:
            break;
        }
        if (op->kind == OP_SIGNAL || op->kind == OP_COMPUTED) {
            if (op->kind == OP_COMPUTED && op->body < 0) {
                op->kind = OP_NOP;
            } else {
                op->slot = (uint8_t)g->nvals;
                g->vkind[g->nvals++] = op->kind;
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Printing                                                                  */
/* ------------------------------------------------------------------------ */

static const go_prog *go_pp; /* the program being printed (node kinds) */

static void go_print_node(FILE *out, int slot)
{
    fprintf(out, "%c%d", go_pp->vkind[slot] == OP_SIGNAL ? 's' : 'c', slot);
}

/* Targets are picked at run time among what exists then: "#n" is the n-th
 * (modulo their number) live effect, scope or not-yet-freed node. */
static void go_print_act(FILE *out, const go_act *a, bool when, bool compute)
{
    static const char *const names[] = {"dispose-effect", "free-scope", "free-value", "read"};
    static const char *const modes[] = {"self, else ", "owner, else ", "sibling, else ", ""};
    fprintf(out, "%s", names[a->kind]);
    if (a->kind == AC_DISPOSE && compute && (a->target & 3) == 1)
        fprintf(out, "(an effect that read it, else #%d)", a->target >> 2);
    else if (a->kind == AC_DISPOSE && !(compute && (a->target & 3) != 3))
        fprintf(out, "(%s#%d)", modes[a->target & 3], a->target >> 2);
    else if (a->kind == AC_DISPOSE)
        fprintf(out, "(#%d)", a->target >> 2);
    else
        fprintf(out, "(#%d)", a->target);
    if (when) {
        if (a->when & 3)
            fprintf(out, " on run %d", a->when & 3);
        else
            fprintf(out, " on every run");
    }
}

static void go_print_body(FILE *out, const go_prog *g, int id, int indent)
{
    static const char *const modes[] = {"get", "catch", "peek", "untracked-get"};
    const go_body *b = &g->bodies[id];
    fprintf(out, "{ base %d\n", b->base);
    for (int i = 0; i < b->nsteps; i++) {
        const go_step *s = &b->steps[i];
        fprintf(out, "%*s", indent + 2, "");
        if (s->off)
            fprintf(out, "(off) ");
        switch (s->kind) {
        case ST_READ:
            fprintf(out, "%s ", modes[s->mode]);
            go_print_node(out, s->a);
            break;
        case ST_COND:
            fprintf(out, "get ");
            go_print_node(out, s->a);
            fprintf(out, "; if odd get ");
            go_print_node(out, s->b);
            fprintf(out, " else get ");
            go_print_node(out, s->c);
            break;
        case ST_FAIL:
            fprintf(out, "fail if acc %% %d == %d", s->a, s->b);
            break;
        case ST_ACT:
            go_print_act(out, &s->act, true, !b->effect);
            break;
        case ST_CLEANUP:
            fprintf(out, "on-cleanup ");
            go_print_act(out, &s->act, false, false);
            break;
        case ST_CHILD:
        case ST_SCOPE_CHILD:
            fprintf(out, "%s ", s->kind == ST_CHILD ? "child-effect" : "scope+child-effect");
            if (!s->off)
                go_print_body(out, g, s->child, indent + 2);
            break;
        case ST_WRITE:
            fprintf(out, "write ");
            go_print_node(out, s->a);
            fprintf(out, " := %d%s", s->b,
                    s->c == 1 ? " and back" : s->c == 2 ? " and back, in a batch" : s->c == 3 ? " in a batch" : "");
            break;
        }
        fprintf(out, "\n");
    }
    fprintf(out, "%*s}", indent, "");
}

void go_print(const uint8_t *data, size_t size, FILE *out)
{
    go_prog *g = malloc(sizeof *g);
    if (!g) {
        fprintf(out, "(out of memory)\n");
        return;
    }
    go_decode(g, data, size);
    go_pp = g;
    for (size_t i = 0; i < g->nops; i++) {
        const go_op *op = &g->ops[i];
        fprintf(out, "#%zu ", i);
        switch (op->kind) {
        case OP_NOP:
            fprintf(out, "nop");
            break;
        case OP_SIGNAL:
            fprintf(out, "signal s%d = %d", op->slot, op->v);
            if (op->eqk)
                fprintf(out, " (equal mod %d)", op->eqk);
            break;
        case OP_COMPUTED:
            fprintf(out, "computed c%d", op->slot);
            if (op->eqk)
                fprintf(out, " (equal mod %d)", op->eqk);
            fprintf(out, " ");
            go_print_body(out, g, op->body, 0);
            break;
        case OP_EFFECT:
            fprintf(out, "effect");
            if (op->in_scope)
                fprintf(out, " in scope #%d (if there is one)", op->sel);
            fprintf(out, " ");
            go_print_body(out, g, op->body, 0);
            break;
        case OP_SCOPE:
            fprintf(out, "scope");
            break;
        case OP_SET:
            fprintf(out, "set s%d := ", op->slot);
            if (op->same)
                fprintf(out, "(its current value)");
            else
                fprintf(out, "%d", op->v);
            break;
        case OP_BATCH:
            fprintf(out, "batch {");
            for (int k = 0; k < op->nsub; k++) {
                const go_sub *s = &op->sub[k];
                if (s->kind == SUB_READ) {
                    fprintf(out, " read ");
                    go_print_node(out, s->slot);
                } else if (s->kind == SUB_SETBACK) {
                    fprintf(out, " set s%d := %d and back", s->slot, s->v);
                } else if (s->same) {
                    fprintf(out, " set s%d := (its current value)", s->slot);
                } else {
                    fprintf(out, " set s%d := %d", s->slot, s->v);
                }
                fprintf(out, k + 1 < op->nsub ? ";" : " }");
            }
            break;
        case OP_READ:
            fprintf(out, "read ");
            go_print_node(out, op->slot);
            break;
        case OP_FREE_VAL:
            fprintf(out, "free ");
            go_print_node(out, op->slot);
            break;
        case OP_FREE_EFFECT:
            fprintf(out, "free effect #%d", op->sel);
            break;
        case OP_FREE_SCOPE:
            fprintf(out, "free scope #%d", op->sel);
            break;
        case OP_HANDLER:
            fprintf(out, "error handler will ");
            go_print_act(out, &op->act, false, false);
            break;
        }
        fprintf(out, "\n");
    }
    free(g);
}

size_t go_op_starts(const uint8_t *data, size_t size, size_t *starts, size_t max)
{
    go_prog *g = malloc(sizeof *g);
    if (!g)
        return 0;
    go_decode(g, data, size);
    size_t n = g->nops;
    for (size_t i = 0; i < n && i < max; i++)
        starts[i] = g->starts[i];
    free(g);
    return n;
}

void go_generate(uint64_t seed, uint8_t *buf, size_t size)
{
    uint64_t x = seed;
    for (size_t i = 0; i < size; i += 8) {
        /* splitmix64 */
        uint64_t z = (x += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        for (size_t k = 0; k < 8 && i + k < size; k++)
            buf[i + k] = (uint8_t)(z >> (8 * k));
    }
}

/* ------------------------------------------------------------------------ */
/* Interpreter state                                                         */
/* ------------------------------------------------------------------------ */

/* A result as the model sees it: a value, or a failure with its code. */
typedef struct go_res {
    bool err;
    int64_t v; /* value, or error code (-1: "some error", from a peek) */
} go_res;

/* The tracked reads of one run, with what they saw. */
typedef struct go_rec {
    int n;
    struct {
        uint8_t node;
        go_res seen;  /* what the first read of the run saw */
        go_res last;  /* what the last read of the run saw */
        uint64_t cnt; /* the node's counter (version) after the first read */
    } r[GO_MAXR];
} go_rec;

typedef struct go_val {
    uint8_t kind;
    int eqk; /* 0: default equality; else "equal modulo eqk" (the equality's ud) */
    int body;
    gv_signal *s;
    gv_computed *c;
    int64_t value;          /* signals: the model's value */
    bool requested, freed;  /* the program asked to free the handle / it did */
    bool pins_held;         /* computeds: its body pins what it reads */
    int pins;               /* live bodies that may still read (or write) it */
    int running, runs;
    int reading;            /* computeds: reads of it in progress (the reader's
                               call keeps it needed even if its handle goes) */
    uint64_t cnt;           /* signals: the model's version; computeds: observed changes */
    go_res last_eval;       /* computeds: the last evaluation's result */
    bool has_eval;
    go_body rb;             /* computeds: the body, resolved against the live nodes */
    go_rec rec;             /* computeds: the tracked reads of the last run */
    uint64_t memo_epoch;
    go_res memo;
    bool memo_valid;
} go_val;

typedef struct go_inst {
    int body;
    gv_effect *h;        /* NULL until gv_effect_new returned, or if it returned NULL */
    int parent, scope;   /* owner: effect instance or scope, -1 if none */
    int created_run;     /* the owner effect's run that created it */
    bool disposed;       /* disposal requested (handle invalid from then on) */
    bool detached;       /* freed explicitly: it left its owner at once */
    bool pins_held;
    int running, runs;
    int pending_err;     /* code the error handler must report for the last run */
    int cleanups;        /* newest registered cleanup, -1 if none */
    int nseq;
    go_body rb;          /* the body, resolved against the live nodes */
    go_rec rec;
} go_inst;

typedef struct go_scope {
    gv_scope *h;
    int parent, created_run;
    bool disposed, entered, detached;
} go_scope;

typedef struct go_cln {
    int inst, run, seq, next;
    go_act act;
    bool done;
} go_cln;

enum go_ctx_kind { CX_TOP, CX_COMPUTE, CX_EFFECT, CX_CLEANUP, CX_HANDLER };
typedef struct go_ctx {
    int kind;
    int id; /* value slot (CX_COMPUTE) or effect instance (others), -1 if none */
} go_ctx;

typedef struct go_state {
    go_prog prog;
    unsigned flags;
    go_val vals[GO_MAXV];
    int nvals;
    go_inst insts[GO_MAXI];
    int ninst;
    go_scope scopes[GO_MAXSC];
    int nscopes;
    go_cln clns[GO_MAXCL];
    int ncln;
    int writer[GO_MAXV]; /* body that owns the writes to a signal, -1 */
    int64_t seg_value[GO_MAXV]; /* signal values and versions when the current */
    uint64_t seg_cnt[GO_MAXV];  /* batch or flush began */
    uint64_t vclock;            /* the model's last signal version */
    uint64_t epoch;
    int batch_depth;
    int compute_depth;
    int cleanup_depth; /* cleanups on the stack */
    int last_finished; /* effect instance whose function returned last */
    bool has_handler_act;
    go_act handler_act;
    size_t op_index;
    bool at_end;
    go_result *res;
} go_state;

static go_state *S;

static void go_fail(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static void go_fail(const char *fmt, ...)
{
    if (S->res->failed)
        return;
    S->res->failed = true;
    S->res->op_index = S->op_index;
    int n = snprintf(S->res->message, sizeof S->res->message, "op #%zu%s: ", S->op_index,
                     S->at_end ? " (final cleanup)" : "");
    if (n < 0)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(S->res->message + n, sizeof S->res->message - (size_t)n, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------ */
/* The model                                                                 */
/* ------------------------------------------------------------------------ */

static bool go_eq_mod(const gv_value *a, const gv_value *b, void *ud)
{
    int k = *(const int *)ud;
    if (a->type != GV_INT || b->type != GV_INT)
        return gv_value_equal(a, b);
    return (a->as.i - b->as.i) % k == 0;
}

static bool go_res_eq(int slot, go_res x, go_res y)
{
    if (x.err || y.err)
        return x.err == y.err && (x.v == y.v || x.v == -1 || y.v == -1);
    int k = S->vals[slot].eqk;
    return k ? (x.v - y.v) % k == 0 : x.v == y.v;
}

/* What a read contributes to the reader's accumulator: a failure read without
 * propagating counts as 7; a value modulo the node's equality, so that a
 * value kept because it is "equal" gives the same result as the new one. */
static int64_t go_contrib(int slot, go_res r)
{
    if (r.err)
        return 7;
    int k = S->vals[slot].eqk;
    return k ? r.v % k : r.v;
}

static int64_t go_mix(int64_t acc, int64_t x)
{
    return (acc * 3 + x) % 23;
}

static void go_res_str(char *buf, size_t size, go_res r)
{
    if (!r.err)
        snprintf(buf, size, "%" PRId64, r.v);
    else if (r.v == -1)
        snprintf(buf, size, "a failure");
    else
        snprintf(buf, size, "failure %" PRId64, r.v);
}

static go_res go_model(int slot);

static go_res go_model_body(int slot)
{
    const go_body *b = &S->vals[slot].rb;
    int64_t acc = b->base;
    for (int i = 0; i < b->nsteps; i++) {
        const go_step *s = &b->steps[i];
        if (s->off)
            continue;
        if (s->kind == ST_READ) {
            go_res r = go_model(s->a);
            if (r.err && s->mode == RM_GET)
                return r;
            if (s->mode == RM_GET || s->mode == RM_CATCH)
                acc = go_mix(acc, go_contrib(s->a, r));
        } else if (s->kind == ST_COND) {
            go_res r = go_model(s->a);
            if (r.err)
                return r;
            int64_t x = go_contrib(s->a, r);
            acc = go_mix(acc, x);
            int t = (x & 1) ? s->b : s->c;
            r = go_model(t);
            if (r.err)
                return r;
            acc = go_mix(acc, go_contrib(t, r));
        } else if (s->kind == ST_FAIL) {
            if (acc % s->a == s->b)
                return (go_res){true, 100 + slot};
        }
    }
    return (go_res){false, acc};
}

/* The value of a node now: signals hold it, computeds are evaluated from
 * their description (memoized per epoch of signal values). */
static go_res go_model(int slot)
{
    go_val *v = &S->vals[slot];
    if (v->kind == OP_SIGNAL)
        return (go_res){false, v->value};
    if (v->memo_valid && v->memo_epoch == S->epoch)
        return v->memo;
    go_res r = go_model_body(slot);
    v->memo = r;
    v->memo_epoch = S->epoch;
    v->memo_valid = true;
    return r;
}

static void go_rec_add(go_rec *rec, int slot, go_res seen)
{
    for (int i = 0; i < rec->n; i++)
        if (rec->r[i].node == slot) {
            /* A node read again after it changed during the run: the run
             * may be re-run for the first read (the library records the
             * version a node had when the run first read it). */
            rec->r[i].last = seen;
            return;
        }
    if (rec->n == GO_MAXR)
        return;
    rec->r[rec->n].node = (uint8_t)slot;
    rec->r[rec->n].seen = seen;
    rec->r[rec->n].last = seen;
    rec->r[rec->n].cnt = S->vals[slot].cnt;
    rec->n++;
}

static void go_rec_describe(const go_rec *rec, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < rec->n && len + 48 < size; i++) {
        char a[32], b[32];
        int slot = rec->r[i].node;
        go_res_str(a, sizeof a, rec->r[i].seen);
        go_res_str(b, sizeof b, go_model(slot));
        int n = snprintf(buf + len, size - len, "%s%c%d saw %s now %s (changes %" PRIu64 " -> %" PRIu64 ")",
                         i ? ", " : "", S->vals[slot].kind == OP_SIGNAL ? 's' : 'c', slot, a, b, rec->r[i].cnt,
                         S->vals[slot].cnt);
        if (n < 0)
            break;
        len += (size_t)n;
    }
}

/* A re-run must be justified by something it read last time. */
static void go_check_justified(const go_rec *rec, const char *who)
{
    for (int i = 0; i < rec->n; i++) {
        int slot = rec->r[i].node;
        if (S->vals[slot].cnt != rec->r[i].cnt || !go_res_eq(slot, go_model(slot), rec->r[i].seen))
            return;
    }
    char buf[400];
    go_rec_describe(rec, buf, sizeof buf);
    go_fail("unjustified re-run of %s: nothing it read changed [%s]", who, rec->n ? buf : "it read nothing");
}

/* ------------------------------------------------------------------------ */
/* Handles: pins, frees, disposal                                            */
/* ------------------------------------------------------------------------ */

static void go_try_free(int slot);

/* A live holder (a computed with its handle, an effect not disposed) pins
 * what its resolved body reads or writes: those handles stay valid. */
static void go_pin_body(const go_body *b, int delta)
{
    for (int i = 0; i < b->nsteps; i++) {
        const go_step *s = &b->steps[i];
        uint8_t slots[3];
        int n = 0;
        if (s->off)
            continue;
        if (s->kind == ST_READ || s->kind == ST_WRITE)
            slots[n++] = s->a;
        else if (s->kind == ST_COND) {
            slots[n++] = s->a;
            slots[n++] = s->b;
            slots[n++] = s->c;
        }
        for (int k = 0; k < n; k++) {
            S->vals[slots[k]].pins += delta;
            if (delta < 0)
                go_try_free(slots[k]);
        }
    }
}

/* A node for a body to use instead of `slot` if its handle is gone: the
 * nearest one below it that the program has not freed (or above, when
 * `limit` < 0: only computeds must read older nodes, to stay acyclic). */
static int go_live_slot(int slot, int limit, bool signal_only)
{
    if (!S->vals[slot].freed && (limit < 0 || slot < limit))
        return slot;
    for (int k = (limit >= 0 && limit <= slot ? limit : slot) - 1; k >= 0; k--)
        if (!S->vals[k].requested && (!signal_only || S->vals[k].kind == OP_SIGNAL))
            return k;
    if (limit < 0)
        for (int k = slot + 1; k < S->nvals; k++)
            if (!S->vals[k].requested && (!signal_only || S->vals[k].kind == OP_SIGNAL))
                return k;
    return -1;
}

/* Resolve a body's node references for a new holder: a node the program has
 * freed since the body was decoded is replaced by a live one (so a late body
 * still has something to read); with none left the step is off. */
static void go_resolve(const go_body *src, go_body *dst, int limit, const char *who)
{
    *dst = *src;
    for (int i = 0; i < dst->nsteps; i++) {
        go_step *st = &dst->steps[i];
        if (st->off)
            continue;
        uint8_t *refs[3];
        int n = 0;
        if (st->kind == ST_READ || st->kind == ST_WRITE)
            refs[n++] = &st->a;
        else if (st->kind == ST_COND) {
            refs[n++] = &st->a;
            refs[n++] = &st->b;
            refs[n++] = &st->c;
        }
        for (int k = 0; k < n; k++) {
            int r = go_live_slot(*refs[k], limit, st->kind == ST_WRITE);
            if (r < 0) {
                st->off = true;
            } else if (r != *refs[k]) {
                if (S->flags & GO_TRACE)
                    fprintf(stderr, "   %s: step %d uses %c%d for %c%d (freed)\n", who, i,
                            S->vals[r].kind == OP_SIGNAL ? 's' : 'c', r,
                            S->vals[*refs[k]].kind == OP_SIGNAL ? 's' : 'c', *refs[k]);
                *refs[k] = (uint8_t)r;
            }
        }
    }
    /* The writes must still converge (see go_decode_body). */
    for (int i = 0; i < dst->nsteps; i++) {
        go_step *w = &dst->steps[i];
        if (w->kind != ST_WRITE || w->off)
            continue;
        if (go_body_reads(dst, w->a))
            w->off = true;
        for (int k = 0; k < i; k++)
            if (dst->steps[k].kind == ST_WRITE && !dst->steps[k].off && dst->steps[k].a == w->a)
                w->off = true;
    }
}

static void go_release_val(int slot)
{
    go_val *v = &S->vals[slot];
    if (v->pins_held) {
        v->pins_held = false;
        go_pin_body(&v->rb, -1);
    }
}

/* Free the handle once it was asked for and no live body may read it. */
static void go_try_free(int slot)
{
    go_val *v = &S->vals[slot];
    if (!v->requested || v->freed || v->pins > 0)
        return;
    v->freed = true;
    if (S->flags & GO_TRACE)
        fprintf(stderr, "   %c%d handle freed\n", v->kind == OP_SIGNAL ? 's' : 'c', slot);
    /* A computed's body keeps its pins: the library may still run it for
     * its readers (go_collect releases them once it is dead). */
    if (v->kind == OP_SIGNAL)
        gv_signal_free(v->s);
    else
        gv_computed_free(v->c);
}

static void go_request_free(int slot)
{
    if (S->vals[slot].requested)
        return;
    S->vals[slot].requested = true;
    go_try_free(slot);
}

static void go_release_inst(int id)
{
    go_inst *in = &S->insts[id];
    if (in->pins_held) {
        in->pins_held = false;
        go_pin_body(&in->rb, -1);
    }
}

static void go_mark_scope(int k);

/* The effect's handle, and those of everything it owns, are invalid from now
 * on (the library disposes them now, or when the running ones return). */
static void go_mark_inst(int id)
{
    go_inst *in = &S->insts[id];
    if (in->disposed)
        return;
    in->disposed = true;
    if (S->flags & GO_TRACE)
        fprintf(stderr, "   e%d disposed\n", id);
    for (int j = 0; j < S->ninst; j++)
        if (S->insts[j].parent == id)
            go_mark_inst(j);
    for (int k = 0; k < S->nscopes; k++)
        if (S->scopes[k].parent == id)
            go_mark_scope(k);
    if (!in->running)
        go_release_inst(id);
}

static void go_mark_scope(int k)
{
    go_scope *sc = &S->scopes[k];
    if (sc->disposed)
        return;
    sc->disposed = true;
    for (int j = 0; j < S->ninst; j++)
        if (S->insts[j].scope == k)
            go_mark_inst(j);
}

static bool go_inst_valid(int id)
{
    return id >= 0 && S->insts[id].h && !S->insts[id].disposed;
}

static void go_dispose_inst(int id)
{
    gv_effect *h = S->insts[id].h;
    S->insts[id].detached = true;
    go_mark_inst(id);
    gv_effect_free(h);
}

static void go_free_scope(int k)
{
    gv_scope *h = S->scopes[k].h;
    S->scopes[k].detached = true;
    go_mark_scope(k);
    gv_scope_free(h);
}

static bool go_rec_has(const go_rec *rec, int slot)
{
    for (int i = 0; i < rec->n; i++)
        if (rec->r[i].node == slot)
            return true;
    return false;
}

static int go_pick_index(int n, int idx, bool (*ok)(int))
{
    int count = 0;
    for (int j = 0; j < n; j++)
        count += ok(j);
    if (!count)
        return -1;
    int k = idx % count;
    for (int j = 0; j < n; j++)
        if (ok(j) && k-- == 0)
            return j;
    return -1;
}

/* An effect to dispose: self, the owner (for a compute function: an effect
 * that read it in its last run), a sibling, or any live one by index. */
static int go_pick_effect(uint8_t target, go_ctx ctx)
{
    int mode = target & 3, idx = target >> 2;
    int self = ctx.kind == CX_COMPUTE ? -1 : ctx.id;
    if (mode == 0 && go_inst_valid(self))
        return self;
    if (mode == 1) {
        if (ctx.kind == CX_COMPUTE) {
            for (int k = 0; k < S->ninst; k++) {
                int j = (idx + k) % (S->ninst ? S->ninst : 1);
                if (go_inst_valid(j) && go_rec_has(&S->insts[j].rec, ctx.id))
                    return j;
            }
        } else if (self >= 0 && go_inst_valid(S->insts[self].parent)) {
            return S->insts[self].parent;
        }
    }
    if (mode == 2 && self >= 0) {
        const go_inst *me = &S->insts[self];
        for (int j = S->ninst - 1; j >= 0; j--)
            if (j != self && go_inst_valid(j) && S->insts[j].parent == me->parent && S->insts[j].scope == me->scope)
                return j;
    }
    return go_pick_index(S->ninst, idx, go_inst_valid);
}

static bool go_scope_ok(int k)
{
    return !S->scopes[k].disposed && !S->scopes[k].entered;
}

static bool go_val_unrequested(int k)
{
    return !S->vals[k].requested;
}

/* ------------------------------------------------------------------------ */
/* Reads and writes                                                          */
/* ------------------------------------------------------------------------ */

static void go_name(char *buf, size_t size, int slot)
{
    snprintf(buf, size, "%c%d", S->vals[slot].kind == OP_SIGNAL ? 's' : 'c', slot);
}

/* Read a node the way `mode` says, check what the library hands out against
 * the model, and return the model's result.  *abort is set when the read
 * propagates a failure into the running function (which must return). */
static go_res go_read(int slot, int mode, bool in_fn, const char *who, bool *abort)
{
    go_val *v = &S->vals[slot];
    char name[16];
    go_name(name, sizeof name, slot);
    *abort = false;
    if (v->kind == OP_SIGNAL) {
        const gv_value *p;
        if (mode == RM_PEEK) {
            p = gv_signal_peek(v->s);
        } else if (mode == RM_UNTRACKED) {
            gv_untracked_t t = gv_untracked_begin();
            p = gv_signal_get(v->s);
            gv_untracked_end(t);
        } else {
            p = gv_signal_get(v->s);
        }
        go_res m = go_model(slot);
        if (p->type != GV_INT || p->as.i != m.v)
            go_fail("%s read %s: expected %" PRId64 ", library gave %s%" PRId64, who, name, m.v,
                    p->type == GV_INT ? "" : "a non-int ", p->type == GV_INT ? p->as.i : 0);
        return m;
    }

    go_res seen = {false, 0};
    bool freed_before = v->freed;
    v->reading++;
    const gv_value *p = NULL;
    const gv_error *e = NULL;
    switch (mode) {
    case RM_GET:
        p = gv_computed_get(v->c);
        if (v->freed != freed_before)
            break; /* the read freed the handle (a compute action): p may dangle */
        if (p->type == GV_NONE) {
            e = gv_computed_error(v->c);
            seen.err = true;
            seen.v = e ? e->code : -2;
        }
        break;
    case RM_CATCH:
        e = gv_computed_error(v->c);
        if (v->freed != freed_before)
            break;
        if (e) {
            seen.err = true;
            seen.v = e->code;
        } else {
            p = gv_computed_peek(v->c);
        }
        break;
    case RM_PEEK:
        p = gv_computed_peek(v->c);
        break;
    default: {
        gv_untracked_t t = gv_untracked_begin();
        p = gv_computed_get(v->c);
        gv_untracked_end(t);
        break;
    }
    }
    v->reading--;
    go_res m = go_model(slot);
    if (v->freed != freed_before)
        return m;
    if (!seen.err && p) {
        if (p->type == GV_NONE) {
            seen.err = true;
            seen.v = -1;
        } else if (p->type != GV_INT) {
            go_fail("%s read %s: the library gave a value of type %d", who, name, (int)p->type);
        } else {
            seen.v = p->as.i;
        }
    }
    if (seen.err && seen.v == -2)
        go_fail("%s read %s: GV_NONE from gv_computed_get but gv_computed_error says no failure", who, name);
    else if (!go_res_eq(slot, seen, m)) {
        char a[32], b[32];
        go_res_str(a, sizeof a, m);
        go_res_str(b, sizeof b, seen);
        go_fail("%s read %s: expected %s%s, library gave %s", who, name, a,
                v->eqk ? " (modulo the node's equality)" : "", b);
    }
    *abort = in_fn && mode == RM_GET && m.err;
    return m;
}

/* A batch or a flush begins: a write inside it that brings a signal back to
 * its value from now gives it back its version from now (the journal). */
static void go_segment_begin(void)
{
    for (int i = 0; i < S->nvals; i++) {
        S->seg_value[i] = S->vals[i].value;
        S->seg_cnt[i] = S->vals[i].cnt;
    }
}

/* A signal write: the model first (effects may run inside the call).  The
 * signal's version follows the documented rule: a write that changes the
 * value gives it a new version, except inside a batch or a flush, where a
 * write that brings the value back to the one it had when the batch (flush)
 * began gives back the version it had then.  A top-level write outside a
 * batch is neither: it stands alone, and the flush it runs starts after it. */
static void go_write(int slot, int64_t value, bool top_level, const char *who)
{
    go_val *v = &S->vals[slot];
    go_res now = {false, v->value}, next = {false, value};
    bool changed = !go_res_eq(slot, now, next);
    bool alone = top_level && S->batch_depth == 0;
    if (changed) {
        v->value = value;
        S->epoch++;
        if (!alone && go_res_eq(slot, next, (go_res){false, S->seg_value[slot]}))
            v->cnt = S->seg_cnt[slot];
        else
            v->cnt = ++S->vclock;
    }
    if (alone)
        go_segment_begin();
    bool r = gv_signal_set_int(v->s, value);
    if (r != changed)
        go_fail("%s: gv_signal_set(s%d, %" PRId64 ") returned %s, expected %s (it held %" PRId64 ")", who, slot, value,
                r ? "true" : "false", changed ? "true" : "false", now.v);
}

/* ------------------------------------------------------------------------ */
/* Callbacks                                                                 */
/* ------------------------------------------------------------------------ */

static void go_action(const go_act *a, go_ctx ctx);
static int go_new_inst(int body, int parent, int scope);
static void go_cleanup_fn(void *ud);

static bool go_fires(const go_act *a, int run)
{
    return (a->when & 3) == 0 || (a->when & 3) == run;
}

/* Run a body's steps for a compute function (ctx.kind CX_COMPUTE) or an
 * effect (CX_EFFECT). */
static go_res go_run_body(const go_body *b, int body, go_ctx ctx, go_rec *rec, int run, const char *who)
{
    bool effect = ctx.kind == CX_EFFECT;
    int64_t acc = b->base;
    bool abort;
    for (int i = 0; i < b->nsteps; i++) {
        const go_step *s = &b->steps[i];
        if (s->off)
            continue;
        switch (s->kind) {
        case ST_READ: {
            go_res r = go_read(s->a, s->mode, true, who, &abort);
            if (s->mode == RM_GET || s->mode == RM_CATCH)
                go_rec_add(rec, s->a, r);
            if (abort)
                return r;
            /* An untracked read is checked but does not feed the result: a
             * value that depended on it would not be a function of the
             * current signals (nothing re-runs when it changes). */
            if (s->mode == RM_GET || s->mode == RM_CATCH)
                acc = go_mix(acc, go_contrib(s->a, r));
            break;
        }
        case ST_COND: {
            go_res r = go_read(s->a, RM_GET, true, who, &abort);
            go_rec_add(rec, s->a, r);
            if (abort)
                return r;
            int64_t x = go_contrib(s->a, r);
            acc = go_mix(acc, x);
            int t = (x & 1) ? s->b : s->c;
            r = go_read(t, RM_GET, true, who, &abort);
            go_rec_add(rec, t, r);
            if (abort)
                return r;
            acc = go_mix(acc, go_contrib(t, r));
            break;
        }
        case ST_FAIL:
            if (acc % s->a == s->b) {
                int code = effect ? 50 : 100 + ctx.id;
                bool ok = effect ? gv_fail(code, "effect fails") : gv_fail(code, "c%d fails", ctx.id);
                if (!ok)
                    go_fail("%s: gv_fail returned false inside a running function", who);
                return (go_res){true, code};
            }
            break;
        case ST_ACT:
            if (!(S->flags & GO_NO_CALLBACK_ACTIONS) && go_fires(&s->act, run))
                go_action(&s->act, ctx);
            break;
        case ST_CHILD:
            if (!S->insts[ctx.id].disposed)
                (void)go_new_inst(s->child, ctx.id, -1);
            break;
        case ST_SCOPE_CHILD: {
            go_inst *in = &S->insts[ctx.id];
            if (in->disposed || S->nscopes == GO_MAXSC)
                break;
            int k = S->nscopes++;
            go_scope *sc = &S->scopes[k];
            memset(sc, 0, sizeof *sc);
            sc->parent = ctx.id;
            sc->created_run = in->runs;
            sc->h = gv_scope_new();
            if (!sc->h) {
                go_fail("%s: gv_scope_new returned NULL", who);
                sc->disposed = true;
                break;
            }
            sc->entered = true;
            gv_scope_enter(sc->h);
            (void)go_new_inst(s->child, -1, k);
            if (!sc->disposed)
                gv_scope_leave(sc->h);
            sc->entered = false;
            break;
        }
        case ST_CLEANUP: {
            if (S->ncln == GO_MAXCL)
                break;
            go_inst *in = &S->insts[ctx.id];
            int c = S->ncln++;
            go_cln *cl = &S->clns[c];
            cl->inst = ctx.id;
            cl->run = in->runs;
            cl->seq = in->nseq++;
            cl->act = s->act;
            cl->done = false;
            cl->next = in->cleanups;
            in->cleanups = c;
            if (!gv_on_cleanup(go_cleanup_fn, cl))
                go_fail("%s: gv_on_cleanup refused inside a running effect", who);
            break;
        }
        case ST_WRITE: {
            if (S->writer[s->a] < 0)
                S->writer[s->a] = body;
            if (S->writer[s->a] != body || S->vals[s->a].freed)
                break;
            int64_t orig = S->vals[s->a].value;
            if (s->c >= 2)
                gv_batch_begin();
            go_write(s->a, s->b, false, who);
            if (s->c == 1 || s->c == 2)
                go_write(s->a, orig, false, who);
            if (s->c >= 2)
                gv_batch_end();
            break;
        }
        }
    }
    return (go_res){false, acc};
}

/* Can the library still need this computed?  Yes while the program holds its
 * handle, while a read of it is in progress, or while a live reader (an
 * effect not disposed, or running; a computed that is alive itself) read it
 * in its last run. */
static bool go_alive(int slot)
{
    if (!S->vals[slot].freed || S->vals[slot].reading)
        return true;
    for (int j = 0; j < S->ninst; j++) {
        const go_inst *in = &S->insts[j];
        if ((!in->disposed || in->running) && go_rec_has(&in->rec, slot))
            return true;
    }
    for (int k = 0; k < S->nvals; k++)
        if (k != slot && S->vals[k].kind == OP_COMPUTED && go_rec_has(&S->vals[k].rec, slot) && go_alive(k))
            return true;
    return false;
}

/* Release the pins of computeds whose handle is gone and that nothing can
 * need any more (at top level, between operations). */
static void go_collect(void)
{
    bool again = true;
    while (again) {
        again = false;
        for (int k = 0; k < S->nvals; k++) {
            go_val *v = &S->vals[k];
            if (v->kind == OP_COMPUTED && v->freed && v->pins_held && !v->running && !go_alive(k)) {
                go_release_val(k);
                again = true;
            }
        }
    }
}

static void go_compute_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    go_val *v = ud;
    int slot = (int)(v - S->vals);
    char who[32];
    snprintf(who, sizeof who, "compute c%d", slot);
    v->runs++;
    if (S->flags & GO_TRACE)
        fprintf(stderr, "   c%d run %d\n", slot, v->runs);
    if (!go_alive(slot))
        go_fail("%s ran after its last reference was gone (handle freed, no live reader)", who);
    if (v->has_eval)
        go_check_justified(&v->rec, who);
    v->running++;
    S->compute_depth++;
    v->rec.n = 0;
    go_res r = go_run_body(&v->rb, v->body, (go_ctx){CX_COMPUTE, slot}, &v->rec, v->runs, who);
    if (!r.err)
        *out = gv_int(r.v);
    if (!v->has_eval || !go_res_eq(slot, r, v->last_eval))
        v->cnt++;
    v->last_eval = r;
    v->has_eval = true;
    S->compute_depth--;
    v->running--;
}

static bool go_cleanups_done_before(const go_inst *in, int run)
{
    for (int c = in->cleanups; c >= 0; c = S->clns[c].next)
        if (S->clns[c].run < run && !S->clns[c].done)
            return false;
    return true;
}

static void go_effect_fn(void *ud)
{
    go_inst *in = ud;
    int id = (int)(in - S->insts);
    char who[32];
    snprintf(who, sizeof who, "effect e%d", id);
    if (in->disposed) {
        go_fail("%s ran after it was disposed", who);
        return;
    }
    if (in->pending_err)
        go_fail("%s: the failure (code %d) of its previous run never reached the error handler", who,
                in->pending_err);
    in->pending_err = 0;
    in->runs++;
    if (S->flags & GO_TRACE)
        fprintf(stderr, "   e%d run %d (parent e%d, scope %d)\n", id, in->runs, in->parent, in->scope);
    if (in->runs > 1) {
        go_check_justified(&in->rec, who);
        if (!go_cleanups_done_before(in, in->runs))
            go_fail("%s re-ran before the cleanups of its previous run ran", who);
    }
    /* Whatever the previous run created was disposed before this run. */
    for (int j = 0; j < S->ninst; j++)
        if (S->insts[j].parent == id && !S->insts[j].disposed)
            go_mark_inst(j);
    for (int k = 0; k < S->nscopes; k++)
        if (S->scopes[k].parent == id && !S->scopes[k].disposed)
            go_mark_scope(k);
    in->running++;
    in->rec.n = 0;
    go_res r = go_run_body(&in->rb, in->body, (go_ctx){CX_EFFECT, id}, &in->rec, in->runs, who);
    if (r.err)
        in->pending_err = (int)r.v;
    in->running--;
    S->last_finished = id;
    if (in->disposed && !in->running)
        go_release_inst(id);
}

/* Every cleanup of this instance and of everything it owned has run. */
static bool go_all_cleanups_done(int id)
{
    for (int c = S->insts[id].cleanups; c >= 0; c = S->clns[c].next)
        if (!S->clns[c].done)
            return false;
    return true;
}

static bool go_owned_cleanups_done(int id, int run)
{
    for (int j = 0; j < S->ninst; j++) {
        const go_inst *o = &S->insts[j];
        /* What was freed explicitly left its owner at once: the owner's
         * cleanups need not wait for its disposal to finish. */
        if (o->detached || (o->scope >= 0 && S->scopes[o->scope].detached))
            continue;
        /* An owned effect disposed while its function runs completes its
         * disposal when the run returns. */
        if (o->running)
            continue;
        bool owned = (o->parent == id && o->created_run == run) ||
                     (o->scope >= 0 && S->scopes[o->scope].parent == id && S->scopes[o->scope].created_run == run);
        if (owned && !go_all_cleanups_done(j))
            return false;
    }
    return true;
}

static void go_cleanup_fn(void *ud)
{
    go_cln *cl = ud;
    char who[48];
    snprintf(who, sizeof who, "cleanup %d of e%d (run %d)", cl->seq, cl->inst, cl->run);
    if (cl->done) {
        go_fail("%s ran twice", who);
        return;
    }
    cl->done = true;
    const go_inst *in = &S->insts[cl->inst];
    for (int c = in->cleanups; c >= 0; c = S->clns[c].next) {
        const go_cln *o = &S->clns[c];
        if (o->run == cl->run && o->seq > cl->seq && !o->done)
            go_fail("%s ran before cleanup %d of the same run (cleanups run newest first)", who, o->seq);
    }
    /* Owned effects are disposed before the cleanups run, unless this
     * disposal was started by a cleanup: then the disposal that cleanup is
     * part of may be an owned effect's, still on the stack. */
    if (S->cleanup_depth == 0 && !go_owned_cleanups_done(cl->inst, cl->run))
        go_fail("%s ran before the effects that run created were disposed", who);
    /* Disposed with its owner: the owner disposes what it owns newest first,
     * so the effects created after this one by the same owner are gone. */
    if (S->cleanup_depth == 0 && in->disposed && !in->detached && (in->parent >= 0 || in->scope >= 0)) {
        for (int j = cl->inst + 1; j < S->ninst; j++) {
            const go_inst *o = &S->insts[j];
            if (o->parent != in->parent || o->scope != in->scope || o->created_run != in->created_run ||
                o->detached || o->running || (o->scope >= 0 && S->scopes[o->scope].detached))
                continue;
            if (!go_all_cleanups_done(j)) {
                go_fail("%s ran before e%d, created after it by the same owner, was disposed (owned effects are "
                        "disposed newest first)",
                        who, j);
                break;
            }
        }
    }
    S->cleanup_depth++;
    go_action(&cl->act, (go_ctx){CX_CLEANUP, cl->inst});
    S->cleanup_depth--;
}

static void go_handler(const gv_error *err, const char *node_name, void *ud)
{
    (void)ud;
    int id = -1;
    if (S->last_finished >= 0 && S->insts[S->last_finished].pending_err == err->code)
        id = S->last_finished;
    for (int j = 0; id < 0 && j < S->ninst; j++)
        if (S->insts[j].pending_err == err->code)
            id = j;
    if (id < 0) {
        go_fail("unexpected error reported to the handler: code %d \"%s\" origin \"%s\" node \"%s\"", err->code,
                err->message, err->origin, node_name);
    } else {
        S->insts[id].pending_err = 0;
    }
    if (S->has_handler_act) {
        S->has_handler_act = false;
        go_action(&S->handler_act, (go_ctx){CX_HANDLER, id});
    }
}

static void go_action(const go_act *a, go_ctx ctx)
{
    if (a->kind != AC_READ && (S->flags & GO_NO_CALLBACK_ACTIONS))
        return;
    if (a->kind == AC_FREE_VAL && ctx.kind == CX_COMPUTE && (S->flags & GO_NO_COMPUTE_FREE))
        return;
    if (ctx.kind == CX_HANDLER && (S->flags & GO_NO_HANDLER_ACTIONS))
        return;
    switch (a->kind) {
    case AC_DISPOSE: {
        int t = go_pick_effect(a->target, ctx);
        if (t >= 0)
            go_dispose_inst(t);
        break;
    }
    case AC_FREE_SCOPE: {
        int k = go_pick_index(S->nscopes, a->target, go_scope_ok);
        if (k >= 0)
            go_free_scope(k);
        break;
    }
    case AC_FREE_VAL: {
        int k = go_pick_index(S->nvals, a->target, go_val_unrequested);
        if (k >= 0)
            go_request_free(k);
        break;
    }
    case AC_READ: {
        if (S->nvals == 0)
            break;
        int k = a->target % S->nvals;
        const go_val *v = &S->vals[k];
        /* A computed may be running or being validated now: reading it
         * would be a cycle, not a value. */
        if (v->freed || (v->kind == OP_COMPUTED && S->compute_depth > 0))
            break;
        bool abort;
        (void)go_read(k, RM_UNTRACKED, false, ctx.kind == CX_HANDLER ? "error handler" : "cleanup", &abort);
        break;
    }
    }
}

/* Was the effect disposed through an owner whose function is still running?
 * The library then disposes the owner's effects when that run returns, so
 * gv_effect_new may still hand out a handle (invalid all the same: its owner
 * was disposed). */
static bool go_disposal_deferred(int id)
{
    for (;;) {
        const go_inst *in = &S->insts[id];
        int owner = in->parent >= 0 ? in->parent : in->scope >= 0 ? S->scopes[in->scope].parent : -1;
        if (owner < 0)
            return false;
        if (S->insts[owner].disposed && S->insts[owner].running)
            return true;
        id = owner;
    }
}

/* A new effect instance, owned by an effect instance, a scope, or nobody. */
static int go_new_inst(int body, int parent, int scope)
{
    if (S->ninst == GO_MAXI)
        return -1;
    int id = S->ninst++;
    go_inst *in = &S->insts[id];
    memset(in, 0, sizeof *in);
    in->body = body;
    in->parent = parent;
    in->scope = scope;
    in->created_run = parent >= 0 ? S->insts[parent].runs : scope >= 0 ? S->scopes[scope].created_run : 0;
    in->cleanups = -1;
    char who[16];
    snprintf(who, sizeof who, "e%d", id);
    go_resolve(&S->prog.bodies[body], &in->rb, -1, who);
    in->pins_held = true;
    go_pin_body(&in->rb, +1);
    gv_effect *h = gv_effect_new(go_effect_fn, in);
    if (!h) {
        if (!in->disposed)
            go_fail("gv_effect_new returned NULL for e%d, which was not disposed during its first run", id);
        go_mark_inst(id);
    } else if (in->disposed && !go_disposal_deferred(id)) {
        go_fail("gv_effect_new returned a handle for e%d, which was disposed during its first run", id);
    } else if (!in->disposed) {
        in->h = h;
    }
    return id;
}

/* ------------------------------------------------------------------------ */
/* Top level                                                                 */
/* ------------------------------------------------------------------------ */

static void go_top_read(int slot)
{
    if (S->vals[slot].requested)
        return;
    bool abort;
    (void)go_read(slot, RM_GET, false, "top-level", &abort);
}

/* After every top-level operation nothing runs: check what must hold then. */
static void go_quiescence(void)
{
    for (int id = 0; id < S->ninst && !S->res->failed; id++) {
        go_inst *in = &S->insts[id];
        if (in->running) {
            go_fail("effect e%d is still marked running at top level", id);
        } else if (in->disposed) {
            if (!go_all_cleanups_done(id))
                go_fail("effect e%d was disposed but not all of its cleanups ran", id);
        } else if (in->h) {
            if (in->pending_err)
                go_fail("effect e%d: the failure (code %d) of its last run never reached the error handler", id,
                        in->pending_err);
            if (!go_cleanups_done_before(in, in->runs))
                go_fail("effect e%d: cleanups of an earlier run never ran", id);
            for (int i = 0; i < in->rec.n; i++) {
                int slot = in->rec.r[i].node;
                if (!go_res_eq(slot, go_model(slot), in->rec.r[i].last)) {
                    char buf[400];
                    go_rec_describe(&in->rec, buf, sizeof buf);
                    go_fail("missed run: effect e%d did not re-run though something it read changed [%s]", id, buf);
                    break;
                }
            }
        }
    }
}

static void go_set(int slot, uint8_t v, bool same, const char *who)
{
    if (S->vals[slot].requested)
        return;
    go_write(slot, same ? S->vals[slot].value : v, true, who);
}

static void go_exec(const go_op *op)
{
    switch (op->kind) {
    case OP_NOP:
        break;
    case OP_SIGNAL: {
        go_val *v = &S->vals[op->slot];
        memset(v, 0, sizeof *v);
        v->kind = OP_SIGNAL;
        v->body = -1;
        v->value = op->v;
        v->cnt = ++S->vclock;
        v->eqk = op->eqk;
        S->nvals = op->slot + 1;
        S->epoch++;
        v->s = gv_signal_new(gv_int(op->v));
        if (!v->s) {
            go_fail("gv_signal_new returned NULL");
            v->requested = v->freed = true;
            break;
        }
        char name[16];
        snprintf(name, sizeof name, "s%d", op->slot);
        gv_signal_set_name(v->s, name);
        if (v->eqk)
            gv_signal_set_equal(v->s, go_eq_mod, &v->eqk);
        break;
    }
    case OP_COMPUTED: {
        go_val *v = &S->vals[op->slot];
        memset(v, 0, sizeof *v);
        v->kind = OP_COMPUTED;
        v->body = op->body;
        v->eqk = op->eqk;
        S->nvals = op->slot + 1;
        char who[16];
        snprintf(who, sizeof who, "c%d", op->slot);
        go_resolve(&S->prog.bodies[op->body], &v->rb, op->slot, who);
        v->pins_held = true;
        go_pin_body(&v->rb, +1);
        v->c = gv_computed_new(go_compute_fn, v);
        if (!v->c) {
            go_fail("gv_computed_new returned NULL");
            v->requested = v->freed = true;
            go_release_val(op->slot);
            break;
        }
        char name[16];
        snprintf(name, sizeof name, "c%d", op->slot);
        gv_computed_set_name(v->c, name);
        if (v->eqk)
            gv_computed_set_equal(v->c, go_eq_mod, &v->eqk);
        break;
    }
    case OP_EFFECT: {
        int k = op->in_scope ? go_pick_index(S->nscopes, op->sel, go_scope_ok) : -1;
        if (k < 0) {
            (void)go_new_inst(op->body, -1, -1);
            break;
        }
        go_scope *sc = &S->scopes[k];
        sc->entered = true;
        gv_scope_enter(sc->h);
        (void)go_new_inst(op->body, -1, k);
        if (!sc->disposed)
            gv_scope_leave(sc->h);
        sc->entered = false;
        break;
    }
    case OP_SCOPE: {
        if (S->nscopes == GO_MAXSC)
            break;
        go_scope *sc = &S->scopes[S->nscopes];
        memset(sc, 0, sizeof *sc);
        sc->parent = -1;
        sc->h = gv_scope_new();
        if (!sc->h) {
            go_fail("gv_scope_new returned NULL");
            break;
        }
        S->nscopes++;
        break;
    }
    case OP_SET:
        go_set(op->slot, op->v, op->same, "top-level set");
        break;
    case OP_BATCH: {
        int64_t start[GO_MAXV];
        for (int i = 0; i < S->nvals; i++)
            start[i] = S->vals[i].value;
        S->batch_depth++;
        go_segment_begin();
        gv_batch_begin();
        for (int i = 0; i < op->nsub; i++) {
            const go_sub *s = &op->sub[i];
            if (s->kind == SUB_READ) {
                go_top_read(s->slot);
                continue;
            }
            int64_t orig = S->vals[s->slot].value;
            int64_t v = s->same ? orig : s->v;
            if ((S->flags & GO_NO_BATCH_SETBACK) &&
                go_res_eq(s->slot, (go_res){false, v}, (go_res){false, start[s->slot]}))
                continue;
            go_set(s->slot, (uint8_t)v, false, "set in batch");
            if (s->kind == SUB_SETBACK && !(S->flags & GO_NO_BATCH_SETBACK))
                go_set(s->slot, (uint8_t)orig, false, "set back in batch");
        }
        S->batch_depth--;
        go_segment_begin(); /* the flush */
        gv_batch_end();
        break;
    }
    case OP_READ:
        go_top_read(op->slot);
        break;
    case OP_FREE_VAL:
        go_request_free(op->slot);
        break;
    case OP_FREE_EFFECT: {
        int t = go_pick_index(S->ninst, op->sel, go_inst_valid);
        if (t >= 0)
            go_dispose_inst(t);
        break;
    }
    case OP_FREE_SCOPE: {
        int k = go_pick_index(S->nscopes, op->sel, go_scope_ok);
        if (k >= 0)
            go_free_scope(k);
        break;
    }
    case OP_HANDLER:
        S->has_handler_act = true;
        S->handler_act = op->act;
        break;
    }
}

/* Dispose and free everything, then check that nothing is left. */
static void go_finish(const gv_stats *before)
{
    S->at_end = true;
    S->op_index = S->prog.nops;
    S->has_handler_act = false;
    for (int id = S->ninst - 1; id >= 0; id--)
        if (go_inst_valid(id) && S->insts[id].parent < 0 && S->insts[id].scope < 0)
            go_dispose_inst(id);
    for (int k = S->nscopes - 1; k >= 0; k--)
        if (S->scopes[k].parent < 0 && !S->scopes[k].disposed)
            go_free_scope(k);
    for (int id = 0; id < S->ninst; id++)
        if (!S->insts[id].disposed)
            go_fail("interpreter: effect e%d is not disposed after everything was freed", id);
    for (int k = S->nvals - 1; k >= 0; k--)
        go_request_free(k);
    go_collect();
    for (int k = 0; k < S->nvals; k++)
        if (!S->vals[k].freed)
            go_fail("interpreter: %c%d still pinned after everything was disposed",
                    S->vals[k].kind == OP_SIGNAL ? 's' : 'c', k);
    go_quiescence();
    gv_stats st;
    gv_get_stats(&st);
    if (st.signals != before->signals || st.computeds != before->computeds || st.effects != before->effects ||
        st.scopes != before->scopes || st.links != before->links)
        go_fail("after freeing everything the library still has signals=%zu computeds=%zu effects=%zu scopes=%zu "
                "links=%zu (before the program: %zu %zu %zu %zu %zu)",
                st.signals, st.computeds, st.effects, st.scopes, st.links, before->signals, before->computeds,
                before->effects, before->scopes, before->links);
}

int go_run(const uint8_t *data, size_t size, unsigned flags, go_result *res)
{
    memset(res, 0, sizeof *res);
    go_state *st = malloc(sizeof *st);
    if (!st) {
        res->failed = true;
        snprintf(res->message, sizeof res->message, "out of memory for the interpreter");
        return -1;
    }
    memset(st, 0, offsetof(go_state, vals));
    st->nvals = st->ninst = st->nscopes = st->ncln = 0;
    st->batch_depth = st->compute_depth = st->cleanup_depth = 0;
    st->epoch = 1;
    st->last_finished = -1;
    st->has_handler_act = false;
    st->at_end = false;
    st->flags = flags;
    st->res = res;
    for (int i = 0; i < GO_MAXV; i++)
        st->writer[i] = -1;
    S = st;
    go_decode(&st->prog, data, size);
    res->nops = st->prog.nops;

    gv_stats before;
    gv_get_stats(&before);
    gv_set_error_handler(go_handler, NULL);
    for (size_t i = 0; i < st->prog.nops && !res->failed; i++) {
        st->op_index = i;
        if (flags & GO_TRACE) {
            fprintf(stderr, "-- running op #%zu\n", i);
            fflush(stderr);
        }
        go_segment_begin();
        go_exec(&st->prog.ops[i]);
        go_collect();
        if (!res->failed)
            go_quiescence();
    }
    go_finish(&before);
    gv_set_error_handler(NULL, NULL);
    S = NULL;
    free(st);
    return res->failed ? -1 : 0;
}
