/* galvani CLI: jobs as text (see cli.h, "format.c"). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *gvc_status_color(const char *status)
{
    /* https://no-color.org: a set NO_COLOR turns colours off. */
    if (!status || getenv("NO_COLOR"))
        return "";
    if (!strcmp(status, "running")) return "\033[34m";
    if (!strcmp(status, "paused")) return "\033[33m";
    if (!strcmp(status, "succeeded")) return "\033[32m";
    if (!strcmp(status, "failed")) return "\033[31m";
    if (!strcmp(status, "cancelled")) return "\033[35m";
    return "";
}

void gvc_print_status(const gvc_ctx *ctx, const char *status, int width)
{
    /* The padding is computed on the plain text so columns line up either
     * way. */
    const char *col = ctx->color ? gvc_status_color(status) : "";
    if (*col)
        printf("%s%-*s\033[0m", col, width, status);
    else
        printf("%-*s", width, status);
}

int gvc_job_finished(const json_t *job)
{
    const char *s = gvc_str(job, "status", "");
    return !strcmp(s, "succeeded") || !strcmp(s, "failed") || !strcmp(s, "cancelled");
}

/* Days since 1970-01-01 of a proleptic Gregorian date (timegm is not
 * POSIX; this is the usual civil-from-days inverse). */
static long long gvc_days(long long y, long long m, long long d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The daemon's "2026-12-07T19:19:47.235Z" as seconds since the epoch; -1
 * if it is not one (null: not yet). */
static double gvc_time(const json_t *job, const char *key)
{
    const char *s = json_string_value(json_object_get(job, key));
    int y, mo, d, h, mi;
    double sec;
    if (!s || sscanf(s, "%d-%d-%dT%d:%d:%lfZ", &y, &mo, &d, &h, &mi, &sec) != 6)
        return -1;
    return (double)gvc_days(y, mo, d) * 86400.0 + h * 3600.0 + mi * 60.0 + sec;
}

void gvc_duration(double s, char *out, size_t n)
{
    if (s < 0)
        s = 0;
    if (s < 60)
        snprintf(out, n, "%.1fs", s);
    else if (s < 3600)
        snprintf(out, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(out, n, "%dh%02dm", (int)(s / 3600), (int)s / 60 % 60);
}

void gvc_verdict(const json_t *job, char *out, size_t n)
{
    char detail[600] = "", took[32] = "";
    const char *error = gvc_str(job, "error", "");
    json_t *code = json_object_get(job, "exit_code"), *sig = json_object_get(job, "signal");
    /* The daemon's error says it best ("exited with status 3", "timed out
     * after 5 s", "no such command: ..."); else the raw exit status. */
    if (*error)
        snprintf(detail, sizeof detail, " (%s)", error);
    else if (json_is_integer(sig))
        snprintf(detail, sizeof detail, " (signal %lld)", (long long)json_integer_value(sig));
    else if (json_is_integer(code))
        snprintf(detail, sizeof detail, " (exit %lld)", (long long)json_integer_value(code));
    double end = gvc_time(job, "finished_at"), start = gvc_time(job, "started_at");
    if (start < 0)
        start = gvc_time(job, "created_at"); /* cancelled before it started */
    if (end >= 0 && start >= 0) {
        char d[24];
        gvc_duration(end - start, d, sizeof d);
        snprintf(took, sizeof took, " after %s", d);
    }
    char name[256];
    gvc_fit(name, sizeof name, gvc_str(job, "name", ""), 200, 0);
    snprintf(out, n, "job %lld %s: %s%s%s", gvc_int(job, "id"), name, gvc_str(job, "status", "?"), detail, took);
}

int gvc_job_exit_status(const json_t *job)
{
    const char *st = gvc_str(job, "status", "");
    json_t *code = json_object_get(job, "exit_code"), *sig = json_object_get(job, "signal");
    if (!strcmp(st, "succeeded"))
        return 0;
    if (!strcmp(st, "cancelled"))
        return 130;
    if (json_is_integer(code) && json_integer_value(code) > 0 && json_integer_value(code) < 256)
        return (int)json_integer_value(code);
    if (json_is_integer(sig) && json_integer_value(sig) > 0 && json_integer_value(sig) < 128)
        return 128 + (int)json_integer_value(sig);
    return 125;
}

void gvc_fit(char *out, size_t n, const char *text, int width, int pad)
{
    static const char ellipsis[] = "\xe2\x80\xa6"; /* … */
    size_t o = 0;
    int cols = 0;
    if (n == 0)
        return;
    /* How many characters fit: all of them, or width-1 and the ellipsis. */
    int total = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        total += (*p & 0xC0) != 0x80;
    int keep = total <= width ? total : width - 1;
    const unsigned char *p = (const unsigned char *)text;
    while (*p && cols < keep) {
        /* one character: its lead byte and continuation bytes */
        size_t len = 1;
        while (p[len] && (p[len] & 0xC0) == 0x80)
            len++;
        if (o + len + 1 > n)
            break;
        /* C0 controls, DEL, and the C1 controls U+0080..U+009F (which
         * some terminals take as escape sequences too) */
        if ((len == 1 && (*p < 0x20 || *p == 0x7f)) || (len == 2 && p[0] == 0xC2 && p[1] < 0xA0))
            out[o++] = '?';
        else
            memcpy(out + o, p, len), o += len;
        p += len;
        cols++;
    }
    if (total > width && width > 0 && o + sizeof ellipsis <= n) {
        memcpy(out + o, ellipsis, sizeof ellipsis - 1);
        o += sizeof ellipsis - 1;
        cols++;
    }
    while (pad && cols < width && o + 2 <= n) {
        out[o++] = ' ';
        cols++;
    }
    out[o] = '\0';
}
