/* galvani CLI: what the command files share (main.c defines these; the
 * params command lives in params.c). */
#ifndef GALVANI_CLI_CLI_H
#define GALVANI_CLI_CLI_H

#include "http.h"

#include <jansson.h>

/* The daemon sends at most 15 significant digits; printing doubles with
 * jansson's default 17 would turn the user's 0.1 into 0.10000000000000001. */
#define GVC_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* Options shared by every command. */
typedef struct gvc_ctx {
    const char *server;
    const char *token;  /* --token / GALVANI_TOKEN, or NULL */
    int json;
    int tty;        /* stdout is a terminal: live views redraw in place */
    int color;      /* tty and NO_COLOR is unset */
    gvc_http http;
} gvc_ctx;

/* Printed after a usage error, which exits 2 before anything is sent. */
int gvc_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Send one request and report failures the way every command does.
 * Returns 0 with *out filled (2xx; the caller frees it), or 1 after printing
 * the reason. */
int gvc_call(gvc_ctx *ctx, const char *method, const char *path, const char *body, gvc_buf *out);
/* Print a 2xx body as it came (--json).  The daemon ends bodies with a
 * newline; add one if it did not, so several answers stay one per line. */
void gvc_print_raw(const gvc_buf *b);
/* Parse a 2xx JSON body; prints an error and returns NULL if it is not JSON. */
json_t *gvc_parse(const gvc_buf *b);
/* Exactly one job-id argument (show, logs, params): 0, or the usage error's 2. */
int gvc_single_id(const char *cmd, int argc, char **argv, long long *id);
/* One job ID and one optional flag (`flag` or its `alias`, may be NULL) in
 * any order: 0 with *id and *set (1 if the flag was given), or the usage
 * error's exit status (any other option, no ID, more than one). */
int gvc_id_and_flag(const char *cmd, int argc, char **argv, const char *flag, const char *alias, int *set,
                    long long *id);
/* The string member `key` of an object, or `dflt`. */
const char *gvc_str(const json_t *job, const char *key, const char *dflt);

/* params.c: galvani params [--history] ID. */
int gvc_cmd_params(gvc_ctx *ctx, int argc, char **argv);
/* rules.c: galvani rules ...; the job's firings under galvani show. */
int gvc_cmd_rules(gvc_ctx *ctx, int argc, char **argv);
/* pipeline.c: galvani pipeline run|ls|show|pause|resume|cancel|retry|rm. */
int gvc_cmd_pipeline(gvc_ctx *ctx, int argc, char **argv);
int gvc_print_job_events(gvc_ctx *ctx, long long id);

#endif
