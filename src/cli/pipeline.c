/* galvani CLI: pipelines (docs/api.md, "Pipelines").
 *
 *   galvani pipeline run FILE.json [--follow]   create one (POST /pipelines; FILE - is stdin)
 *   galvani pipeline ls                         every pipeline, newest first
 *   galvani pipeline show ID                    its steps (status, job, progress, needs) and rule firings
 *   galvani pipeline pause|resume|cancel ID     the whole pipeline
 *   galvani pipeline retry ID STEP              re-run STEP, then the steps after it
 *   galvani pipeline rm ID                      delete a finished pipeline and its jobs
 *
 * --follow prints a line per step change until the pipeline ends and exits
 * like it: 0 when it succeeded, 1 when it failed or was cancelled.  It asks
 * for the pipeline a few times a second: a handful of small GETs for the
 * length of a run, and no state to rebuild when galvanid restarts under it.
 * --json prints the daemon's answers as they are. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GVC_FOLLOW_MS 300

static const char gvc_pipeline_usage[] =
    "usage: galvani pipeline run FILE.json [--follow] | ls | show ID | pause ID | resume ID | cancel ID |\n"
    "                        retry ID STEP | rm ID";

static int gvc_pl_bad(const char *fmt, const char *arg)
{
    return gvc_usage_error("pipeline", fmt, arg);
}

/* A pipeline id argument: 0 with *id, or the usage error's 2. */
static int gvc_pl_id(const char *arg, long long *id)
{
    char *end = NULL;
    *id = 0; /* always written: no caller can see it unset */
    long long v = arg ? strtoll(arg, &end, 10) : 0;
    if (!arg || !*arg || *end || v <= 0)
        return gvc_pl_bad("pipeline: expected a pipeline id (a positive integer), not '%s'", arg ? arg : "");
    *id = v;
    return 0;
}

static char *gvc_read_file(const char *path)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return NULL;
    gvc_buf b = {0};
    char chunk[4096];
    size_t n;
    int ok = 1;
    while (ok && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n + 1 > b.cap) {
            size_t cap = (b.len + n + 1) * 2;
            char *d = realloc(b.data, cap);
            if (!d)
                ok = 0;
            else
                b.data = d, b.cap = cap;
        }
        if (ok) {
            memcpy(b.data + b.len, chunk, n);
            b.len += n;
            b.data[b.len] = '\0';
        }
    }
    ok = ok && !ferror(f);
    if (f != stdin)
        fclose(f);
    if (!ok || !b.data) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

static void gvc_print_steps(const json_t *pl)
{
    printf("  %-20s %-10s %-7s %7s  %s\n", "STEP", "STATUS", "JOB", "PROGRESS", "NEEDS");
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(pl, "steps"), i, s) {
        char job[24] = "-", needs[256] = "";
        if (json_is_integer(json_object_get(s, "job")))
            snprintf(job, sizeof job, "%lld", (long long)json_integer_value(json_object_get(s, "job")));
        size_t k, at = 0;
        json_t *n;
        json_array_foreach(json_object_get(s, "needs"), k, n)
            if (at < sizeof needs)
                at += (size_t)snprintf(needs + at, sizeof needs - at, "%s%s", k ? ", " : "", json_string_value(n));
        printf("  %-20s %-10s %-7s %6.1f%%  %s\n", gvc_str(s, "name", "?"), gvc_str(s, "status", "?"), job,
               gvc_num(s, "progress"), needs);
    }
}

static void gvc_print_summary(const json_t *pl)
{
    printf("pipeline %lld %s: %s %.1f%%%s\n", (long long)json_integer_value(json_object_get(pl, "id")),
           gvc_str(pl, "name", "?"), gvc_str(pl, "status", "?"), gvc_num(pl, "progress"),
           json_is_true(json_object_get(pl, "paused")) ? " (paused)" : "");
}

/* A pipeline ends with the same three words as a job. */
#define gvc_pl_finished gvc_job_finished

/* Print each step whose status changed since `before` (NULL: all). */
static void gvc_print_changes(const json_t *before, const json_t *now)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(now, "steps"), i, s) {
        json_t *old = before ? json_array_get(json_object_get(before, "steps"), i) : NULL;
        if (old && !strcmp(gvc_str(old, "status", ""), gvc_str(s, "status", "")) &&
            json_equal(json_object_get(old, "job"), json_object_get(s, "job")))
            continue;
        char job[32] = "";
        if (json_is_integer(json_object_get(s, "job")))
            snprintf(job, sizeof job, " (job %lld)", (long long)json_integer_value(json_object_get(s, "job")));
        printf("  %-20s %s%s\n", gvc_str(s, "name", "?"), gvc_str(s, "status", "?"), job);
    }
    /* paused, resumed: said at once; the end is said by the caller */
    if (before && strcmp(gvc_str(before, "status", ""), gvc_str(now, "status", "")) != 0 && !gvc_pl_finished(now))
        gvc_print_summary(now);
    fflush(stdout);
}

static int gvc_pl_follow(gvc_ctx *ctx, long long id, json_t *first)
{
    char path[64];
    snprintf(path, sizeof path, "/pipelines/%lld", id);
    json_t *last = json_incref(first);
    int rc = 0;
    while (!gvc_pl_finished(last)) {
        struct timespec ts = {0, GVC_FOLLOW_MS * 1000000L};
        nanosleep(&ts, NULL);
        json_t *now = NULL;
        rc = gvc_fetch(ctx, "GET", path, NULL, GVC_DOC, &now);
        if (rc || !now)
            break;
        gvc_print_changes(last, now);
        json_decref(last);
        last = now;
    }
    if (rc == 0) {
        gvc_print_summary(last);
        rc = strcmp(gvc_str(last, "status", ""), "succeeded") ? 1 : 0;
    }
    json_decref(last);
    return rc;
}

/* Each step without "cwd" gets ours, without "env" ours (a file that is
 * not a pipeline is left for galvanid to refuse with its precise 400). */
static int gvc_pl_defaults(json_t *body)
{
    size_t i;
    json_t *step;
    json_array_foreach(json_object_get(body, "steps"), i, step) {
        if (!json_is_object(step))
            continue;
        if (!json_object_get(step, "cwd")) {
            char *cwd = gvc_job_cwd(NULL);
            if (!cwd || json_object_set_new(step, "cwd", json_string(cwd)) != 0) {
                free(cwd);
                return 1;
            }
            free(cwd);
        }
        json_t *env = json_object();
        if (!json_object_get(step, "env") && (!env || gvc_caller_env(env) != 0 ||
                                              json_object_set(step, "env", env) != 0)) {
            json_decref(env);
            return 1;
        }
        json_decref(env);
    }
    return 0;
}

static int gvc_pl_run(gvc_ctx *ctx, int argc, char **argv)
{
    const char *file = NULL;
    int follow = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--follow") || !strcmp(argv[i], "-f"))
            follow = 1;
        else if (argv[i][0] == '-' && argv[i][1])
            return gvc_pl_bad("pipeline run: unknown option '%s'", argv[i]);
        else if (file)
            return gvc_pl_bad("pipeline run: one FILE.json, not also '%s'", argv[i]);
        else
            file = argv[i];
    }
    if (!file)
        return gvc_pl_bad("pipeline run: which pipeline? (%s)", "galvani pipeline run FILE.json [--follow]");
    char *text = gvc_read_file(file);
    if (!text) {
        fprintf(stderr, "galvani: cannot read %s\n", file);
        return 1;
    }
    json_error_t jerr;
    json_t *body = json_loads(text, 0, &jerr);
    free(text);
    if (!body) {
        fprintf(stderr, "galvani: %s: not JSON (line %d, column %d: %s)\n", file, jerr.line, jerr.column, jerr.text);
        return 1;
    }
    /* Like galvani run: a step runs here, with this environment, unless
     * the file says where and with what. */
    int rc = gvc_pl_defaults(body);
    text = rc ? NULL : json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (rc || !text)
        return rc ? rc : 1;
    json_t *pl = NULL;
    rc = gvc_fetch(ctx, "POST", "/pipelines", text, follow ? GVC_DOC : GVC_RAW, &pl);
    free(text);
    if (rc || !pl)
        return rc;
    gvc_print_summary(pl);
    if (follow) {
        gvc_print_changes(NULL, pl);
        rc = gvc_pl_follow(ctx, json_integer_value(json_object_get(pl, "id")), pl);
    }
    json_decref(pl);
    return rc;
}

static int gvc_pl_ls(gvc_ctx *ctx, int argc, char **argv)
{
    if (argc > 0)
        return gvc_pl_bad("pipeline ls: unexpected argument '%s'", argv[0]);
    json_t *doc;
    int rc = gvc_fetch(ctx, "GET", "/pipelines?limit=1000", NULL, GVC_RAW, &doc);
    if (rc || !doc)
        return rc;
    json_t *pls = json_object_get(doc, "pipelines");
    if (json_array_size(pls) == 0) {
        puts("no pipelines");
    } else {
        printf("%-5s %-24s %-10s %8s  %s\n", "ID", "NAME", "STATUS", "PROGRESS", "STEPS");
        size_t i;
        json_t *pl;
        json_array_foreach(pls, i, pl) {
            size_t done = 0, k;
            json_t *s;
            json_array_foreach(json_object_get(pl, "steps"), k, s)
                done += !strcmp(gvc_str(s, "status", ""), "succeeded");
            printf("%-5lld %-24.24s %-10s %7.1f%%  %zu/%zu succeeded\n",
                   (long long)json_integer_value(json_object_get(pl, "id")), gvc_str(pl, "name", "?"),
                   gvc_str(pl, "status", "?"), gvc_num(pl, "progress"), done,
                   json_array_size(json_object_get(pl, "steps")));
        }
    }
    json_decref(doc);
    return 0;
}

static int gvc_pl_show(gvc_ctx *ctx, long long id)
{
    char path[80];
    snprintf(path, sizeof path, "/pipelines/%lld", id);
    json_t *pl;
    int rc = gvc_fetch(ctx, "GET", path, NULL, GVC_RAW, &pl);
    if (rc || !pl)
        return rc;
    gvc_print_summary(pl);
    printf("  on failure: %s   created %s   finished %s\n", gvc_str(pl, "on_failure", "?"),
           gvc_str(pl, "created_at", "-"), gvc_str(pl, "finished_at", "-"));
    gvc_print_steps(pl);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(pl, "rules"), i, r)
        printf("  rule %-14s when %s then %s\n", gvc_str(r, "name", "?"), gvc_str(r, "when", "?"),
               gvc_str(r, "then", "?"));
    json_decref(pl);
    snprintf(path, sizeof path, "/pipelines/%lld/events", id);
    json_t *doc;
    if ((rc = gvc_fetch(ctx, "GET", path, NULL, 0, &doc)) != 0 || !doc)
        return rc;
    json_t *e;
    json_array_foreach(json_object_get(doc, "events"), i, e) {
        char *values = json_dumps(json_object_get(e, "values"), GVC_DUMP_FLAGS | JSON_SORT_KEYS);
        printf("  fired %-24s %-14s %-7s %s  %s\n", gvc_str(e, "at", "-"), gvc_str(e, "rule", "?"),
               gvc_str(e, "then", "?"), values ? values : "?", gvc_str(e, "outcome", "?"));
        free(values);
    }
    json_decref(doc);
    return 0;
}

/* pause / resume / cancel / retry / rm: one request, then the result. */
static int gvc_pl_act(gvc_ctx *ctx, const char *verb, long long id, const char *step)
{
    char path[200];
    const char *method = "POST";
    if (!strcmp(verb, "rm")) {
        method = "DELETE";
        snprintf(path, sizeof path, "/pipelines/%lld", id);
    } else if (step) {
        snprintf(path, sizeof path, "/pipelines/%lld/steps/%s/retry", id, step);
    } else {
        snprintf(path, sizeof path, "/pipelines/%lld/%s", id, verb);
    }
    json_t *pl;
    int rc = gvc_fetch(ctx, method, path, NULL, GVC_RAW, &pl);
    if (rc)
        return rc;
    if (!strcmp(verb, "rm")) {
        if (!ctx->json)
            printf("pipeline %lld deleted\n", id);
    } else if (pl) {
        gvc_print_summary(pl);
    }
    json_decref(pl);
    return 0;
}

static int gvc_step_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-'))
            return 0;
    return 1;
}

int gvc_cmd_pipeline(gvc_ctx *ctx, int argc, char **argv)
{
    if (argc == 0)
        return gvc_pl_bad("%s", gvc_pipeline_usage);
    const char *verb = argv[0];
    if (!strcmp(verb, "run"))
        return gvc_pl_run(ctx, argc - 1, argv + 1);
    if (!strcmp(verb, "ls"))
        return gvc_pl_ls(ctx, argc - 1, argv + 1);
    int is_retry = !strcmp(verb, "retry");
    if (strcmp(verb, "show") && strcmp(verb, "pause") && strcmp(verb, "resume") && strcmp(verb, "cancel") &&
        !is_retry && strcmp(verb, "rm"))
        return gvc_pl_bad("pipeline: unknown subcommand '%s' (run, ls, show, pause, resume, cancel, retry, rm)",
                          verb);
    if (argc != (is_retry ? 3 : 2))
        return gvc_pl_bad(is_retry ? "pipeline %s: expected a pipeline id and a step name"
                                   : "pipeline %s: expected one pipeline id",
                          verb);
    long long id;
    int bad = gvc_pl_id(argv[1], &id);
    if (bad)
        return bad;
    if (is_retry && !gvc_step_name_ok(argv[2]))
        return gvc_pl_bad("pipeline retry: '%s' is not a step name (1 to 64 of A-Z a-z 0-9 _ -)", argv[2]);
    if (!strcmp(verb, "show"))
        return gvc_pl_show(ctx, id);
    return gvc_pl_act(ctx, verb, id, is_retry ? argv[2] : NULL);
}
