/*
 * pgstore_int.h — the PostgreSQL back end's private structure, shared by
 * pgstore.c (the batch, flush, waiters, hooks, marks, failure, health),
 * pgopen.c (open, close, id reservation, the answers read at open),
 * pgrows.c (the job rows) and pghistory.c (params history, points, rule
 * events and latches, global rules, pipelines).  Not part of the contract:
 * store.c includes pgstore.h only.
 *
 * A write renders itself into the current batch with the gvd_pgw_* calls:
 *
 *   gvd_pgw w;
 *   if (gvd_pgw_begin(st, &w, "point put", GVD_SQL_POINT_PUT, err, errlen) != 0)
 *       return -1;                      // unavailable store: nothing queued
 *   gvd_pgw_int(&w, row->job_id);
 *   gvd_pgw_text(&w, row->name);
 *   ...
 *   return gvd_pgw_end(&w, err, errlen); // 0, or -1 (out of memory: undone)
 *
 * The parameters are text, appended to one growing buffer per batch (no
 * allocation per statement once the buffers have grown); each statement
 * records where its parameters start.  Offsets, not pointers: the buffer
 * moves when it grows.
 */
#ifndef GALVANI_DAEMON_STORE_PGSTORE_INT_H
#define GALVANI_DAEMON_STORE_PGSTORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgconn.h"
#include "pgstore.h"

/* A parameter offset meaning SQL NULL. */
#define GVD_PG_NULL SIZE_MAX

/* One queued statement: its SQL (static), a name for messages, and its
 * parameters: offs[first .. first + nparams) of its batch. */
typedef struct gvd_pgstmt {
    const char *sql;
    const char *op;
    size_t first;
    int nparams;
    bool one_row; /* an UPDATE of one row by id: a miss is logged */
    bool skip;    /* superseded by a later update of the same job (gvd_pgs_coalesce) */
    int64_t key;  /* the job of a job update; 0 otherwise */
    int64_t job;  /* the job whose row it writes (insert, update, delete): announced; 0 otherwise */
    bool rules;   /* it changes the global rules: announced on galvani_rules */
    int64_t pipeline; /* the pipeline whose row it writes: announced on galvani_pipelines; 0 otherwise */
} gvd_pgstmt;

/* A position in a batch (the caller's begin mark, a multi-statement write). */
typedef struct gvd_pgpos {
    size_t n, noffs, len;
} gvd_pgpos;

typedef struct gvd_pgwaiter {
    struct gvd_pgwaiter *next;
    gvd_store_synced_fn fn;
    void *ud;
} gvd_pgwaiter;

/* A batch: the buffered one collects writes; the one in flight waits for
 * its answers.  The two swap at each send, keeping their buffers. */
typedef struct gvd_pgbatch {
    gvd_pgstmt *stmts;
    size_t n, cap;
    size_t *offs; /* parameter starts in buf, or GVD_PG_NULL */
    size_t noffs, offcap;
    char *buf;    /* the parameters' text, each NUL-terminated */
    size_t len, bufcap;
    gvd_pgwaiter *waiters, *waiters_last;
    /* the last job update of each job in this batch: job id -> index + 1
     * (open addressing; 0 = empty) */
    int64_t *hkeys;
    size_t *hvals;
    size_t hcap, hn;
    size_t skipped;
    /* in flight only */
    size_t expected;  /* answers still to come */
    size_t answered;  /* answers come in order: 0 is BEGIN, 1..n the statements, then `announced`
                         NOTIFYs (gvd_pgstore_set_node), then COMMIT */
    size_t announced;
    bool failed;
    char err[512];
    uint64_t started_ns;
} gvd_pgbatch;

/* The ids one table hands out: a queue of values reserved from its identity
 * sequence, refilled by one query at a time. */
typedef struct gvd_pgids {
    const char *table;
    int64_t *v;
    size_t head, n, cap;
    unsigned block;   /* ids asked for per refill (grows when the queue ran dry) */
    bool refilling;
    struct gvd_pgstore *st;
} gvd_pgids;

enum { GVD_PGIDS_JOBS, GVD_PGIDS_EVENTS, GVD_PGIDS_RULES, GVD_PGIDS_PIPELINES, GVD_PGIDS_N };

/* The answers read at open, kept until close, walked by the *_load calls. */
enum {
    GVD_PGR_JOBS,
    GVD_PGR_PARAMS,
    GVD_PGR_POINTS,
    GVD_PGR_EVENTS,
    GVD_PGR_LATCHES,
    GVD_PGR_RULES,
    GVD_PGR_PIPELINES,
    GVD_PGR_N
};

struct gvd_pgstore {
    uv_loop_t *loop;
    gvd_pg *pg;
    gvd_pgbatch batch[2];
    gvd_pgbatch *cur, *fly; /* fly is in flight when in_flight */
    bool in_flight;
    bool sending;           /* inside the send loop: answers may come re-entrantly */
    bool flush_wanted;      /* send the buffered batch when the one in flight (or the mark) ends */
    bool marked;            /* between begin and commit/rollback */
    gvd_pgpos mark;
    gvd_pgids ids[GVD_PGIDS_N];
    PGresult *res[GVD_PGR_N];
    /* several nodes (gvd_pgstore_set_node): this node's id and epoch, or
     * NULL; then each batch announces the jobs it wrote on galvani_jobs */
    char *node;
    int64_t epoch;
    /* hooks */
    void (*dirty)(void *ud);
    void (*lost)(void *ud, const char *err);
    void *hooks_ud;
    /* health: unavailable from the first failure on */
    bool unavailable;
    const char *cause;      /* static */
    double since;
    uint64_t failed_writes;
    char error[512];
    char integrity[600];
    /* lifetime: answers still owed to us by the connection, and how deep
     * we are in our own callbacks; close frees once both are 0 */
    size_t nq;
    int depth;
    bool closing;
    bool down_seen;         /* the connection reported itself down (its last call to us) */
    bool await_down;        /* closed while it was going down: its state call is owed */
    /* open */
    bool opening, migrated, open_failed, ever_up;
    size_t open_pending, loads_answered;
    unsigned open_timeout_ms;
    char open_err[512];
};

/* ---- rendering a write (pgstore.c) ----------------------------------------- */

typedef struct gvd_pgw {
    gvd_pgstore *st;
    gvd_pgbatch *b;
    size_t n0, noffs0, len0; /* the batch before this statement: undone on failure */
    bool was_empty;
    bool oom;
} gvd_pgw;

/* -1 with "store <op>: ..." when there is no store or it is unavailable. */
int gvd_pgw_begin(gvd_pgstore *st, gvd_pgw *w, const char *op, const char *sql, char *err, size_t errlen);
void gvd_pgw_text(gvd_pgw *w, const char *s); /* NULL = SQL NULL */
void gvd_pgw_int(gvd_pgw *w, int64_t v);
void gvd_pgw_double(gvd_pgw *w, double v);    /* NaN = SQL NULL (as SQLite stores it) */
void gvd_pgw_bool(gvd_pgw *w, bool v);
/* The statement updates one row by id: an answer of 0 rows is logged. */
void gvd_pgw_expect_row(gvd_pgw *w);
/* The statement writes job `id`'s row: the batch announces it. */
void gvd_pgw_job(gvd_pgw *w, int64_t id);
/* The statement changes the global rules: the batch says so. */
void gvd_pgw_rules(gvd_pgw *w);
/* It writes pipeline `id`'s row (announced: cluster/mirror.c). */
void gvd_pgw_pipeline(gvd_pgw *w, int64_t id);
/* Finish the statement: 0 (queued; the dirty hook when the buffer was
 * empty), or -1 "out of memory" with the statement undone. */
int gvd_pgw_end(gvd_pgw *w, char *err, size_t errlen);

/* The job update just queued (the batch's last statement, for job `id`)
 * makes an earlier update of that job in the same batch redundant: every
 * column is rewritten, and nothing in a batch reads a job row, so the
 * earlier one is not sent.  Only when both are on the same side of the
 * caller's begin mark (a rollback drops both or neither), and when the
 * earlier one did not carry a spec the later one would keep (spec NULL). */
void gvd_pgs_coalesce(gvd_pgstore *st, int64_t id, bool has_spec);

/* A new id of table `which`, or -1 with "store <op>: no reserved id left". */
int gvd_pgs_take_id(gvd_pgstore *st, int which, int64_t *id, const char *op, char *err, size_t errlen);
/* Give back the last id taken (the write that took it could not be queued). */
void gvd_pgs_untake_id(gvd_pgstore *st, int which, int64_t id);
/* Where the buffered batch stands, and a cut back to it: several statements
 * that must be queued together (rule_delete) undo the first ones when a
 * later one cannot be queued. */
gvd_pgpos gvd_pgs_pos(const gvd_pgstore *st);
void gvd_pgs_cut(gvd_pgstore *st, gvd_pgpos pos);

/* "store <op>: ..." into err. */
void gvd_pgs_errf(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- shared by pgstore.c and pgopen.c ------------------------------------------ */

/* The store turns unavailable (once): health, log, every waiter told, the
 * buffered batch dropped, the lost hook called. */
void gvd_pgs_fail(gvd_pgstore *st, const char *cause, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Our frames on the stack: leave frees a closing store when nothing is owed. */
void gvd_pgs_enter(gvd_pgstore *st);
void gvd_pgs_leave(gvd_pgstore *st);
void gvd_pgs_free(gvd_pgstore *st);
gvd_pgwaiter *gvd_pgs_take_waiters(gvd_pgbatch *b);
void gvd_pgs_call_waiters(gvd_pgwaiter *list, bool ok, const char *err);
/* Keep the first line of a libpq message. */
void gvd_pgs_oneline(char *s);
/* Grow *p (of *cap elements of `size`) to hold `need`, doubling from `first`. */
int gvd_pgs_grow(void **p, size_t *cap, size_t need, size_t size, size_t first);

/* ---- reading the answers kept from open (pgrows.c, pghistory.c) ------------ */

/* The kept answer `which`, or NULL with "store <op>: ..." in err. */
const PGresult *gvd_pgs_result(gvd_pgstore *st, int which, const char *op, char *err, size_t errlen);
/* Column helpers: text (NULL for SQL NULL), text or "" for NULL, integers
 * and doubles (0 for NULL), booleans ('t'). */
const char *gvd_pgv_text(const PGresult *r, int row, int col);
const char *gvd_pgv_str(const PGresult *r, int row, int col);
int64_t gvd_pgv_int(const PGresult *r, int row, int col);
double gvd_pgv_double(const PGresult *r, int row, int col);
bool gvd_pgv_bool(const PGresult *r, int row, int col);
/* After a callback returned `stop` != 0: the message the SQLite back end gives. */
int gvd_pgs_stopped(char *err, size_t errlen, const char *op, int stop);

/* The SELECTs open runs, in order of GVD_PGR_*: defined next to their readers. */
extern const char gvd_pg_sql_load_jobs[];
extern const char gvd_pg_sql_load_params[];
extern const char gvd_pg_sql_load_points[];
extern const char gvd_pg_sql_load_events[];
extern const char gvd_pg_sql_load_latches[];
extern const char gvd_pg_sql_load_rules[];
extern const char gvd_pg_sql_load_pipelines[];

#endif
