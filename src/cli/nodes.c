/* galvani CLI: the nodes of a cluster (docs/cluster.md).
 *
 *   nodes        GET /nodes: one line per node, the one that answered marked
 *
 * and gvc_node_count, which tells `galvani ls` whether to show a NODE
 * column: only when galvanid is one of several nodes. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#define GVC_NODE_ID_MAX 40 /* columns of the ID column at most (longer ids end with "…") */

/* up as a succeeded job, lost as a failed one, left as a cancelled one. */
static void gvc_print_state(const gvc_ctx *ctx, const char *state, int width)
{
    const char *as = !strcmp(state, "up") ? "succeeded" : !strcmp(state, "lost") ? "failed" : "cancelled";
    const char *col = ctx->color ? gvc_status_color(as) : "";
    if (*col)
        printf("%s%-*s\033[0m", col, width, state);
    else
        printf("%-*s", width, state);
}

/* One cell of a field the daemon may leave out (one galvanid on SQLite
 * knows only its id and state): the number, or "-". */
static void gvc_count_text(const json_t *node, const char *key, char *out, size_t n)
{
    const json_t *v = json_object_get(node, key);
    if (json_is_integer(v))
        snprintf(out, n, "%lld", (long long)json_integer_value(v));
    else
        snprintf(out, n, "-");
}

static void gvc_print_node(const gvc_ctx *ctx, const json_t *node, int idw)
{
    char id[4 * GVC_NODE_ID_MAX + 8], beat[40] = "-", running[24], max[24], address[256];
    gvc_fit(id, sizeof id, gvc_str(node, "id", "?"), idw, 1);
    const json_t *age = json_object_get(node, "heartbeat_age");
    if (json_is_number(age)) {
        char d[24];
        gvc_duration(json_number_value(age), d, sizeof d);
        snprintf(beat, sizeof beat, "%s ago", d);
    }
    gvc_count_text(node, "running", running, sizeof running);
    gvc_count_text(node, "max_running", max, sizeof max);
    char load[64] = "-";
    if (strcmp(running, "-") || strcmp(max, "-"))
        snprintf(load, sizeof load, "%s/%s", running, max);
    gvc_fit(address, sizeof address, gvc_str(node, "address", "-"), 60, 0);
    printf("%s %s ", json_is_true(json_object_get(node, "self")) ? "*" : " ", id);
    gvc_print_state(ctx, gvc_str(node, "state", "?"), 5);
    printf("  %-10s %-12s %s\n", beat, load, address);
}

int gvc_cmd_nodes(gvc_ctx *ctx, int argc, char **argv)
{
    if (argc != 0)
        return gvc_usage_error("nodes", "nodes: unexpected argument '%s'", argv[0]);
    json_t *doc;
    int rc = gvc_fetch(ctx, "GET", "/nodes", NULL, GVC_RAW, &doc);
    if (rc || !doc)
        return rc;
    json_t *nodes = json_object_get(doc, "nodes");
    if (!json_is_array(nodes)) {
        gvc_error("invalid_response", "the server's answer to GET /nodes has no \"nodes\"");
        json_decref(doc);
        return 1;
    }
    /* The ID column as wide as the longest id (within bounds), so that
     * the other columns line up whatever the ids are. */
    int idw = 2;
    size_t i;
    json_t *node;
    json_array_foreach(nodes, i, node) {
        char fitted[4 * GVC_NODE_ID_MAX + 8];
        gvc_fit(fitted, sizeof fitted, gvc_str(node, "id", "?"), GVC_NODE_ID_MAX, 0);
        int cols = 0;
        for (const unsigned char *p = (const unsigned char *)fitted; *p; p++)
            cols += (*p & 0xC0) != 0x80;
        if (cols > idw)
            idw = cols;
    }
    printf("  %-*s %-5s  %-10s %-12s %s\n", idw, "ID", "STATE", "HEARTBEAT", "RUNNING/MAX", "ADDRESS");
    json_array_foreach(nodes, i, node)
        gvc_print_node(ctx, node, idw);
    json_decref(doc);
    return 0;
}

int gvc_node_count(gvc_ctx *ctx)
{
    long status = 0;
    gvc_buf b;
    if (gvc_http_request(&ctx->http, "GET", "/nodes", NULL, &status, &b) != GVC_HTTP_OK)
        return -1;
    int n = -1;
    json_t *doc = status / 100 == 2 ? json_loads(b.data, 0, NULL) : NULL;
    json_t *nodes = json_object_get(doc, "nodes");
    if (json_is_array(nodes))
        n = (int)json_array_size(nodes);
    json_decref(doc);
    gvc_buf_free(&b);
    return n;
}
