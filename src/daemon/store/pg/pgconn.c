/*
 * pgconn.c — see pgconn.h.  The state machine:
 *
 *   CONNECTING  PQconnectPoll each time the socket is ready the way it
 *               asked (readable or writable); queries wait in the queue
 *   UP          pipeline mode: each query is sent at once with its own
 *               PQpipelineSync; the socket is watched for reading (answers,
 *               notifications) and for writing while libpq holds unsent
 *               bytes (PQflush said 1)
 *   DOWN        failed or lost: every queued query was answered with the
 *               reason; new queries are refused
 *
 * Answers: a query's results, then a NULL from PQgetResult (the end of that
 * query), then the PGRES_PIPELINE_SYNC of its sync point, which is when its
 * callback runs — with the last result it produced (one statement per
 * query: one result).  PQisBusy guards every PQgetResult, so reading never
 * blocks; a repeated NULL stops the loop until more input comes.
 *
 * Callbacks may queue queries or free the connection: the dispatch loop
 * re-reads the state after each one, and a free asked for inside a callback
 * happens when the dispatch is done.
 */
#include "pgconn.h"

#include <stdlib.h>
#include <string.h>

#include "../../util/log.h"

typedef enum { GVD_PG_CONNECTING, GVD_PG_UP, GVD_PG_DOWN } gvd_pg_state;

typedef struct gvd_pgq {
    struct gvd_pgq *next;
    char *sql;            /* owned */
    char **params;        /* owned, nparams entries (NULL = SQL NULL) */
    int nparams;
    gvd_pg_result_fn fn;
    void *ud;
    PGresult *res;        /* the latest result of this query (owned) */
    bool ended;           /* its NULL came: the sync is next */
} gvd_pgq;

struct gvd_pg {
    uv_loop_t *loop;
    PGconn *conn;
    uv_poll_t *poll;      /* owned; NULL when not watching; replaced when libpq's socket changes */
    int fd;
    gvd_pg_state state;
    gvd_pg_events ev;
    void *ud;
    gvd_pgq *sent, *sent_last;     /* sent, answers not back yet, in order */
    gvd_pgq *queued, *queued_last; /* not sent yet (connecting) */
    size_t pending;
    bool want_write;
    int dispatching;      /* > 0 inside callbacks */
    bool free_asked;
    char error[256];
};

static void gvd_pg_on_poll(uv_poll_t *h, int status, int events);

/* ---- queries ------------------------------------------------------------- */

static void gvd_pgq_free(gvd_pgq *q)
{
    for (int i = 0; i < q->nparams; i++)
        free(q->params[i]);
    free(q->params);
    free(q->sql);
    if (q->res)
        PQclear(q->res);
    free(q);
}

/* Answer q (already unlinked) and free it. */
static void gvd_pgq_answer(gvd_pg *pg, gvd_pgq *q, const char *err)
{
    pg->pending--;
    if (q->fn) {
        const PGresult *res = q->res;
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (!err && !(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK))
            err = res ? PQresultErrorMessage(res) : "no result";
        if (err && !*err)
            err = "the query failed";
        pg->dispatching++;
        q->fn(q->ud, err ? (res && st != PGRES_PIPELINE_ABORTED ? res : NULL) : res, err);
        pg->dispatching--;
    }
    gvd_pgq_free(q);
}

static void gvd_pg_fail_all(gvd_pg *pg, const char *why)
{
    gvd_pgq *lists[2] = {pg->sent, pg->queued};
    pg->sent = pg->sent_last = pg->queued = pg->queued_last = NULL;
    for (int l = 0; l < 2; l++)
        for (gvd_pgq *q = lists[l], *next; q; q = next) {
            next = q->next;
            gvd_pgq_answer(pg, q, why);
        }
}

/* ---- the socket ------------------------------------------------------------ */

static void gvd_poll_closed(uv_handle_t *h)
{
    free(h);
}

static void gvd_pg_unwatch(gvd_pg *pg)
{
    if (pg->poll) {
        uv_close((uv_handle_t *)pg->poll, gvd_poll_closed);
        pg->poll = NULL;
    }
}

/* Watch libpq's current socket for `events` (it may have changed while
 * connecting: another address of the host). */
static int gvd_pg_watch(gvd_pg *pg, int events)
{
    int fd = PQsocket(pg->conn);
    if (fd < 0)
        return -1;
    if (pg->poll && fd != pg->fd)
        gvd_pg_unwatch(pg);
    if (!pg->poll) {
        pg->poll = malloc(sizeof *pg->poll);
        if (!pg->poll || uv_poll_init(pg->loop, pg->poll, fd) != 0) {
            free(pg->poll);
            pg->poll = NULL;
            return -1;
        }
        pg->poll->data = pg;
        pg->fd = fd;
    }
    return uv_poll_start(pg->poll, events, gvd_pg_on_poll);
}

static void gvd_pg_down(gvd_pg *pg, const char *why)
{
    if (pg->state == GVD_PG_DOWN)
        return;
    pg->state = GVD_PG_DOWN;
    snprintf(pg->error, sizeof pg->error, "%s", why && *why ? why : "connection lost");
    /* libpq's messages end with a newline: not in ours */
    size_t n = strlen(pg->error);
    while (n && (pg->error[n - 1] == '\n' || pg->error[n - 1] == ' '))
        pg->error[--n] = '\0';
    gvd_pg_unwatch(pg);
    gvd_log(GVD_LOG_WARN, "pg.down", "error=%s", gvd_log_quote(pg->error, (char[300]){0}, 300));
    gvd_pg_fail_all(pg, pg->error);
    if (pg->ev.state) {
        pg->dispatching++;
        pg->ev.state(pg->ud, false, pg->error);
        pg->dispatching--;
    }
}

/* Push what libpq holds; watch for writability while it cannot. */
static void gvd_pg_flush(gvd_pg *pg)
{
    int rc = PQflush(pg->conn);
    if (rc < 0) {
        gvd_pg_down(pg, PQerrorMessage(pg->conn));
        return;
    }
    pg->want_write = rc == 1;
    if (gvd_pg_watch(pg, UV_READABLE | (pg->want_write ? UV_WRITABLE : 0)) != 0)
        gvd_pg_down(pg, "cannot watch the connection's socket");
}

static int gvd_pg_send(gvd_pg *pg, gvd_pgq *q)
{
    if (!PQsendQueryParams(pg->conn, q->sql, q->nparams, NULL, (const char *const *)q->params, NULL, NULL, 0) ||
        !PQpipelineSync(pg->conn))
        return -1;
    q->next = NULL;
    if (pg->sent_last)
        pg->sent_last->next = q;
    else
        pg->sent = q;
    pg->sent_last = q;
    return 0;
}

static void gvd_pg_send_queued(gvd_pg *pg)
{
    while (pg->queued && pg->state == GVD_PG_UP) {
        gvd_pgq *q = pg->queued;
        pg->queued = q->next;
        if (!pg->queued)
            pg->queued_last = NULL;
        if (gvd_pg_send(pg, q) != 0) {
            gvd_pgq_answer(pg, q, PQerrorMessage(pg->conn));
            gvd_pg_down(pg, PQerrorMessage(pg->conn));
            return;
        }
    }
    if (pg->state == GVD_PG_UP)
        gvd_pg_flush(pg);
}

/* ---- reading ------------------------------------------------------------- */

/* Hand every notification libpq has parsed to ev->notify. */
static void gvd_pg_notifies(gvd_pg *pg)
{
    PGnotify *n;
    while ((n = PQnotifies(pg->conn)) != NULL) {
        if (pg->ev.notify) {
            pg->dispatching++;
            pg->ev.notify(pg->ud, n->relname, n->extra ? n->extra : "");
            pg->dispatching--;
        }
        PQfreemem(n);
    }
}

static void gvd_pg_read(gvd_pg *pg)
{
    if (!PQconsumeInput(pg->conn)) {
        gvd_pg_down(pg, PQerrorMessage(pg->conn));
        return;
    }
    gvd_pg_notifies(pg);
    while (pg->sent && pg->state == GVD_PG_UP && !PQisBusy(pg->conn)) {
        gvd_pgq *q = pg->sent;
        PGresult *r = PQgetResult(pg->conn);
        if (!r) {
            if (q->ended)
                break; /* nothing more until input comes */
            q->ended = true;
            continue;
        }
        if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            pg->sent = q->next;
            if (!pg->sent)
                pg->sent_last = NULL;
            gvd_pgq_answer(pg, q, NULL);
            continue;
        }
        q->ended = false;
        if (q->res)
            PQclear(q->res);
        q->res = r;
    }
    /* A notification that came in the same read as a query's answer is
     * parsed only while that answer is read (PQgetResult): hand it on now,
     * not when the next bytes arrive — on a quiet connection that is the
     * next heartbeat, seconds later (found by bench/run-cluster.sh: 1 in
     * 25-65 cross-node answers took ~5 s). */
    if (pg->state == GVD_PG_UP)
        gvd_pg_notifies(pg);
}

/* ---- connecting ----------------------------------------------------------- */

static void gvd_pg_connect_step(gvd_pg *pg)
{
    switch (PQconnectPoll(pg->conn)) {
    case PGRES_POLLING_READING:
        if (gvd_pg_watch(pg, UV_READABLE) != 0)
            gvd_pg_down(pg, "cannot watch the connection's socket");
        return;
    case PGRES_POLLING_WRITING:
        if (gvd_pg_watch(pg, UV_WRITABLE) != 0)
            gvd_pg_down(pg, "cannot watch the connection's socket");
        return;
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(pg->conn, 1) != 0 || !PQenterPipelineMode(pg->conn)) {
            gvd_pg_down(pg, PQerrorMessage(pg->conn));
            return;
        }
        pg->state = GVD_PG_UP;
        gvd_log(GVD_LOG_INFO, "pg.up", "server_version=%d", PQserverVersion(pg->conn));
        if (pg->ev.state) {
            pg->dispatching++;
            pg->ev.state(pg->ud, true, NULL);
            pg->dispatching--;
        }
        gvd_pg_send_queued(pg);
        return;
    default:
        gvd_pg_down(pg, PQerrorMessage(pg->conn));
        return;
    }
}

static void gvd_pg_release(gvd_pg *pg)
{
    gvd_pg_unwatch(pg);
    gvd_pg_fail_all(pg, "connection closed");
    if (pg->conn)
        PQfinish(pg->conn);
    free(pg);
}

static void gvd_pg_on_poll(uv_poll_t *h, int status, int events)
{
    gvd_pg *pg = h->data;
    pg->dispatching++;
    if (pg->state == GVD_PG_CONNECTING) {
        /* an error on the socket too: PQconnectPoll says what it was
         * ("Connection refused"), better than the poll's errno */
        gvd_pg_connect_step(pg);
    } else if (status < 0 && pg->state != GVD_PG_DOWN) {
        gvd_pg_down(pg, uv_strerror(status));
    } else if (pg->state == GVD_PG_UP) {
        if (events & UV_READABLE)
            gvd_pg_read(pg);
        if (pg->state == GVD_PG_UP)
            gvd_pg_flush(pg);
    }
    pg->dispatching--;
    if (pg->free_asked && pg->dispatching == 0)
        gvd_pg_release(pg);
}

/* ---- the API --------------------------------------------------------------- */

gvd_pg *gvd_pg_new(uv_loop_t *loop, const char *conninfo, const gvd_pg_events *ev, void *ud, char *err,
                   size_t errlen)
{
    gvd_pg *pg = calloc(1, sizeof *pg);
    if (!pg) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pg->loop = loop;
    pg->ud = ud;
    pg->fd = -1;
    if (ev)
        pg->ev = *ev;
    pg->conn = PQconnectStart(conninfo);
    if (!pg->conn || PQstatus(pg->conn) == CONNECTION_BAD) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
                 pg->conn ? PQerrorMessage(pg->conn) : "out of memory");
        size_t n = strlen(err);
        while (n && err[n - 1] == '\n')
            err[--n] = '\0';
        if (pg->conn)
            PQfinish(pg->conn);
        free(pg);
        return NULL;
    }
    pg->state = GVD_PG_CONNECTING;
    /* The first step: libpq has started a non-blocking connect and wants
     * the socket writable. */
    if (gvd_pg_watch(pg, UV_WRITABLE) != 0) {
        snprintf(err, errlen, "cannot watch the PostgreSQL connection's socket");
        PQfinish(pg->conn);
        free(pg);
        return NULL;
    }
    return pg;
}

int gvd_pg_query(gvd_pg *pg, const char *sql, int nparams, const char *const *params, gvd_pg_result_fn fn,
                 void *ud)
{
    if (pg->state == GVD_PG_DOWN || pg->free_asked || nparams < 0)
        return -1;
    gvd_pgq *q = calloc(1, sizeof *q);
    if (!q || !(q->sql = strdup(sql)) || (nparams && !(q->params = calloc((size_t)nparams, sizeof *q->params)))) {
        if (q)
            gvd_pgq_free(q);
        return -1;
    }
    q->nparams = nparams;
    for (int i = 0; i < nparams; i++)
        if (params[i] && !(q->params[i] = strdup(params[i]))) {
            gvd_pgq_free(q);
            return -1;
        }
    q->fn = fn;
    q->ud = ud;
    pg->pending++;
    if (pg->state == GVD_PG_UP && !pg->queued) {
        if (gvd_pg_send(pg, q) != 0) {
            pg->pending--;
            gvd_pgq_free(q);
            return -1;
        }
        if (pg->dispatching == 0)
            gvd_pg_flush(pg); /* inside a callback, the poll callback flushes after it */
        return 0;
    }
    if (pg->queued_last)
        pg->queued_last->next = q;
    else
        pg->queued = q;
    pg->queued_last = q;
    return 0;
}

size_t gvd_pg_pending(const gvd_pg *pg) { return pg->pending; }
bool gvd_pg_up(const gvd_pg *pg) { return pg->state == GVD_PG_UP; }

void gvd_pg_free(gvd_pg *pg)
{
    if (!pg || pg->free_asked)
        return;
    pg->free_asked = true;
    if (pg->dispatching == 0)
        gvd_pg_release(pg);
}
