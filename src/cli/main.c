/* galvani — the command-line client of galvanid.
 *
 * Each command is one (or, for several ids, a few) HTTP requests through
 * http.c; this file parses arguments and turns JSON answers into lines for
 * people.  With --json the server's JSON is printed as it came, one document
 * per line, for scripts.
 *
 * Exit codes: 0 success, 1 the request failed (daemon unreachable, HTTP
 * error), 2 usage error (nothing was sent). */
#include "cli.h"
#include "help.h"
#include "http.h"
#include "watch.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef GALVANI_CLI_VERSION
#define GALVANI_CLI_VERSION "unknown"
#endif

int gvc_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("galvani: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see: galvani %s%s--help)\n", cmd ? cmd : "", cmd ? " " : "");
    return 2;
}

/* ---------------------------------------------------------------------- */
/* Requests                                                               */
/* ---------------------------------------------------------------------- */

int gvc_call(gvc_ctx *ctx, const char *method, const char *path, const char *body,
                    gvc_buf *out)
{
    long status = 0;
    gvc_http_result r = gvc_http_request(&ctx->http, method, path, body, &status, out);
    char what[300];
    snprintf(what, sizeof what, "%s %s", method, path);
    if (gvc_http_check(&ctx->http, r, status, out, what) == 0)
        return 0;
    if (r == GVC_HTTP_OK)
        gvc_buf_free(out);
    return 1;
}

void gvc_print_raw(const gvc_buf *b)
{
    fwrite(b->data, 1, b->len, stdout);
    if (b->len == 0 || b->data[b->len - 1] != '\n')
        putchar('\n');
}

json_t *gvc_parse(const gvc_buf *b)
{
    json_error_t err;
    json_t *doc = json_loads(b->data, 0, &err);
    if (!doc)
        fprintf(stderr, "galvani: the server sent invalid JSON: %s\n", err.text);
    return doc;
}

/* A job id: a positive decimal integer, nothing else (so "3x" or "-1" is a
 * usage error rather than a request for a strange URL). */
static int gvc_parse_id(const char *s, long long *id)
{
    /* Always written, so that no caller's id is left uninitialized on the
     * error path (gcc -O3 cannot see that a usage error is never 0). */
    *id = 0;
    if (!*s || strlen(s) > 18)
        return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    *id = strtoll(s, NULL, 10);
    return *id > 0 ? 0 : -1;
}

/* A job-id argument of `cmd`: 0, or the usage error (exit status 2). */
static int gvc_id_arg(const char *cmd, const char *arg, long long *id)
{
    if (gvc_parse_id(arg, id))
        return gvc_usage_error(cmd, "%s: '%s' is not a job id (a positive integer)", cmd, arg);
    return 0;
}

int gvc_single_id(const char *cmd, int argc, char **argv, long long *id)
{
    if (argc != 1)
        return gvc_usage_error(cmd, "%s: expected one job ID", cmd);
    return gvc_id_arg(cmd, argv[0], id);
}

int gvc_id_and_flag(const char *cmd, int argc, char **argv, const char *flag, const char *alias, int *set,
                    long long *id)
{
    int n = 0;
    char *ids[2] = {NULL, NULL};
    *set = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], flag) || (alias && !strcmp(argv[i], alias)))
            *set = 1;
        else if (argv[i][0] == '-')
            return gvc_usage_error(cmd, "%s: unknown option '%s'", cmd, argv[i]);
        else if (n < 2)
            ids[n++] = argv[i];
        else
            n++;
    }
    return gvc_single_id(cmd, n, ids, id);
}

/* "k=v" → key k, value v as JSON if it parses (numbers, true, null, arrays,
 * objects, "quoted"), else the string v.  Adds it to obj. */
static int gvc_add_kv(json_t *obj, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return -1;
    char *key = strndup(kv, (size_t)(eq - kv));
    if (!key)
        return -1;
    json_t *val = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
    if (!val)
        val = json_string(eq + 1);
    int rc = val ? json_object_set_new(obj, key, val) : -1;
    free(key);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Formatting                                                             */
/* ---------------------------------------------------------------------- */

/* ANSI colour of a status on a terminal; NULL for plain. */
static const char *gvc_status_color(const char *status)
{
    if (!status)
        return NULL;
    if (!strcmp(status, "running")) return "\033[34m";
    if (!strcmp(status, "paused")) return "\033[33m";
    if (!strcmp(status, "succeeded")) return "\033[32m";
    if (!strcmp(status, "failed")) return "\033[31m";
    if (!strcmp(status, "cancelled")) return "\033[35m";
    return NULL;
}

/* Print `status` padded to `width`; coloured only on a terminal (the padding
 * is computed on the plain text so columns line up either way). */
static void gvc_print_status(const gvc_ctx *ctx, const char *status, int width)
{
    const char *col = ctx->color ? gvc_status_color(status) : NULL;
    if (col)
        printf("%s%-*s\033[0m", col, width, status);
    else
        printf("%-*s", width, status);
}

const char *gvc_str(const json_t *job, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(job, key));
    return s ? s : dflt;
}

static double gvc_num(const json_t *job, const char *key)
{
    return json_number_value(json_object_get(job, key));
}

static void gvc_print_job_line(const gvc_ctx *ctx, const json_t *job)
{
    printf("%-6lld %-24.24s ", (long long)json_integer_value(json_object_get(job, "id")),
           gvc_str(job, "name", ""));
    gvc_print_status(ctx, gvc_str(job, "status", "?"), 10);
    printf(" %8.0f%%  %s\n", gvc_num(job, "progress"), gvc_str(job, "started_at", "-"));
}

/* One "key: value" line; JSON values that are not strings are printed as
 * compact JSON (null stays "null" so a missing exit code is visible). */
static void gvc_print_field(const gvc_ctx *ctx, const json_t *job, const char *key)
{
    json_t *v = json_object_get(job, key);
    if (!v)
        return;
    printf("%-12s ", key);
    if (!strcmp(key, "status")) {
        gvc_print_status(ctx, json_string_value(v) ? json_string_value(v) : "?", 0);
        putchar('\n');
    } else if (json_is_string(v)) {
        printf("%s\n", json_string_value(v));
    } else {
        char *s = json_dumps(v, GVC_DUMP_FLAGS | JSON_ENCODE_ANY);
        printf("%s\n", s ? s : "?");
        free(s);
    }
}

static void gvc_print_job(const gvc_ctx *ctx, const json_t *job)
{
    static const char *const keys[] = {
        "id", "name", "kind", "status", "progress", "message", "metrics", "params", "params_revision",
        "params_applied", "params_schema", "labels", "rules", "command",
        "shell", "pause_mode", "pid", "exit_code", "signal", "attempts", "max_retries", "priority",
        "timeout", "rate", "eta", "created_at", "started_at", "finished_at", "error",
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        gvc_print_field(ctx, job, keys[i]);
}

/* ---------------------------------------------------------------------- */
/* Commands                                                               */
/* ---------------------------------------------------------------------- */

static int gvc_cmd_run(gvc_ctx *ctx, int argc, char **argv)
{
    const char *name = NULL, *mode = NULL;
    int shell = 0, follow = 0, i = 0;
    json_t *spec = json_object(), *params = json_object();
    int rc = 2;
    if (!spec || !params)
        goto out_oom;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (a[0] != '-')
            break;  /* the command starts here (the "--" is optional) */
        if (!strcmp(a, "--shell")) {
            shell = 1;
            continue;
        }
        if (!strcmp(a, "--follow")) {
            follow = 1;
            continue;
        }
        if (strcmp(a, "--name") && strcmp(a, "--param") && strcmp(a, "--pause-mode") && strcmp(a, "--label") &&
            strcmp(a, "--rule")) {
            rc = gvc_usage_error("run", "run: unknown option '%s'", a);
            goto out;
        }
        if (i + 1 >= argc) {
            rc = gvc_usage_error("run", "run: %s needs a value", a);
            goto out;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--name")) {
            name = v;
        } else if (!strcmp(a, "--pause-mode")) {
            if (strcmp(v, "stop") && strcmp(v, "cooperative")) {
                rc = gvc_usage_error("run", "run: --pause-mode must be stop or cooperative, not '%s'", v);
                goto out;
            }
            mode = v;
        } else if (!strcmp(a, "--label") || !strcmp(a, "--rule")) {
            /* --label K=V; --rule ACTION=CONDITION (the first '=' splits: no action has one) */
            const char *eq = strchr(v, '=');
            if (!eq || eq == v) {
                rc = gvc_usage_error("run", "run: %s wants %s, got '%s'", a,
                                     a[2] == 'l' ? "NAME=VALUE" : "ACTION=CONDITION", v);
                goto out;
            }
            char head[128];
            snprintf(head, sizeof head, "%.*s", (int)(eq - v), v);
            if (a[2] == 'l') {
                json_t *labels = json_object_get(spec, "labels");
                if (!labels && json_object_set_new(spec, "labels", labels = json_object()))
                    goto out_oom;
                if (json_object_set_new(labels, head, json_string(eq + 1)))
                    goto out_oom;
            } else {
                json_t *rules = json_object_get(spec, "rules");
                if (!rules && json_object_set_new(spec, "rules", rules = json_array()))
                    goto out_oom;
                if (json_array_append_new(rules, json_pack("{s:s, s:s}", "when", eq + 1, "then", head)))
                    goto out_oom;
            }
        } else if (gvc_add_kv(params, v) != 0) {
            rc = gvc_usage_error("run", "run: --param wants KEY=VALUE, got '%s'", v);
            goto out;
        }
    }
    if (i >= argc) {
        rc = gvc_usage_error("run", "run: no command given (galvani run -- CMD ARGS...)");
        goto out;
    }
    if (shell) {
        /* The daemon runs a shell job's command as one string. */
        size_t len = 1;
        for (int j = i; j < argc; j++)
            len += strlen(argv[j]) + 1;
        char *line = calloc(1, len);
        if (!line)
            goto out_oom;
        for (int j = i; j < argc; j++) {
            if (j > i)
                strcat(line, " ");
            strcat(line, argv[j]);
        }
        json_t *s = json_string(line);
        free(line);
        if (!s || json_object_set_new(spec, "command", s) || json_object_set_new(spec, "shell", json_true()))
            goto out_oom;
    } else {
        json_t *cmd = json_array();
        if (!cmd || json_object_set_new(spec, "command", cmd))
            goto out_oom;
        for (int j = i; j < argc; j++)
            if (json_array_append_new(cmd, json_string(argv[j])))
                goto out_oom;
    }
    if (name && json_object_set_new(spec, "name", json_string(name)))
        goto out_oom;
    if (mode && json_object_set_new(spec, "pause_mode", json_string(mode)))
        goto out_oom;
    if (json_object_size(params) && json_object_set(spec, "params", params))
        goto out_oom;

    char *body = json_dumps(spec, GVC_DUMP_FLAGS);
    if (!body)
        goto out_oom;
    gvc_buf b;
    rc = gvc_call(ctx, "POST", "/jobs", body, &b);
    free(body);
    if (rc == 0) {
        json_t *job = gvc_parse(&b);
        long long id = job ? json_integer_value(json_object_get(job, "id")) : 0;
        if (!job)
            rc = 1;
        else if (ctx->json)
            gvc_print_raw(&b);
        else
            printf("%lld\n", id);
        json_decref(job);
        gvc_buf_free(&b);
        if (rc == 0 && follow) {
            /* The job may already have ended: the stream's snapshot has its
             * final state, so nothing is missed between POST and GET. */
            fflush(stdout);
            gvc_watch_opts wo = {.ids = &id, .nids = 1,
                                 .tty = ctx->tty, .json = ctx->json};
            int job_exit = 1;
            rc = gvc_watch(&ctx->http, &wo, &job_exit);
            if (rc == 0)
                rc = job_exit;
        }
    }
    goto out;
out_oom:
    fputs("galvani: out of memory\n", stderr);
    rc = 1;
out:
    json_decref(params);
    json_decref(spec);
    return rc;
}

static int gvc_cmd_ls(gvc_ctx *ctx, int argc, char **argv)
{
    const char *status = NULL, *label = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--status") && i + 1 < argc)
            status = argv[++i];
        else if (!strncmp(argv[i], "--status=", 9))
            status = argv[i] + 9;
        else if (!strcmp(argv[i], "--label") && i + 1 < argc)
            label = argv[++i];
        else
            return gvc_usage_error("ls", "ls: unexpected argument '%s'", argv[i]);
    }
    char path[512] = "/jobs?limit=1000";
    if (label) {
        /* Label names and values are plain words here (letters, digits, _ . - /):
         * nothing that needs URL escaping. */
        if (!strchr(label, '=') || strlen(label) > 200 ||
            strspn(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/=") != strlen(label))
            return gvc_usage_error("ls", "ls: --label wants NAME=VALUE of letters, digits and _ . - /, got '%s'",
                                   label);
        strcat(path, "&label=");
        strcat(path, label);
    }
    if (status) {
        /* Status names are lowercase words: checking that here keeps the
         * query free of characters that would need URL escaping; the server
         * names an unknown status itself. */
        if (!*status || strlen(status) > 200 || strspn(status, "abcdefghijklmnopqrstuvwxyz,") != strlen(status))
            return gvc_usage_error("ls", "ls: --status wants names like running,paused, got '%s'", status);
        strcat(path, "&status=");
        strcat(path, status);
    }
    gvc_buf b;
    int rc = gvc_call(ctx, "GET", path, NULL, &b);
    if (rc)
        return rc;
    if (ctx->json) {
        gvc_print_raw(&b);
    } else {
        json_t *doc = gvc_parse(&b);
        json_t *jobs = json_object_get(doc, "jobs");
        if (!json_is_array(jobs)) {
            rc = 1;
        } else if (json_array_size(jobs) == 0) {
            puts(status || label ? "no matching jobs" : "no jobs");
        } else {
            printf("%-6s %-24s %-10s %9s  %s\n", "ID", "NAME", "STATUS", "PROGRESS", "STARTED");
            size_t i;
            json_t *job;
            json_array_foreach(jobs, i, job)
                gvc_print_job_line(ctx, job);
            long long total = json_integer_value(json_object_get(doc, "total"));
            if (total > (long long)json_array_size(jobs))
                printf("(%zu of %lld jobs shown)\n", json_array_size(jobs), total);
        }
        json_decref(doc);
    }
    gvc_buf_free(&b);
    return rc;
}

/* GET or POST `path` and print the job it answers with: every field
 * (`brief` 0, for show) or one line "job ID: STATUS (P%)" (transitions). */
static int gvc_job_request(gvc_ctx *ctx, const char *method, const char *path, const char *body,
                           int brief)
{
    gvc_buf b;
    int rc = gvc_call(ctx, method, path, body, &b);
    if (rc)
        return rc;
    if (ctx->json) {
        gvc_print_raw(&b);
    } else {
        json_t *job = gvc_parse(&b);
        if (!job) {
            rc = 1;
        } else if (!brief) {
            gvc_print_job(ctx, job);
        } else {
            printf("job %lld: ", (long long)json_integer_value(json_object_get(job, "id")));
            gvc_print_status(ctx, gvc_str(job, "status", "?"), 0);
            printf(" (%.0f%%)\n", gvc_num(job, "progress"));
        }
        json_decref(job);
    }
    gvc_buf_free(&b);
    return rc;
}

static int gvc_cmd_show(gvc_ctx *ctx, int argc, char **argv)
{
    long long id;
    int bad = gvc_single_id("show", argc, argv, &id);
    if (bad)
        return bad;
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld", id);
    int rc = gvc_job_request(ctx, "GET", path, NULL, 0);
    return rc || ctx->json ? rc : gvc_print_job_events(ctx, id);
}

/* pause / resume / cancel: each id in turn (all are tried even if one fails,
 * so `cancel 3 4 5` cancels what it can); with no id the demo job. */
static int gvc_cmd_transition(gvc_ctx *ctx, const char *cmd, int argc, char **argv)
{
    char path[64];
    if (argc == 0) {
        snprintf(path, sizeof path, "/%s", cmd);
        return gvc_job_request(ctx, "POST", path, NULL, 1);
    }
    /* Every id is checked before the first request (a typo in the third id
     * must not leave the first two cancelled), and kept from that check, so
     * the requests use exactly the values that were validated. */
    long long *ids = calloc((size_t)argc, sizeof *ids);
    if (!ids) {
        fputs("galvani: out of memory\n", stderr);
        return 1;
    }
    for (int i = 0; i < argc; i++) {
        int bad = gvc_id_arg(cmd, argv[i], &ids[i]);
        if (bad) {
            free(ids);
            return bad;
        }
    }
    int rc = 0;
    for (int i = 0; i < argc; i++) {
        snprintf(path, sizeof path, "/jobs/%lld/%s", ids[i], cmd);
        if (gvc_job_request(ctx, "POST", path, NULL, 1))
            rc = 1;
    }
    free(ids);
    return rc;
}

static int gvc_cmd_start(gvc_ctx *ctx, int argc, char **argv)
{
    if (argc != 0)
        return gvc_usage_error("start", "start: unexpected argument '%s' (start takes no ID: it starts "
                                        "the demo job; use galvani run for a command)", argv[0]);
    return gvc_job_request(ctx, "POST", "/start", NULL, 1);
}

static int gvc_cmd_set(gvc_ctx *ctx, int argc, char **argv)
{
    long long id;
    if (argc < 2)
        return gvc_usage_error("set", "set: expected ID KEY=VALUE...");
    int bad = gvc_id_arg("set", argv[0], &id);
    if (bad)
        return bad;
    json_t *patch = json_object();
    if (!patch) {
        fputs("galvani: out of memory\n", stderr);
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        if (gvc_add_kv(patch, argv[i])) {
            json_decref(patch);
            return gvc_usage_error("set", "set: expected KEY=VALUE, got '%s'", argv[i]);
        }
    }
    char *body = json_dumps(patch, GVC_DUMP_FLAGS);
    json_decref(patch);
    if (!body) {
        fputs("galvani: out of memory\n", stderr);
        return 1;
    }
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld/params", id);
    gvc_buf b;
    int rc = gvc_call(ctx, "PATCH", path, body, &b);
    free(body);
    if (rc)
        return rc;
    if (ctx->json) {
        gvc_print_raw(&b);
    } else {
        json_t *job = gvc_parse(&b);
        char *params = job ? json_dumps(json_object_get(job, "params"), GVC_DUMP_FLAGS | JSON_SORT_KEYS) : NULL;
        if (params)
            printf("job %lld params: %s (revision %lld)\n", id, params,
                   (long long)json_integer_value(json_object_get(job, "params_revision")));
        else
            rc = 1;
        free(params);
        json_decref(job);
    }
    gvc_buf_free(&b);
    return rc;
}

static int gvc_cmd_watch(gvc_ctx *ctx, int argc, char **argv)
{
    long long *ids = calloc((size_t)argc + 1, sizeof *ids);
    if (!ids) {
        fputs("galvani: out of memory\n", stderr);
        return 1;
    }
    for (int i = 0; i < argc; i++) {
        int bad = gvc_id_arg("watch", argv[i], &ids[i]);
        if (bad) {
            free(ids);
            return bad;
        }
    }
    gvc_watch_opts wo = {.ids = ids, .nids = (size_t)argc,
                         .tty = ctx->tty, .json = ctx->json};
    int rc = gvc_watch(&ctx->http, &wo, NULL);
    free(ids);
    return rc;
}

/* GET `path` and copy the body to stdout; *len gets its length.  0, or 1
 * after printing why not. */
static int gvc_print_body(gvc_ctx *ctx, const char *path, size_t *len)
{
    gvc_buf b;
    int rc = gvc_call(ctx, "GET", path, NULL, &b);
    if (rc)
        return rc;
    *len = b.len;
    if (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout) != 0)
        rc = 1;
    gvc_buf_free(&b);
    return rc;
}

/* The job's status is finished (so its output is complete: the daemon marks
 * a job ended only once its output is drained).  -1 after printing an
 * error. */
static int gvc_job_finished(gvc_ctx *ctx, long long id)
{
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld", id);
    gvc_buf b;
    if (gvc_call(ctx, "GET", path, NULL, &b))
        return -1;
    json_t *job = gvc_parse(&b);
    gvc_buf_free(&b);
    if (!job)
        return -1;
    const char *s = gvc_str(job, "status", "");
    int done = !strcmp(s, "succeeded") || !strcmp(s, "failed") || !strcmp(s, "cancelled");
    json_decref(job);
    return done;
}

/* logs -f: the log only grows, so poll GET /jobs/ID/log?offset=N, printing
 * what is new.  The status is read before each read of the log: once it
 * says finished, that read has everything and we stop.  (Output without
 * progress lines produces no stream event, so the event stream could not
 * say when to read; 200 ms polls on one keep-alive connection cost the
 * daemon two small requests, and the delay is invisible to a reader.) */
static int gvc_follow_log(gvc_ctx *ctx, long long id)
{
    long long pos = 0;
    for (;;) {
        int done = gvc_job_finished(ctx, id);
        if (done < 0)
            return 1;
        char path[96];
        snprintf(path, sizeof path, "/jobs/%lld/log?offset=%lld", id, pos);
        size_t n = 0;
        if (gvc_print_body(ctx, path, &n))
            return 1;
        pos += (long long)n;
        if (done)
            return 0;
        if (n == 0) {
            struct timespec ts = {0, 200 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
}

static int gvc_cmd_logs(gvc_ctx *ctx, int argc, char **argv)
{
    int follow;
    long long id;
    int bad = gvc_id_and_flag("logs", argc, argv, "--follow", "-f", &follow, &id);
    if (bad)
        return bad;
    if (follow)
        return gvc_follow_log(ctx, id);
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld/log", id);
    size_t len;
    return gvc_print_body(ctx, path, &len);
}

/* ---------------------------------------------------------------------- */
/* Argument handling                                                      */
/* ---------------------------------------------------------------------- */

/* Take `name VALUE` or `name=VALUE` at argv[*i] into *out.  Returns 1 if
 * taken, 0 if argv[*i] is another option, 2 for a missing value (printed). */
static int gvc_take_value(const char *cmd, int argc, char **argv, int *i, const char *name, const char *what,
                          const char **out)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *out = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        gvc_usage_error(cmd, "%s needs %s", name, what);
        return 2;
    }
    *out = argv[++*i];
    return 1;
}

/* Take a shared option at argv[*i] if it is one.  Returns 1 if taken, 0 if
 * not a shared option, 2 for a usage error (printed). */
static int gvc_take_shared(gvc_ctx *ctx, const char *cmd, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--json")) {
        ctx->json = 1;
        return 1;
    }
    int rc = gvc_take_value(cmd, argc, argv, i, "--server", "a URL", &ctx->server);
    if (rc == 0)
        rc = gvc_take_value(cmd, argc, argv, i, "--token", "a value", &ctx->token);
    return rc;
}

int main(int argc, char **argv)
{
    gvc_ctx ctx = {0};
    const char *env = getenv("GALVANI_URL");
    ctx.server = env && *env ? env : GVC_DEFAULT_URL;
    const char *tok = getenv("GALVANI_TOKEN");
    ctx.token = tok && *tok ? tok : NULL;
    ctx.tty = isatty(STDOUT_FILENO);
    ctx.color = ctx.tty && !getenv("NO_COLOR");

    /* Shared options before the command. */
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(gvc_main_help, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
            printf("galvani %s\n", GALVANI_CLI_VERSION);
            return 0;
        }
        int t = gvc_take_shared(&ctx, NULL, argc, argv, &i);
        if (t == 2)
            return 2;
        if (t == 0)
            return gvc_usage_error(NULL, "unknown option '%s'", argv[i]);
    }
    if (i >= argc) {
        fputs(gvc_main_help, stderr);
        return 2;
    }
    const char *cmd = argv[i++];
    const char *help = gvc_help_for(cmd);
    if (!help)
        return gvc_usage_error(NULL, "unknown command '%s'", cmd);

    /* The command's own arguments, with the shared options and --help taken
     * out wherever they appear before "--" (after it everything belongs to
     * run's command, even "--json"). */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest) {
        fputs("galvani: out of memory\n", stderr);
        return 1;
    }
    int n = 0, rc = 0;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            for (; i < argc; i++)
                rest[n++] = argv[i];
            break;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(help, stdout);
            free(rest);
            return 0;
        }
        int t = gvc_take_shared(&ctx, cmd, argc, argv, &i);
        if (t == 2) {
            free(rest);
            return 2;
        }
        if (t == 0)
            rest[n++] = argv[i];
    }
    /* Only run takes options of its own and a command line; for the others
     * an unknown "--x" before any id is a usage error, caught here so that
     * the per-command code sees plain words. */
    if (strcmp(cmd, "run") != 0 && strcmp(cmd, "ls") != 0 && strcmp(cmd, "logs") != 0 &&
        strcmp(cmd, "params") != 0 && strcmp(cmd, "rules") != 0 && strcmp(cmd, "pipeline") != 0) {
        for (int j = 0; j < n; j++) {
            if (rest[j][0] == '-') {
                rc = gvc_usage_error(cmd, "%s: unknown option '%s'", cmd, rest[j]);
                free(rest);
                return rc;
            }
        }
    }

    if (gvc_http_init(&ctx.http, ctx.server) != 0 || gvc_http_set_token(&ctx.http, ctx.token) != 0) {
        fputs("galvani: cannot initialise libcurl\n", stderr);
        gvc_http_free(&ctx.http);
        free(rest);
        return 1;
    }
    if (!strcmp(cmd, "run"))
        rc = gvc_cmd_run(&ctx, n, rest);
    else if (!strcmp(cmd, "ls"))
        rc = gvc_cmd_ls(&ctx, n, rest);
    else if (!strcmp(cmd, "show"))
        rc = gvc_cmd_show(&ctx, n, rest);
    else if (!strcmp(cmd, "pause") || !strcmp(cmd, "resume") || !strcmp(cmd, "cancel"))
        rc = gvc_cmd_transition(&ctx, cmd, n, rest);
    else if (!strcmp(cmd, "start"))
        rc = gvc_cmd_start(&ctx, n, rest);
    else if (!strcmp(cmd, "set"))
        rc = gvc_cmd_set(&ctx, n, rest);
    else if (!strcmp(cmd, "watch"))
        rc = gvc_cmd_watch(&ctx, n, rest);
    else if (!strcmp(cmd, "params"))
        rc = gvc_cmd_params(&ctx, n, rest);
    else if (!strcmp(cmd, "rules"))
        rc = gvc_cmd_rules(&ctx, n, rest);
    else if (!strcmp(cmd, "pipeline"))
        rc = gvc_cmd_pipeline(&ctx, n, rest);
    else
        rc = gvc_cmd_logs(&ctx, n, rest);
    gvc_http_free(&ctx.http);
    free(rest);
    if (fflush(stdout) != 0 && rc == 0)
        rc = 1;
    return rc;
}
