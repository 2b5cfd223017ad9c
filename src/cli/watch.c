/* galvani CLI: `watch` (see watch.h).
 *
 * The daemon pushes {"type":"snapshot"|"update",...} as SSE events (the
 * compact stream, /events?v=2: an update carries what one flush changed,
 * each job as its changed fields, merged into the row; --json keeps the
 * v1 stream, {"type":"snapshot"|"job"|"removed"|"counts"}, whose events
 * it prints as they are).  We keep the latest JSON of each shown job, ordered by id, and the
 * counts, and after each event either redraw the frame in place (terminal)
 * or print a plain line for each job whose status or whole-percent progress
 * changed (pipe: a log of a piped watch is readable, not one line per
 * event); a finished job's line is its verdict.
 *
 * The frame: a header with the counts, one line per job fitted to the
 * terminal's width (names cut with "…", then the bar, rate/eta and the
 * ::status message dropped as the width shrinks), "… N more" when the jobs
 * do not fit its height, and a "reconnecting" line while galvanid is away. */
#include "watch.h"

#include "cli.h"
#include "term.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GVC_BAR_MAX 24
#define GVC_LINE 2048 /* one frame line, escape codes and UTF-8 included */

typedef struct gvc_row {
    long long id;
    json_t *job;        /* latest state (owned reference) */
    char last[64];      /* plain mode: status+progress last printed */
    int seen;           /* in the latest snapshot */
} gvc_row;

typedef struct gvc_watcher {
    const gvc_watch_opts *o;
    const char *base;   /* the daemon's URL, for the reconnecting line */
    gvc_row *rows;
    size_t nrows, caprows;
    json_t *counts;     /* the latest counts (owned), or NULL */
    int drawn;          /* lines of the frame currently on the terminal */
    int clear;          /* redraw on a cleared screen (resized) */
    int snapshot_seen;  /* on this connection */
    int connected;      /* a snapshot came at least once */
    int raw;            /* keys are read: q quits */
    int done;           /* every watched job finished */
    int failed;         /* an error was printed: exit 1 */
    int quit;           /* q */
    char notice[256];   /* the reconnecting line, or "" */
    gvc_buf line;       /* partial SSE line */
    gvc_buf data;       /* the current event's data lines */
} gvc_watcher;

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
    long long id = gvc_int(job, "id");
    gvc_row *r = gvc_row_find(w, id);
    if (r) {
        json_decref(r->job);
        r->job = json_incref(job);
        r->seen = 1;
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
    w->rows[at] = (gvc_row){.id = id, .job = json_incref(job), .seen = 1};
    w->nrows++;
    return 0;
}

static void gvc_row_remove(gvc_watcher *w, size_t i)
{
    json_decref(w->rows[i].job);
    memmove(&w->rows[i], &w->rows[i + 1], (w->nrows - i - 1) * sizeof *w->rows);
    w->nrows--;
}

/* ---- the frame ----------------------------------------------------------- */

/* Column widths of one frame (0: the column is dropped). */
typedef struct gvc_cols {
    int id, name, bar, extra, msg;
} gvc_cols;

/* What a job's message column says: why it failed, else its ::status. */
static const char *gvc_row_message(const json_t *job)
{
    const char *err = gvc_str(job, "error", "");
    return *err ? err : gvc_str(job, "message", "");
}

/* "9.8%/s eta 6s" when the daemon knows them, else "". */
static void gvc_rate_eta(const json_t *job, char *out, size_t n)
{
    json_t *rate = json_object_get(job, "rate"), *eta = json_object_get(job, "eta");
    int k = 0;
    out[0] = '\0';
    if (json_is_number(rate) && json_number_value(rate) > 0)
        k = snprintf(out, n, "%.1f%%/s", json_number_value(rate));
    if (k >= 0 && (size_t)k < n && json_is_number(eta))
        snprintf(out + k, n - (size_t)k, "%seta %.0fs", k ? " " : "", json_number_value(eta));
}

/* Share `width` columns out: the id, percent and status always (what a job
 * is doing), then the name, the bar, the message and the rate, each only
 * where it still fits.  `shown` rows are the ones drawn. */
static gvc_cols gvc_layout(const gvc_watcher *w, size_t shown, int width)
{
    gvc_cols c = {0};
    int name = 0, any_msg = 0, any_extra = 0;
    char extra[64], fitted[GVC_LINE];
    c.id = 3;
    for (size_t i = 0; i < shown; i++) {
        const json_t *job = w->rows[i].job;
        int d = snprintf(extra, sizeof extra, "%lld", w->rows[i].id);
        c.id = d > c.id ? d : c.id;
        gvc_fit(fitted, sizeof fitted, gvc_str(job, "name", ""), 1000, 0);
        int len = 0;
        for (const unsigned char *p = (const unsigned char *)fitted; *p; p++)
            len += (*p & 0xC0) != 0x80;
        name = len > name ? len : name;
        any_msg |= *gvc_row_message(job) != '\0';
        gvc_rate_eta(job, extra, sizeof extra);
        any_extra |= extra[0] != '\0';
    }
    int left = width - (c.id + 1) - 5 - 9; /* "ID ", "100% ", "cancelled" */
    int cap = width >= 160 ? 64 : width >= 120 ? 40 : width >= 60 ? 24 : 16;
    c.name = name < cap ? name : cap;
    if (c.name > left - 1)
        c.name = left - 1;
    if (c.name < 3)
        c.name = 0;
    else
        left -= c.name + 1;
    if (left >= 13) {
        /* a shorter bar, down to 10, leaves the message 20 columns */
        int bar = left - 3 - (any_msg ? 20 : 0);
        c.bar = bar > GVC_BAR_MAX ? GVC_BAR_MAX : bar < 10 ? 10 : bar;
        left -= c.bar + 3;
    }
    if (any_extra && left >= 19 + (any_msg ? 20 : 0)) { /* the message keeps its 20 */
        c.extra = 18;
        left -= c.extra + 1;
    }
    if (any_msg && left >= 9)
        c.msg = left - 1;
    return c;
}

/* Append to a line being built; *o stays within the buffer (a cut frame
 * line is better than none). */
static void gvc_cat(char *out, size_t n, size_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = *o < n ? vsnprintf(out + *o, n - *o, fmt, ap) : 0;
    va_end(ap);
    if (k > 0)
        *o = *o + (size_t)k < n ? *o + (size_t)k : n - 1;
}

/* One job's line, at most `width` columns. */
static void gvc_row_line(const gvc_watcher *w, const json_t *job, const gvc_cols *c, char *out, size_t n)
{
    const char *status = gvc_str(job, "status", "?");
    double pct = gvc_num(job, "progress");
    size_t o = 0;
    char cell[GVC_LINE];
    gvc_cat(out, n, &o, "%-*lld ", c->id, gvc_int(job, "id"));
    if (c->name) {
        gvc_fit(cell, sizeof cell, gvc_str(job, "name", ""), c->name, 1);
        gvc_cat(out, n, &o, "%s ", cell);
    }
    if (c->bar) {
        int fill = (int)(pct * c->bar / 100.0 + 0.5);
        fill = fill < 0 ? 0 : fill > c->bar ? c->bar : fill;
        char bar[GVC_BAR_MAX + 1];
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, '-', (size_t)(c->bar - fill));
        bar[c->bar] = '\0';
        gvc_cat(out, n, &o, "[%s] ", bar);
    }
    const char *col = w->o->tty ? gvc_status_color(status) : "";
    gvc_cat(out, n, &o, "%3.0f%% %s%-9.9s%s", pct, col, status, *col ? "\033[0m" : "");
    if (c->extra) {
        char extra[64];
        gvc_rate_eta(job, extra, sizeof extra);
        gvc_fit(cell, sizeof cell, extra, c->extra, 1);
        gvc_cat(out, n, &o, " %s", cell);
    }
    if (c->msg) {
        gvc_fit(cell, sizeof cell, gvc_row_message(job), c->msg, 0);
        gvc_cat(out, n, &o, " %s", cell);
    }
}

/* The header: the counts of every status (the whole daemon, whatever is
 * shown), and how to quit. */
static void gvc_header(const gvc_watcher *w, int width, char *out, size_t n)
{
    static const char *const order[] = {"running", "paused", "queued", "failed", "succeeded", "cancelled"};
    char text[512] = "jobs:";
    size_t k = strlen(text);
    for (size_t i = 0; i < sizeof order / sizeof order[0] && w->counts; i++)
        k += (size_t)snprintf(text + k, sizeof text - k, "%s %lld %s", i ? "," : "", gvc_int(w->counts, order[i]),
                              order[i]);
    if (!w->counts)
        snprintf(text + k, sizeof text - k, " -");
    if (w->raw && strlen(text) + 10 <= (size_t)width)
        snprintf(text + strlen(text), sizeof text - strlen(text), "  q: quit");
    gvc_fit(out, n, text, width, 0);
}

static void gvc_draw_tty(gvc_watcher *w)
{
    int cols, rows;
    gvc_term_size(&cols, &rows);
    /* One column spare: a line of exactly the width makes some terminals
     * wrap at once, and the frame would scroll. */
    int width = cols > 1 ? cols - 1 : 1;
    /* Room for the header, a "more" line and the notice. */
    size_t room = rows > 4 ? (size_t)rows - 3 : 1;
    size_t shown = w->nrows < room ? w->nrows : room;
    if (w->clear) {
        /* After a resize the old lines may have wrapped: counting them back
         * up is guesswork, so start over at the top. */
        fputs("\033[H\033[2J", stdout);
        w->clear = 0;
    } else if (w->drawn > 0) {
        printf("\033[%dA", w->drawn);
    }
    char line[GVC_LINE];
    int drawn = 0;
    gvc_header(w, width, line, sizeof line);
    printf("\r\033[2K%s\n", line);
    drawn++;
    gvc_cols c = gvc_layout(w, shown, width);
    for (size_t i = 0; i < shown; i++, drawn++) {
        gvc_row_line(w, w->rows[i].job, &c, line, sizeof line);
        printf("\033[2K%s\n", line);
    }
    if (shown < w->nrows) {
        snprintf(line, sizeof line, "\xe2\x80\xa6 %zu more (a taller terminal shows them)", w->nrows - shown);
        char fitted[GVC_LINE];
        gvc_fit(fitted, sizeof fitted, line, width, 0);
        printf("\033[2K%s\n", fitted);
        drawn++;
    }
    if (w->notice[0]) {
        gvc_fit(line, sizeof line, w->notice, width, 0);
        printf("\033[2K\033[33m%s\033[0m\n", line);
        drawn++;
    }
    fputs("\033[J", stdout); /* what a taller frame left below */
    w->drawn = drawn;
    fflush(stdout);
}

static void gvc_draw_plain(gvc_watcher *w)
{
    for (size_t i = 0; i < w->nrows; i++) {
        gvc_row *r = &w->rows[i];
        char now[64], line[1024];
        int fin = gvc_job_finished(r->job);
        snprintf(now, sizeof now, "%s %.0f", gvc_str(r->job, "status", "?"), fin ? 0 : gvc_num(r->job, "progress"));
        if (!strcmp(now, r->last))
            continue;
        snprintf(r->last, sizeof r->last, "%s", now);
        if (fin) {
            gvc_verdict(r->job, line, sizeof line);
        } else {
            char name[256];
            gvc_fit(name, sizeof name, gvc_str(r->job, "name", ""), 200, 0);
            snprintf(line, sizeof line, "job %lld %s: %s %.0f%%", r->id, name, gvc_str(r->job, "status", "?"),
                     gvc_num(r->job, "progress"));
        }
        puts(line);
    }
    fflush(stdout);
}

static void gvc_draw(gvc_watcher *w)
{
    if (w->o->json)
        return;
    if (w->o->tty)
        gvc_draw_tty(w);
    else
        gvc_draw_plain(w);
}

/* ---- events -------------------------------------------------------------- */

static void gvc_apply_snapshot(gvc_watcher *w, json_t *msg)
{
    /* The snapshot is the whole truth (after a reconnect too): jobs not in
     * it are gone. */
    for (size_t i = 0; i < w->nrows; i++)
        w->rows[i].seen = 0;
    size_t i;
    json_t *job;
    json_array_foreach(json_object_get(msg, "jobs"), i, job) {
        long long id = gvc_int(job, "id");
        /* Without ids, finished jobs from before are history, not news. */
        if ((w->o->nids ? gvc_wanted(w, id) : !gvc_job_finished(job)) && gvc_row_set(w, job))
            w->failed = gvc_oom();
    }
    for (size_t k = w->nrows; k-- > 0;)
        if (!w->rows[k].seen)
            gvc_row_remove(w, k);
    for (size_t k = 0; k < w->o->nids; k++) {
        if (!gvc_row_find(w, w->o->ids[k])) {
            gvc_error("not_found", "no job %lld", w->o->ids[k]);
            w->failed = 1;
        }
    }
    /* (under --json the new snapshot on stdout says it: stderr stays JSON) */
    if (w->notice[0] && !w->o->tty && !gvc_report_is_json())
        fprintf(stderr, "galvani: reconnected to galvanid\n");
    w->notice[0] = '\0';
    w->snapshot_seen = w->connected = 1;
}

/* A ?v=2 update: merge each entry into its row (a job not shown yet comes
 * whole: it becomes a row, like a v1 "job" message), drop removed ones. */
static void gvc_apply_update(gvc_watcher *w, json_t *msg)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(msg, "jobs"), i, e) {
        long long id = gvc_int(e, "id");
        if (!json_is_object(e) || !gvc_wanted(w, id))
            continue;
        gvc_row *r = gvc_row_find(w, id);
        /* the row's object is ours alone (its message is gone) */
        int rc = r ? json_object_update(r->job, e) : json_object_get(e, "status") ? gvc_row_set(w, e) : 0;
        if (rc != 0)
            w->failed = gvc_oom();
    }
    json_array_foreach(json_object_get(msg, "removed"), i, e) {
        for (size_t k = 0; k < w->nrows; k++)
            if (w->rows[k].id == json_integer_value(e))
                gvc_row_remove(w, k--);
    }
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
    json_t *counts = json_object_get(msg, "counts");
    if (json_is_object(counts)) {
        json_decref(w->counts);
        w->counts = json_incref(counts);
    }
    if (!strcmp(type, "snapshot")) {
        gvc_apply_snapshot(w, msg);
    } else if (!strcmp(type, "update")) {
        gvc_apply_update(w, msg);
    } else if (!strcmp(type, "job")) {
        json_t *job = json_object_get(msg, "job");
        if (json_is_object(job) && gvc_wanted(w, gvc_int(job, "id")) && gvc_row_set(w, job))
            w->failed = gvc_oom();
    } else if (!strcmp(type, "removed")) {
        for (size_t i = 0; i < w->nrows; i++)
            if (w->rows[i].id == gvc_int(msg, "id"))
                gvc_row_remove(w, i--);
    }
    json_decref(msg);
    if (w->failed || !w->snapshot_seen)
        return;
    gvc_draw(w);
    if (w->o->nids) {
        size_t fin = 0;
        for (size_t i = 0; i < w->nrows; i++)
            fin += gvc_job_finished(w->rows[i].job) ? 1 : 0;
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

/* Between events (and while waiting to reconnect): keys and resizes.
 * Nonzero: quit. */
static int gvc_on_wake(void *userdata, int readable)
{
    gvc_watcher *w = userdata;
    int k;
    while (readable && (k = gvc_term_key()) >= 0)
        if (k == 'q' || k == 'Q')
            w->quit = 1;
    if (gvc_term_changed() && w->drawn) {
        w->clear = 1;
        gvc_draw(w);
    }
    return w->quit;
}

/* Wait `ms` before reconnecting, still answering keys and resizes. */
static void gvc_pause(gvc_watcher *w, int ms)
{
    struct timespec t0, now;
    if (clock_gettime(CLOCK_MONOTONIC, &t0) != 0)
        return; /* cannot time a wait: reconnect at once */
    for (;;) {
        if (clock_gettime(CLOCK_MONOTONIC, &now) != 0)
            return;
        long spent = (now.tv_sec - t0.tv_sec) * 1000L + (now.tv_nsec - t0.tv_nsec) / 1000000L;
        if (spent >= ms || w->quit)
            return;
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN, .revents = 0};
        long slice = ms - spent < 250 ? ms - spent : 250;
        int r = poll(&p, w->raw ? 1 : 0, (int)slice);
        gvc_on_wake(w, r > 0 && (p.revents & POLLIN));
    }
}

/* The stream is gone (after a snapshot had come): say so — on the frame,
 * or once on stderr — before the next attempt. */
static void gvc_lost(gvc_watcher *w, gvc_http_result r, int attempt)
{
    const char *why = r == GVC_HTTP_UNREACHABLE ? "galvanid is not answering"
                      : r == GVC_HTTP_OK        ? "galvanid closed the stream"
                                                : "the connection broke";
    int first = !w->notice[0];
    snprintf(w->notice, sizeof w->notice, "%s at %s: reconnecting%s (attempt %d)", why, w->base,
             w->raw ? "; q quits" : "", attempt);
    if (w->o->tty && !w->o->json)
        gvc_draw(w);
    else if (first)
        gvc_error("reconnecting", "%s at %s: reconnecting", why, w->base);
}

int gvc_watch(gvc_http *h, const gvc_watch_opts *opts)
{
    gvc_watcher w = {.o = opts, .base = h->base};
    int live = opts->tty && !opts->json;
    w.raw = live && gvc_term_raw() == 0;
    /* --json prints the events: the v1 stream, whose messages are whole */
    const char *v = opts->json ? "" : "v=2";
    char path[64];
    if (opts->nids == 1)
        snprintf(path, sizeof path, "/events?job=%lld%s%s", opts->ids[0], *v ? "&" : "", v);
    else
        snprintf(path, sizeof path, "/events%s%s", *v ? "?" : "", v);
    gvc_wake wake = {.fd = w.raw ? STDIN_FILENO : -1, .ms = 250, .fn = gvc_on_wake, .userdata = &w};
    int rc = 0;
    for (int attempt = 1;; attempt++) {
        long status = 0;
        gvc_buf err;
        w.snapshot_seen = 0;
        w.line.len = w.data.len = 0; /* a half event of a dead connection */
        gvc_http_result r = gvc_http_stream(h, path, gvc_on_chunk, &w, live ? &wake : NULL, &status, &err);
        /* A 503 is a galvanid shutting down or starting: wait it out like a
         * lost connection; any other refusal (401, 404) is final. */
        int refused = r == GVC_HTTP_OK && (status < 200 || status >= 300) && status != 503;
        if (w.snapshot_seen)
            attempt = 1;
        if (w.failed || w.done || w.quit || refused || !w.connected) {
            if (!w.failed && !w.done && !w.quit)
                rc = gvc_http_check(h, r, status, &err, "the event stream"); /* never got in: say why */
            if (r == GVC_HTTP_OK)
                gvc_buf_free(&err);
            break;
        }
        if (r == GVC_HTTP_OK)
            gvc_buf_free(&err);
        gvc_lost(&w, r, attempt);
        /* 0.5, 1, 2, then every 5 s: quick after a restart, quiet when down */
        gvc_pause(&w, attempt < 4 ? 250 << attempt : 5000);
        if (w.quit)
            break;
    }
    if (w.failed)
        rc = 1;
    gvc_term_restore();
    if (rc == 0 && w.done) {
        /* the first watched job that did not succeed says how it ended */
        for (size_t k = 0; k < opts->nids && rc == 0; k++) {
            gvc_row *r = gvc_row_find(&w, opts->ids[k]);
            rc = r ? gvc_job_exit_status(r->job) : 1;
        }
        /* on a terminal the frame has no room for the whole reason */
        for (size_t k = 0; live && k < opts->nids; k++) {
            char line[1024];
            gvc_row *r = gvc_row_find(&w, opts->ids[k]);
            if (r) {
                gvc_verdict(r->job, line, sizeof line);
                puts(line);
            }
        }
    }
    for (size_t i = 0; i < w.nrows; i++)
        json_decref(w.rows[i].job);
    free(w.rows);
    json_decref(w.counts);
    gvc_buf_free(&w.line);
    gvc_buf_free(&w.data);
    return rc;
}
