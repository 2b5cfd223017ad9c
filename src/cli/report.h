/* galvani CLI: how errors reach the user.
 *
 * Every error the CLI prints goes through here, so that --json changes all
 * of them at once: text ("galvani: no job 42") for people, or the daemon's
 * own error shape ({"error":{"code":"not_found","message":"no job 42"}}) on
 * stderr for scripts, whether the daemon or the CLI found the problem. */
#ifndef GALVANI_CLI_REPORT_H
#define GALVANI_CLI_REPORT_H

#include <jansson.h>

/* Print errors as JSON from now on (--json). */
void gvc_report_json(int on);
int gvc_report_is_json(void);

/* One error: "galvani: MESSAGE" or {"error":{"code":CODE,"message":...}}.
 * CODE names the kind for programs: the daemon's codes, and the CLI's own
 * (usage, unreachable, connection_failed, invalid_response, out_of_memory,
 * not_found, stream_ended). */
void gvc_error(const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* An error object the daemon sent ({"code":..,"message":..,...}), printed
 * as it came under --json (with "status": the HTTP status added), else its
 * message.  0, or -1 if `err` has no message (the caller says something
 * else). */
int gvc_error_from_daemon(json_t *err, long status);

/* A usage error of `cmd` (NULL: galvani itself), then a pointer to its
 * --help; returns 2, the usage exit status, so callers can return it. */
int gvc_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* "galvani: out of memory"; returns 1. */
int gvc_oom(void);

#endif
