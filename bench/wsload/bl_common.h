/* bl_common.h — what the load generators (wsload, jobload) share: clocks, a
 * latency histogram, the loopback-only target check, the open-file limit and
 * the server's CPU and RSS read from /proc.
 *
 * Prefix bl_ ("bench load").  Nothing here allocates after bl_hist_init. */
#ifndef BL_COMMON_H
#define BL_COMMON_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Wall-clock microseconds (CLOCK_REALTIME): comparable with the unix-ms
 * stamps a job prints, which is the whole point of the change->client
 * latency.  Same machine, same clock: no skew to correct. */
int64_t bl_now_us(void);
/* Monotonic microseconds, for durations that must not jump. */
int64_t bl_mono_us(void);

/* A latency histogram with 100 us buckets up to 60 s (and one overflow
 * bucket): fixed resolution is what p99.9 of millisecond stamps needs, and
 * 2.4 MB once per process is nothing. */
typedef struct {
    uint32_t *bucket;
    uint64_t n;
    int64_t max_us;
} bl_hist;

int bl_hist_init(bl_hist *h);
void bl_hist_free(bl_hist *h);
void bl_hist_add(bl_hist *h, int64_t us);
/* n samples of the same value (a frame carrying n job updates). */
void bl_hist_add_n(bl_hist *h, int64_t us, uint32_t n);
/* q in [0,1]; milliseconds; -1 when empty (printed as null in JSON). */
double bl_hist_pct_ms(const bl_hist *h, double q);

/* Parses "HOST:PORT" or a URL's authority and fills `out`.  HOST must be an
 * IPv4 literal in 127.0.0.0/8 or "localhost": a load generator must never
 * be pointed at another machine (the workplace forbids it, and so do we).
 * Returns 0, or -1 with a message in err. */
int bl_loopback_addr(const char *host, int port, struct sockaddr_in *out, char *err, size_t errlen);

/* Splits "ws://HOST:PORT/PATH" or "http://HOST:PORT/PATH" into its parts
 * (host and path copied into the given buffers) and checks HOST with
 * bl_loopback_addr.  Returns 0 or -1 with err. */
int bl_parse_url(const char *url, const char *scheme, struct sockaddr_in *addr, char *host, size_t hostlen,
                 char *path, size_t pathlen, char *err, size_t errlen);

/* Raises the soft RLIMIT_NOFILE to `need` (capped by the hard limit).
 * Returns the soft limit now in force, or -1. */
long bl_raise_nofile(long need);

/* utime+stime of PID in clock ticks, -1 if it cannot be read. */
long long bl_proc_cpu_ticks(pid_t pid);
/* VmRSS of PID in KiB, -1 if it cannot be read. */
long bl_proc_rss_kb(pid_t pid);
/* Our own CPU time (user+system) in microseconds. */
int64_t bl_self_cpu_us(void);

/* A blocking GET of path (Connection: close): the body of a 200 answer
 * (malloc'd, NUL-terminated; the caller frees it), or NULL. */
char *bl_http_get(const struct sockaddr_in *addr, const char *host, const char *path);
/* The value of the unlabelled sample `name` in a Prometheus text page, or
 * -1 if it is not there. */
double bl_metric(const char *page, const char *name);
/* The line after `line` in a text, NULL after the last one (for walking a
 * /metrics page line by line). */
const char *bl_next_line(const char *line);

/* Writes a double as JSON: null for negative "unknown" markers (<-0.5),
 * else with the given number of decimals. */
void bl_json_num(FILE *f, double v, int decimals);
/* Writes ,"key":{"p50":P50,"p99":P99} (each as bl_json_num). */
void bl_json_p50_p99(FILE *f, const char *key, double p50, double p99, int decimals);

#endif
