/*
 * obs.c — the registry (obs.h): the counters and histograms themselves, the
 * hooks that bump them, and the catalog that renders them at a scrape.
 *
 * One static struct holds every metric.  The catalog (gvd_obs_render) is
 * the only place that knows names, help texts and label names, so adding a
 * metric is a field, a hook and a few lines there (and its entry in
 * docs/observability.md).  Keyed families whose label values are static
 * strings from another layer (route patterns, rule actions) keep a small
 * table of slots claimed on first use: matching a pointer is the common
 * case, so a request pays a short scan, not a string compare.
 */
#include "obs.h"

#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <galvani/signals.h>

#include "../runner/proc.h"

/* Route patterns (api/routes.c has about 25) and rule actions (4): room to
 * spare; a key beyond it is not counted (it would be a programming error,
 * not something a client can cause). */
#define GVD_OBS_ROUTES 64
#define GVD_OBS_CODES 16 /* distinct statuses per route; more are counted as code="other" */
#define GVD_OBS_ACTIONS 8

typedef enum gvd_obs_exit {
    GVD_OBS_EXIT_SUCCESS = 0,
    GVD_OBS_EXIT_FAILURE,
    GVD_OBS_EXIT_SIGNAL,
    GVD_OBS_EXIT_CANCELLED,
    GVD_OBS_EXIT_LOST,
    GVD_OBS_NEXIT
} gvd_obs_exit;

typedef struct gvd_obs_route {
    size_t ncodes;
    int code[GVD_OBS_CODES];
    uint64_t n[GVD_OBS_CODES];
    uint64_t other; /* statuses beyond GVD_OBS_CODES */
} gvd_obs_route;

/* Upper bounds in seconds.  A spawn waits for the supervisor's hello: a
 * fork + exec or two, about a millisecond, more on a loaded machine.  A
 * commit is an fsync-free WAL append with the default --sync normal (tens
 * of microseconds) and an fsync with --sync full (milliseconds). */
static const double gvd_spawn_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
static const double gvd_commit_bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                           0.01,    0.025,  0.05,    0.1,    0.25,  1};
/* A stream client's frames wait for the walker to reach it: a millisecond
 * with a few clients, up to a whole pass over them with ten thousand. */
static const double gvd_write_delay_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                0.1,   0.25,   0.5,   1,    2.5,   10};
#define GVD_NBOUNDS(a) (sizeof(a) / sizeof((a)[0]))

static struct {
    uint64_t transitions[GVD_NSTATUS + 1][GVD_NSTATUS]; /* [from (GVD_NSTATUS: new)][to] */
    uint64_t spawns[2];                                 /* [ok] */
    gvd_obs_hist spawn_seconds;
    uint64_t exits[GVD_OBS_NEXIT];
    const char *action[GVD_OBS_ACTIONS];
    uint64_t firings[GVD_OBS_ACTIONS];
    size_t nactions;
    uint64_t frames_sent[GVD_OBS_NTRANSPORT];
    uint64_t frames_dropped[GVD_OBS_NTRANSPORT][GVD_OBS_NDROP];
    gvd_obs_hist write_delay_seconds;
    gvd_obs_hist commit_seconds;
    uint64_t write_errors;
    uint64_t faults[GVD_STORE_READ_ONLY + 1];
    const char *route[GVD_OBS_ROUTES];
    gvd_obs_route requests[GVD_OBS_ROUTES];
    size_t nroutes;
} gvd_obs = {
    .spawn_seconds = {.bounds = gvd_spawn_bounds, .nbounds = GVD_NBOUNDS(gvd_spawn_bounds)},
    .commit_seconds = {.bounds = gvd_commit_bounds, .nbounds = GVD_NBOUNDS(gvd_commit_bounds)},
    .write_delay_seconds = {.bounds = gvd_write_delay_bounds, .nbounds = GVD_NBOUNDS(gvd_write_delay_bounds)},
};

_Static_assert(GVD_NBOUNDS(gvd_spawn_bounds) <= GVD_OBS_MAX_BUCKETS, "spawn buckets");
_Static_assert(GVD_NBOUNDS(gvd_commit_bounds) <= GVD_OBS_MAX_BUCKETS, "commit buckets");
_Static_assert(GVD_NBOUNDS(gvd_write_delay_bounds) <= GVD_OBS_MAX_BUCKETS, "write delay buckets");

static const char *const gvd_exit_names[GVD_OBS_NEXIT] = {"success", "failure", "signal", "cancelled", "lost"};
static const char *const gvd_transport_names[GVD_OBS_NTRANSPORT] = {"ws", "sse"};
static const char *const gvd_drop_names[GVD_OBS_NDROP] = {"coalesced", "discarded"};
/* Label values, so not gvd_store_fault_cause's words ("disk full"). */
static const char *const gvd_fault_names[GVD_STORE_READ_ONLY + 1] = {NULL, "disk_full", "locked", "io_error",
                                                                     "read_only"};

/* The slot of `key` in keys[0..*used), claiming the next one for a new key;
 * `cap` if the table is full. */
static size_t gvd_obs_slot(const char **keys, size_t *used, size_t cap, const char *key)
{
    for (size_t i = 0; i < *used; i++)
        if (keys[i] == key)
            return i;
    /* The same words from another string (a copy, another translation
     * unit's literal) must land in the same series. */
    for (size_t i = 0; i < *used; i++)
        if (strcmp(keys[i], key) == 0)
            return i;
    if (*used == cap)
        return cap;
    keys[*used] = key;
    return (*used)++;
}

static double gvd_obs_seconds_since(uint64_t started_ns)
{
    uint64_t now = gvd_obs_clock_ns();
    return now > started_ns ? (double)(now - started_ns) / 1e9 : 0.0;
}

/* ---- hooks --------------------------------------------------------------------- */

void gvd_obs_job_transition(gvd_status from, gvd_status to)
{
    if ((unsigned)from <= GVD_NSTATUS && (unsigned)to < GVD_NSTATUS)
        gvd_obs.transitions[from][to]++;
}

void gvd_obs_process_spawned(bool ok, uint64_t started_ns)
{
    gvd_obs.spawns[ok]++;
    if (ok)
        gvd_obs_hist_observe(&gvd_obs.spawn_seconds, gvd_obs_seconds_since(started_ns));
}

void gvd_obs_process_exited(int64_t exit_status, int term_signal, bool cancelled, bool lost)
{
    gvd_obs_exit e = lost                ? GVD_OBS_EXIT_LOST
                     : cancelled         ? GVD_OBS_EXIT_CANCELLED
                     : term_signal != 0  ? GVD_OBS_EXIT_SIGNAL
                     : exit_status == 0  ? GVD_OBS_EXIT_SUCCESS
                                         : GVD_OBS_EXIT_FAILURE;
    gvd_obs.exits[e]++;
}

void gvd_obs_rule_fired(const char *action)
{
    size_t i = gvd_obs_slot(gvd_obs.action, &gvd_obs.nactions, GVD_OBS_ACTIONS, action);
    if (i < GVD_OBS_ACTIONS)
        gvd_obs.firings[i]++;
}

void gvd_obs_frames_sent(gvd_obs_transport t, size_t n)
{
    gvd_obs.frames_sent[t] += n;
}

void gvd_obs_stream_written(uint64_t waited_ms)
{
    gvd_obs_hist_observe(&gvd_obs.write_delay_seconds, (double)waited_ms / 1000);
}

void gvd_obs_frames_dropped(gvd_obs_transport t, gvd_obs_drop why, size_t n)
{
    gvd_obs.frames_dropped[t][why] += n;
}

void gvd_obs_store_committed(uint64_t started_ns)
{
    gvd_obs_hist_observe(&gvd_obs.commit_seconds, gvd_obs_seconds_since(started_ns));
}

void gvd_obs_store_write_failed(void)
{
    gvd_obs.write_errors++;
}

void gvd_obs_store_fault(gvd_store_fault cause)
{
    if (cause > GVD_STORE_OK && cause <= GVD_STORE_READ_ONLY)
        gvd_obs.faults[cause]++;
}

void gvd_obs_http_request(const char *route, int status)
{
    size_t r = gvd_obs_slot(gvd_obs.route, &gvd_obs.nroutes, GVD_OBS_ROUTES, route);
    if (r == GVD_OBS_ROUTES)
        return;
    gvd_obs_route *row = &gvd_obs.requests[r];
    for (size_t i = 0; i < row->ncodes; i++)
        if (row->code[i] == status) {
            row->n[i]++;
            return;
        }
    if (row->ncodes == GVD_OBS_CODES) {
        row->other++;
        return;
    }
    row->code[row->ncodes] = status;
    row->n[row->ncodes++] = 1;
}

/* ---- the process ------------------------------------------------------------------ */

/* A family of one unlabelled series. */
static void gvd_obs_single(gvd_obs_text *t, const char *name, const char *type, const char *help, double value)
{
    gvd_obs_family(t, name, type, help);
    gvd_obs_sample(t, name, NULL, value);
}

/* Boot time (btime in /proc/stat), in seconds since the epoch; -1 if unknown. */
static long long gvd_obs_boot_time(void)
{
    long long btime = -1;
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return -1;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lld", &btime) == 1)
            break;
    fclose(f);
    return btime;
}

/* What every Prometheus client library exports about its process, under the
 * same names, so that standard dashboards and alerts work unchanged.  Read
 * at the scrape from /proc and getrusage; a value that cannot be read is
 * left out (a missing series is honest, a zero would be a lie). */
static void gvd_obs_process(gvd_obs_text *t)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        gvd_obs_single(t, "process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.",
                       (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);

    /* Start time: clock ticks after boot (/proc/self/stat) + the boot time. */
    gvd_proc_stat ps;
    long tck = sysconf(_SC_CLK_TCK);
    long long btime = gvd_obs_boot_time();
    if (btime > 0 && tck > 0 && gvd_proc_stat_read(getpid(), &ps) == 0)
        gvd_obs_single(t, "process_start_time_seconds", "gauge",
                       "Start time of the process since unix epoch in seconds.",
                       (double)btime + (double)ps.start_ticks / (double)tck);

    unsigned long long vsz_pages, rss_pages;
    long page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "re");
    if (f) {
        if (page > 0 && fscanf(f, "%llu %llu", &vsz_pages, &rss_pages) == 2) {
            gvd_obs_single(t, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
                           (double)vsz_pages * (double)page);
            gvd_obs_single(t, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                           (double)rss_pages * (double)page);
        }
        fclose(f);
    }

    DIR *d = opendir("/proc/self/fd");
    if (d) {
        size_t n = 0;
        for (struct dirent *e; (e = readdir(d));)
            n += e->d_name[0] != '.';
        closedir(d);
        /* less the descriptor opendir itself holds */
        gvd_obs_single(t, "process_open_fds", "gauge", "Number of open file descriptors.", (double)(n ? n - 1 : 0));
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        gvd_obs_single(t, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
                       (double)rl.rlim_cur);
}

/* ---- the catalog ------------------------------------------------------------------ */

/* A counter family over a closed set of label values, every value shown
 * (zero included: a series that appears only once it is non-zero hides its
 * first increment from rate()).  NULL values are skipped. */
static void gvd_obs_counters(gvd_obs_text *t, const char *name, const char *help, const char *label,
                             const char *const *values, const uint64_t *counts, size_t n)
{
    gvd_obs_family(t, name, "counter", help);
    for (size_t i = 0; i < n; i++)
        if (values[i])
            gvd_obs_sample(t, name, GVD_OBS_LABELS(label, values[i]), (double)counts[i]);
}

static void gvd_obs_jobs(gvd_obs_text *t, const gvd_obs_live *live)
{
    const char *names[GVD_NSTATUS + 1]; /* the statuses, and "new" for a transition's from */
    for (int s = 0; s < GVD_NSTATUS; s++)
        names[s] = gvd_status_name((gvd_status)s);
    names[GVD_NSTATUS] = "new";
    gvd_obs_family(t, "galvanid_jobs", "gauge", "Jobs kept by galvanid, by status.");
    for (int s = 0; s < GVD_NSTATUS; s++)
        gvd_obs_sample(t, "galvanid_jobs", GVD_OBS_LABELS("status", names[s]), (double)live->jobs.by_status[s]);
    gvd_obs_single(t, "galvanid_jobs_max_running", "gauge", "Jobs that may be running or paused at once (--max-running).",
                   live->jobs.max_running);

    /* Only the pairs that happened: most of the 42 cannot. */
    const char *name = "galvanid_job_transitions_total";
    gvd_obs_family(t, name, "counter", "Job status changes, by old and new status (from=\"new\": a job was created).");
    for (int from = 0; from <= GVD_NSTATUS; from++)
        for (int to = 0; to < GVD_NSTATUS; to++)
            if (gvd_obs.transitions[from][to])
                gvd_obs_sample(t, name, GVD_OBS_LABELS("from", names[from], "to", names[to]),
                               (double)gvd_obs.transitions[from][to]);
}

static void gvd_obs_processes(gvd_obs_text *t)
{
    static const char *const results[2] = {"failed", "ok"};
    gvd_obs_counters(t, "galvanid_process_spawns_total",
                     "Process jobs started (result=\"ok\") or that could not be started (result=\"failed\").",
                     "result", results, gvd_obs.spawns, 2);
    gvd_obs_histogram(t, "galvanid_process_spawn_duration_seconds",
                      "Time to start a process job, until its supervisor reported it running, in seconds.",
                      &gvd_obs.spawn_seconds);
    gvd_obs_counters(t, "galvanid_process_exits_total", "Process jobs that ended, by outcome.", "outcome",
                     gvd_exit_names, gvd_obs.exits, GVD_OBS_NEXIT);
    gvd_obs_family(t, "galvanid_rule_firings_total", "counter", "Rule firings, by the rule's action.");
    for (size_t i = 0; i < gvd_obs.nactions; i++)
        gvd_obs_sample(t, "galvanid_rule_firings_total", GVD_OBS_LABELS("action", gvd_obs.action[i]),
                       (double)gvd_obs.firings[i]);
}

static void gvd_obs_streams(gvd_obs_text *t, const gvd_obs_live *live)
{
    const char *name = "galvanid_stream_clients";
    gvd_obs_family(t, name, "gauge", "Connected stream clients, by transport.");
    gvd_obs_sample(t, name, GVD_OBS_LABELS("transport", "ws"), (double)live->push.ws_clients);
    gvd_obs_sample(t, name, GVD_OBS_LABELS("transport", "sse"), (double)live->push.sse_clients);
    gvd_obs_counters(t, "galvanid_stream_frames_sent_total",
                     "Frames handed to stream clients' sockets, by transport.", "transport", gvd_transport_names,
                     gvd_obs.frames_sent, GVD_OBS_NTRANSPORT);
    name = "galvanid_stream_frames_dropped_total";
    gvd_obs_family(t, name, "counter",
                   "Frames a stream client never got: replaced by a newer one for the same key before it was sent "
                   "(reason=\"coalesced\"), or discarded with a client that was dropped or went away "
                   "(reason=\"discarded\").");
    for (int tr = 0; tr < GVD_OBS_NTRANSPORT; tr++)
        for (int why = 0; why < GVD_OBS_NDROP; why++)
            gvd_obs_sample(t, name, GVD_OBS_LABELS("transport", gvd_transport_names[tr], "reason", gvd_drop_names[why]),
                           (double)gvd_obs.frames_dropped[tr][why]);
    name = "galvanid_stream_clients_dropped_total";
    gvd_obs_family(t, name, "counter",
                   "Stream clients disconnected by galvanid: too slow to read (reason=\"slow\"), or not answering "
                   "WebSocket pings (reason=\"ping\").");
    gvd_obs_sample(t, name, GVD_OBS_LABELS("reason", "slow"), (double)live->push.dropped_slow);
    gvd_obs_sample(t, name, GVD_OBS_LABELS("reason", "ping"), (double)live->push.dropped_ping);
    gvd_obs_histogram(t, "galvanid_stream_write_delay_seconds",
                      "How long a stream client's frames waited in galvanid: from the first of them queued (by a "
                      "flush) to their write to its socket, in seconds.",
                      &gvd_obs.write_delay_seconds);
    gvd_obs_single(t, "galvanid_stream_flushes_total", "counter",
                   "Flushes of the push hub that had something to send (at most one per 20 ms).",
                   (double)live->push.flushes);
    gvd_obs_single(t, "galvanid_stream_writes_total", "counter",
                   "Socket writes to stream clients (every frame a client has pending leaves in one write).",
                   (double)live->push.writes);
    gvd_obs_single(t, "galvanid_stream_resyncs_total", "counter",
                   "?v=2 stream clients so far behind that a snapshot replaced their pending updates.",
                   (double)live->push.resyncs);
}

static void gvd_obs_store(gvd_obs_text *t, const gvd_obs_live *live)
{
    gvd_obs_histogram(t, "galvanid_store_commit_duration_seconds",
                      "Time to commit one write to the SQLite store (a transition, or a batch), in seconds.",
                      &gvd_obs.commit_seconds);
    gvd_obs_counters(t, "galvanid_store_faults_total",
                     "Store faults that began (writes refused by the environment), by cause.", "cause",
                     gvd_fault_names, gvd_obs.faults, GVD_STORE_READ_ONLY + 1);
    gvd_obs_single(t, "galvanid_store_write_errors_total", "counter", "Store writes that failed.",
                   (double)gvd_obs.write_errors);
    gvd_obs_single(t, "galvanid_store_available", "gauge", "1 while the store takes writes, 0 during a fault.",
                   live->jobs.store_available);
    gvd_obs_single(t, "galvanid_store_pending_writes", "gauge", "Jobs whose latest state is not stored yet.",
                   (double)live->jobs.pending_writes);
}

static void gvd_obs_http(gvd_obs_text *t, const gvd_obs_live *live)
{
    const char *name = "galvanid_http_requests_total";
    gvd_obs_family(t, name, "counter", "HTTP requests answered, by route pattern and status code.");
    for (size_t r = 0; r < gvd_obs.nroutes; r++) {
        const gvd_obs_route *row = &gvd_obs.requests[r];
        char code[16];
        for (size_t i = 0; i < row->ncodes; i++) {
            snprintf(code, sizeof code, "%d", row->code[i]);
            gvd_obs_sample(t, name, GVD_OBS_LABELS("route", gvd_obs.route[r], "code", code), (double)row->n[i]);
        }
        if (row->other)
            gvd_obs_sample(t, name, GVD_OBS_LABELS("route", gvd_obs.route[r], "code", "other"), (double)row->other);
    }
    gvd_obs_single(t, "galvanid_http_connections", "gauge", "Open TCP connections, streams included.",
                   (double)live->conns_open);
    gvd_obs_single(t, "galvanid_http_connections_max", "gauge", "The connection limit (--max-connections).",
                   (double)live->conns_max);
    gvd_obs_single(t, "galvanid_http_connections_refused_total", "counter",
                   "Connections refused because the limit was reached.", (double)live->conns_refused);
}

int gvd_obs_render(gvd_obs_text *out, const gvd_obs_live *live)
{
    char version[32];
    snprintf(version, sizeof version, "%d.%d.%d", GV_VERSION_MAJOR, GV_VERSION_MINOR, GV_VERSION_PATCH);
    gvd_obs_family(out, "galvanid_build_info", "gauge",
                   "Always 1; the labels say which galvanid this is and which libuv and SQLite it runs on.");
    gvd_obs_sample(out, "galvanid_build_info",
                   GVD_OBS_LABELS("version", version, "libuv", uv_version_string(), "sqlite", sqlite3_libversion()),
                   1);
    gvd_obs_process(out);
    gvd_obs_jobs(out, live);
    gvd_obs_processes(out);
    gvd_obs_streams(out, live);
    gvd_obs_store(out, live);
    gvd_obs_http(out, live);
    return out->oom ? -1 : 0;
}
