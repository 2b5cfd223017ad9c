/* galvani CLI: creating jobs and following them.
 *
 *   galvani run [OPTIONS] -- CMD ARGS...   POST /jobs, in the caller's cwd with the caller's environment
 *   galvani rerun [--follow] ID            the same spec again (GET /jobs/ID's "spec"), a new job
 *   galvani logs [-f] ID                   the job's output; -f follows it to the job's end
 *
 * run --follow (and rerun --follow) print the job's output as it is
 * written, like `docker run`, then a one-line verdict on stderr, and exit
 * with the job's status (gvc_job_exit_status). */
#include "cli.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- following a job ----------------------------------------------------- */

static void gvc_nap(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
        /* interrupted: sleep the rest */
    }
}

/* Print what GET `path` (the log from an offset) answers; *len its length.
 * 0, 1 after printing why, or GVC_DOWN (with GVC_QUIET_DOWN in flags). */
static int gvc_print_body(gvc_ctx *ctx, const char *path, int flags, size_t *len)
{
    gvc_buf b;
    *len = 0;
    int rc = gvc_call(ctx, "GET", path, NULL, flags, &b);
    if (rc)
        return rc;
    *len = b.len;
    if (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout) != 0)
        rc = 1;
    gvc_buf_free(&b);
    return rc;
}

/* Follow job `id` to its end: poll GET /jobs/ID and, with `print`, GET
 * /jobs/ID/log?offset=N, printing what is new.  The status is read before
 * each read of the log: once it says finished, that read has everything
 * (the daemon marks a job ended only once its output is drained).  Output
 * without progress lines produces no stream event, so the event stream
 * could not say when to read; 200 ms polls on one keep-alive connection
 * cost the daemon two small requests, and the delay is invisible.
 *
 * If galvanid goes away meanwhile (a restart: the job keeps running under
 * its supervisor), say so once and keep trying.  0 with *final the finished
 * job (may be NULL: not wanted), or 1 after printing why. */
static int gvc_follow(gvc_ctx *ctx, long long id, int print, json_t **final)
{
    long long pos = 0;
    int down = 0;
    if (final)
        *final = NULL;
    for (;;) {
        char path[96];
        snprintf(path, sizeof path, "/jobs/%lld", id);
        json_t *job;
        int rc = gvc_fetch(ctx, "GET", path, NULL, GVC_DOC | GVC_QUIET_DOWN, &job);
        if (rc == 0 && print) {
            size_t n = 0;
            snprintf(path, sizeof path, "/jobs/%lld/log?offset=%lld", id, pos);
            rc = gvc_print_body(ctx, path, GVC_QUIET_DOWN, &n);
            pos += (long long)n;
        }
        if (rc == GVC_DOWN) {
            if (!down)
                gvc_error("reconnecting", "lost galvanid at %s; reconnecting (job %lld keeps running; Ctrl-C "
                          "stops following it)", ctx->http.base, id);
            down = 1;
            json_decref(job);
            gvc_nap(1000);
            continue;
        }
        if (rc || !job) {
            json_decref(job);
            return 1;
        }
        if (down && !gvc_report_is_json()) /* stderr stays JSON under --json */
            fprintf(stderr, "galvani: reconnected to galvanid\n");
        down = 0;
        if (gvc_job_finished(job)) {
            if (final)
                *final = job;
            else
                json_decref(job);
            return 0;
        }
        json_decref(job);
        gvc_nap(200);
    }
}

/* "[-f|--follow] ID" of `cmd`, and the job: 0 with *follow, *id and *job
 * (the caller frees it), or the exit status after printing why.  The job is
 * read first so that an unknown id or an absent galvanid is said at once
 * (only a later loss is waited out by gvc_follow). */
static int gvc_job_arg(gvc_ctx *ctx, const char *cmd, int argc, char **argv, int *follow, long long *id,
                       json_t **job)
{
    *job = NULL;
    int bad = gvc_id_and_flag(cmd, argc, argv, "--follow", "-f", follow, id);
    if (bad)
        return bad;
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld", *id);
    int rc = gvc_fetch(ctx, "GET", path, NULL, GVC_DOC, job);
    return rc ? rc : *job ? 0 : 1;
}

int gvc_cmd_logs(gvc_ctx *ctx, int argc, char **argv)
{
    int follow;
    long long id;
    json_t *job;
    int rc = gvc_job_arg(ctx, "logs", argc, argv, &follow, &id, &job);
    json_decref(job);
    if (rc)
        return rc;
    if (follow)
        return gvc_follow(ctx, id, 1, NULL);
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld/log", id);
    size_t len;
    return gvc_print_body(ctx, path, 0, &len);
}

/* ---- creating a job ------------------------------------------------------ */

/* POST `spec` as a new job; print its id (--json: the job), and with
 * `follow` its output to the end and the verdict.  Returns the exit status. */
static int gvc_create(gvc_ctx *ctx, const json_t *spec, int follow)
{
    char *body = json_dumps(spec, GVC_DUMP_FLAGS);
    if (!body)
        return gvc_oom();
    json_t *job;
    int rc = gvc_fetch(ctx, "POST", "/jobs", body, GVC_RAW | GVC_DOC, &job);
    free(body);
    if (rc || !job) {
        json_decref(job);
        return rc ? rc : 1;
    }
    long long id = gvc_int(job, "id");
    json_decref(job);
    if (!follow) {
        if (!ctx->json)
            printf("%lld\n", id);
        return 0;
    }
    /* stdout carries the job's output alone (so it can be piped); what
     * galvani itself says goes to stderr. */
    if (!ctx->json)
        fprintf(stderr, "job %lld created\n", id);
    fflush(stdout);
    json_t *final;
    if (gvc_follow(ctx, id, !ctx->json, &final))
        return 1;
    if (ctx->json) {
        rc = gvc_print_doc(final);
    } else {
        char line[1024];
        gvc_verdict(final, line, sizeof line);
        fflush(stdout);
        fprintf(stderr, "%s\n", line);
    }
    if (rc == 0)
        rc = gvc_job_exit_status(final);
    json_decref(final);
    return rc;
}

/* Variables of the caller's environment that are not the job's business:
 * the CLI's own credentials (a job that needs one gets it with --env), and
 * the ones galvani sets for each job itself. */
static int gvc_env_private(const char *var)
{
    static const char *const names[] = {"GALVANI_TOKEN=", "GALVANI_READ_TOKEN=", "GALVANI_CONTROL_FD=",
                                        "GALVANI_JOB_ID=", "GALVANI_PIPELINE_ID=", "GALVANI_PIPELINE_STEP="};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strncmp(var, names[i], strlen(names[i])))
            return 1;
    return 0;
}

int gvc_caller_env(json_t *env)
{
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || eq == *e || gvc_env_private(*e))
            continue;
        json_t *v = json_string(eq + 1);
        if (!v) {
            /* JSON strings are UTF-8: a value that is not cannot be sent. */
            fprintf(stderr, "galvani: warning: %.*s is not valid UTF-8: not passed to the job\n", (int)(eq - *e),
                    *e);
            continue;
        }
        char *key = strndup(*e, (size_t)(eq - *e));
        if (!key || json_object_set_new(env, key, v) != 0) {
            free(key);
            return gvc_oom();
        }
        free(key);
    }
    return 0;
}

char *gvc_job_cwd(const char *dir)
{
    char here[PATH_MAX];
    if ((!dir || dir[0] != '/') && !getcwd(here, sizeof here)) {
        gvc_error("no_cwd", "cannot tell the current directory (it may have been removed): pass --cwd DIR");
        return NULL;
    }
    char *out = NULL;
    if (!dir)
        out = strdup(here);
    else if (dir[0] == '/')
        out = strdup(dir);
    else if ((out = malloc(strlen(here) + strlen(dir) + 2)))
        sprintf(out, "%s/%s", here, dir);
    if (!out)
        gvc_oom();
    return out;
}

/* run's options that take a value. */
static const char *const gvc_run_valued[][2] = {
    {"--name", "a name"},           {"--param", "KEY=VALUE"},       {"--pause-mode", "stop or cooperative"},
    {"--label", "NAME=VALUE"},      {"--rule", "ACTION=CONDITION"}, {"--timeout", "seconds"},
    {"--retries", "a count"},       {"--backoff", "seconds"},       {"--priority", "an integer"},
    {"--cwd", "a directory"},       {"--env", "NAME=VALUE"},
};

/* Apply one valued option to the spec (or the env overrides).  0, 1 (out
 * of memory, printed) or 2 (usage, printed). */
static int gvc_run_option(json_t *spec, json_t *env, const char *opt, const char *v, const char **cwd)
{
    long long n;
    double d;
    json_t *val = NULL;
    const char *key = NULL;
    if (!strcmp(opt, "--name")) {
        key = "name", val = json_string(v);
    } else if (!strcmp(opt, "--pause-mode")) {
        if (strcmp(v, "stop") && strcmp(v, "cooperative"))
            return gvc_usage_error("run", "run: --pause-mode must be stop or cooperative, not '%s'", v);
        key = "pause_mode", val = json_string(v);
    } else if (!strcmp(opt, "--timeout")) {
        if (gvc_parse_num(v, 0, 1e9, &d) || d <= 0)
            return gvc_usage_error("run", "run: --timeout wants seconds > 0, got '%s'", v);
        key = "timeout", val = json_real(d);
    } else if (!strcmp(opt, "--backoff")) {
        if (gvc_parse_num(v, 0, 1e9, &d))
            return gvc_usage_error("run", "run: --backoff wants seconds >= 0, got '%s'", v);
        key = "retry_backoff", val = json_real(d);
    } else if (!strcmp(opt, "--retries")) {
        if (gvc_parse_int(v, 0, 100, &n))
            return gvc_usage_error("run", "run: --retries wants a count from 0 to 100, got '%s'", v);
        key = "max_retries", val = json_integer(n);
    } else if (!strcmp(opt, "--priority")) {
        if (gvc_parse_int(v, -2147483647LL, 2147483647LL, &n))
            return gvc_usage_error("run", "run: --priority wants an integer, got '%s'", v);
        key = "priority", val = json_integer(n);
    } else if (!strcmp(opt, "--cwd")) {
        if (!*v)
            return gvc_usage_error("run", "run: --cwd wants a directory");
        *cwd = v;
        return 0;
    } else if (!strcmp(opt, "--param") || !strcmp(opt, "--env") || !strcmp(opt, "--label")) {
        /* params are JSON-typed like `galvani set`; env and labels are strings */
        const char *member = opt[2] == 'p' ? "params" : opt[2] == 'e' ? NULL : "labels";
        json_t *obj = member ? json_object_get(spec, member) : env;
        if (!obj && json_object_set_new(spec, member, obj = json_object()))
            return gvc_oom();
        if (!strchr(v, '=') || v[0] == '=')
            return gvc_usage_error("run", "run: %s wants %s, got '%s'", opt, opt[2] == 'p' ? "KEY=VALUE" : "NAME=VALUE", v);
        return gvc_add_kv(obj, v, opt[2] == 'p') ? gvc_oom() : 0;
    } else { /* --rule ACTION=CONDITION (the first '=' splits: no action has one) */
        const char *eq = strchr(v, '=');
        if (!eq || eq == v)
            return gvc_usage_error("run", "run: --rule wants ACTION=CONDITION, got '%s'", v);
        json_t *rules = json_object_get(spec, "rules");
        if (!rules && json_object_set_new(spec, "rules", rules = json_array()))
            return gvc_oom();
        char *action = strndup(v, (size_t)(eq - v));
        int bad = !action || json_array_append_new(rules, json_pack("{s:s, s:s}", "when", eq + 1, "then", action));
        free(action);
        return bad ? gvc_oom() : 0;
    }
    return json_object_set_new(spec, key, val) ? gvc_oom() : 0;
}

/* The command: argv as it is (no shell), or joined by spaces for /bin/sh -c. */
static int gvc_run_command(json_t *spec, int shell, int argc, char **argv)
{
    if (shell) {
        size_t len = 1;
        for (int j = 0; j < argc; j++)
            len += strlen(argv[j]) + 1;
        char *line = calloc(1, len);
        if (!line)
            return gvc_oom();
        for (int j = 0; j < argc; j++) {
            if (j > 0)
                strcat(line, " ");
            strcat(line, argv[j]);
        }
        json_t *s = json_string(line);
        free(line);
        if (!s || json_object_set_new(spec, "command", s) || json_object_set_new(spec, "shell", json_true()))
            return gvc_oom();
        return 0;
    }
    json_t *cmd = json_array();
    if (!cmd || json_object_set_new(spec, "command", cmd))
        return gvc_oom();
    for (int j = 0; j < argc; j++)
        if (json_array_append_new(cmd, json_string(argv[j])))
            return gvc_oom();
    return 0;
}

int gvc_cmd_run(gvc_ctx *ctx, int argc, char **argv)
{
    int shell = 0, follow = 0, clean_env = 0, i = 0, rc = 0;
    const char *cwd_opt = NULL;
    char *cwd = NULL;
    json_t *spec = json_object(), *env_over = json_object(), *env = json_object();
    if (!spec || !env_over || !env) {
        rc = gvc_oom();
        goto out;
    }
    for (; i < argc && rc == 0; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (a[0] != '-')
            break; /* the command starts here (the "--" is optional) */
        int *flag = !strcmp(a, "--shell")                        ? &shell
                    : !strcmp(a, "--clean-env")                  ? &clean_env
                    : !strcmp(a, "--follow") || !strcmp(a, "-f") ? &follow
                                                                 : NULL;
        if (flag) {
            *flag = 1;
            continue;
        }
        size_t k = 0, nk = sizeof gvc_run_valued / sizeof gvc_run_valued[0];
        int t = 0;
        const char *v = NULL;
        for (; k < nk && t == 0; k++)
            t = gvc_take_value("run", argc, argv, &i, gvc_run_valued[k][0], gvc_run_valued[k][1], &v);
        if (t == 0)
            rc = gvc_usage_error("run", "run: unknown option '%s'", a);
        else if (t == 2)
            rc = 2;
        else
            rc = gvc_run_option(spec, env_over, gvc_run_valued[k - 1][0], v, &cwd_opt);
    }
    if (rc)
        goto out;
    if (i >= argc) {
        rc = gvc_usage_error("run", "run: no command given (galvani run -- CMD ARGS...)");
        goto out;
    }
    /* Like a shell or `docker run -w`: the job runs where the user is, with
     * their environment (--clean-env: only the --env variables), and --env
     * adds or overrides. */
    if ((rc = gvc_run_command(spec, shell, argc - i, argv + i)) != 0 || (!clean_env && (rc = gvc_caller_env(env))))
        goto out;
    if (json_object_update(env, env_over) || json_object_set(spec, "env", env)) {
        rc = gvc_oom();
        goto out;
    }
    if (!(cwd = gvc_job_cwd(cwd_opt)) || json_object_set_new(spec, "cwd", json_string(cwd))) {
        rc = 1; /* printed by gvc_job_cwd, or out of memory below */
        if (cwd)
            gvc_oom();
        goto out;
    }
    rc = gvc_create(ctx, spec, follow);
out:
    free(cwd);
    json_decref(env);
    json_decref(env_over);
    json_decref(spec);
    return rc;
}

int gvc_cmd_rerun(gvc_ctx *ctx, int argc, char **argv)
{
    int follow;
    long long id;
    json_t *job;
    int rc = gvc_job_arg(ctx, "rerun", argc, argv, &follow, &id, &job);
    if (rc)
        return rc;
    json_t *spec = json_deep_copy(json_object_get(job, "spec"));
    json_t *params = json_object_get(job, "params");
    if (!json_is_object(spec)) {
        gvc_error("no_spec", "galvanid did not send job %lld's spec (a galvanid older than galvani rerun?)", id);
        rc = 1;
    } else if (json_object_size(params) && json_object_set(spec, "params", params)) {
        rc = gvc_oom();
    } else {
        /* The same spec with the params as they are now: the job's last
         * tuning is what a rerun should start from. */
        rc = gvc_create(ctx, spec, follow);
    }
    json_decref(spec);
    json_decref(job);
    return rc;
}
