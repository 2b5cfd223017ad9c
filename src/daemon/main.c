/*
 * main.c — galvanid: flags, the loop, start-up and graceful shutdown.
 *
 * Start-up order follows the layers upward: the store (SQLite), the job model
 * (which loads every job and re-adopts those a previous life left running),
 * then the HTTP/WebSocket server.  SIGINT / SIGTERM stop in the reverse
 * order: stop accepting and close the streams, write what is pending, close
 * the store.  A process job still running at that point keeps running under
 * its supervisor (galvani-shim) and stays "running" / "paused" in the store:
 * the next start re-adopts it (docs/api.md, "Restart policy").
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "api/server.h"
#include "cluster/cluster.h"
#include "model/jobs.h"
#include "model/series.h"
#include "runner/spawner.h"
#include "store/store.h"
#include "util/flags.h"
#include "util/log.h"
#include "util/pidfile.h"

typedef struct gvd_daemon {
    uv_loop_t *loop;
    gvd_store *store;
    gvd_cluster *cluster;    /* PostgreSQL store: this node among others; NULL on SQLite */
    const char *node_id;
    char address[300];       /* HOST:PORT it serves, once listening (GET /nodes) */
    unsigned max_running;
    gvd_jobs *jobs;
    gvd_server *server;
    gvd_spawner *spawner;    /* starts job supervisors without an exec; NULL: posix_spawn */
    uv_signal_t sigint, sigterm;
    uv_timer_t lost_timer;   /* stops galvanid after the store was lost */
    uv_timer_t drain_timer;  /* gvd_drain_store's deadline */
    int stopping;
    int exit_code;
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
          "      --store URL          where jobs are stored: sqlite:PATH (what --db PATH means) or\n"
          "                           postgres://USER@HOST[:PORT]/DB?... (libpq's URI: several galvanid\n"
          "                           nodes on one PostgreSQL; docs/cluster.md; env GALVANI_STORE)\n"
          "  -j, --max-running N      jobs running or paused at once (default 4; env GALVANI_MAX_RUNNING)\n"
          "      --node-id ID         this node's name among the nodes of one PostgreSQL store (default\n"
          "                           HOST:PORT of --listen, HOST the machine's name; env GALVANI_NODE_ID)\n"
          "      --lease SECS         a node whose heartbeat is older than this is lost: its jobs are\n"
          "                           retried or failed on the other nodes (default 15; postgres store)\n"
          "      --log-dir DIR        per-job output logs (default <db>.logs, or ./galvani.logs with a\n"
          "                           postgres store; env GALVANI_LOG_DIR)\n"
          "      --run-dir DIR        per-job supervisor dirs (default <db>.run or ./galvani.run;\n"
          "                           env GALVANI_RUN_DIR)\n"
          "      --shim PATH          the job supervisor (default: galvani-shim next to galvanid;\n"
          "                           env GALVANI_SHIM)\n"
          "      --pid-file PATH      galvanid's pid, written once it listens and removed when it stops\n"
          "                           (default <db>.pid or ./galvani.pid; env GALVANI_PID_FILE):\n"
          "                           kill -9 \"$(cat galvani.db.pid)\"\n"
          "      --log-limit BYTES    output kept per job (default 10485760)\n"
          "      --max-jobs N         jobs kept (default 10000; 0: no limit): past it the oldest finished\n"
          "                           jobs are deleted with their logs; queued/running/paused ones never are\n"
          "      --keep-finished AGE  also delete finished jobs older than AGE (e.g. 3600, 90m, 12h, 7d)\n"
          "      --metric-points N    points kept per metric series of a job (default 512, 4..100000):\n"
          "                           older points are merged pairwise (docs/api.md)\n"
          "      --webhook URL        notify rules POST their events to URL (http(s)://HOST[:PORT]/PATH;\n"
          "                           env GALVANI_WEBHOOK)\n"
          "      --webhook-timeout SECS  one delivery attempt's timeout (default 5)\n"
          "      --webhook-attempts N attempts per event, with backoff 0.5 s, 1 s, 2 s... (default 4)\n"
          "      --cancel-grace SECS  SIGTERM -> SIGKILL delay on cancel (default 5)\n"
          "      --log-level LEVEL    debug, info, warn or error (default info; env GALVANI_LOG_LEVEL)\n"
          "      --allow-origin LIST  web origins (comma list, or *) allowed to control jobs and open\n"
          "                           streams from a browser, besides galvanid's own (env GALVANI_ALLOW_ORIGIN)\n"
          "      --sync MODE          normal: a 2xx survives a crash of galvanid (default);\n"
          "                           full: it also survives power loss (fsync per change)\n"
          "\n"
          "Access (docs/security.md):\n"
          "      --token-file PATH    require this bearer token (first line of PATH, a file only its owner may\n"
          "                           read) on every API route; /healthz and the dashboard page stay open\n"
          "      --token TOKEN        the same, given directly (env GALVANI_TOKEN; visible to ps: prefer a file)\n"
          "      --read-token-file PATH, --read-token TOKEN\n"
          "                           a second, read-only token: list, show and watch, no changes\n"
          "                           (env GALVANI_READ_TOKEN)\n"
          "      --insecure           allow a non-loopback --listen address without a token\n"
          "\n"
          "Limits (docs/api.md, \"Limits\"):\n"
          "      --max-connections N  open connections, streams included (default 1024); past it new\n"
          "                           connections get 503 and are closed\n"
          "      --max-connections-per-client N  connections one client address may hold (default: a\n"
          "                           quarter of --max-connections, at least 64); a few more are kept in\n"
          "                           reserve for /healthz and an operator's requests (docs/security.md)\n"
          "      --request-timeout SECS  a request's headers must arrive within SECS, and idle keep-alive\n"
          "                           connections are closed after SECS (default 10)\n"
          "      --stream-buffer BYTES  unsent bytes a stream client may hold ... (default 1048576)\n"
          "      --stream-grace SECS  ... for this long before it is dropped (WebSocket close 1008; default 10)\n"
          "\n"
          "  -h, --help               this help\n"
          "  -V, --version            print the version\n"
          "\n"
          "Try: curl -X POST localhost:8000/start   (starts the demo job)\n"
          "     curl -X POST localhost:8000/jobs -H 'Content-Type: application/json' \\\n"
          "          -d '{\"command\": [\"sleep\", \"5\"]}'\n",
          out);
}

/* A token from a flag, a file or the environment (the first given, in that
 * order; a flag and a file together are a usage error).  `buf` receives it.
 * Returns the token, NULL if none was given, or (const char *)-1 after
 * printing the error. */
static const char *gvd_pick_token(const char *what, const char *flag, const char *file, const char *envname,
                                  char *buf, size_t buflen)
{
    char err[600];
    if (flag && file) {
        fprintf(stderr, "galvanid: give --%s or --%s-file, not both\n", what, what);
        return (const char *)-1;
    }
    if (file) {
        if (gvd_token_read_file(file, buf, buflen, err, sizeof err) != 0) {
            fprintf(stderr, "galvanid: %s\n", err);
            return (const char *)-1;
        }
        return buf;
    }
    const char *v = flag ? flag : getenv(envname);
    if (!v)
        return NULL;
    if (strlen(v) >= buflen) {
        fprintf(stderr, "galvanid: the %s is too long\n", what);
        return (const char *)-1;
    }
    if (v != buf) /* a flag's value is already in buf */
        snprintf(buf, buflen, "%s", v);
    /* Jobs get an environment of their own (runner/process.c); still, the
     * secret has no business staying in ours. */
    unsetenv(envname);
    char label[64];
    snprintf(label, sizeof label, flag ? "--%s" : "%s", flag ? what : envname);
    if (gvd_token_check(label, buf, err, sizeof err) != 0) {
        fprintf(stderr, "galvanid: %s\n", err);
        return (const char *)-1;
    }
    return buf;
}

/* Every connection is a descriptor, and so is each running job's pipes,
 * log and control socket and the database: make sure the soft open-files
 * limit covers max_conns plus a reserve, raising it up to the hard limit
 * (the usual soft default of 1024 would refuse connections with EMFILE long
 * before --max-connections). */
static int gvd_raise_fd_limit(unsigned long long max_conns)
{
    const rlim_t reserve = 256;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0; /* nothing known, nothing to do */
    rlim_t want = (rlim_t)max_conns + reserve;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
            fprintf(stderr,
                    "galvanid: --max-connections %llu needs %llu open files, but the hard limit is %llu "
                    "(ulimit -Hn): lower --max-connections or raise the limit\n",
                    max_conns, (unsigned long long)want, (unsigned long long)rl.rlim_max);
            return -1;
        }
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            fprintf(stderr, "galvanid: cannot raise the open-files limit to %llu: %s\n",
                    (unsigned long long)want, strerror(errno));
            return -1;
        }
    }
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
    gvd_cluster_detach(d->cluster); /* before the model goes: no more claims or mirrors */
    if (d->jobs)
        gvd_jobs_free(d->jobs);
    d->jobs = NULL;
    uv_close((uv_handle_t *)&d->sigint, gvd_handle_closed);
    uv_close((uv_handle_t *)&d->sigterm, gvd_handle_closed);
    uv_close((uv_handle_t *)&d->lost_timer, gvd_handle_closed);
    /* The main loop returns now (it checks `stopping`): a PostgreSQL
     * store's connection would keep it alive; main drains and closes the
     * store, then lets the closing handles finish. */
    uv_stop(d->loop);
}

/* The store can no longer tell what the database holds (a PostgreSQL batch
 * failed, its connection dropped): serving on would answer from a state
 * nobody can vouch for.  Stop as on SIGTERM — jobs keep running under
 * their supervisors — and exit 75 (EX_TEMPFAIL) so that a service manager
 * restarts galvanid, which then reloads the truth.  On the next turn of the
 * loop: the store is in the middle of its own callback. */
static void gvd_on_lost_timer(uv_timer_t *t)
{
    gvd_stop(t->data);
}

static void gvd_on_store_lost(void *ud, const char *err)
{
    gvd_daemon *d = ud;
    if (d->exit_code)
        return;
    fprintf(stderr, "galvanid: the store was lost (%s); stopping: jobs keep running, restart galvanid\n", err);
    d->exit_code = 75;
    (void)uv_timer_start(&d->lost_timer, gvd_on_lost_timer, 0, 0);
}

/* The same for a node the cluster gave up on (cluster/node.c): its jobs'
 * processes were killed, since other nodes run them now. */
static void gvd_on_fenced(void *ud, const char *why)
{
    gvd_daemon *d = ud;
    if (d->exit_code)
        return;
    fprintf(stderr, "galvanid: this node is fenced (%s): its jobs were stopped; restart galvanid to join again\n",
            why);
    d->exit_code = 75;
    (void)uv_timer_start(&d->lost_timer, gvd_on_lost_timer, 0, 0);
}

/* After gvd_stop: what the model wrote last is queued in an asynchronous
 * store (PostgreSQL); give it up to `ms` to be answered before the store is
 * closed.  The loop runs as usual meanwhile, so a deadline timer bounds it. */
static void gvd_on_drain_deadline(uv_timer_t *t)
{
    if (t->data)
        *(bool *)t->data = true;
}

static void gvd_drain_store(gvd_daemon *d, uint64_t ms)
{
    if (!gvd_store_unsynced(d->store) && gvd_cluster_idle(d->cluster))
        return;
    bool expired = false;
    uv_timer_t *deadline = &d->drain_timer; /* it must outlive its close: the daemon's, not the stack's */
    (void)uv_timer_init(d->loop, deadline);
    deadline->data = &expired;
    (void)uv_timer_start(deadline, gvd_on_drain_deadline, ms, 0);
    gvd_store_flush(d->store);
    while ((gvd_store_unsynced(d->store) || !gvd_cluster_idle(d->cluster)) && !expired)
        (void)uv_run(d->loop, UV_RUN_ONCE);
    if (gvd_store_unsynced(d->store))
        gvd_log(GVD_LOG_ERROR, "galvanid.store_not_drained", "waited_ms=%llu", (unsigned long long)ms);
    deadline->data = NULL;
    uv_close((uv_handle_t *)deadline, gvd_handle_closed);
}

/* The end, after a start-up error or the main loop: stop (gvd_stop), give
 * the store its last batch, close it, and let every handle close. */
static void gvd_finish(gvd_daemon *d)
{
    gvd_stop(d);
    gvd_drain_store(d, 5000); /* PostgreSQL: the last batch */
    gvd_store_close(d->store);
    d->store = NULL;
    gvd_cluster_free(d->cluster);
    d->cluster = NULL;
    uv_run(d->loop, UV_RUN_DEFAULT); /* let the closing handles finish */
    gvd_spawner_free(d->spawner); /* the supervisors it started live on */
    d->spawner = NULL;
}

/* GET /nodes: the cluster's, or this node alone on SQLite. */
static json_t *gvd_nodes_json(void *ud)
{
    gvd_daemon *d = ud;
    if (d->cluster)
        return gvd_cluster_nodes_json(d->cluster);
    size_t running = d->jobs ? gvd_jobs_running_on(d->jobs, d->node_id) : 0;
    return json_pack("{s:[{s:s, s:s, s:s, s:I, s:I, s:b}]}", "nodes", "id", d->node_id, "state", "up", "address",
                     d->address, "max_running", (json_int_t)d->max_running, "running", (json_int_t)running, "self", 1);
}

/* A transition of a job another node runs: that node applies it. */
static int gvd_forward(void *ud, int64_t job_id, const char *verb,
                       void (*done)(void *dud, int status, const char *code, const char *message), void *dud)
{
    gvd_daemon *d = ud;
    return d->cluster ? gvd_cluster_forward(d->cluster, job_id, verb, done, dud) : -1;
}

/* Where another node serves HTTP (api/relay.c). */
static int gvd_locate(void *ud, const char *node, int64_t pipeline_id,
                      void (*located)(void *lud, const char *node, const char *address, const char *state,
                                      const char *err),
                      void *lud)
{
    gvd_daemon *d = ud;
    return d->cluster ? gvd_cluster_locate(d->cluster, node, pipeline_id, located, lud) : -1;
}

static void gvd_on_signal(uv_signal_t *h, int signum)
{
    gvd_log(GVD_LOG_INFO, "galvanid.signal", "signal=%s", signum == SIGINT ? "SIGINT" : "SIGTERM");
    gvd_stop(h->data);
}

int main(int argc, char **argv)
{
    /* Each request's buffers and pool (h2o) are freed at its end, at the top
     * of the heap; glibc's default trim threshold then gives those pages
     * back and the next request faults them in again: 3 % of a GET's time,
     * measured under wrk (docs/benchmarks.md).  Keep up to 4 MiB of free
     * heap instead.  A hint: an allocator that refuses it (ASan's) changes
     * only the speed, so its answer is deliberately ignored. */
    (void)mallopt(M_TRIM_THRESHOLD, 4 << 20);
    const char *listen = getenv("GALVANI_LISTEN") ? getenv("GALVANI_LISTEN") : "127.0.0.1:8000";
    const char *db = getenv("GALVANI_DB") ? getenv("GALVANI_DB") : "galvani.db";
    const char *store_url = getenv("GALVANI_STORE");
    const char *node_id = getenv("GALVANI_NODE_ID");
    double lease_s = GVD_CLUSTER_LEASE_DEFAULT_S;
    bool db_flag = false, store_flag = false;
    const char *log_dir = getenv("GALVANI_LOG_DIR");
    const char *run_dir = getenv("GALVANI_RUN_DIR");
    const char *shim_path = NULL; /* the runner reads GALVANI_SHIM itself */
    const char *pid_file = getenv("GALVANI_PID_FILE");
    const char *level = getenv("GALVANI_LOG_LEVEL") ? getenv("GALVANI_LOG_LEVEL") : "info";
    const char *max_running = getenv("GALVANI_MAX_RUNNING");
    const char *allow_origin = getenv("GALVANI_ALLOW_ORIGIN");
    unsigned long long log_limit = 10ull << 20, grace_s = 5, max_run = 4;
    unsigned long long max_jobs = GVD_MAX_JOBS_DEFAULT;
    unsigned long long metric_points = GVD_SERIES_DEFAULT_BOUND;
    double keep_finished_s = 0;
    const char *webhook = getenv("GALVANI_WEBHOOK");
    double webhook_timeout_s = 5;
    unsigned long long webhook_attempts = 4;
    int sync_full = 0;
    static char token_buf[4100], read_token_buf[4100];
    const char *token_flag = NULL, *token_file = NULL, *read_flag = NULL, *read_file = NULL;
    bool insecure = false;
    unsigned long long max_conns = 1024, max_per_client = 0, stream_buffer = 0;
    unsigned req_timeout_ms = 10000, stream_grace_ms = 0;

    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},     {"db", required_argument, NULL, 'd'},
        {"max-running", required_argument, NULL, 'j'}, {"log-dir", required_argument, NULL, 1},
        {"log-limit", required_argument, NULL, 2},    {"cancel-grace", required_argument, NULL, 3},
        {"log-level", required_argument, NULL, 4},    {"sync", required_argument, NULL, 5},
        {"allow-origin", required_argument, NULL, 6},
        {"token", required_argument, NULL, 20},       {"token-file", required_argument, NULL, 21},
        {"read-token", required_argument, NULL, 22},  {"read-token-file", required_argument, NULL, 23},
        {"insecure", no_argument, NULL, 24},          {"max-connections", required_argument, NULL, 25},
        {"request-timeout", required_argument, NULL, 26}, {"stream-buffer", required_argument, NULL, 27},
        {"stream-grace", required_argument, NULL, 28}, {"max-connections-per-client", required_argument, NULL, 29},
        {"max-jobs", required_argument, NULL, 40},    {"keep-finished", required_argument, NULL, 41},
        {"metric-points", required_argument, NULL, 42},
        {"webhook", required_argument, NULL, 43},     {"webhook-timeout", required_argument, NULL, 44},
        {"webhook-attempts", required_argument, NULL, 45},
        {"run-dir", required_argument, NULL, 50},     {"shim", required_argument, NULL, 51},
        {"pid-file", required_argument, NULL, 52},    {"store", required_argument, NULL, 53},
        {"node-id", required_argument, NULL, 54},     {"lease", required_argument, NULL, 55},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},          {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "l:d:j:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'l': listen = optarg; break;
        case 'd':
            db = optarg;
            db_flag = true;
            break;
        case 53:
            store_url = optarg;
            store_flag = true;
            break;
        case 54: node_id = optarg; break;
        case 55: {
            char *end;
            lease_s = strtod(optarg, &end);
            if (*optarg == '\0' || *end != '\0' || !(lease_s >= 1 && lease_s <= 3600)) {
                fprintf(stderr, "galvanid: --lease takes seconds (1..3600), not '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 'j': max_running = optarg; break;
        case 1: log_dir = optarg; break;
        case 50: run_dir = optarg; break;
        case 51: shim_path = optarg; break;
        case 52: pid_file = optarg; break;
        case 2:
            if (gvd_flag_uint(optarg, 1ull << 40, &log_limit) || log_limit == 0) {
                fprintf(stderr, "galvanid: --log-limit takes a positive number of bytes, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 3:
            if (gvd_flag_uint(optarg, 3600, &grace_s)) {
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
        case 20:
        case 22:
            /* copied now: the argv string is blanked below */
            if (strlen(optarg) >= sizeof token_buf) {
                fprintf(stderr, "galvanid: --%s is too long\n", c == 20 ? "token" : "read-token");
                return 2;
            }
            snprintf(c == 20 ? token_buf : read_token_buf, sizeof token_buf, "%s", optarg);
            gvd_flag_hide(optarg);
            if (c == 20)
                token_flag = token_buf;
            else
                read_flag = read_token_buf;
            break;
        case 21: token_file = optarg; break;
        case 23: read_file = optarg; break;
        case 24: insecure = true; break;
        case 25:
            if (gvd_flag_uint(optarg, 1000000, &max_conns) || max_conns == 0) {
                fprintf(stderr, "galvanid: --max-connections takes a positive integer, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 29:
            if (gvd_flag_uint(optarg, 1000000, &max_per_client) || max_per_client == 0) {
                fprintf(stderr, "galvanid: --max-connections-per-client takes a positive integer, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 26:
            if (gvd_flag_secs(optarg, 3600, &req_timeout_ms)) {
                fprintf(stderr, "galvanid: --request-timeout takes seconds (0.001..3600), not '%s'\n", optarg);
                return 2;
            }
            break;
        case 27:
            if (gvd_flag_uint(optarg, 1ull << 30, &stream_buffer) || stream_buffer < 1024) {
                fprintf(stderr, "galvanid: --stream-buffer takes bytes (1024..1073741824), not '%s'\n", optarg);
                return 2;
            }
            break;
        case 28:
            if (gvd_flag_secs(optarg, 3600, &stream_grace_ms)) {
                fprintf(stderr, "galvanid: --stream-grace takes seconds (0.001..3600), not '%s'\n", optarg);
                return 2;
            }
            break;
        case 40:
            if (gvd_flag_uint(optarg, 100000000, &max_jobs)) {
                fprintf(stderr, "galvanid: --max-jobs takes a number of jobs (0 = no limit .. 100000000), not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 41:
            if (gvd_flag_age(optarg, &keep_finished_s)) {
                fprintf(stderr, "galvanid: --keep-finished takes an age: seconds, or a number with s, m, h or d "
                                "(e.g. 90m, 7d), not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 42:
            if (gvd_flag_uint(optarg, 100000, &metric_points) || metric_points < GVD_SERIES_MIN_BOUND) {
                fprintf(stderr, "galvanid: --metric-points takes a number of points (4..100000), not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 43: webhook = optarg; break;
        case 44: {
            char *end = NULL;
            webhook_timeout_s = strtod(optarg, &end);
            if (!end || *end || !(webhook_timeout_s >= 0.001 && webhook_timeout_s <= 3600)) {
                fprintf(stderr, "galvanid: --webhook-timeout takes seconds (0.001..3600), not '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 45:
            if (gvd_flag_uint(optarg, 20, &webhook_attempts) || webhook_attempts < 1) {
                fprintf(stderr, "galvanid: --webhook-attempts takes a number of attempts (1..20), not '%s'\n", optarg);
                return 2;
            }
            break;
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
    if (max_running && (gvd_flag_uint(max_running, 100000, &max_run) || max_run == 0)) {
        fprintf(stderr, "galvanid: --max-running takes a positive integer, not '%s'\n", max_running);
        return 2;
    }
    char host[256];
    int port;
    if (gvd_flag_listen(listen, host, sizeof host, &port) != 0) {
        fprintf(stderr, "galvanid: --listen takes HOST:PORT (e.g. 127.0.0.1:8000), not '%s'\n", listen);
        return 2;
    }
    /* The token from a file is read here, before anything else starts, so
     * that a bad file is a start-up error. */
    const char *token = gvd_pick_token("token", token_flag, token_file, "GALVANI_TOKEN", token_buf,
                                       sizeof token_buf);
    const char *read_token = gvd_pick_token("read-token", read_flag, read_file, "GALVANI_READ_TOKEN",
                                            read_token_buf, sizeof read_token_buf);
    if (token == (const char *)-1 || read_token == (const char *)-1)
        return 2;
    /* Before anything is opened or created: a refused --listen must leave
     * the database, the logs and the jobs untouched (the server checks it
     * again when it binds). */
    char err[512];
    if (gvd_server_check_listen(host, port, token != NULL, insecure, err, sizeof err) != 0) {
        fprintf(stderr, "galvanid: %s\n", err);
        OPENSSL_cleanse(token_buf, sizeof token_buf);
        OPENSSL_cleanse(read_token_buf, sizeof read_token_buf);
        return 1;
    }
    if (gvd_raise_fd_limit(max_conns) != 0)
        return 2;
    /* --db PATH is --store sqlite:PATH.  Given both on the command line they
     * would contradict each other; GALVANI_STORE set but --db given: the
     * flag wins, as flags win over the environment everywhere. */
    if (db_flag && store_flag) {
        fprintf(stderr, "galvanid: --db and --store both say where jobs are stored: give one\n");
        return 2;
    }
    char store_buf[PATH_MAX + 8];
    if (db_flag || !store_url || !*store_url) {
        snprintf(store_buf, sizeof store_buf, "sqlite:%s", db);
        store_url = store_buf;
    } else if (strncmp(store_url, "sqlite:", 7) == 0) {
        db = store_url + 7;
    } else {
        db = "galvani"; /* the prefix of the local paths' defaults */
    }
    char default_run_dir[PATH_MAX];
    if (!run_dir) {
        snprintf(default_run_dir, sizeof default_run_dir, "%s.run", db);
        run_dir = default_run_dir;
    }
    char default_pid_file[PATH_MAX];
    if (!pid_file || !*pid_file) {
        snprintf(default_pid_file, sizeof default_pid_file, "%s.pid", db);
        pid_file = default_pid_file;
    }
    char default_log_dir[PATH_MAX];
    if (!log_dir) {
        snprintf(default_log_dir, sizeof default_log_dir, "%s.logs", db);
        log_dir = default_log_dir;
    }

    /* This node's id: given, or HOST:PORT (the machine's name, the port it
     * is told to serve on): unique among nodes that each serve a port. */
    char default_node[300];
    if (!node_id || !*node_id) {
        char hn[256] = "localhost";
        (void)gethostname(hn, sizeof hn - 1);
        hn[sizeof hn - 1] = '\0';
        snprintf(default_node, sizeof default_node, "%s:%d", hn, port);
        node_id = default_node;
    } else if (strlen(node_id) > 200 || strpbrk(node_id, " ,\t\n\r")) {
        fprintf(stderr, "galvanid: --node-id takes up to 200 characters without spaces or commas, not '%s'\n",
                node_id);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a job or client that went away is an error code, not a death */
    gvd_daemon d = {0};
    /* Supervisors come from galvani-shim's fork server (runner/spawner.h),
     * started at the first job.  Not with --shim or $GALVANI_SHIM: a
     * supervisor named by path (a test's fake one, say) is exec'd per job. */
    if (!shim_path && !getenv("GALVANI_SHIM"))
        d.spawner = gvd_spawner_new(); /* NULL (out of memory): posix_spawn */
    d.loop = uv_default_loop();
    /* Initialised (not started) first: gvd_stop closes them on every way out. */
    (void)uv_signal_init(d.loop, &d.sigint);
    (void)uv_signal_init(d.loop, &d.sigterm);
    d.sigint.data = d.sigterm.data = &d;
    (void)uv_timer_init(d.loop, &d.lost_timer);
    d.lost_timer.data = &d;
    d.store = gvd_store_open_url(d.loop, store_url, err, sizeof err);
    if (!d.store) {
        if (strncmp(store_url, "sqlite:", 7) == 0)
            fprintf(stderr, "galvanid: cannot open the database %s: %s\n", db, err);
        else
            fprintf(stderr, "galvanid: cannot open the store: %s\n", err);
        return 1;
    }
    d.node_id = node_id;
    if (strcmp(gvd_store_kind(d.store), "postgres") == 0) {
        char advertise[300];
        snprintf(advertise, sizeof advertise, "%s:%d", host, port);
        gvd_cluster_opts copts = {.conninfo = store_url, .node_id = node_id, .advertise = advertise,
                                  .lease_s = lease_s, .max_running = (unsigned)max_run};
        d.cluster = gvd_cluster_new(d.loop, &copts, 30000, err, sizeof err);
        if (!d.cluster || gvd_store_set_node(d.store, node_id, gvd_cluster_epoch(d.cluster)) != 0) {
            fprintf(stderr, "galvanid: %s\n", d.cluster ? "out of memory" : err);
            gvd_cluster_free(d.cluster);
            gvd_store_close(d.store);
            uv_run(d.loop, UV_RUN_DEFAULT);
            return 1;
        }
    }
    if (sync_full && gvd_store_set_durable(d.store, true, err, sizeof err) != 0) {
        fprintf(stderr, "galvanid: cannot set --sync full: %s\n", err);
        gvd_store_close(d.store);
        return 1;
    }
    gvd_config cfg = {.max_running = (unsigned)max_run,
                      .cancel_grace_ms = (unsigned)(grace_s * 1000),
                      .log_limit = log_limit,
                      .log_dir = log_dir,
                      .run_dir = run_dir,
                      .shim_path = shim_path,
                      .spawner = d.spawner,
                      .leave_running = true,
                      .max_jobs = max_jobs ? (unsigned)max_jobs : GVD_MAX_JOBS_UNLIMITED,
                      .metric_points = (unsigned)metric_points,
                      .webhook_url = webhook && *webhook ? webhook : NULL,
                      .webhook_timeout_s = webhook_timeout_s,
                      .webhook_attempts = (unsigned)webhook_attempts,
                      .keep_finished_s = keep_finished_s,
                      .node_id = node_id,
                      .cluster = d.cluster != NULL,
                      .progress_flush_ms = d.cluster ? GVD_CLUSTER_PROGRESS_FLUSH_MS : 0};
    gvd_error jerr = {0};
    d.jobs = gvd_jobs_new(d.loop, d.store, &cfg, &jerr);
    if (!d.jobs) {
        fprintf(stderr, "galvanid: %s\n", jerr.message);
        gvd_store_close(d.store);
        return 1;
    }
    gvd_jobs_on_store_lost(d.jobs, gvd_on_store_lost, &d);
    if (d.cluster && gvd_cluster_attach(d.cluster, d.jobs, gvd_on_fenced, &d, err, sizeof err) != 0) {
        fprintf(stderr, "galvanid: %s\n", err);
        gvd_finish(&d);
        return 1;
    }
    gvd_server_opts sopts = {.host = host,
                             .port = port,
                             .allow_origins = allow_origin,
                             .token = token,
                             .read_token = read_token,
                             .insecure = insecure,
                             .max_connections = (size_t)max_conns,
                             .max_connections_per_client = (size_t)max_per_client,
                             .request_timeout_ms = req_timeout_ms,
                             .push = {.max_pending = (size_t)stream_buffer, .slow_ms = stream_grace_ms},
                             .nodes = gvd_nodes_json,
                             .nodes_ud = &d,
                             .forward = d.cluster ? gvd_forward : NULL,
                             .forward_ud = &d,
                             .locate = d.cluster ? gvd_locate : NULL,
                             .locate_ud = &d};
    d.server = gvd_server_new(d.loop, d.jobs, &sopts, err, sizeof err);
    /* The server keeps only digests: wipe our copies. */
    OPENSSL_cleanse(token_buf, sizeof token_buf);
    OPENSSL_cleanse(read_token_buf, sizeof read_token_buf);
    if (!d.server) {
        fprintf(stderr, "galvanid: %s\n", err);
        gvd_finish(&d);
        return 1;
    }
    uv_signal_start(&d.sigint, gvd_on_signal, SIGINT);
    uv_signal_start(&d.sigterm, gvd_on_signal, SIGTERM);
    /* Asked for (--pid-file, GALVANI_PID_FILE): a start-up error if it
     * cannot be written.  The default one is a convenience: a warning (a
     * full disk must not keep galvanid from serving reads). */
    if (gvd_pid_file_write(pid_file, err, sizeof err) != 0) {
        if (pid_file != default_pid_file) {
            fprintf(stderr, "galvanid: cannot write the pid file %s: %s\n", pid_file, err);
            gvd_finish(&d);
            return 1;
        }
        char qpath[PATH_MAX + 16], qerr[600];
        gvd_log(GVD_LOG_WARN, "galvanid.pid_file", "path=%s error=%s",
                gvd_log_quote(pid_file, qpath, sizeof qpath), gvd_log_quote(err, qerr, sizeof qerr));
        pid_file = NULL;
    }
    snprintf(d.address, sizeof d.address, "%s:%d", host, gvd_server_port(d.server));
    d.max_running = (unsigned)max_run;
    if (d.cluster)
        gvd_cluster_advertise(d.cluster, d.address);
    /* A postgres URL may carry a password: the log names the kind only. */
    gvd_log(GVD_LOG_INFO, "galvanid.listening", "addr=%s:%d store=%s db=%s logs=%s max_running=%llu pid=%ld", host,
            gvd_server_port(d.server), gvd_store_kind(d.store), strcmp(gvd_store_kind(d.store), "sqlite") ? "-" : db,
            log_dir, max_run, (long)getpid());
    fflush(stderr);

    /* One turn at a time, until gvd_stop: uv_stop alone is not enough, since
     * h2o's context disposal (server.c) runs a nested uv_run, which clears
     * the stop request, and a PostgreSQL connection keeps the loop alive. */
    while (!d.stopping && uv_run(d.loop, UV_RUN_ONCE) != 0) {
    }
    gvd_finish(&d);
    int rc = uv_loop_close(d.loop);
    if (pid_file)
        gvd_pid_file_remove(pid_file);
    gvd_log(GVD_LOG_INFO, "galvanid.stopped", "clean=%d", rc == 0);
    return d.exit_code;
}
