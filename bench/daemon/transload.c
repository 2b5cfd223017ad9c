/*
 * transload — committed job transitions per second (issue 16, target 7).
 *
 * Creates N demo jobs (in-process: a pause costs no process signal), then
 * keeps K keep-alive connections busy for D seconds, one request in flight
 * each; connection i owns the jobs i, i + K, i + 2K, ... and toggles them in
 * turn: POST /jobs/ID/pause, later POST /jobs/ID/resume.  A connection never
 * has two requests on one job, so every 200 is one transition galvanid
 * committed before answering (docs/guarantees.md).  Reports transitions per
 * second and the answer latency p50 / p99 / max; anything but 200 is an
 * error.  The server must run with --max-running >= N.
 *
 *   transload --port P [-n 256] [-c 64] [-d 10]
 *
 * Loopback only (127.0.0.1).  Human line on stderr, JSON on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

typedef struct tl_conn {
    uv_tcp_t tcp; /* first: callbacks cast the handle back */
    uv_connect_t connect;
    uv_write_t write;
    struct tl_run *run;
    int index;
    int next;          /* which of its jobs it toggles next */
    bool *paused;      /* per owned job */
    int njobs;
    char req[256];
    char buf[8192];
    size_t len;
    uint64_t sent_ns;
} tl_conn;

typedef struct tl_run {
    uv_loop_t *loop;
    struct sockaddr_in addr;
    int64_t *ids;
    int njobs, nconns;
    uint64_t end_ns;
    uint64_t ok, bad, first_bad;
    uint64_t *lat; /* ns, one per answer */
    size_t nlat, cap;
    int open;
} tl_run;

/* ---- setup: blocking, before the clock starts -------------------------------------------- */

static int64_t tl_create(const struct sockaddr_in *addr)
{
    const char body[] = "{\"kind\":\"demo\",\"demo_step_ms\":1000}";
    char req[512], resp[8192];
    int n = snprintf(req, sizeof req,
                     "POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     sizeof body - 1, body);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof *addr) != 0 || write(fd, req, (size_t)n) != n) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t len = 0;
    ssize_t r;
    while (len < sizeof resp - 1 && (r = read(fd, resp + len, sizeof resp - 1 - len)) > 0)
        len += (size_t)r;
    close(fd);
    resp[len] = '\0';
    const char *id = strstr(resp, "\"id\":");
    return strncmp(resp, "HTTP/1.1 201", 12) == 0 && id ? strtoll(id + 5, NULL, 10) : -1;
}

/* ---- the load -------------------------------------------------------------------------------- */

static uint64_t tl_now(void)
{
    return uv_hrtime();
}

static void tl_send(tl_conn *c);

static void tl_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    tl_conn *c = (tl_conn *)h;
    *b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len));
}

static void tl_closed(uv_handle_t *h)
{
    tl_conn *c = (tl_conn *)h;
    c->run->open--;
}

static void tl_record(tl_run *r, uint64_t ns)
{
    if (r->nlat == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 1 << 16;
        uint64_t *p = realloc(r->lat, cap * sizeof *p);
        if (!p)
            return;
        r->lat = p;
        r->cap = cap;
    }
    r->lat[r->nlat++] = ns;
}

/* One whole answer in c->buf?  Its length, or 0. */
static size_t tl_answer_len(tl_conn *c)
{
    c->buf[c->len < sizeof c->buf ? c->len : sizeof c->buf - 1] = '\0';
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end)
        return 0;
    const char *cl = strcasestr(c->buf, "content-length:");
    size_t body = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
    size_t total = (size_t)(end + 4 - c->buf) + body;
    return c->len >= total ? total : 0;
}

static void tl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    tl_conn *c = (tl_conn *)s;
    tl_run *r = c->run;
    if (n < 0) {
        r->bad++;
        uv_close((uv_handle_t *)s, tl_closed);
        return;
    }
    c->len += (size_t)n;
    size_t whole = tl_answer_len(c);
    if (!whole)
        return;
    int status = atoi(c->buf + 9);
    if (status == 200) {
        r->ok++;
        tl_record(r, tl_now() - c->sent_ns);
        c->paused[c->next] = !c->paused[c->next];
        c->next = (c->next + 1) % c->njobs;
    } else {
        if (!r->bad)
            r->first_bad = (uint64_t)status;
        r->bad++;
    }
    memmove(c->buf, c->buf + whole, c->len - whole);
    c->len -= whole;
    if (tl_now() >= r->end_ns)
        uv_close((uv_handle_t *)s, tl_closed);
    else
        tl_send(c);
}

static void tl_written(uv_write_t *w, int status)
{
    if (status != 0) {
        tl_conn *c = w->data;
        c->run->bad++;
        if (!uv_is_closing((uv_handle_t *)&c->tcp))
            uv_close((uv_handle_t *)&c->tcp, tl_closed);
    }
}

static void tl_send(tl_conn *c)
{
    tl_run *r = c->run;
    int64_t id = r->ids[c->index + c->next * r->nconns];
    int n = snprintf(c->req, sizeof c->req, "POST /jobs/%lld/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n",
                     (long long)id, c->paused[c->next] ? "resume" : "pause");
    uv_buf_t b = uv_buf_init(c->req, (unsigned)n);
    c->sent_ns = tl_now();
    c->write.data = c;
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, tl_written) != 0) {
        r->bad++;
        uv_close((uv_handle_t *)&c->tcp, tl_closed);
    }
}

static void tl_connected(uv_connect_t *req, int status)
{
    tl_conn *c = req->data;
    if (status != 0 || uv_read_start((uv_stream_t *)&c->tcp, tl_alloc, tl_read) != 0) {
        c->run->bad++;
        uv_close((uv_handle_t *)&c->tcp, tl_closed);
        return;
    }
    tl_send(c);
}

static int tl_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int port = 0, njobs = 256, nconns = 64;
    double secs = 10;
    static const struct option opts[] = {{"port", 1, 0, 'p'}, {"jobs", 1, 0, 'n'}, {"conns", 1, 0, 'c'},
                                         {"duration", 1, 0, 'd'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "p:n:c:d:", opts, NULL)) != -1) {
        switch (o) {
        case 'p': port = atoi(optarg); break;
        case 'n': njobs = atoi(optarg); break;
        case 'c': nconns = atoi(optarg); break;
        case 'd': secs = atof(optarg); break;
        default:
            fprintf(stderr, "usage: transload --port P [-n jobs] [-c conns] [-d seconds]\n");
            return 2;
        }
    }
    if (port <= 0 || nconns <= 0 || njobs < nconns || secs <= 0) {
        fprintf(stderr, "transload: --port is required, and jobs >= conns > 0\n");
        return 2;
    }
    njobs -= njobs % nconns; /* every connection owns as many jobs */
    tl_run r = {.loop = uv_default_loop(), .njobs = njobs, .nconns = nconns};
    uv_ip4_addr("127.0.0.1", port, &r.addr);
    r.ids = calloc((size_t)njobs, sizeof *r.ids);
    tl_conn *conns = calloc((size_t)nconns, sizeof *conns);
    bool *paused = calloc((size_t)njobs, sizeof *paused);
    if (!r.ids || !conns || !paused)
        return 1;
    for (int i = 0; i < njobs; i++) {
        if ((r.ids[i] = tl_create(&r.addr)) < 0) {
            fprintf(stderr, "transload: creating demo job %d failed\n", i);
            return 1;
        }
    }
    usleep(200 * 1000); /* every job running */
    uint64_t t0 = tl_now();
    r.end_ns = t0 + (uint64_t)(secs * 1e9);
    for (int i = 0; i < nconns; i++) {
        tl_conn *c = &conns[i];
        c->run = &r;
        c->index = i;
        c->njobs = njobs / nconns;
        c->paused = paused + (size_t)i * (size_t)c->njobs;
        uv_tcp_init(r.loop, &c->tcp);
        uv_tcp_nodelay(&c->tcp, 1);
        c->connect.data = c;
        r.open++;
        uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&r.addr, tl_connected);
    }
    uv_run(r.loop, UV_RUN_DEFAULT);
    double took = (double)(tl_now() - t0) / 1e9;
    qsort(r.lat, r.nlat, sizeof *r.lat, tl_cmp);
    double p50 = r.nlat ? (double)r.lat[r.nlat / 2] / 1e6 : 0, p99 = r.nlat ? (double)r.lat[r.nlat * 99 / 100] / 1e6 : 0,
           max = r.nlat ? (double)r.lat[r.nlat - 1] / 1e6 : 0;
    fprintf(stderr, "transload: %llu transitions in %.2f s = %.0f/s over %d connections, %d jobs; "
                    "latency p50 %.2f ms, p99 %.2f ms, max %.2f ms; errors %llu (first status %llu)\n",
            (unsigned long long)r.ok, took, (double)r.ok / took, nconns, njobs, p50, p99, max,
            (unsigned long long)r.bad, (unsigned long long)r.first_bad);
    printf("{\"tool\":\"transload\",\"transitions\":%llu,\"seconds\":%.3f,\"per_s\":%.1f,\"conns\":%d,\"jobs\":%d,"
           "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"errors\":%llu}\n",
           (unsigned long long)r.ok, took, (double)r.ok / took, nconns, njobs, p50, p99, max,
           (unsigned long long)r.bad);
    free(r.lat);
    free(r.ids);
    free(conns);
    free(paused);
    return r.bad ? 1 : 0;
}
