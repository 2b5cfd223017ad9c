/* galvani CLI: reactive rules (docs/api.md, "Rules").
 *
 *   galvani rules                          the global rules (GET /rules)
 *   galvani rules add --then ACTION [--name-glob GLOB] [--label K=V]... -- CONDITION
 *                                          create one (POST /rules); prints its id
 *   galvani rules rm ID                    delete one (DELETE /rules/ID)
 *   galvani rules --job ID                 a job's rules and their firings
 *
 * and the firings under `galvani show ID` (gvc_print_job_events).  A
 * refused condition prints the server's message, which names the column. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void gvc_print_event(const json_t *e)
{
    char *values = json_dumps(json_object_get(e, "values"), GVC_DUMP_FLAGS | JSON_SORT_KEYS);
    printf("  %-24s %-12s %-7s %s  %s (when %s)\n", gvc_str(e, "at", "-"), gvc_str(e, "rule", "?"),
           gvc_str(e, "then", "?"), values ? values : "?", gvc_str(e, "outcome", "?"), gvc_str(e, "when", "?"));
    free(values);
}

int gvc_print_job_events(gvc_ctx *ctx, long long id)
{
    char path[96];
    snprintf(path, sizeof path, "/jobs/%lld/events", id);
    json_t *doc;
    int rc = gvc_fetch(ctx, "GET", path, NULL, GVC_RAW, &doc);
    if (rc || !doc)
        return rc;
    json_t *events = json_object_get(doc, "events");
    printf("%-12s %zu\n", "events", json_array_size(events));
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
        gvc_print_event(e);
    json_decref(doc);
    return 0;
}

static int gvc_rules_list(gvc_ctx *ctx)
{
    json_t *doc;
    int rc = gvc_fetch(ctx, "GET", "/rules", NULL, GVC_RAW, &doc);
    if (rc || !doc)
        return rc;
    json_t *rules = json_object_get(doc, "rules");
    if (json_array_size(rules) == 0) {
        puts("no global rules");
    } else {
        printf("%-5s %-7s %-30s %s\n", "ID", "THEN", "MATCH", "WHEN");
        size_t i;
        json_t *r;
        json_array_foreach(rules, i, r) {
            char *match = json_dumps(json_object_get(r, "match"), GVC_DUMP_FLAGS | JSON_SORT_KEYS);
            printf("%-5lld %-7s %-30s %s\n", gvc_int(r, "id"), gvc_str(r, "then", "?"), match ? match : "?",
                   gvc_str(r, "when", "?"));
            free(match);
        }
    }
    json_decref(doc);
    return 0;
}

static int gvc_rules_add(gvc_ctx *ctx, int argc, char **argv)
{
    json_t *body = json_object(), *match = json_object(), *labels = json_object();
    int rc = 2, i = 0;
    const char *then = NULL;
    if (!body || !match || !labels)
        goto oom;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (strcmp(a, "--then") && strcmp(a, "--name-glob") && strcmp(a, "--label")) {
            rc = gvc_usage_error("rules", "rules add: unknown option '%s'", a);
            goto out;
        }
        if (i + 1 >= argc) {
            rc = gvc_usage_error("rules", "rules add: %s needs a value", a);
            goto out;
        }
        const char *v = argv[++i], *eq = strchr(v, '=');
        if (!strcmp(a, "--then")) {
            then = v;
        } else if (!strcmp(a, "--name-glob")) {
            if (json_object_set_new(match, "name", json_string(v)))
                goto oom;
        } else if (!eq || eq == v) {
            rc = gvc_usage_error("rules", "rules add: --label wants NAME=VALUE, got '%s'", v);
            goto out;
        } else {
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)(eq - v), v);
            if (json_object_set_new(labels, key, json_string(eq + 1)))
                goto oom;
        }
    }
    if (!then || i != argc - 1) {
        rc = gvc_usage_error("rules", "rules add: expected --then ACTION and one CONDITION (quote it)");
        goto out;
    }
    if (json_object_size(labels) && json_object_set(match, "labels", labels))
        goto oom;
    if (json_object_set_new(body, "when", json_string(argv[i])) || json_object_set_new(body, "then", json_string(then)) ||
        (json_object_size(match) && json_object_set(body, "match", match)))
        goto oom;
    char *text = json_dumps(body, GVC_DUMP_FLAGS);
    if (!text)
        goto oom;
    json_t *r;
    rc = gvc_fetch(ctx, "POST", "/rules", text, GVC_RAW, &r);
    free(text);
    if (rc == 0 && r)
        printf("%lld\n", gvc_int(r, "id"));
    json_decref(r);
    goto out;
oom:
    rc = gvc_oom();
out:
    json_decref(labels);
    json_decref(match);
    json_decref(body);
    return rc;
}

static int gvc_rules_job(gvc_ctx *ctx, long long id)
{
    char path[64];
    snprintf(path, sizeof path, "/jobs/%lld", id);
    json_t *job;
    int rc = gvc_fetch(ctx, "GET", path, NULL, 0, &job);
    if (rc || !job)
        return rc ? rc : 1;
    json_t *rules = json_object_get(job, "rules");
    printf("job %lld rules: %zu of its spec (global rules that match it apply too: galvani rules)\n", id,
           json_array_size(rules));
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r)
        printf("  %-12s %-7s %s\n", gvc_str(r, "name", "?"), gvc_str(r, "then", "?"), gvc_str(r, "when", "?"));
    json_decref(job);
    return gvc_print_job_events(ctx, id);
}

int gvc_cmd_rules(gvc_ctx *ctx, int argc, char **argv)
{
    long long id;
    if (argc == 0)
        return gvc_rules_list(ctx);
    if (!strcmp(argv[0], "add"))
        return gvc_rules_add(ctx, argc - 1, argv + 1);
    if (!strcmp(argv[0], "rm") || !strcmp(argv[0], "--job")) {
        int bad = gvc_single_id("rules", argc - 1, argv + 1, &id);
        if (bad)
            return bad;
        if (!strcmp(argv[0], "--job"))
            /* --json: the firings as they came (the rules are in the job) */
            return ctx->json ? gvc_print_job_events(ctx, id) : gvc_rules_job(ctx, id);
        char path[64];
        snprintf(path, sizeof path, "/rules/%lld", id);
        int rc = gvc_fetch(ctx, "DELETE", path, NULL, 0, NULL);
        if (rc == 0)
            printf("rule %lld deleted\n", id);
        return rc;
    }
    return gvc_usage_error("rules", "rules: unknown subcommand '%s' (add, rm, --job)", argv[0]);
}
