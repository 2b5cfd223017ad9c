/* jobload — job creation under load: POSTs N jobs over K keep-alive
 * connections (one request in flight each), then waits until every one of
 * them has finished.
 *
 * Reports: accepted creates per second, create latency p50/p99 (request
 * written -> whole answer read), completion (all N finished) and, when the
 * server is galvanid, committed transitions per second over the run (the
 * galvanid_job_transitions_total counters of GET /metrics, before and after).
 * --fork-floor N measures what posix_spawn + waitpid of /bin/true costs here,
 * the floor under any job runner.
 *
 * Completion is read from GET /healthz (succeeded + failed + cancelled),
 * whose counts galvanid keeps; a server without it (the seed app) has its
 * completion reported as null.  Human table on stderr, JSON on stdout. */
#include "bl_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

extern char **environ;

typedef struct jl_run jl_run;

typedef struct {
    uv_tcp_t tcp; /* first: callbacks cast the handle back */
    uv_connect_t connect;
    uv_write_t write;
    jl_run *run;
    int64_t t_sent;
    char *buf;
    size_t len, cap;
    bool busy, dead;
} jl_conn;

struct jl_run {
    uv_loop_t *loop;
    struct sockaddr_in addr;
    char host[64], path[256];
    int jobs, conns;
    const char *body;
    char *request;
    size_t request_len;
    int sent, done, created;
    uint64_t err_status, err_io;
    int first_bad_status;
    bl_hist lat;
    jl_conn *c;
    int64_t t0, t_last;
};

static char jl_rbuf[64 * 1024];

/* ---- a blocking GET for the before/after reads (not part of the load) ----------------------- */

/* GET path; returns the body (malloc'd, NUL-terminated) or NULL. */

/* Finished jobs per /healthz, -1 if unknown. */
static long jl_finished(jl_run *r)
{
    char *b = bl_http_get(&r->addr, r->host, "/healthz");
    if (!b)
        return -1;
    json_error_t e;
    json_t *v = json_loads(b, 0, &e);
    free(b);
    long n = -1;
    if (v) {
        json_t *s = json_object_get(v, "succeeded"), *f = json_object_get(v, "failed"),
               *c = json_object_get(v, "cancelled");
        if (json_is_integer(s) && json_is_integer(f) && json_is_integer(c))
            n = (long)(json_integer_value(s) + json_integer_value(f) + json_integer_value(c));
        json_decref(v);
    }
    return n;
}

/* Sum of galvanid_job_transitions_total over every label set, -1 if none. */
static double jl_transitions(jl_run *r)
{
    char *b = bl_http_get(&r->addr, r->host, "/metrics");
    if (!b)
        return -1;
    static const char name[] = "galvanid_job_transitions_total{";
    /* The family without a sample yet (no job ever changed) counts 0. */
    double sum = strstr(b, "# TYPE galvanid_job_transitions_total") ? 0 : -1;
    for (const char *line = b; line && *line; line = bl_next_line(line)) {
        if (strncmp(line, name, sizeof name - 1) != 0)
            continue;
        const char *sp = strchr(line, '}');
        if (!sp)
            continue;
        double v = strtod(sp + 1, NULL);
        sum = (sum < 0 ? 0 : sum) + v;
    }
    free(b);
    return sum;
}

/* ---- the load ------------------------------------------------------------------------------ */

static void jl_send(jl_conn *c);

/* Every request answered (or its connection lost): close the rest so that
 * the loop ends. */
static void jl_maybe_end(jl_run *r)
{
    if (r->sent < r->jobs) {
        bool any = false;
        for (int i = 0; i < r->conns && !any; i++)
            any = !r->c[i].dead;
        if (any)
            return;
    }
    for (int i = 0; i < r->conns; i++)
        if (r->c[i].busy && !r->c[i].dead)
            return;
    for (int i = 0; i < r->conns; i++)
        if (!r->c[i].dead) {
            r->c[i].dead = true;
            uv_close((uv_handle_t *)&r->c[i].tcp, NULL);
        }
}

static void jl_kill(jl_conn *c)
{
    if (c->dead)
        return;
    c->dead = true;
    c->run->err_io++;
    uv_close((uv_handle_t *)&c->tcp, NULL);
    jl_maybe_end(c->run);
}

static void jl_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)h;
    (void)s;
    *b = uv_buf_init(jl_rbuf, sizeof jl_rbuf);
}

/* Length of a complete response at the start of buf, 0 if incomplete, -1 if
 * it cannot be parsed (every answer here has a Content-Length). */
static long jl_response(const char *buf, size_t len, int *status)
{
    const char *end = NULL;
    for (size_t i = 3; i < len; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            end = buf + i + 1;
            break;
        }
    if (!end)
        return 0;
    if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(buf + 9);
    long clen = -1;
    for (const char *p = buf; p < end; p++) {
        if ((p == buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
            clen = strtol(p + 15, NULL, 10);
            break;
        }
    }
    if (clen < 0)
        return -1;
    size_t total = (size_t)(end - buf) + (size_t)clen;
    return len >= total ? (long)total : 0;
}

static void jl_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    jl_conn *c = (jl_conn *)s;
    jl_run *r = c->run;
    if (n < 0) {
        jl_kill(c);
        return;
    }
    if (c->len + (size_t)n > c->cap) {
        size_t ncap = c->cap ? c->cap : 16384;
        while (ncap < c->len + (size_t)n)
            ncap *= 2;
        char *nb = realloc(c->buf, ncap);
        if (!nb) {
            jl_kill(c);
            return;
        }
        c->buf = nb;
        c->cap = ncap;
    }
    memcpy(c->buf + c->len, b->base, (size_t)n);
    c->len += (size_t)n;
    int status = 0;
    long used = jl_response(c->buf, c->len, &status);
    if (used < 0) {
        jl_kill(c);
        return;
    }
    if (used == 0)
        return;
    int64_t now = bl_mono_us();
    bl_hist_add(&r->lat, now - c->t_sent);
    r->done++;
    r->t_last = now;
    if (status == 201) {
        r->created++;
    } else {
        r->err_status++;
        if (!r->first_bad_status)
            r->first_bad_status = status;
    }
    memmove(c->buf, c->buf + used, c->len - (size_t)used);
    c->len -= (size_t)used;
    c->busy = false;
    jl_send(c);
    if (!c->busy)
        jl_maybe_end(r);
}

static void jl_on_write(uv_write_t *w, int status)
{
    if (status < 0)
        jl_kill(w->data);
}

static void jl_send(jl_conn *c)
{
    jl_run *r = c->run;
    if (c->dead || c->busy || r->sent >= r->jobs)
        return;
    r->sent++;
    c->busy = true;
    c->t_sent = bl_mono_us();
    uv_buf_t b = uv_buf_init(r->request, (unsigned)r->request_len);
    c->write.data = c;
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, jl_on_write) != 0)
        jl_kill(c);
}

static void jl_on_connect(uv_connect_t *req, int status)
{
    jl_conn *c = req->data;
    if (status < 0 || uv_read_start((uv_stream_t *)&c->tcp, jl_alloc, jl_on_read) != 0) {
        jl_kill(c);
        return;
    }
    jl_send(c);
}

/* ---- the fork floor ------------------------------------------------------------------------ */

static int jl_fork_floor(int n)
{
    char *argv[] = {"/bin/true", NULL};
    int64_t t0 = bl_mono_us();
    for (int i = 0; i < n; i++) {
        pid_t pid;
        int rc = posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ);
        if (rc != 0) {
            fprintf(stderr, "jobload: posix_spawn: %s\n", strerror(rc));
            return 1;
        }
        int st;
        while (waitpid(pid, &st, 0) < 0)
            if (errno != EINTR) {
                perror("jobload: waitpid");
                return 1;
            }
    }
    double s = (double)(bl_mono_us() - t0) / 1e6;
    fprintf(stderr, "jobload: fork+exec+wait of /bin/true: %d in %.3f s = %.0f/s (%.0f us each, one at a time)\n", n,
            s, n / s, s * 1e6 / n);
    printf("{\"tool\":\"jobload\",\"fork_floor\":{\"n\":%d,\"per_s\":%.1f,\"us_each\":%.1f}}\n", n, n / s,
           s * 1e6 / n);
    return 0;
}

/* ---- main ---------------------------------------------------------------------------------- */

static void jl_usage(FILE *o)
{
    fputs("usage: jobload --url http://127.0.0.1:PORT[/jobs] [options]\n"
          "  -n, --jobs N          jobs to create (default 1000)\n"
          "  -c, --conns K         keep-alive connections, one request in flight each (default 16)\n"
          "  -b, --body JSON       the job spec (default {\"command\":[\"/bin/true\"]})\n"
          "  -w, --wait S          wait up to S for every job to finish (default 60; 0: do not wait)\n"
          "  -p, --pid PID         the server's pid: its CPU over the run\n"
          "      --fork-floor N    only measure N posix_spawn+waitpid of /bin/true, one at a time\n"
          "      --label TEXT      copied into the JSON line\n",
          o);
}

int main(int argc, char **argv)
{
    static jl_run run;
    jl_run *r = &run;
    r->jobs = 1000;
    r->conns = 16;
    r->body = "{\"command\":[\"/bin/true\"]}";
    double wait_s = 60;
    pid_t pid = 0;
    const char *url = NULL, *label = "";
    int floor_n = 0;
    static const struct option opts[] = {{"url", required_argument, 0, 'u'},  {"jobs", required_argument, 0, 'n'},
                                         {"conns", required_argument, 0, 'c'}, {"body", required_argument, 0, 'b'},
                                         {"wait", required_argument, 0, 'w'},  {"pid", required_argument, 0, 'p'},
                                         {"fork-floor", required_argument, 0, 'F'},
                                         {"label", required_argument, 0, 'L'}, {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "u:n:c:b:w:p:h", opts, NULL)) != -1) {
        switch (o) {
        case 'u': url = optarg; break;
        case 'n': r->jobs = atoi(optarg); break;
        case 'c': r->conns = atoi(optarg); break;
        case 'b': r->body = optarg; break;
        case 'w': wait_s = atof(optarg); break;
        case 'p': pid = (pid_t)atol(optarg); break;
        case 'F': floor_n = atoi(optarg); break;
        case 'L': label = optarg; break;
        case 'h': jl_usage(stdout); return 0;
        default: jl_usage(stderr); return 2;
        }
    }
    if (floor_n > 0)
        return jl_fork_floor(floor_n);
    if (!url || r->jobs < 1 || r->conns < 1 || r->conns > 10000 || wait_s < 0) {
        jl_usage(stderr);
        return 2;
    }
    char err[256];
    if (bl_parse_url(url, "http", &r->addr, r->host, sizeof r->host, r->path, sizeof r->path, err, sizeof err) !=
        0) {
        fprintf(stderr, "jobload: %s\n", err);
        return 2;
    }
    if (strcmp(r->path, "/") == 0)
        strcpy(r->path, "/jobs");
    if (bl_raise_nofile(r->conns + 64) < r->conns + 16) {
        fprintf(stderr, "jobload: not enough open files for %d connections\n", r->conns);
        return 2;
    }
    size_t blen = strlen(r->body);
    r->request = malloc(blen + 512);
    r->c = calloc((size_t)r->conns, sizeof *r->c);
    if (!r->request || !r->c || bl_hist_init(&r->lat) != 0) {
        fprintf(stderr, "jobload: out of memory\n");
        return 1;
    }
    int hl = snprintf(r->request, 512,
                      "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      r->path, r->host, ntohs(r->addr.sin_port), blen);
    if (hl <= 0 || hl >= 512) {
        fprintf(stderr, "jobload: path too long\n");
        return 2;
    }
    memcpy(r->request + hl, r->body, blen);
    r->request_len = (size_t)hl + blen;

    long fin0 = jl_finished(r);
    double tr0 = jl_transitions(r);
    long long cpu0 = pid > 0 ? bl_proc_cpu_ticks(pid) : -1;
    r->loop = uv_default_loop();
    r->t0 = bl_mono_us();
    for (int i = 0; i < r->conns; i++) {
        jl_conn *c = &r->c[i];
        c->run = r;
        c->connect.data = c;
        if (uv_tcp_init(r->loop, &c->tcp) != 0) {
            c->dead = true;
            r->err_io++;
            continue;
        }
        (void)uv_tcp_nodelay(&c->tcp, 1); /* best effort: requests are single small writes */
        if (uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&r->addr, jl_on_connect) != 0)
            jl_kill(c);
    }
    (void)uv_run(r->loop, UV_RUN_DEFAULT);
    double create_s = (double)(r->t_last - r->t0) / 1e6;

    /* Completion: poll until every created job has finished. */
    double complete_s = -1;
    long fin = fin0;
    if (fin0 >= 0 && wait_s > 0) {
        int64_t deadline = bl_mono_us() + (int64_t)(wait_s * 1e6);
        while (bl_mono_us() < deadline) {
            fin = jl_finished(r);
            if (fin >= 0 && fin - fin0 >= r->created) {
                complete_s = (double)(bl_mono_us() - r->t0) / 1e6;
                break;
            }
            struct timespec pause = {0, 20 * 1000 * 1000};
            (void)nanosleep(&pause, NULL); /* an early wake-up only polls sooner */
        }
    }
    double tr1 = jl_transitions(r);
    double run_s = (double)(bl_mono_us() - r->t0) / 1e6;
    long long cpu1 = pid > 0 ? bl_proc_cpu_ticks(pid) : -1;
    long ticks = sysconf(_SC_CLK_TCK);
    double cpu = cpu0 >= 0 && cpu1 >= 0 && ticks > 0 ? 100.0 * (double)(cpu1 - cpu0) / (double)ticks / run_s : -1;
    double create_rate = create_s > 0 ? r->created / create_s : -1;
    double complete_rate = complete_s > 0 ? r->created / complete_s : -1;
    double tr_rate = tr0 >= 0 && tr1 >= 0 ? (tr1 - tr0) / run_s : -1;

    fprintf(stderr, "jobload %s  POST http://%s:%d%s x %d over %d connections\n", label, r->host,
            ntohs(r->addr.sin_port), r->path, r->jobs, r->conns);
    fprintf(stderr, "  created          %d (201) in %.2f s = %.0f/s; errors: %llu bad status (first %d), %llu io\n",
            r->created, create_s, create_rate, (unsigned long long)r->err_status, r->first_bad_status,
            (unsigned long long)r->err_io);
    fprintf(stderr, "  create latency   p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", bl_hist_pct_ms(&r->lat, 0.5),
            bl_hist_pct_ms(&r->lat, 0.99), (double)r->lat.max_us / 1000);
    fprintf(stderr, "  completed        %s%.2f s after the first POST (%.0f/s)\n",
            complete_s < 0 ? "not all / unknown; " : "", complete_s, complete_rate);
    fprintf(stderr, "  transitions      %.0f/s committed over %.2f s; server CPU %.1f %%\n", tr_rate, run_s, cpu);

    printf("{\"tool\":\"jobload\",\"label\":\"%s\",\"jobs\":%d,\"conns\":%d,\"created\":%d,\"errors\":%llu,"
           "\"first_bad_status\":%d,\"create_rate\":",
           label, r->jobs, r->conns, r->created, (unsigned long long)(r->err_status + r->err_io),
           r->first_bad_status);
    bl_json_num(stdout, create_rate, 1);
    bl_json_p50_p99(stdout, "create_ms", bl_hist_pct_ms(&r->lat, 0.5), bl_hist_pct_ms(&r->lat, 0.99), 2);
    fputs(",\"complete_s\":", stdout);
    bl_json_num(stdout, complete_s, 3);
    fputs(",\"complete_rate\":", stdout);
    bl_json_num(stdout, complete_rate, 1);
    fputs(",\"transitions_per_s\":", stdout);
    bl_json_num(stdout, tr_rate, 1);
    fputs(",\"server_cpu_pct\":", stdout);
    bl_json_num(stdout, cpu, 1);
    fputs("}\n", stdout);
    for (int i = 0; i < r->conns; i++)
        free(r->c[i].buf);
    free(r->c);
    free(r->request);
    bl_hist_free(&r->lat);
    (void)uv_loop_close(r->loop);
    return r->created == r->jobs ? 0 : 1;
}
