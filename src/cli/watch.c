/* galvani CLI: `watch` and `run --follow` (see watch.h).
 *
 * The daemon pushes {"type":"snapshot"|"job"|"removed"|"counts",...} as SSE
 * events.  We keep the latest JSON of each shown job, ordered by id, and after
 * each event either redraw the whole block in place (terminal) or print a
 * plain line for each job whose status or whole-percent progress changed
 * (pipe), so a log of a piped watch is readable and not one line per event. */
#include "watch.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GVC_BAR_WIDTH 24

typedef struct gvc_row {
    long long id;
    json_t *job;        /* latest state (owned reference) */
    char last[64];      /* plain mode: status+progress last printed */
} gvc_row;

typedef struct gvc_watcher {
    const gvc_watch_opts *o;
    gvc_row *rows;
    size_t nrows, caprows;
    int drawn;          /* lines of the block currently on the terminal */
    int snapshot_seen;
    int done;           /* every watched job finished */
    int failed;         /* an error was printed: exit 1 */
    gvc_buf line;       /* partial SSE line */
    gvc_buf data;       /* the current event's data lines */
} gvc_watcher;

static int gvc_finished(const json_t *job)
{
    const char *s = json_string_value(json_object_get(job, "status"));
    return s && (!strcmp(s, "succeeded") || !strcmp(s, "failed") || !strcmp(s, "cancelled"));
}

static int gvc_wanted(const gvc_watcher *w, long long id)
{
    if (!w->o->nids)
        return 1;
    for (size_t i = 0; i < w->o->nids; i++)
        if (w->o->ids[i] == id)
            return 1;
    return 0;
}

static gvc_row *gvc_row_find(gvc_watcher *w, long long id)
{
    for (size_t i = 0; i < w->nrows; i++)
        if (w->rows[i].id == id)
            return &w->rows[i];
    return NULL;
}

/* Insert or replace the row of `job` (rows stay sorted by id).  Returns -1 on
 * allocation failure. */
static int gvc_row_set(gvc_watcher *w, json_t *job)
{
    long long id = json_integer_value(json_object_get(job, "id"));
    gvc_row *r = gvc_row_find(w, id);
    if (r) {
        json_decref(r->job);
        r->job = json_incref(job);
        return 0;
    }
    if (w->nrows == w->caprows) {
        size_t cap = w->caprows ? w->caprows * 2 : 16;
        gvc_row *p = realloc(w->rows, cap * sizeof *p);
        if (!p)
            return -1;
        w->rows = p;
        w->caprows = cap;
    }
    size_t at = w->nrows;
    while (at > 0 && w->rows[at - 1].id > id)
        at--;
    memmove(&w->rows[at + 1], &w->rows[at], (w->nrows - at) * sizeof *w->rows);
    w->rows[at] = (gvc_row){.id = id, .job = json_incref(job)};
    w->nrows++;
    return 0;
}

static const char *gvc_color(const char *status)
{
    /* https://no-color.org: a set NO_COLOR turns colours off, bars stay. */
    if (getenv("NO_COLOR"))
        return "";
    if (!strcmp(status, "running")) return "\033[34m";
    if (!strcmp(status, "paused")) return "\033[33m";
    if (!strcmp(status, "succeeded")) return "\033[32m";
    if (!strcmp(status, "failed")) return "\033[31m";
    if (!strcmp(status, "cancelled")) return "\033[35m";
    return "";
}

/* "rate 9.8%/s  eta 6s" when the daemon knows them. */
static void gvc_rate_eta(const json_t *job, char *out, size_t n)
{
    json_t *rate = json_object_get(job, "rate"), *eta = json_object_get(job, "eta");
    int k = 0;
    out[0] = '\0';
    if (json_is_number(rate) && json_number_value(rate) > 0)
        k = snprintf(out, n, "  %.1f%%/s", json_number_value(rate));
    if (k >= 0 && (size_t)k < n && json_is_number(eta))
        snprintf(out + k, n - (size_t)k, "  eta %.0fs", json_number_value(eta));
}

static void gvc_draw_tty(gvc_watcher *w)
{
    /* Back to the top of the block, then rewrite every line (\033[2K clears
     * the rest of a longer old line). */
    if (w->drawn > 0)
        printf("\033[%dA", w->drawn);
    for (size_t i = 0; i < w->nrows; i++) {
        const json_t *job = w->rows[i].job;
        const char *status = json_string_value(json_object_get(job, "status"));
        double pct = json_number_value(json_object_get(job, "progress"));
        int fill = (int)(pct * GVC_BAR_WIDTH / 100.0 + 0.5);
        char bar[GVC_BAR_WIDTH + 1], extra[64];
        if (fill < 0) fill = 0;
        if (fill > GVC_BAR_WIDTH) fill = GVC_BAR_WIDTH;
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, '-', (size_t)(GVC_BAR_WIDTH - fill));
        bar[GVC_BAR_WIDTH] = '\0';
        gvc_rate_eta(job, extra, sizeof extra);
        status = status ? status : "?";
        printf("\033[2K%-5lld %-20.20s [%s] %3.0f%%  %s%-9s\033[0m%s\n", w->rows[i].id,
               json_string_value(json_object_get(job, "name")) ? json_string_value(json_object_get(job, "name")) : "",
               bar, pct, gvc_color(status), status, extra);
    }
    w->drawn = (int)w->nrows;
    fflush(stdout);
}

static void gvc_draw_plain(gvc_watcher *w)
{
    for (size_t i = 0; i < w->nrows; i++) {
        gvc_row *r = &w->rows[i];
        const char *status = json_string_value(json_object_get(r->job, "status"));
        char now[64];
        snprintf(now, sizeof now, "%s %.0f", status ? status : "?",
                 json_number_value(json_object_get(r->job, "progress")));
        if (!strcmp(now, r->last))
            continue;
        snprintf(r->last, sizeof r->last, "%s", now);
        const char *name = json_string_value(json_object_get(r->job, "name"));
        printf("job %lld %s: %s %.0f%%\n", r->id, name ? name : "", status ? status : "?",
               json_number_value(json_object_get(r->job, "progress")));
    }
    fflush(stdout);
}

/* Apply one event's JSON. */
static void gvc_apply(gvc_watcher *w, const char *text)
{
    json_t *msg = json_loads(text, 0, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (!type) {
        json_decref(msg);
        return;
    }
    if (w->o->json) {
        printf("%s\n", text);
        fflush(stdout);
    }
    if (!strcmp(type, "snapshot")) {
        w->snapshot_seen = 1;
        size_t i;
        json_t *job;
        json_array_foreach(json_object_get(msg, "jobs"), i, job) {
            long long id = json_integer_value(json_object_get(job, "id"));
            /* Without ids, finished jobs from before are history, not news. */
            if (w->o->nids ? gvc_wanted(w, id) : !gvc_finished(job))
                if (gvc_row_set(w, job))
                    w->failed = 1;
        }
        for (size_t k = 0; k < w->o->nids; k++) {
            if (!gvc_row_find(w, w->o->ids[k])) {
                fprintf(stderr, "galvani: no job %lld\n", w->o->ids[k]);
                w->failed = 1;
            }
        }
    } else if (!strcmp(type, "job")) {
        json_t *job = json_object_get(msg, "job");
        if (json_is_object(job) && gvc_wanted(w, json_integer_value(json_object_get(job, "id"))))
            if (gvc_row_set(w, job))
                w->failed = 1;
    }
    json_decref(msg);
    if (w->failed)
        return;
    if (!w->o->json) {
        if (w->o->tty)
            gvc_draw_tty(w);
        else
            gvc_draw_plain(w);
    }
    if (w->o->nids && w->snapshot_seen) {
        size_t fin = 0;
        for (size_t i = 0; i < w->nrows; i++)
            fin += gvc_finished(w->rows[i].job) ? 1 : 0;
        w->done = fin == w->o->nids;
    }
}

static int gvc_buf_add(gvc_buf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->data, cap);
        if (!q)
            return -1;
        b->data = q;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* One complete SSE line (without its newline).  "data:" lines accumulate;
 * an empty line ends the event; "event:", ":" comments and others are not
 * needed (the data carries its type). */
static int gvc_sse_line(gvc_watcher *w, const char *line, size_t n)
{
    if (n == 0) {
        if (w->data.len)
            gvc_apply(w, w->data.data);
        w->data.len = 0;
        return 0;
    }
    if (n >= 5 && !memcmp(line, "data:", 5)) {
        line += 5;
        n -= 5;
        if (n && *line == ' ') {
            line++;
            n--;
        }
        if (w->data.len && gvc_buf_add(&w->data, "\n", 1))
            return -1;
        return gvc_buf_add(&w->data, line, n);
    }
    return 0;
}

static int gvc_on_chunk(void *userdata, const char *data, size_t len)
{
    gvc_watcher *w = userdata;
    for (size_t i = 0; i < len && !w->done && !w->failed; i++) {
        if (data[i] != '\n') {
            if (gvc_buf_add(&w->line, &data[i], 1))
                return 1;
            continue;
        }
        size_t n = w->line.len;
        if (n && w->line.data[n - 1] == '\r')
            n--;
        if (gvc_sse_line(w, n ? w->line.data : "", n))
            return 1;
        w->line.len = 0;
    }
    return w->done || w->failed;
}

int gvc_watch(gvc_http *h, const gvc_watch_opts *opts, int *job_exit)
{
    gvc_watcher w = {.o = opts};
    char path[64] = "/events";
    if (opts->nids == 1)
        snprintf(path, sizeof path, "/events?job=%lld", opts->ids[0]);
    long status = 0;
    gvc_buf err;
    gvc_http_result r = gvc_http_stream(h, path, gvc_on_chunk, &w, &status, &err);
    int rc = 0;
    if (gvc_http_check(h, r, status, &err, "the event stream") != 0) {
        rc = 1;
    } else if (w.failed) {
        rc = 1;
    } else if (opts->nids && !w.done) {
        fprintf(stderr, "galvani: galvanid ended the event stream\n");
        rc = 1;
    }
    if (r == GVC_HTTP_OK)
        gvc_buf_free(&err);
    if (job_exit && opts->nids == 1 && w.nrows == 1 && gvc_finished(w.rows[0].job)) {
        json_t *job = w.rows[0].job;
        json_t *code = json_object_get(job, "exit_code"), *sig = json_object_get(job, "signal");
        const char *st = json_string_value(json_object_get(job, "status"));
        if (json_is_integer(code))
            *job_exit = (int)json_integer_value(code);
        else if (json_is_integer(sig))
            *job_exit = 128 + (int)json_integer_value(sig);
        else
            *job_exit = st && !strcmp(st, "succeeded") ? 0 : 1;
    }
    for (size_t i = 0; i < w.nrows; i++)
        json_decref(w.rows[i].job);
    free(w.rows);
    gvc_buf_free(&w.line);
    gvc_buf_free(&w.data);
    return rc;
}
