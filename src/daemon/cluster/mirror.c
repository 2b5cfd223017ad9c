/*
 * mirror.c — other nodes' jobs, followed through their rows.
 *
 * Each batch a node commits ends with NOTIFY galvani_jobs "<node> <ids>"
 * (the store sends it, in the same transaction: a notification is
 * delivered only if the batch committed, and in commit order).  Here the
 * other nodes' notifications are gathered over a loop tick and, at its end,
 * one query reads every row named; each row goes to the model
 * (gvd_jobs_apply_row: a new mirror, or the mirror follows), and an id
 * whose row is gone was deleted.  One read is in flight at a time; ids
 * named meanwhile wait for the next, which therefore reads rows at least as
 * new as the notification.  A node's own notifications are skipped: its
 * model is where the rows came from.
 *
 * Pipelines the same way, on galvani_pipelines: they change seldom (a
 * transition, a rule's firing, a retry), so each notification reads its
 * rows at once; the pipeline module holds another node's pipeline as a
 * mirror (pipeline/mirror.c).  A job that appears links to its step there.
 */
#include "cluster_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../pipeline/pipeline.h"
#include "../rules/rules.h"
#include "../store/pg/pgstore.h"
#include "../util/log.h"

static void gvd_read_cb(uv_check_t *h);

int gvd_cluster_mirror_init(gvd_cluster *c)
{
    if (uv_check_init(c->loop, &c->read_check) != 0)
        return -1;
    c->read_check.data = c;
    c->open_handles++;
    return 0;
}

/* Appended as they come (a busy tick names thousands): sorted and made
 * unique once, when the read is sent (gvd_read_cb). */
void gvd_cluster_want(gvd_cluster *c, int64_t id)
{
    if (c->nwant == c->cap_want) {
        size_t cap = c->cap_want ? c->cap_want * 2 : 64;
        int64_t *w = realloc(c->want, cap * sizeof *w);
        if (!w) {
            gvd_log(GVD_LOG_ERROR, "cluster.out_of_memory", "job=%lld", (long long)id);
            return;
        }
        c->want = w;
        c->cap_want = cap;
    }
    c->want[c->nwant++] = id;
    if (!c->read_armed && !c->reading && !c->freeing) {
        c->read_armed = true;
        (void)uv_check_start(&c->read_check, gvd_read_cb);
    }
}

/* The next id of a payload's "1,2,3" list at p: *id and where the rest
 * starts, or NULL at its end. */
static const char *gvd_next_id(const char *p, int64_t *id)
{
    char *end;
    long long v = strtoll(p, &end, 10);
    if (end == p)
        return NULL;
    *id = v;
    return *end == ',' ? end + 1 : end;
}

void gvd_cluster_on_notify(void *ud, const char *channel, const char *payload)
{
    gvd_cluster *c = ud;
    if (!c->jobs)
        return;
    if (strcmp(channel, "galvani_ctl") == 0) {
        gvd_cluster_on_ctl(c, payload);
        return;
    }
    if (strcmp(channel, "galvani_rules") == 0) {
        if (strcmp(payload, c->node_id) != 0)
            gvd_cluster_read_rules(c);
        return;
    }
    bool pipelines = strcmp(channel, "galvani_pipelines") == 0;
    if (!pipelines && strcmp(channel, "galvani_jobs") != 0)
        return;
    const char *sp = strchr(payload, ' ');
    if (!sp)
        return;
    size_t nlen = (size_t)(sp - payload);
    if (nlen == strlen(c->node_id) && memcmp(payload, c->node_id, nlen) == 0)
        return; /* this node's own batch */
    if (pipelines) {
        gvd_cluster_read_pipelines(c, sp + 1);
        return;
    }
    int64_t id;
    for (const char *p = sp + 1; (p = gvd_next_id(p, &id)) != NULL;)
        gvd_cluster_want(c, id);
}

static int gvd_id_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Sort ids[0..n) and drop repeats; the count left. */
static size_t gvd_ids_sort_unique(int64_t *ids, size_t n)
{
    qsort(ids, n, sizeof *ids, gvd_id_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || ids[m - 1] != ids[i])
            ids[m++] = ids[i];
    return m;
}

/* The ids asked for, as a PostgreSQL array literal "{1,2,3}" (owned). */
static char *gvd_ids_literal(const int64_t *ids, size_t n)
{
    size_t cap = 2 + n * 21;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t len = 0;
    s[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s%lld", i ? "," : "", (long long)ids[i]);
    s[len++] = '}';
    s[len] = '\0';
    return s;
}

/* Job `id`'s row was deleted by another node: its step lets go, then the
 * model forgets it. */
static void gvd_cluster_row_gone(gvd_cluster *c, int64_t id)
{
    gvd_pipelines_drop_job(c->jobs, id);
    gvd_jobs_apply_delete(c->jobs, id);
}

typedef struct gvd_read {
    gvd_cluster *c;
    int64_t *ids;
    size_t n;
} gvd_read;

static void gvd_on_rows(void *ud, const PGresult *res, const char *err)
{
    gvd_read *r = ud;
    gvd_cluster *c = r->c;
    c->reading = false;
    if (!c->freeing && c->jobs && !err && res) {
        /* Rows and ids both by id: one walk finds the ids with no row
         * (deleted on their node). */
        int n = PQntuples(res);
        size_t k = 0;
        for (int i = 0; i < n; i++) {
            gvd_job_row row;
            gvd_pg_job_row_read(res, i, &row);
            for (; k < r->n && r->ids[k] < row.id; k++)
                gvd_cluster_row_gone(c, r->ids[k]);
            if (k < r->n && r->ids[k] == row.id)
                k++;
            if (gvd_jobs_apply_row(c->jobs, &row) != 0)
                gvd_log(GVD_LOG_ERROR, "cluster.mirror_failed", "job=%lld", (long long)row.id);
            else if (row.spec_json && strstr(row.spec_json, "\"pipeline\"")) /* a step's: linked */
                gvd_pipelines_adopt_job(c->jobs, gvd_jobs_get(c->jobs, row.id));
        }
        for (; k < r->n; k++)
            gvd_cluster_row_gone(c, r->ids[k]);
    } else if (err && !c->freeing) {
        gvd_log(GVD_LOG_WARN, "cluster.read_failed", "jobs=%zu error=%s", r->n,
                gvd_log_quote(err, (char[400]){0}, 400));
        for (size_t k = 0; k < r->n; k++)
            gvd_cluster_want(c, r->ids[k]); /* again, with the next */
    }
    free(r->ids);
    free(r);
    if (c->nwant && !c->read_armed && !c->freeing) {
        c->read_armed = true;
        (void)uv_check_start(&c->read_check, gvd_read_cb);
    }
}

static void gvd_read_cb(uv_check_t *h)
{
    gvd_cluster *c = h->data;
    c->read_armed = false;
    (void)uv_check_stop(h);
    if (c->reading || !c->nwant || c->freeing)
        return;
    c->nwant = gvd_ids_sort_unique(c->want, c->nwant);
    gvd_read *r = malloc(sizeof *r);
    char *lit = r ? gvd_ids_literal(c->want, c->nwant) : NULL;
    if (!lit) {
        free(r);
        return;
    }
    *r = (gvd_read){c, c->want, c->nwant};
    c->want = NULL;
    c->nwant = c->cap_want = 0;
    const char *p[] = {lit};
    char sql[1024];
    snprintf(sql, sizeof sql, "SELECT %s FROM jobs WHERE id = ANY($1::bigint[]) ORDER BY id", gvd_pg_job_columns);
    if (gvd_pg_query(c->pg, sql, 1, p, gvd_on_rows, r) == 0)
        c->reading = true;
    else {
        free(r->ids);
        free(r);
    }
    free(lit);
}

/* Rows that changed between the store's read at open and LISTEN taking
 * effect would be missed: once listening, read every unfinished job and
 * every job changed in the last minute (by the writers' clocks: generous). */
static void gvd_on_catch_up(void *ud, const PGresult *res, const char *err)
{
    gvd_cluster *c = ud;
    if (c->freeing || !c->jobs || err || !res)
        return;
    for (int i = 0; i < PQntuples(res); i++) {
        gvd_job_row row;
        gvd_pg_job_row_read(res, i, &row);
        if (gvd_jobs_apply_row(c->jobs, &row) == 0 && row.spec_json && strstr(row.spec_json, "\"pipeline\""))
            gvd_pipelines_adopt_job(c->jobs, gvd_jobs_get(c->jobs, row.id));
    }
}

/* ---- pipelines ------------------------------------------------------------------ */

typedef struct gvd_pl_read {
    gvd_cluster *c;
    bool all; /* every row: a mirror with no row was deleted (catch-up) */
    int64_t *ids; /* the ids asked for (sorted), when not all */
    size_t n;
} gvd_pl_read;

static void gvd_on_pipeline_rows(void *ud, const PGresult *res, const char *err)
{
    gvd_pl_read *r = ud;
    gvd_cluster *c = r->c;
    if (!c->freeing && c->jobs && !err && res) {
        int n = PQntuples(res) > 0 ? PQntuples(res) : 0;
        for (int i = 0; i < n; i++) {
            gvd_pipeline_row row = {strtoll(PQgetvalue(res, i, 0), NULL, 10), PQgetvalue(res, i, 1),
                                    PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), strtod(PQgetvalue(res, i, 4), NULL)};
            (void)gvd_pipelines_apply_row(c->jobs, &row);
        }
        /* The ids asked for (or, reading all, the pipelines held here)
         * with no row were deleted.  Rows come by id: a binary search. */
        int64_t *have = malloc(((size_t)n + 1) * sizeof *have);
        for (int i = 0; have && i < n; i++)
            have[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        if (have && r->all) {
            for (gvd_pipeline *pl = gvd_pipelines_first(c->jobs), *next; pl; pl = next) {
                next = gvd_pipeline_next(pl);
                int64_t id = gvd_pipeline_id(pl);
                if (!bsearch(&id, have, (size_t)n, sizeof *have, gvd_id_cmp))
                    gvd_pipelines_apply_delete(c->jobs, id); /* one this node drives stays */
            }
        }
        for (size_t k = 0; have && k < r->n; k++)
            if (!bsearch(&r->ids[k], have, (size_t)n, sizeof *have, gvd_id_cmp))
                gvd_pipelines_apply_delete(c->jobs, r->ids[k]);
        free(have);
    } else if (err && !c->freeing) {
        gvd_log(GVD_LOG_WARN, "cluster.read_failed", "pipelines=%zu error=%s", r->n,
                gvd_log_quote(err, (char[400]){0}, 400));
    }
    free(r->ids);
    free(r);
}

void gvd_cluster_read_pipelines(gvd_cluster *c, const char *ids)
{
    static const char cols[] = "SELECT id, name, def_json, state_json, created_at FROM pipelines";
    gvd_pl_read *r = calloc(1, sizeof *r);
    if (!r)
        return;
    r->c = c;
    r->all = ids == NULL;
    int64_t id;
    for (const char *p = ids; p && (p = gvd_next_id(p, &id)) != NULL;) {
        int64_t *grown = realloc(r->ids, (r->n + 1) * sizeof *grown);
        if (!grown)
            break;
        r->ids = grown;
        r->ids[r->n++] = id;
    }
    if (!r->all && r->n == 0) {
        free(r->ids);
        free(r);
        return;
    }
    r->n = r->all ? 0 : gvd_ids_sort_unique(r->ids, r->n);
    char *lit = r->all ? NULL : gvd_ids_literal(r->ids, r->n);
    char sql[256];
    snprintf(sql, sizeof sql, "%s%s ORDER BY id", cols, r->all ? "" : " WHERE id = ANY($1::bigint[])");
    const char *p[] = {lit};
    if ((!r->all && !lit) || gvd_pg_query(c->pg, sql, r->all ? 0 : 1, p, gvd_on_pipeline_rows, r) != 0) {
        free(r->ids);
        free(r);
    }
    free(lit);
}

int gvd_cluster_catch_up(gvd_cluster *c)
{
    gvd_cluster_read_pipelines(c, NULL); /* those changed before LISTEN */
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM jobs WHERE status IN ('queued', 'running', 'paused') "
             "OR updated_at > extract(epoch FROM now()) - 60 ORDER BY id",
             gvd_pg_job_columns);
    return gvd_pg_query(c->pg, sql, 0, NULL, gvd_on_catch_up, c);
}

/* Another node created or deleted a global rule (NOTIFY galvani_rules):
 * read the table, and the model's rules follow it. */
static void gvd_on_rules(void *ud, const PGresult *res, const char *err)
{
    gvd_cluster *c = ud;
    if (c->freeing || !c->jobs || err || !res)
        return;
    int n = PQntuples(res);
    gvd_global_row *rows = calloc(n ? (size_t)n : 1, sizeof *rows);
    if (!rows)
        return;
    for (int i = 0; i < n; i++)
        rows[i] = (gvd_global_row){strtoll(PQgetvalue(res, i, 0), NULL, 10), PQgetvalue(res, i, 1),
                                   strtod(PQgetvalue(res, i, 2), NULL)};
    gvd_rules_sync_globals(c->jobs, rows, (size_t)n);
    free(rows);
}

void gvd_cluster_read_rules(gvd_cluster *c)
{
    (void)gvd_pg_query(c->pg, "SELECT id, def_json, created_at FROM rules ORDER BY id", 0, NULL, gvd_on_rules, c);
}
