/*
 * main.c — galvanid: flags, the loop, start-up and graceful shutdown.
 *
 * Start-up order follows the layers upward: the store (SQLite), the job model
 * (which loads every job and resolves those a previous life left running),
 * then the HTTP/WebSocket server.  SIGINT / SIGTERM stop in the reverse
 * order: stop accepting and close the streams, write what is pending, close
 * the store.  A process still running at that point is killed with its group
 * and its job stays "running" in the store: the next start reports it as
 * interrupted (docs/api.md, "Restart policy").
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api/server.h"
#include "model/jobs.h"
#include "store/store.h"
#include "util/log.h"

typedef struct gvd_daemon {
    uv_loop_t *loop;
    gvd_store *store;
    gvd_jobs *jobs;
    gvd_server *server;
    uv_signal_t sigint, sigterm;
    int stopping;
} gvd_daemon;

static void gvd_usage(FILE *out)
{
    fputs("usage: galvanid [options]\n"
          "\n"
          "The galvani job-control daemon: runs jobs (processes or the built-in demo), pauses,\n"
          "resumes and cancels them, and pushes their state over WebSocket and SSE.\n"
          "\n"
          "  -l, --listen HOST:PORT   address to serve on (default 127.0.0.1:8000; env GALVANI_LISTEN)\n"
          "  -d, --db PATH            SQLite database file (default ./galvani.db; env GALVANI_DB)\n"
          "  -j, --max-running N      jobs running or paused at once (default 4; env GALVANI_MAX_RUNNING)\n"
          "      --log-dir DIR        per-job output logs (default <db>.logs; env GALVANI_LOG_DIR)\n"
          "      --log-limit BYTES    output kept per job (default 10485760)\n"
          "      --cancel-grace SECS  SIGTERM -> SIGKILL delay on cancel (default 5)\n"
          "      --log-level LEVEL    debug, info, warn or error (default info; env GALVANI_LOG_LEVEL)\n"
          "      --allow-origin LIST  web origins (comma list, or *) allowed to control jobs and open\n"
          "                           streams from a browser, besides galvanid's own (env GALVANI_ALLOW_ORIGIN)\n"
          "      --sync MODE          normal: a 2xx survives a crash of galvanid (default);\n"
          "                           full: it also survives power loss (fsync per change)\n"
          "  -h, --help               this help\n"
          "  -V, --version            print the version\n"
          "\n"
          "Try: curl -X POST localhost:8000/start   (starts the demo job)\n"
          "     curl -X POST localhost:8000/jobs -H 'Content-Type: application/json' \\\n"
          "          -d '{\"command\": [\"sleep\", \"5\"]}'\n",
          out);
}

static int gvd_parse_listen(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(s, ':');
    const char *portstr = colon ? colon + 1 : s;
    size_t hl = colon ? (size_t)(colon - s) : 0;
    if (hl >= hostlen)
        return -1;
    if (hl == 0)
        snprintf(host, hostlen, "127.0.0.1");
    else {
        memcpy(host, s, hl);
        host[hl] = '\0';
    }
    if (host[0] == '[') { /* [::1]:8000 */
        size_t n = strlen(host);
        if (n < 2 || host[n - 1] != ']')
            return -1;
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
    }
    char *end;
    errno = 0;
    long p = strtol(portstr, &end, 10);
    if (errno || *portstr == '\0' || *end != '\0' || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

static int gvd_parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *s == '\0' || *s == '-' || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

static void gvd_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void gvd_stop(gvd_daemon *d)
{
    if (d->stopping)
        return;
    d->stopping = 1;
    gvd_log(GVD_LOG_INFO, "galvanid.stopping", NULL);
    if (d->server)
        gvd_server_close(d->server);
    d->server = NULL;
    if (d->jobs)
        gvd_jobs_free(d->jobs);
    d->jobs = NULL;
    uv_close((uv_handle_t *)&d->sigint, gvd_handle_closed);
    uv_close((uv_handle_t *)&d->sigterm, gvd_handle_closed);
}

static void gvd_on_signal(uv_signal_t *h, int signum)
{
    gvd_log(GVD_LOG_INFO, "galvanid.signal", "signal=%s", signum == SIGINT ? "SIGINT" : "SIGTERM");
    gvd_stop(h->data);
}

int main(int argc, char **argv)
{
    const char *listen = getenv("GALVANI_LISTEN") ? getenv("GALVANI_LISTEN") : "127.0.0.1:8000";
    const char *db = getenv("GALVANI_DB") ? getenv("GALVANI_DB") : "galvani.db";
    const char *log_dir = getenv("GALVANI_LOG_DIR");
    const char *level = getenv("GALVANI_LOG_LEVEL") ? getenv("GALVANI_LOG_LEVEL") : "info";
    const char *max_running = getenv("GALVANI_MAX_RUNNING");
    const char *allow_origin = getenv("GALVANI_ALLOW_ORIGIN");
    unsigned long long log_limit = 10ull << 20, grace_s = 5, max_run = 4;
    int sync_full = 0;

    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},     {"db", required_argument, NULL, 'd'},
        {"max-running", required_argument, NULL, 'j'}, {"log-dir", required_argument, NULL, 1},
        {"log-limit", required_argument, NULL, 2},    {"cancel-grace", required_argument, NULL, 3},
        {"log-level", required_argument, NULL, 4},    {"sync", required_argument, NULL, 5},
        {"allow-origin", required_argument, NULL, 6},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},          {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "l:d:j:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'l': listen = optarg; break;
        case 'd': db = optarg; break;
        case 'j': max_running = optarg; break;
        case 1: log_dir = optarg; break;
        case 2:
            if (gvd_parse_uint(optarg, 1ull << 40, &log_limit) || log_limit == 0) {
                fprintf(stderr, "galvanid: --log-limit takes a positive number of bytes, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 3:
            if (gvd_parse_uint(optarg, 3600, &grace_s)) {
                fprintf(stderr, "galvanid: --cancel-grace takes whole seconds (0..3600), not '%s'\n", optarg);
                return 2;
            }
            break;
        case 4: level = optarg; break;
        case 5:
            if (strcmp(optarg, "normal") != 0 && strcmp(optarg, "full") != 0) {
                fprintf(stderr, "galvanid: --sync takes normal or full, not '%s'\n", optarg);
                return 2;
            }
            sync_full = strcmp(optarg, "full") == 0;
            break;
        case 6: allow_origin = optarg; break;
        case 'h': gvd_usage(stdout); return 0;
        case 'V': puts("galvanid 0.1.0"); return 0;
        default: gvd_usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "galvanid: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    gvd_log_level lvl;
    if (gvd_log_parse_level(level, &lvl) != 0) {
        fprintf(stderr, "galvanid: unknown log level '%s' (debug, info, warn, error)\n", level);
        return 2;
    }
    gvd_log_set_level(lvl);
    if (max_running && (gvd_parse_uint(max_running, 100000, &max_run) || max_run == 0)) {
        fprintf(stderr, "galvanid: --max-running takes a positive integer, not '%s'\n", max_running);
        return 2;
    }
    char host[256];
    int port;
    if (gvd_parse_listen(listen, host, sizeof host, &port) != 0) {
        fprintf(stderr, "galvanid: --listen takes HOST:PORT (e.g. 127.0.0.1:8000), not '%s'\n", listen);
        return 2;
    }
    char default_log_dir[PATH_MAX];
    if (!log_dir) {
        snprintf(default_log_dir, sizeof default_log_dir, "%s.logs", db);
        log_dir = default_log_dir;
    }

    signal(SIGPIPE, SIG_IGN); /* a job or client that went away is an error code, not a death */
    gvd_daemon d = {0};
    d.loop = uv_default_loop();
    char err[512];
    d.store = gvd_store_open(db, err, sizeof err);
    if (!d.store) {
        fprintf(stderr, "galvanid: cannot open the database %s: %s\n", db, err);
        return 1;
    }
    if (sync_full && gvd_store_set_durable(d.store, true, err, sizeof err) != 0) {
        fprintf(stderr, "galvanid: cannot set --sync full: %s\n", err);
        gvd_store_close(d.store);
        return 1;
    }
    gvd_config cfg = {.max_running = (unsigned)max_run,
                      .cancel_grace_ms = (unsigned)(grace_s * 1000),
                      .log_limit = log_limit,
                      .log_dir = log_dir};
    gvd_error jerr = {0};
    d.jobs = gvd_jobs_new(d.loop, d.store, &cfg, &jerr);
    if (!d.jobs) {
        fprintf(stderr, "galvanid: %s\n", jerr.message);
        gvd_store_close(d.store);
        return 1;
    }
    gvd_server_opts sopts = {.host = host, .port = port, .allow_origins = allow_origin};
    d.server = gvd_server_new(d.loop, d.jobs, &sopts, err, sizeof err);
    if (!d.server) {
        fprintf(stderr, "galvanid: %s\n", err);
        gvd_jobs_free(d.jobs);
        uv_run(d.loop, UV_RUN_DEFAULT);
        gvd_store_close(d.store);
        return 1;
    }
    uv_signal_init(d.loop, &d.sigint);
    uv_signal_init(d.loop, &d.sigterm);
    d.sigint.data = d.sigterm.data = &d;
    uv_signal_start(&d.sigint, gvd_on_signal, SIGINT);
    uv_signal_start(&d.sigterm, gvd_on_signal, SIGTERM);
    gvd_log(GVD_LOG_INFO, "galvanid.listening", "addr=%s:%d db=%s logs=%s max_running=%llu", host,
            gvd_server_port(d.server), db, log_dir, max_run);
    fflush(stderr);

    uv_run(d.loop, UV_RUN_DEFAULT);
    gvd_stop(&d);
    uv_run(d.loop, UV_RUN_DEFAULT); /* let the closing handles finish */
    gvd_store_close(d.store);
    int rc = uv_loop_close(d.loop);
    gvd_log(GVD_LOG_INFO, "galvanid.stopped", "clean=%d", rc == 0);
    return 0;
}
