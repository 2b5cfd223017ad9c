/*
 * flags.c — the values of galvanid's command-line flags (flags.h).
 */
#include "flags.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gvd_flag_listen(const char *s, char *host, size_t hostlen, int *port)
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

int gvd_flag_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *s == '\0' || *s == '-' || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

/* A positive number of seconds (fractions allowed) up to max, in ms. */
int gvd_flag_secs(const char *s, double max, unsigned *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *s == '\0' || *end != '\0' || !(v >= 0.001) || v > max)
        return -1;
    *ms = (unsigned)(v * 1000 + 0.5);
    return 0;
}

/* The value of --token TOKEN is copied, then overwritten in argv so that
 * ps and /proc/PID/cmdline show "xxxx" from now on. */
void gvd_flag_hide(char *arg)
{
    memset(arg, 'x', strlen(arg));
}

/* "3600", "90s", "90m", "12h", "7d": a positive age in seconds. */
int gvd_flag_age(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    double unit = 1;
    if (*end == 'm')
        unit = 60;
    else if (*end == 'h')
        unit = 3600;
    else if (*end == 'd')
        unit = 86400;
    if (*end && *end != 's' && unit == 1)
        return -1;
    if (errno || end == s || (*end && end[1] != '\0') || !(v > 0) || v * unit > 3650.0 * 86400)
        return -1;
    *out = v * unit;
    return 0;
}

