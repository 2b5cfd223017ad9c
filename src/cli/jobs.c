/* galvani CLI: the commands on existing jobs.
 *
 *   ls [--status S,..] [--label K=V] [--name GLOB] [--limit N]   GET /jobs (+ GET /nodes: the NODE column)
 *   show ID                                                       GET /jobs/ID (+ its rule firings)
 *   pause | resume | cancel [ID...]                               POST /jobs/ID/ACTION (no ID: the demo job)
 *   start                                                         POST /start
 *   set ID KEY=VALUE...                                           PATCH /jobs/ID/params
 *   rm ID...                                                      DELETE /jobs/ID
 *   watch [ID...]                                                 GET /events (watch.c) */
#include "cli.h"
#include "watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GVC_PAGE 1000 /* the daemon's largest ?limit */

/* One job of ls; `node`: with the NODE column (the job's node, "-" while
 * it is queued and no node has claimed it). */
static void gvc_print_job_line(const gvc_ctx *ctx, const json_t *job, int node)
{
    char name[128];
    gvc_fit(name, sizeof name, gvc_str(job, "name", ""), 24, 1);
    printf("%-6lld %s ", gvc_int(job, "id"), name);
    gvc_print_status(ctx, gvc_str(job, "status", "?"), 10);
    if (!node) {
        printf(" %8.0f%%  %s\n", gvc_num(job, "progress"), gvc_str(job, "started_at", "-"));
        return;
    }
    char where[256];
    gvc_fit(where, sizeof where, gvc_str(job, "node", "-"), 60, 0);
    printf(" %8.0f%%  %-24s  %s\n", gvc_num(job, "progress"), gvc_str(job, "started_at", "-"), where);
}

/* Whether ls shows a NODE column: when galvanid is one of several nodes
 * (GET /nodes lists more than one), whatever the listed jobs are -- so the
 * table has the same columns from one ls to the next in a cluster, and none
 * that repeats one name on a single galvanid.  A galvanid that cannot say
 * (no /nodes): when the jobs name more than one node. */
static int gvc_ls_shows_node(gvc_ctx *ctx, const json_t *jobs)
{
    int n = gvc_node_count(ctx);
    if (n >= 0)
        return n > 1;
    const char *first = NULL;
    size_t i;
    json_t *job;
    json_array_foreach(jobs, i, job) {
        const char *node = json_string_value(json_object_get(job, "node"));
        if (!node)
            continue;
        if (first && strcmp(first, node) != 0)
            return 1;
        first = node;
    }
    return 0;
}

/* `--status running,paused`: the six names only, so that a typo is a usage
 * error (2) before anything is sent, and the query needs no escaping. */
static int gvc_check_statuses(const char *list)
{
    static const char *const known[] = {"queued", "running", "paused", "succeeded", "failed", "cancelled"};
    if (!*list || strlen(list) > 200)
        return -1;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ","), k = 0;
        for (; k < sizeof known / sizeof known[0]; k++)
            if (strlen(known[k]) == n && !strncmp(p, known[k], n))
                break;
        if (k == sizeof known / sizeof known[0])
            return -1;
        p += n + (p[n] == ',');
    }
    return 0;
}

int gvc_cmd_ls(gvc_ctx *ctx, int argc, char **argv)
{
    const char *status = NULL, *label = NULL, *name = NULL, *limit_s = NULL;
    for (int i = 0; i < argc; i++) {
        int t = gvc_take_value("ls", argc, argv, &i, "--status", "S[,S...]", &status);
        if (t == 0)
            t = gvc_take_value("ls", argc, argv, &i, "--label", "NAME=VALUE", &label);
        if (t == 0)
            t = gvc_take_value("ls", argc, argv, &i, "--name", "a GLOB", &name);
        if (t == 0)
            t = gvc_take_value("ls", argc, argv, &i, "--limit", "a count", &limit_s);
        if (t == 2)
            return 2;
        if (t == 0)
            return gvc_usage_error("ls", "ls: unexpected argument '%s'", argv[i]);
    }
    long long limit = GVC_PAGE;
    if (limit_s && gvc_parse_int(limit_s, 1, GVC_PAGE, &limit))
        return gvc_usage_error("ls", "ls: --limit wants a count from 1 to %d, got '%s'", GVC_PAGE, limit_s);
    if (status && gvc_check_statuses(status))
        return gvc_usage_error("ls", "ls: --status wants queued, running, paused, succeeded, failed or cancelled "
                                     "(several: running,paused), got '%s'", status);
    /* Label names and values are plain words here (letters, digits, _ . - /):
     * nothing that needs URL escaping. */
    if (label && (!strchr(label, '=') || label[0] == '=' || strlen(label) > 200 ||
                  strspn(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/=") !=
                      strlen(label)))
        return gvc_usage_error("ls", "ls: --label wants NAME=VALUE of letters, digits and _ . - /, got '%s'", label);
    if (name && !*name)
        return gvc_usage_error("ls", "ls: --name wants a glob such as 'build-*'");
    char query[1024] = "";
    if (status)
        snprintf(query, sizeof query, "&status=%s", status);
    if (label)
        snprintf(query + strlen(query), sizeof query - strlen(query), "&label=%s", label);

    if (name) {
        if (strlen(name) > 200)
            return gvc_usage_error("ls", "ls: --name: a glob of at most 200 bytes");
        char *glob = gvc_http_escape(&ctx->http, name); /* '?', '[', '*' are not for a URL as they are */
        if (!glob)
            return gvc_oom();
        snprintf(query + strlen(query), sizeof query - strlen(query), "&name=%s", glob);
        free(glob);
    }

    json_t *doc = NULL;
    char path[1100];
    snprintf(path, sizeof path, "/jobs?limit=%lld%s", limit, query);
    int rc = gvc_fetch(ctx, "GET", path, NULL, GVC_RAW, &doc);
    if (rc || !doc)
        return rc;
    json_t *jobs = json_object_get(doc, "jobs");
    if (!json_is_array(jobs)) {
        gvc_error("invalid_response", "the server's job list has no \"jobs\"");
        rc = 1;
    } else if (json_array_size(jobs) == 0) {
        puts(status || label || name ? "no matching jobs" : "no jobs");
    } else {
        int node = gvc_ls_shows_node(ctx, jobs);
        if (node)
            printf("%-6s %-24s %-10s %9s  %-24s  %s\n", "ID", "NAME", "STATUS", "PROGRESS", "STARTED", "NODE");
        else
            printf("%-6s %-24s %-10s %9s  %s\n", "ID", "NAME", "STATUS", "PROGRESS", "STARTED");
        size_t i;
        json_t *job;
        json_array_foreach(jobs, i, job)
            gvc_print_job_line(ctx, job, node);
        long long total = gvc_int(doc, "total");
        if (total > (long long)json_array_size(jobs))
            printf("(%zu of %lld jobs shown)\n", json_array_size(jobs), total);
    }
    json_decref(doc);
    return rc;
}

/* One "key: value" line; JSON values that are not strings are printed as
 * compact JSON (null stays "null" so a missing exit code is visible). */
static void gvc_print_field(const gvc_ctx *ctx, const char *key, const json_t *v)
{
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
        "shell", "pause_mode", "node", "pid", "exit_code", "signal", "attempts", "max_retries", "at_most_once",
        "priority",
        "timeout", "rate", "eta", "created_at", "started_at", "finished_at", "error",
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(job, keys[i]);
        if (!strcmp(keys[i], "node") && json_is_null(v)) {
            /* no node: queued and not claimed yet (several nodes), or it
             * ended before any node took it */
            printf("%-12s -%s\n", "node",
                   !strcmp(gvc_str(job, "status", ""), "queued") ? " (queued: no node has claimed it yet)" : "");
            continue;
        }
        gvc_print_field(ctx, keys[i], v);
        if (!strcmp(keys[i], "shell")) {
            /* where and with what it runs; the environment by name count
             * only: its values may be secrets, and show is often pasted */
            json_t *spec = json_object_get(job, "spec");
            gvc_print_field(ctx, "cwd", json_object_get(spec, "cwd"));
            json_t *env = json_object_get(spec, "env");
            if (json_is_object(env))
                printf("%-12s %zu variables (galvani --json show: names and values)\n", "env", json_object_size(env));
        }
    }
}

/* GET or POST `path` and print the job it answers with: every field
 * (`brief` 0, for show) or one line "job ID: STATUS (P%)" (transitions). */
static int gvc_job_request(gvc_ctx *ctx, const char *method, const char *path, int brief)
{
    json_t *job;
    int rc = gvc_fetch(ctx, method, path, NULL, GVC_RAW, &job);
    if (rc || !job)
        return rc;
    if (!brief) {
        gvc_print_job(ctx, job);
    } else {
        printf("job %lld: ", gvc_int(job, "id"));
        gvc_print_status(ctx, gvc_str(job, "status", "?"), 0);
        printf(" (%.0f%%)\n", gvc_num(job, "progress"));
    }
    json_decref(job);
    return 0;
}

int gvc_cmd_show(gvc_ctx *ctx, int argc, char **argv)
{
    long long id;
    int bad = gvc_single_id("show", argc, argv, &id);
    if (bad)
        return bad;
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld", id);
    int rc = gvc_job_request(ctx, "GET", path, 0);
    return rc || ctx->json ? rc : gvc_print_job_events(ctx, id);
}

/* Act on each id in turn: all are tried even if one fails (so `cancel 3 4
 * 5` cancels what it can), after every id was checked (a typo in the third
 * must not leave the first two cancelled).  `one` does one id: 0 or 1. */
static int gvc_each_id(gvc_ctx *ctx, int argc, char **argv, int (*one)(gvc_ctx *, long long))
{
    long long *ids;
    int rc = gvc_id_args(ctx->cmd, argc, argv, &ids);
    if (rc)
        return rc;
    for (int i = 0; i < argc; i++)
        if (one(ctx, ids[i]))
            rc = 1;
    free(ids);
    return rc;
}

static int gvc_transition_one(gvc_ctx *ctx, long long id)
{
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld/%s", id, ctx->cmd);
    return gvc_job_request(ctx, "POST", path, 1);
}

int gvc_cmd_transition(gvc_ctx *ctx, int argc, char **argv)
{
    if (argc == 0) { /* the demo job */
        char path[64];
        snprintf(path, sizeof path, "/%s", ctx->cmd);
        return gvc_job_request(ctx, "POST", path, 1);
    }
    return gvc_each_id(ctx, argc, argv, gvc_transition_one);
}

static int gvc_rm_one(gvc_ctx *ctx, long long id)
{
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld", id);
    int rc = gvc_fetch(ctx, "DELETE", path, NULL, 0, NULL);
    if (rc)
        return rc;
    /* DELETE answers 204 without a body: --json gets a line all the same */
    if (ctx->json)
        printf("{\"id\":%lld,\"removed\":true}\n", id);
    else
        printf("job %lld removed\n", id);
    return 0;
}

int gvc_cmd_rm(gvc_ctx *ctx, int argc, char **argv)
{
    return gvc_each_id(ctx, argc, argv, gvc_rm_one);
}

int gvc_cmd_start(gvc_ctx *ctx, int argc, char **argv)
{
    if (argc != 0)
        return gvc_usage_error("start", "start: unexpected argument '%s' (start takes no ID: it starts "
                                        "the demo job; use galvani run for a command)", argv[0]);
    return gvc_job_request(ctx, "POST", "/start", 1);
}

int gvc_cmd_set(gvc_ctx *ctx, int argc, char **argv)
{
    long long id;
    if (argc < 2)
        return gvc_usage_error("set", "set: expected ID KEY=VALUE...");
    int bad = gvc_id_arg("set", argv[0], &id);
    if (bad)
        return bad;
    json_t *patch = json_object();
    if (!patch)
        return gvc_oom();
    for (int i = 1; i < argc; i++) {
        if (gvc_add_kv(patch, argv[i], 1)) {
            json_decref(patch);
            return gvc_usage_error("set", "set: expected KEY=VALUE, got '%s'", argv[i]);
        }
    }
    char *body = json_dumps(patch, GVC_DUMP_FLAGS);
    json_decref(patch);
    if (!body)
        return gvc_oom();
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld/params", id);
    json_t *job;
    int rc = gvc_fetch(ctx, "PATCH", path, body, GVC_RAW, &job);
    free(body);
    if (rc || !job)
        return rc;
    char *params = json_dumps(json_object_get(job, "params"), GVC_DUMP_FLAGS | JSON_SORT_KEYS);
    if (params)
        printf("job %lld params: %s (revision %lld)\n", id, params, gvc_int(job, "params_revision"));
    else
        rc = gvc_oom();
    free(params);
    json_decref(job);
    return rc;
}

int gvc_cmd_watch(gvc_ctx *ctx, int argc, char **argv)
{
    long long *ids = NULL;
    if (argc > 0) {
        int rc = gvc_id_args("watch", argc, argv, &ids);
        if (rc)
            return rc;
    }
    gvc_watch_opts wo = {.ids = ids, .nids = (size_t)argc, .tty = ctx->tty, .json = ctx->json};
    int rc = gvc_watch(&ctx->http, &wo);
    free(ids);
    return rc;
}
