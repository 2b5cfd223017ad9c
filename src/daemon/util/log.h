/*
 * log.h — galvanid's structured log lines.
 *
 * One line per event on stderr, logfmt style, so that both people and tools
 * read them:
 *
 *   2026-11-25T17:02:03.123Z info job.status job=3 name=build from=queued to=running
 *
 * Fields are given as a printf-style tail; values that may contain spaces or
 * quotes go through gvd_log_quote().  Below the configured level nothing is
 * formatted.
 */
#ifndef GALVANI_DAEMON_LOG_H
#define GALVANI_DAEMON_LOG_H

#include <stddef.h>

typedef enum gvd_log_level { GVD_LOG_DEBUG = 0, GVD_LOG_INFO, GVD_LOG_WARN, GVD_LOG_ERROR } gvd_log_level;

void gvd_log_set_level(gvd_log_level level);
/* "debug" | "info" | "warn" | "error"; 0, or -1 if unknown. */
int gvd_log_parse_level(const char *name, gvd_log_level *out);
int gvd_log_enabled(gvd_log_level level);

/* gvd_log(GVD_LOG_INFO, "job.status", "job=%lld to=%s", ...) */
void gvd_log(gvd_log_level level, const char *event, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Quote `s` for a logfmt value into buf ("a b" -> "\"a b\"", plain words
 * unchanged, control characters escaped, truncated to fit).  Returns buf. */
const char *gvd_log_quote(const char *s, char *buf, size_t size);

#endif
