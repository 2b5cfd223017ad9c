/* galvani CLI: errors as text or JSON (see report.h). */
#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* A process-wide switch rather than a parameter: errors are printed from
 * the HTTP layer and from argument parsing, long before or far below the
 * command that knows about --json, and main sets it once. */
static int gvc_json_errors;

void gvc_report_json(int on)
{
    gvc_json_errors = on;
}

int gvc_report_is_json(void)
{
    return gvc_json_errors;
}

static void gvc_verror(const char *code, const char *fmt, va_list ap)
{
    if (!gvc_json_errors) {
        fputs("galvani: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        return;
    }
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    json_t *doc = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    /* Without memory for JSON, the message still gets out as text. */
    fprintf(stderr, text ? "%s\n" : "galvani: %s\n", text ? text : msg);
    free(text);
    json_decref(doc);
}

void gvc_error(const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gvc_verror(code, fmt, ap);
    va_end(ap);
}

int gvc_error_from_daemon(json_t *err, long status)
{
    const char *msg = json_string_value(json_object_get(err, "message"));
    if (!msg)
        return -1;
    if (!gvc_json_errors) {
        fprintf(stderr, "galvani: %s\n", msg);
        return 0;
    }
    json_t *copy = json_deep_copy(err);
    json_t *doc = copy ? json_pack("{s:o}", "error", copy) : NULL;
    char *text = NULL;
    if (doc && json_object_set_new(json_object_get(doc, "error"), "status", json_integer(status)) == 0)
        text = json_dumps(doc, JSON_COMPACT);
    if (text)
        fprintf(stderr, "%s\n", text);
    else
        fprintf(stderr, "galvani: %s\n", msg);
    free(text);
    json_decref(doc);
    return 0;
}

int gvc_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gvc_verror("usage", fmt, ap);
    va_end(ap);
    if (!gvc_json_errors)
        fprintf(stderr, "(see: galvani %s%s--help)\n", cmd ? cmd : "", cmd ? " " : "");
    return 2;
}

int gvc_oom(void)
{
    gvc_error("out_of_memory", "out of memory");
    return 1;
}
