/* bench_ticker — a job for the load runs: prints `::status t=<unix ms>` every
 * INTERVAL ms, COUNT times, then exits 0 (its final state).
 *
 * Why a C program and not `while ...; do echo "::status t=$(date +%s%3N)"`:
 * 100 such jobs at 10 changes/s would fork `date` and `sleep` 2,000 times a
 * second, and the forks would land on the server's core (jobs inherit
 * galvanid's CPU affinity).  This prints from one process with write(2) on
 * an absolute clock, so the pace does not drift, and it can move itself to
 * another core (CPU argument) to leave the measured core to the server.
 *
 * usage: bench_ticker INTERVAL_MS COUNT [CPU]
 * The stamp is taken just before the write: the latency wsload reports is
 * job print -> server -> client. */
#define _GNU_SOURCE /* sched_setaffinity */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long tick_arg(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fputs("usage: bench_ticker INTERVAL_MS COUNT [CPU]\n", stderr);
        return 2;
    }
    long interval = tick_arg(argv[1], 1, 3600000), count = tick_arg(argv[2], 1, 1000000000);
    if (interval < 0 || count < 0) {
        fputs("bench_ticker: INTERVAL_MS and COUNT are positive integers\n", stderr);
        return 2;
    }
    if (argc == 4) {
        long cpu = tick_arg(argv[3], 0, CPU_SETSIZE - 1);
        cpu_set_t set;
        CPU_ZERO(&set);
        if (cpu >= 0)
            CPU_SET((int)cpu, &set);
        /* Best effort: a machine without that CPU still gets its ticks. */
        if (cpu < 0 || sched_setaffinity(0, sizeof set, &set) != 0)
            fprintf(stderr, "bench_ticker: cannot move to CPU %s: %s\n", argv[3], strerror(errno));
    }
    struct timespec next;
    if (clock_gettime(CLOCK_MONOTONIC, &next) != 0)
        return 1;
    for (long i = 0; i < count; i++) {
        struct timespec now;
        if (clock_gettime(CLOCK_REALTIME, &now) != 0)
            return 1;
        char line[64];
        int n = snprintf(line, sizeof line, "::status t=%lld\n",
                         (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
        if (write(1, line, (size_t)n) != n)
            return 1; /* galvanid is gone: nobody to tell */
        next.tv_nsec += interval * 1000000L;
        next.tv_sec += next.tv_nsec / 1000000000L;
        next.tv_nsec %= 1000000000L;
        int rc;
        while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL)) == EINTR)
            ;
        if (rc != 0)
            return 1;
    }
    return 0;
}
