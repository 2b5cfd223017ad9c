/*
 * pgstore.c — the PostgreSQL back end's core: the batch, flush and its
 * answers, sync waiters, hooks, the caller's begin/commit/rollback, failure
 * and health (see pgstore.h for the contract; pgopen.c opens, reserves ids
 * and closes; pgrows.c and pghistory.c render the writes).
 *
 * The batch.  A write renders its statement's parameters as text into the
 * buffered batch (gvd_pgw_*: one growing buffer, no allocation per
 * statement) and returns.  gvd_pgstore_flush swaps the buffered batch with
 * the idle one and sends it on the connection's pipeline:
 *
 *   BEGIN, statement 1 .. n, COMMIT         each a query with its own sync point
 *
 * Answers come back in order, so the k-th answer belongs to the k-th query
 * (which names the statement in an error).  pgconn syncs after every query,
 * so a failing statement aborts nothing but the transaction: the statements
 * after it fail with "current transaction is aborted", and COMMIT, answered
 * "ROLLBACK", ends the transaction — the connection is clean again, and we
 * keep the first error.  When the last answer is in, the batch's waiters
 * are called: ok after a real COMMIT, else with the error, and the store
 * turns unavailable (gvd_pgs_fail: health, waiters, the lost hook, once).
 * One batch is in flight at a time; a flush meanwhile is remembered and
 * sent when the answers are in.
 *
 * While a batch is in flight the next one gathers several ticks, so a busy
 * job may be updated more than once in it: only its last update is sent
 * (gvd_pgs_coalesce; an update rewrites every column and nothing in a batch
 * reads a job row).  Under load, batches grow and shed repeats by
 * themselves.
 *
 * Waiters (gvd_pgstore_sync) belong to the newest batch holding unsynced
 * writes: the buffered one if it has statements, else the one in flight;
 * with neither they are called at once.
 *
 * The caller's transactions are marks: begin notes where the buffered
 * batch stands, rollback cuts it back there, commit forgets the mark (the
 * whole batch is one transaction anyway).  A flush asked for between begin
 * and commit waits for the end of the mark, so that a rollback can still
 * drop what came after begin.
 *
 * Lifetime.  Every query we send is owed an answer with ud = the store;
 * `nq` counts them and `depth` counts our own frames on the stack (callbacks
 * call user code, which may close the store).  Close answers the waiters,
 * frees the connection (which answers what it still owes, "connection
 * closed": ignored), and the store is freed once both counts are 0.
 */
#include "pgstore_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../obs/obs.h"
#include "../../util/log.h"

#define GVD_PG_MAX_PARAMS 32     /* the widest statement has 22 */
#define GVD_PG_KEEP_BUF (4u << 20) /* a batch buffer grown past this is freed when idle */

static void gvd_pgs_send(gvd_pgstore *st);

/* ---- small helpers ----------------------------------------------------------- */

void gvd_pgs_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static double gvd_pgs_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* libpq's messages end with a newline (and sometimes more lines): keep the
 * first line, which says what happened. */
void gvd_pgs_oneline(char *s)
{
    char *nl = strchr(s, '\n');
    if (nl)
        *nl = '\0';
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ')
        s[--n] = '\0';
}

/* ---- the batch's buffers --------------------------------------------------- */

static void gvd_batch_reset(gvd_pgbatch *b)
{
    b->n = b->noffs = b->len = 0;
    if (b->hn) {
        memset(b->hvals, 0, b->hcap * sizeof *b->hvals);
        b->hn = 0;
    }
    b->skipped = 0;
    b->expected = b->answered = b->announced = 0;
    b->failed = false;
    b->err[0] = '\0';
    if (b->bufcap > GVD_PG_KEEP_BUF) {
        free(b->buf);
        b->buf = NULL;
        b->bufcap = 0;
    }
}

static void gvd_batch_free(gvd_pgbatch *b)
{
    free(b->stmts);
    free(b->offs);
    free(b->buf);
    free(b->hkeys);
    free(b->hvals);
    for (gvd_pgwaiter *w = b->waiters, *next; w; w = next) {
        next = w->next;
        free(w);
    }
    memset(b, 0, sizeof *b);
}

int gvd_pgs_grow(void **p, size_t *cap, size_t need, size_t size, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : first;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, nc * size);
    if (!np)
        return -1;
    *p = np;
    *cap = nc;
    return 0;
}

/* ---- rendering a write ------------------------------------------------------ */

int gvd_pgw_begin(gvd_pgstore *st, gvd_pgw *w, const char *op, const char *sql, char *err, size_t errlen)
{
    if (!st || st->closing) {
        gvd_pgs_errf(err, errlen, "store %s: store is not open", op);
        return -1;
    }
    if (st->unavailable) {
        st->failed_writes++;
        gvd_pgs_errf(err, errlen, "store %s: store unavailable (%s): %s", op, st->cause, st->error);
        return -1;
    }
    gvd_pgbatch *b = st->cur;
    if (gvd_pgs_grow((void **)&b->stmts, &b->cap, b->n + 1, sizeof *b->stmts, 64) != 0) {
        gvd_pgs_errf(err, errlen, "store %s: out of memory", op);
        return -1;
    }
    memset(w, 0, sizeof *w);
    w->st = st;
    w->b = b;
    w->n0 = b->n;
    w->noffs0 = b->noffs;
    w->len0 = b->len;
    w->was_empty = b->n == 0;
    b->stmts[b->n] = (gvd_pgstmt){.sql = sql, .op = op, .first = b->noffs, .nparams = 0};
    return 0;
}

static void gvd_pgw_param(gvd_pgw *w, const char *s, size_t n)
{
    gvd_pgbatch *b = w->b;
    if (w->oom || gvd_pgs_grow((void **)&b->offs, &b->offcap, b->noffs + 1, sizeof *b->offs, 256) != 0) {
        w->oom = true;
        return;
    }
    if (!s) {
        b->offs[b->noffs++] = GVD_PG_NULL;
        return;
    }
    if (gvd_pgs_grow((void **)&b->buf, &b->bufcap, b->len + n + 1, 1, 4096) != 0) {
        w->oom = true;
        return;
    }
    memcpy(b->buf + b->len, s, n);
    b->buf[b->len + n] = '\0';
    b->offs[b->noffs++] = b->len;
    b->len += n + 1;
}

void gvd_pgw_text(gvd_pgw *w, const char *s)
{
    gvd_pgw_param(w, s, s ? strlen(s) : 0);
}

void gvd_pgw_int(gvd_pgw *w, int64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%lld", (long long)v);
    gvd_pgw_param(w, t, (size_t)n);
}

void gvd_pgw_double(gvd_pgw *w, double v)
{
    if (isnan(v)) {
        gvd_pgw_param(w, NULL, 0);
        return;
    }
    if (isinf(v)) {
        gvd_pgw_text(w, v > 0 ? "Infinity" : "-Infinity");
        return;
    }
    char t[32];
    int n = snprintf(t, sizeof t, "%.17g", v); /* exact: 17 significant digits round-trip */
    gvd_pgw_param(w, t, (size_t)n);
}

void gvd_pgw_bool(gvd_pgw *w, bool v)
{
    gvd_pgw_param(w, v ? "true" : "false", v ? 4 : 5);
}

void gvd_pgw_expect_row(gvd_pgw *w)
{
    w->b->stmts[w->n0].one_row = true;
}

void gvd_pgw_job(gvd_pgw *w, int64_t id)
{
    w->b->stmts[w->n0].job = id;
}

void gvd_pgw_rules(gvd_pgw *w)
{
    w->b->stmts[w->n0].rules = true;
}

void gvd_pgw_pipeline(gvd_pgw *w, int64_t id)
{
    w->b->stmts[w->n0].pipeline = id;
}

int gvd_pgw_end(gvd_pgw *w, char *err, size_t errlen)
{
    gvd_pgbatch *b = w->b;
    gvd_pgstmt *s = &b->stmts[w->n0];
    if (w->oom || b->noffs - w->noffs0 > GVD_PG_MAX_PARAMS) {
        gvd_pgs_errf(err, errlen, "store %s: %s", s->op,
                     w->oom ? "out of memory" : "internal error: too many parameters");
        b->noffs = w->noffs0;
        b->len = w->len0;
        return -1;
    }
    s->nparams = (int)(b->noffs - w->noffs0);
    b->n = w->n0 + 1;
    if (w->was_empty && w->st->dirty)
        w->st->dirty(w->st->hooks_ud);
    return 0;
}

gvd_pgpos gvd_pgs_pos(const gvd_pgstore *st)
{
    return (gvd_pgpos){st->cur->n, st->cur->noffs, st->cur->len};
}

void gvd_pgs_cut(gvd_pgstore *st, gvd_pgpos pos)
{
    gvd_pgbatch *b = st->cur;
    if (pos.n > b->n) /* the batch was dropped meanwhile (the store failed) */
        return;
    b->n = pos.n;
    b->noffs = pos.noffs;
    b->len = pos.len;
}

/* ---- coalescing job updates ------------------------------------------------ */

static size_t gvd_hslot(const gvd_pgbatch *b, int64_t id)
{
    size_t mask = b->hcap - 1;
    size_t i = (size_t)(((uint64_t)id * 0x9E3779B97F4A7C15ull) >> 20) & mask;
    while (b->hvals[i] && b->hkeys[i] != id)
        i = (i + 1) & mask;
    return i;
}

static int gvd_hgrow(gvd_pgbatch *b)
{
    size_t ncap = b->hcap ? b->hcap * 2 : 256;
    int64_t *keys = malloc(ncap * sizeof *keys);
    size_t *vals = calloc(ncap, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -1;
    }
    gvd_pgbatch nb = {.hkeys = keys, .hvals = vals, .hcap = ncap};
    for (size_t i = 0; i < b->hcap; i++)
        if (b->hvals[i]) {
            size_t j = gvd_hslot(&nb, b->hkeys[i]);
            keys[j] = b->hkeys[i];
            vals[j] = b->hvals[i];
        }
    free(b->hkeys);
    free(b->hvals);
    b->hkeys = keys;
    b->hvals = vals;
    b->hcap = ncap;
    return 0;
}

void gvd_pgs_coalesce(gvd_pgstore *st, int64_t id, bool has_spec)
{
    gvd_pgbatch *b = st->cur;
    if (b->n == 0)
        return;
    size_t last = b->n - 1;
    b->stmts[last].key = id;
    if ((b->hn + 1) * 2 > b->hcap && gvd_hgrow(b) != 0)
        return; /* out of memory: simply not coalesced */
    size_t slot = gvd_hslot(b, id);
    if (b->hvals[slot]) {
        size_t prev = b->hvals[slot] - 1;
        gvd_pgstmt *p = &b->stmts[prev];
        /* the entry may be stale (a rollback cut the batch below it) */
        size_t floor = st->marked ? st->mark.n : 0;
        if (prev < last && p->sql == b->stmts[last].sql && p->key == id && !p->skip && prev >= floor &&
            (has_spec || b->offs[p->first + 5] == GVD_PG_NULL)) {
            p->skip = true;
            b->skipped++;
        }
    } else {
        b->hkeys[slot] = id;
        b->hn++;
    }
    b->hvals[slot] = last + 1;
}

/* ---- lifetime ---------------------------------------------------------------- */

void gvd_pgs_free(gvd_pgstore *st)
{
    for (int i = 0; i < 2; i++)
        gvd_batch_free(&st->batch[i]);
    for (int i = 0; i < GVD_PGIDS_N; i++)
        free(st->ids[i].v);
    for (int i = 0; i < GVD_PGR_N; i++)
        if (st->res[i])
            PQclear(st->res[i]);
    free(st->node);
    free(st);
}

void gvd_pgs_enter(gvd_pgstore *st)
{
    st->depth++;
}

void gvd_pgs_leave(gvd_pgstore *st)
{
    if (--st->depth == 0 && st->closing && st->nq == 0)
        gvd_pgs_free(st);
}

/* Detach a batch's waiters (the caller calls them). */
gvd_pgwaiter *gvd_pgs_take_waiters(gvd_pgbatch *b)
{
    gvd_pgwaiter *w = b->waiters;
    b->waiters = b->waiters_last = NULL;
    return w;
}

static void gvd_pgs_append_waiters(gvd_pgbatch *b, gvd_pgwaiter *list)
{
    for (gvd_pgwaiter *w = list, *next; w; w = next) {
        next = w->next;
        w->next = NULL;
        if (b->waiters_last)
            b->waiters_last->next = w;
        else
            b->waiters = w;
        b->waiters_last = w;
    }
}

void gvd_pgs_call_waiters(gvd_pgwaiter *list, bool ok, const char *err)
{
    for (gvd_pgwaiter *w = list, *next; w; w = next) {
        next = w->next;
        gvd_store_synced_fn fn = w->fn;
        void *ud = w->ud;
        free(w);
        fn(ud, ok, err);
    }
}

/* ---- failure: the store turns unavailable, once ----------------------------- */

void gvd_pgs_fail(gvd_pgstore *st, const char *cause, const char *fmt, ...)
{
    if (st->unavailable || st->closing)
        return;
    st->unavailable = true;
    st->cause = cause;
    st->since = gvd_pgs_now();
    st->failed_writes++;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->error, sizeof st->error, fmt, ap);
    va_end(ap);
    gvd_pgs_oneline(st->error);
    char q[600];
    gvd_log(GVD_LOG_ERROR, "store.unavailable", "cause=\"%s\" store=postgres error=%s", cause,
            gvd_log_quote(st->error, q, sizeof q));
    gvd_obs_store_fault(GVD_STORE_IO_ERROR);
    gvd_obs_store_write_failed();
    /* Every waiter, buffered or in flight, learns it now; the buffered
     * statements are dropped (nothing will send them). */
    gvd_pgwaiter *fly = gvd_pgs_take_waiters(st->fly);
    gvd_pgwaiter *cur = gvd_pgs_take_waiters(st->cur);
    gvd_batch_reset(st->cur);
    st->flush_wanted = false;
    gvd_pgs_enter(st);
    gvd_pgs_call_waiters(fly, false, st->error);
    gvd_pgs_call_waiters(cur, false, st->error);
    if (st->lost && !st->closing)
        st->lost(st->hooks_ud, st->error);
    gvd_pgs_leave(st);
}

/* ---- flush and the answers ---------------------------------------------------- */

/* The batch in flight is answered (all of it). */
static void gvd_pgs_finish(gvd_pgstore *st)
{
    gvd_pgbatch *b = st->fly;
    st->in_flight = false;
    if (st->unavailable) { /* its waiters were answered when the store failed */
        gvd_batch_reset(b);
        return;
    }
    if (b->failed) {
        char why[sizeof b->err];
        snprintf(why, sizeof why, "%s", b->err);
        gvd_batch_reset(b);
        bool up = st->pg && gvd_pg_up(st->pg);
        gvd_pgs_fail(st, up ? "transaction failed" : "database connection lost", "%s", why);
        return;
    }
    gvd_obs_store_committed(b->started_ns);
    gvd_pgwaiter *w = gvd_pgs_take_waiters(b);
    gvd_batch_reset(b);
    gvd_pgs_enter(st);
    gvd_pgs_call_waiters(w, true, "");
    if (!st->closing && !st->unavailable && st->flush_wanted && !st->marked && !st->in_flight && st->cur->n > 0)
        gvd_pgs_send(st);
    gvd_pgs_leave(st);
}

static void gvd_pgs_on_answer(void *ud, const PGresult *res, const char *err)
{
    gvd_pgstore *st = ud;
    st->nq--;
    gvd_pgs_enter(st);
    if (st->closing) {
        gvd_pgs_leave(st);
        return;
    }
    gvd_pgbatch *b = st->fly;
    size_t idx = b->answered++;
    b->expected--;
    size_t commit = b->n + b->announced + 1;
    const char *op = idx == 0 ? "begin" : idx <= b->n ? b->stmts[idx - 1].op : idx < commit ? "announce" : "commit";
    if (err) {
        if (!b->failed) {
            b->failed = true;
            snprintf(b->err, sizeof b->err, "store batch: %s failed: %s", op, err);
        }
    } else if (idx == commit && !b->failed && strcmp(PQcmdStatus((PGresult *)res), "COMMIT") != 0) {
        b->failed = true;
        snprintf(b->err, sizeof b->err, "store batch: the transaction was rolled back (%s)",
                 PQcmdStatus((PGresult *)res));
    } else if (idx >= 1 && idx <= b->n && b->stmts[idx - 1].one_row &&
               strcmp(PQcmdTuples((PGresult *)res), "0") == 0) {
        /* SQLite's update says "no job N" to its caller; here the caller
         * has long returned: a model bug or a row another node deleted */
        gvd_log(GVD_LOG_WARN, "store.no_row", "store=postgres op=\"%s\"", op);
    }
    if (b->expected == 0 && !st->sending && st->in_flight)
        gvd_pgs_finish(st);
    gvd_pgs_leave(st);
}

/* Queue one query of the batch in flight; false if it could not be. */
static bool gvd_pgs_query(gvd_pgstore *st, const char *sql, int n, const char *const *params)
{
    /* counted first: a connection failing inside gvd_pg_query answers at once */
    st->fly->expected++;
    st->nq++;
    if (gvd_pg_query(st->pg, sql, n, params, gvd_pgs_on_answer, st) == 0)
        return true;
    st->fly->expected--;
    st->nq--;
    return false;
}

/* Send the buffered batch (nothing in flight, no mark open, not empty). */
/* NOTIFY galvani_jobs "<node> <id>,<id>,..." for the jobs the batch wrote,
 * inside its transaction: delivered if and only if it commits, in commit
 * order (cluster/mirror.c reads the rows).  Payloads stay well under
 * PostgreSQL's 8000 bytes; an id written twice in a row is named once.
 * The same on galvani_pipelines for the pipelines it wrote, and NOTIFY
 * galvani_rules "<node>" when it changed the global rules.  false when a
 * query could not be queued. */
#define GVD_PG_NOTIFY_MAX 7000
static bool gvd_pgs_announce_ids(gvd_pgstore *st, gvd_pgbatch *b, const char *sql, bool pipelines)
{
    char payload[GVD_PG_NOTIFY_MAX + 64];
    size_t head = (size_t)snprintf(payload, sizeof payload, "%s ", st->node), len = head;
    int64_t last = 0;
    for (size_t i = 0; i <= b->n; i++) {
        int64_t id = i < b->n ? (pipelines ? b->stmts[i].pipeline : b->stmts[i].job) : 0;
        if (i < b->n && (id == 0 || id == last))
            continue;
        if (i == b->n || len > GVD_PG_NOTIFY_MAX) {
            if (len > head) {
                payload[len - 1] = '\0'; /* the last comma */
                const char *p[] = {payload};
                if (!gvd_pgs_query(st, sql, 1, p))
                    return false;
                b->announced++;
            }
            len = head;
            if (i == b->n)
                break;
        }
        len += (size_t)snprintf(payload + len, sizeof payload - len, "%lld,", (long long)id);
        last = id;
    }
    return true;
}

static bool gvd_pgs_announce(gvd_pgstore *st, gvd_pgbatch *b)
{
    bool rules = false;
    for (size_t i = 0; i < b->n && !rules; i++)
        rules = b->stmts[i].rules;
    if (rules) {
        const char *p[] = {st->node};
        if (!gvd_pgs_query(st, "SELECT pg_notify('galvani_rules', $1)", 1, p))
            return false;
        b->announced++;
    }
    return gvd_pgs_announce_ids(st, b, "SELECT pg_notify('galvani_jobs', $1)", false) &&
           gvd_pgs_announce_ids(st, b, "SELECT pg_notify('galvani_pipelines', $1)", true);
}

static void gvd_pgs_send(gvd_pgstore *st)
{
    gvd_pgbatch *b = st->cur;
    st->cur = st->fly;
    st->fly = b;
    b->expected = b->answered = b->announced = 0;
    b->failed = false;
    b->err[0] = '\0';
    b->started_ns = gvd_obs_clock_ns();
    st->in_flight = true;
    st->sending = true;
    st->flush_wanted = false;
    if (b->skipped) { /* drop the superseded updates: answers map to stmts in order */
        size_t j = 0;
        for (size_t i = 0; i < b->n; i++)
            if (!b->stmts[i].skip)
                b->stmts[j++] = b->stmts[i];
        b->n = j;
    }
    gvd_pgs_enter(st);
    bool ok = gvd_pgs_query(st, "BEGIN", 0, NULL);
    bool begun = ok;
    const char *params[GVD_PG_MAX_PARAMS];
    for (size_t i = 0; ok && i < b->n; i++) {
        const gvd_pgstmt *s = &b->stmts[i];
        for (int p = 0; p < s->nparams; p++) {
            size_t off = b->offs[s->first + (size_t)p];
            params[p] = off == GVD_PG_NULL ? NULL : b->buf + off;
        }
        ok = gvd_pgs_query(st, s->sql, s->nparams, params);
    }
    if (ok && st->node)
        ok = gvd_pgs_announce(st, b);
    if (ok)
        ok = gvd_pgs_query(st, "COMMIT", 0, NULL);
    if (!ok) {
        if (!b->failed) {
            b->failed = true;
            snprintf(b->err, sizeof b->err, "store batch: cannot send it (%s)",
                     st->pg && gvd_pg_up(st->pg) ? "out of memory" : "database connection lost");
        }
        /* never leave a transaction open with half a batch in it */
        if (begun && st->pg && gvd_pg_up(st->pg))
            (void)gvd_pgs_query(st, "ROLLBACK", 0, NULL);
    }
    st->sending = false;
    if (b->expected == 0 && st->in_flight && st->fly == b)
        gvd_pgs_finish(st);
    gvd_pgs_leave(st);
}

/* The buffered batch is empty but has waiters (a rollback dropped what they
 * waited for): they wait for the batch in flight, or for nothing. */
static void gvd_pgs_settle_empty(gvd_pgstore *st)
{
    if (st->cur->n > 0 || !st->cur->waiters)
        return;
    gvd_pgwaiter *w = gvd_pgs_take_waiters(st->cur);
    if (st->in_flight) {
        gvd_pgs_append_waiters(st->fly, w);
        return;
    }
    gvd_pgs_enter(st);
    gvd_pgs_call_waiters(w, true, "");
    gvd_pgs_leave(st);
}

void gvd_pgstore_flush(gvd_pgstore *st)
{
    if (!st || st->closing || st->unavailable)
        return;
    if (st->cur->n == 0) {
        gvd_pgs_settle_empty(st);
        return;
    }
    if (st->in_flight || st->marked) {
        st->flush_wanted = true;
        return;
    }
    gvd_pgs_send(st);
}

int gvd_pgstore_set_node(gvd_pgstore *st, const char *node, int64_t epoch)
{
    char *copy = node ? strdup(node) : NULL;
    if (node && !copy)
        return -1;
    free(st->node);
    st->node = copy;
    st->epoch = epoch;
    return 0;
}

bool gvd_pgstore_unsynced(const gvd_pgstore *st)
{
    return st && !st->unavailable && !st->closing && (st->cur->n > 0 || st->in_flight);
}

int gvd_pgstore_sync(gvd_pgstore *st, gvd_store_synced_fn fn, void *ud)
{
    if (!fn)
        return -1;
    if (!st || st->closing) {
        fn(ud, false, "store is not open");
        return 0;
    }
    if (st->unavailable) {
        fn(ud, false, st->error);
        return 0;
    }
    gvd_pgbatch *b = st->cur->n > 0 ? st->cur : st->in_flight ? st->fly : NULL;
    if (!b) {
        fn(ud, true, "");
        return 0;
    }
    gvd_pgwaiter *w = malloc(sizeof *w);
    if (!w)
        return -1;
    w->fn = fn;
    w->ud = ud;
    w->next = NULL;
    gvd_pgs_append_waiters(b, w);
    return 0;
}

void gvd_pgstore_set_hooks(gvd_pgstore *st, void (*dirty)(void *ud), void (*lost)(void *ud, const char *err),
                           void *ud)
{
    if (!st)
        return;
    st->dirty = dirty;
    st->lost = lost;
    st->hooks_ud = ud;
}

/* ---- the caller's transactions: marks in the batch -------------------------- */

int gvd_pgstore_begin(gvd_pgstore *st, char *err, size_t errlen)
{
    if (!st || st->closing) {
        gvd_pgs_errf(err, errlen, "store begin: store is not open");
        return -1;
    }
    if (st->marked) {
        gvd_pgs_errf(err, errlen, "store begin: a transaction is already open (batches do not nest)");
        return -1;
    }
    if (st->unavailable) {
        gvd_pgs_errf(err, errlen, "store begin: store unavailable (%s): %s", st->cause, st->error);
        return -1;
    }
    st->marked = true;
    st->mark = gvd_pgs_pos(st);
    return 0;
}

/* After the mark ends: a flush asked for meanwhile happens now. */
static void gvd_pgs_after_mark(gvd_pgstore *st)
{
    if (st->cur->n == 0)
        gvd_pgs_settle_empty(st);
    else if (st->flush_wanted && !st->in_flight && !st->unavailable)
        gvd_pgs_send(st);
}

int gvd_pgstore_commit(gvd_pgstore *st, char *err, size_t errlen)
{
    if (!st || st->closing) {
        gvd_pgs_errf(err, errlen, "store commit: store is not open");
        return -1;
    }
    if (!st->marked) {
        gvd_pgs_errf(err, errlen, "store commit: no transaction is open");
        return -1;
    }
    st->marked = false;
    if (st->unavailable) {
        gvd_pgs_errf(err, errlen, "store commit: store unavailable (%s): %s", st->cause, st->error);
        return -1;
    }
    gvd_pgs_after_mark(st);
    return 0;
}

void gvd_pgstore_rollback(gvd_pgstore *st)
{
    if (!st || st->closing || !st->marked)
        return;
    st->marked = false;
    gvd_pgs_cut(st, st->mark);
    if (!st->unavailable)
        gvd_pgs_after_mark(st);
}

/* ---- health --------------------------------------------------------------------- */

void gvd_pgstore_health_get(gvd_pgstore *st, gvd_store_health *out)
{
    memset(out, 0, sizeof *out);
    out->error = "";
    if (!st || !st->unavailable)
        return;
    out->fault = GVD_STORE_IO_ERROR;
    out->cause = st->cause;
    out->since = st->since;
    out->failed_writes = st->failed_writes;
    out->error = st->error;
}

const char *gvd_pgstore_integrity(gvd_pgstore *st)
{
    if (!st || st->closing)
        return "store is not open";
    if (st->unavailable) {
        snprintf(st->integrity, sizeof st->integrity, "store unavailable (%s): %s", st->cause, st->error);
        return st->integrity;
    }
    if (!st->pg || !gvd_pg_up(st->pg))
        return "database connection is not up";
    return "ok";
}

