/* bl_common.c — see bl_common.h. */
#include "bl_common.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BL_HIST_STEP_US 100
#define BL_HIST_BUCKETS (60 * 1000 * 1000 / BL_HIST_STEP_US)

static int64_t bl_clock_us(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0)
        return 0; /* cannot happen for these two clocks on Linux */
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t bl_now_us(void) { return bl_clock_us(CLOCK_REALTIME); }
int64_t bl_mono_us(void) { return bl_clock_us(CLOCK_MONOTONIC); }

int bl_hist_init(bl_hist *h)
{
    h->n = 0;
    h->max_us = 0;
    /* +1: the overflow bucket. */
    h->bucket = calloc((size_t)BL_HIST_BUCKETS + 1, sizeof *h->bucket);
    return h->bucket ? 0 : -1;
}

void bl_hist_free(bl_hist *h)
{
    free(h->bucket);
    h->bucket = NULL;
}

void bl_hist_add(bl_hist *h, int64_t us) { bl_hist_add_n(h, us, 1); }

void bl_hist_add_n(bl_hist *h, int64_t us, uint32_t n)
{
    /* A stamp has millisecond resolution, so a fresh update can look up to
     * 1 ms "early": clamp instead of dropping it. */
    if (us < 0)
        us = 0;
    int64_t i = us / BL_HIST_STEP_US;
    if (i > BL_HIST_BUCKETS)
        i = BL_HIST_BUCKETS;
    h->bucket[i] += n;
    h->n += n;
    if (us > h->max_us)
        h->max_us = us;
}

double bl_hist_pct_ms(const bl_hist *h, double q)
{
    if (h->n == 0)
        return -1;
    /* The rank of the q-quantile, 1-based: the smallest value with at least
     * q*n samples at or below it. */
    uint64_t rank = (uint64_t)(q * (double)h->n);
    if (rank < 1)
        rank = 1;
    if (rank > h->n)
        rank = h->n;
    uint64_t seen = 0;
    for (int64_t i = 0; i <= BL_HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            if (i == BL_HIST_BUCKETS)
                return (double)h->max_us / 1000.0;
            /* The bucket's upper edge: a percentile is never understated. */
            return (double)((i + 1) * BL_HIST_STEP_US) / 1000.0;
        }
    }
    return (double)h->max_us / 1000.0;
}

int bl_loopback_addr(const char *host, int port, struct sockaddr_in *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    if (port <= 0 || port > 65535) {
        snprintf(err, errlen, "bad port %d", port);
        return -1;
    }
    out->sin_port = htons((uint16_t)port);
    const char *lit = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    if (inet_pton(AF_INET, lit, &out->sin_addr) != 1) {
        snprintf(err, errlen, "'%s' is not an IPv4 address in 127.0.0.0/8 (names other than localhost are refused)",
                 host);
        return -1;
    }
    if ((ntohl(out->sin_addr.s_addr) >> 24) != 127) {
        snprintf(err, errlen, "refusing %s: only targets in 127.0.0.0/8 (this machine) may be loaded", host);
        return -1;
    }
    return 0;
}

int bl_parse_url(const char *url, const char *scheme, struct sockaddr_in *addr, char *host, size_t hostlen,
                 char *path, size_t pathlen, char *err, size_t errlen)
{
    size_t sl = strlen(scheme);
    if (strncmp(url, scheme, sl) != 0 || strncmp(url + sl, "://", 3) != 0) {
        snprintf(err, errlen, "'%s' does not start with %s://", url, scheme);
        return -1;
    }
    const char *auth = url + sl + 3;
    const char *slash = strchr(auth, '/');
    const char *colon = memchr(auth, ':', slash ? (size_t)(slash - auth) : strlen(auth));
    if (!colon) {
        snprintf(err, errlen, "'%s' has no :PORT", url);
        return -1;
    }
    size_t hl = (size_t)(colon - auth);
    if (hl == 0 || hl >= hostlen) {
        snprintf(err, errlen, "bad host in '%s'", url);
        return -1;
    }
    memcpy(host, auth, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || (slash ? end != slash : *end != '\0')) {
        snprintf(err, errlen, "bad port in '%s'", url);
        return -1;
    }
    const char *p = slash ? slash : "/";
    if (strlen(p) >= pathlen) {
        snprintf(err, errlen, "path too long in '%s'", url);
        return -1;
    }
    strcpy(path, p);
    return bl_loopback_addr(host, (int)port, addr, err, errlen);
}

long bl_raise_nofile(long need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < need) {
        rlim_t want = (rlim_t)need;
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
            want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return -1;
    }
    return rl.rlim_cur == RLIM_INFINITY ? need : (long)rl.rlim_cur;
}

/* /proc/PID/stat: "pid (comm) state ppid ..." with utime and stime the 14th
 * and 15th fields.  comm may hold spaces and parentheses, so count from the
 * last ')'. */
long long bl_proc_cpu_ticks(pid_t pid)
{
    char fn[64], buf[1024];
    snprintf(fn, sizeof fn, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(fn, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p++;
    /* After ')': field 3 (state) is the first; utime is field 14. */
    for (int field = 3; field < 14; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return -1;
    }
    long long ut, st;
    if (sscanf(p, " %lld %lld", &ut, &st) != 2)
        return -1;
    return ut + st;
}

long bl_proc_rss_kb(pid_t pid)
{
    char fn[64], line[256];
    snprintf(fn, sizeof fn, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(fn, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            if (sscanf(line + 6, "%ld", &kb) != 1)
                kb = -1;
            break;
        }
    }
    fclose(f);
    return kb;
}

int64_t bl_self_cpu_us(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

void bl_json_num(FILE *f, double v, int decimals)
{
    if (v < -0.5)
        fputs("null", f);
    else
        fprintf(f, "%.*f", decimals, v);
}

char *bl_http_get(const struct sockaddr_in *addr, const char *host, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host);
    char *out = NULL;
    size_t len = 0, cap = 0;
    if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) == 0 && n > 0 && write(fd, req, (size_t)n) == n) {
        for (;;) {
            if (len + 4096 + 1 > cap) {
                cap = cap ? cap * 2 : 16384;
                char *nb = realloc(out, cap);
                if (!nb)
                    break;
                out = nb;
            }
            ssize_t k = read(fd, out + len, cap - len - 1);
            if (k <= 0)
                break;
            len += (size_t)k;
        }
    }
    close(fd);
    if (!out)
        return NULL;
    out[len] = '\0';
    char *body = strstr(out, "\r\n\r\n");
    if (strncmp(out, "HTTP/1.1 200", 12) != 0 || !body) {
        free(out);
        return NULL;
    }
    memmove(out, body + 4, strlen(body + 4) + 1);
    return out; /* galvanid answers these with Content-Length, never chunked */
}

double bl_metric(const char *page, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = page; line && *line; line = bl_next_line(line))
        if (strncmp(line, name, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
    return -1;
}

const char *bl_next_line(const char *line)
{
    const char *nl = strchr(line, '\n');
    return nl ? nl + 1 : NULL;
}

void bl_json_p50_p99(FILE *f, const char *key, double p50, double p99, int decimals)
{
    fprintf(f, ",\"%s\":{\"p50\":", key);
    bl_json_num(f, p50, decimals);
    fputs(",\"p99\":", f);
    bl_json_num(f, p99, decimals);
    fputc('}', f);
}
