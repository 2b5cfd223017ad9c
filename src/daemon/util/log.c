/*
 * log.c — see log.h.  Lines are built in a stack buffer and written with one
 * fputs so that lines from one process never interleave mid-line.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static gvd_log_level gvd_min_level = GVD_LOG_INFO;
static const char *const gvd_level_names[] = {"debug", "info", "warn", "error"};

void gvd_log_set_level(gvd_log_level level)
{
    gvd_min_level = level;
}

int gvd_log_parse_level(const char *name, gvd_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, gvd_level_names[i]) == 0) {
            *out = (gvd_log_level)i;
            return 0;
        }
    }
    return -1;
}

int gvd_log_enabled(gvd_log_level level)
{
    return level >= gvd_min_level;
}

void gvd_log(gvd_log_level level, const char *event, const char *fmt, ...)
{
    if (level < gvd_min_level)
        return;
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000),
                     gvd_level_names[level], event);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (fmt && *fmt && len + 2 < sizeof line) {
        line[len++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + len, sizeof line - len, fmt, ap);
        va_end(ap);
        if (m > 0)
            len += (size_t)m < sizeof line - len ? (size_t)m : sizeof line - len - 1;
    }
    if (len + 1 >= sizeof line)
        len = sizeof line - 2;
    line[len++] = '\n';
    line[len] = '\0';
    fputs(line, stderr);
}

const char *gvd_log_quote(const char *s, char *buf, size_t size)
{
    if (size == 0)
        return "";
    if (!s)
        s = "";
    int plain = *s != '\0';
    for (const char *p = s; *p; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20)
            plain = 0;
    size_t o = 0;
    if (plain) {
        snprintf(buf, size, "%s", s);
        return buf;
    }
    if (o + 1 < size)
        buf[o++] = '"';
    for (const char *p = s; *p && o + 4 < size; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)ch;
        } else if (ch == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if (ch < 0x20) {
            buf[o++] = ' ';
        } else {
            buf[o++] = (char)ch;
        }
    }
    if (o + 1 < size)
        buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}
