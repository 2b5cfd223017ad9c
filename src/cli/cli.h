/* galvani CLI: what the command files share.
 *
 *   main.c    options shared by every command, the command table
 *   util.c    requests (gvc_fetch), argument readers
 *   format.c  jobs as text: status colours, lines, the verdict, fitting a width
 *   run.c     run, rerun, and following a job's output (run --follow, logs -f)
 *   jobs.c    ls, show, pause/resume/cancel, start, set, rm, logs, watch
 *   nodes.c   nodes (GET /nodes), and whether ls shows a NODE column
 *   params.c, rules.c, pipeline.c, watch.c, term.c: one concern each */
#ifndef GALVANI_CLI_CLI_H
#define GALVANI_CLI_CLI_H

#include "http.h"
#include "report.h"

#include <jansson.h>
#include <stddef.h>

/* The daemon sends at most 15 significant digits; printing doubles with
 * jansson's default 17 would turn the user's 0.1 into 0.10000000000000001. */
#define GVC_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* Options shared by every command. */
typedef struct gvc_ctx {
    const char *server;
    const char *token;  /* --token / GALVANI_TOKEN, or NULL */
    const char *cmd;    /* the command's name, as typed */
    int json;
    int tty;        /* stdout is a terminal: live views redraw in place */
    int color;      /* tty and NO_COLOR is unset */
    gvc_http http;
} gvc_ctx;

/* ---- util.c: requests ---------------------------------------------------- */

/* gvc_fetch flags. */
enum {
    GVC_RAW = 1,      /* under --json, print the body as it came (one document a line) */
    GVC_DOC = 2,      /* parse the body even under --json (the caller needs a field of it) */
    GVC_QUIET_DOWN = 4 /* no answer, or a 503, returns GVC_DOWN without a word (the caller retries) */
};
#define GVC_DOWN 3

/* Send one request and report failures the way every command does (flags:
 * GVC_QUIET_DOWN or 0).  Returns 0 with *out filled (2xx; the caller frees
 * it), 1 after printing the reason, or GVC_DOWN.  For bodies that are not
 * JSON (the log); everything else goes through gvc_fetch. */
int gvc_call(gvc_ctx *ctx, const char *method, const char *path, const char *body, int flags, gvc_buf *out);

/* The one way a command calls the API: send, report a failure, then print
 * the body raw (GVC_RAW under --json) and/or parse it.  Returns 0 with *doc
 * the parsed body (a new reference; NULL when it was printed raw and not
 * GVC_DOC, or when the answer had no body), 1 after printing why not, or
 * GVC_DOWN (see GVC_QUIET_DOWN).  `doc` may be NULL when no one reads it. */
int gvc_fetch(gvc_ctx *ctx, const char *method, const char *path, const char *body, int flags, json_t **doc);
/* Print a 2xx body as it came (--json).  The daemon ends bodies with a
 * newline; add one if it did not, so several answers stay one per line. */
void gvc_print_raw(const gvc_buf *b);
/* Print a document compactly on one line (--json output the CLI builds). */
int gvc_print_doc(const json_t *doc);

/* ---- util.c: arguments --------------------------------------------------- */

/* A job-id argument of `cmd`: 0, or the usage error's exit status (2). */
int gvc_id_arg(const char *cmd, const char *arg, long long *id);
/* Every argument a job id (at least one): 0 with *ids (caller frees), or 1
 * (out of memory) / 2 (usage) after printing why. */
int gvc_id_args(const char *cmd, int argc, char **argv, long long **ids);
/* Exactly one job-id argument (show, logs, params): 0, or the usage error's 2. */
int gvc_single_id(const char *cmd, int argc, char **argv, long long *id);
/* One job ID and one optional flag (`flag` or its `alias`, may be NULL) in
 * any order: 0 with *id and *set (1 if the flag was given), or the usage
 * error's exit status (any other option, no ID, more than one). */
int gvc_id_and_flag(const char *cmd, int argc, char **argv, const char *flag, const char *alias, int *set,
                    long long *id);
/* Take `name VALUE` or `name=VALUE` at argv[*i] into *out.  Returns 1 if
 * taken, 0 if argv[*i] is another option, 2 for a missing value (printed). */
int gvc_take_value(const char *cmd, int argc, char **argv, int *i, const char *name, const char *what,
                   const char **out);
/* "k=v" → key k, value v as JSON if it parses (numbers, true, null, arrays,
 * objects, "quoted"), else the string v (`typed` 0: always the string).
 * Adds it to obj: 0, or -1 (no '=' or an empty key, or out of memory). */
int gvc_add_kv(json_t *obj, const char *kv, int typed);
/* A whole decimal integer in [lo, hi]: 0, or -1. */
int gvc_parse_int(const char *s, long long lo, long long hi, long long *out);
/* A finite decimal number in [lo, hi]: 0, or -1. */
int gvc_parse_num(const char *s, double lo, double hi, double *out);

/* The string member `key` of an object, or `dflt`. */
const char *gvc_str(const json_t *job, const char *key, const char *dflt);
double gvc_num(const json_t *job, const char *key);
long long gvc_int(const json_t *job, const char *key);

/* ---- format.c ------------------------------------------------------------ */

/* ANSI colour of a status, or "" (plain, or NO_COLOR). */
const char *gvc_status_color(const char *status);
/* Print `status` padded to `width`; coloured only when ctx->color. */
void gvc_print_status(const gvc_ctx *ctx, const char *status, int width);
/* succeeded, failed or cancelled. */
int gvc_job_finished(const json_t *job);
/* The one-line verdict on a finished job, e.g.
 *   job 13 nonexistent: failed (no such command: nonexistent (not found in PATH)) after 0.0s
 *   job 5 make: succeeded (exit 0) after 12.4s */
void gvc_verdict(const json_t *job, char *out, size_t n);
/* The exit status of `galvani run --follow` / `watch ID` for a finished job
 * (docs in help.c): 0 succeeded; the job's exit code; 128+signal; 130
 * cancelled; 125 failed without an exit status (it never ran). */
int gvc_job_exit_status(const json_t *job);
/* Seconds as "0.4s", "3m07s", "2h05m" (negative: 0). */
void gvc_duration(double s, char *out, size_t n);
/* Copy `text` into out (n bytes) as at most `width` columns: control
 * characters become '?' (a job's name or message must not move the cursor),
 * a longer text is cut with "…", and with `pad` the rest is spaces.  One
 * column per UTF-8 character (wide East Asian characters count as one). */
void gvc_fit(char *out, size_t n, const char *text, int width, int pad);

/* ---- commands ------------------------------------------------------------ */

/* A command: (ctx, its arguments after the name, with the shared options
 * taken out) → the exit status. */
typedef int (*gvc_cmd_fn)(gvc_ctx *ctx, int argc, char **argv);

int gvc_cmd_run(gvc_ctx *ctx, int argc, char **argv);     /* run.c */
int gvc_cmd_rerun(gvc_ctx *ctx, int argc, char **argv);   /* run.c */
int gvc_cmd_logs(gvc_ctx *ctx, int argc, char **argv);    /* run.c */
int gvc_cmd_ls(gvc_ctx *ctx, int argc, char **argv);      /* jobs.c */
int gvc_cmd_show(gvc_ctx *ctx, int argc, char **argv);
int gvc_cmd_transition(gvc_ctx *ctx, int argc, char **argv); /* pause, resume, cancel: ctx->cmd */
int gvc_cmd_start(gvc_ctx *ctx, int argc, char **argv);
int gvc_cmd_set(gvc_ctx *ctx, int argc, char **argv);
int gvc_cmd_rm(gvc_ctx *ctx, int argc, char **argv);
int gvc_cmd_watch(gvc_ctx *ctx, int argc, char **argv);
int gvc_cmd_params(gvc_ctx *ctx, int argc, char **argv);  /* params.c */
int gvc_cmd_rules(gvc_ctx *ctx, int argc, char **argv);   /* rules.c */
int gvc_cmd_pipeline(gvc_ctx *ctx, int argc, char **argv); /* pipeline.c: run|ls|show|pause|resume|cancel|retry|rm */
int gvc_cmd_nodes(gvc_ctx *ctx, int argc, char **argv);   /* nodes.c */

/* nodes.c, for ls: how many nodes GET /nodes lists (1 on one galvanid), or
 * -1 when it could not tell (an older galvanid without /nodes); asked
 * quietly: a failure prints nothing. */
int gvc_node_count(gvc_ctx *ctx);

/* run.c, for every command that creates jobs (run, pipeline run): the
 * caller's environment as a JSON object, into `env` (0, or 1 after printing
 * why; the CLI's credentials and galvani's per-job variables left out), and
 * the directory a job runs in: `dir` (relative to ours), else ours (a new
 * string, or NULL after printing why). */
int gvc_caller_env(json_t *env);
char *gvc_job_cwd(const char *dir);
/* rules.c: the job's firings under galvani show. */
int gvc_print_job_events(gvc_ctx *ctx, long long id);

#endif
