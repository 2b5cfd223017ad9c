/* galvani CLI: `galvani params ID` (the job's params, their revision and the
 * last revision the job acknowledged) and `galvani params --history ID`
 * (every change: revision, when, who, when the job applied it, the patch),
 * from GET /jobs/ID and GET /jobs/ID/params/history. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void gvc_print_history(const json_t *doc)
{
    json_t *hist = json_object_get(doc, "history");
    printf("%-5s %-24s %-7s %-24s %s\n", "REV", "WHEN", "WHO", "APPLIED", "PATCH");
    size_t i;
    json_t *e;
    json_array_foreach(hist, i, e) {
        char *patch = json_dumps(json_object_get(e, "patch"), GVC_DUMP_FLAGS | JSON_SORT_KEYS);
        printf("%-5lld %-24s %-7s %-24s %s\n", gvc_int(e, "revision"),
               gvc_str(e, "at", "-"), gvc_str(e, "who", "-"), gvc_str(e, "applied_at", "-"), patch ? patch : "?");
        free(patch);
    }
    if (json_array_size(hist) == 0)
        printf("(no changes: revision 0, the params the job was created with)\n");
    printf("revision %lld, applied %lld\n", gvc_int(doc, "params_revision"),
           gvc_int(doc, "params_applied"));
}

static void gvc_print_params(long long id, const json_t *job)
{
    char *params = json_dumps(json_object_get(job, "params"), GVC_DUMP_FLAGS | JSON_SORT_KEYS);
    printf("job %lld params: %s\n", id, params ? params : "?");
    printf("revision %lld, applied %lld\n", gvc_int(job, "params_revision"),
           gvc_int(job, "params_applied"));
    free(params);
}

int gvc_cmd_params(gvc_ctx *ctx, int argc, char **argv)
{
    int history;
    long long id;
    int bad = gvc_id_and_flag("params", argc, argv, "--history", NULL, &history, &id);
    if (bad)
        return bad;
    char path[96];
    snprintf(path, sizeof path, history ? "/jobs/%lld/params/history" : "/jobs/%lld", id);
    json_t *doc;
    int rc = gvc_fetch(ctx, "GET", path, NULL, GVC_RAW, &doc);
    if (rc || !doc)
        return rc;
    if (history)
        gvc_print_history(doc);
    else
        gvc_print_params(id, doc);
    json_decref(doc);
    return 0;
}
