/* galvani CLI: requests and argument readers shared by the commands (see
 * cli.h). */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- requests ------------------------------------------------------------ */

int gvc_call(gvc_ctx *ctx, const char *method, const char *path, const char *body, int flags, gvc_buf *out)
{
    long status = 0;
    gvc_http_result r = gvc_http_request(&ctx->http, method, path, body, &status, out);
    /* A 503 is galvanid shutting down (or out of memory): as good as gone
     * for a caller that waits for it to come back. */
    if ((flags & GVC_QUIET_DOWN) && (r != GVC_HTTP_OK || status == 503)) {
        if (r == GVC_HTTP_OK)
            gvc_buf_free(out);
        return GVC_DOWN;
    }
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

int gvc_print_doc(const json_t *doc)
{
    char *text = json_dumps(doc, GVC_DUMP_FLAGS);
    if (!text)
        return gvc_oom();
    puts(text);
    free(text);
    return 0;
}

int gvc_fetch(gvc_ctx *ctx, const char *method, const char *path, const char *body, int flags, json_t **doc)
{
    if (doc)
        *doc = NULL;
    gvc_buf b;
    int rc = gvc_call(ctx, method, path, body, flags, &b);
    if (rc)
        return rc;
    int raw = ctx->json && (flags & GVC_RAW);
    if (raw)
        gvc_print_raw(&b);
    if (doc && b.len > 0 && (!raw || (flags & GVC_DOC))) {
        json_error_t err;
        if (!(*doc = json_loads(b.data, 0, &err))) {
            gvc_error("invalid_response", "the server sent invalid JSON: %s", err.text);
            rc = 1;
        }
    }
    gvc_buf_free(&b);
    return rc;
}

/* ---- arguments ----------------------------------------------------------- */

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

int gvc_id_arg(const char *cmd, const char *arg, long long *id)
{
    if (gvc_parse_id(arg, id))
        return gvc_usage_error(cmd, "%s: '%s' is not a job id (a positive integer)", cmd, arg);
    return 0;
}

int gvc_id_args(const char *cmd, int argc, char **argv, long long **ids)
{
    *ids = NULL;
    if (argc < 1)
        return gvc_usage_error(cmd, "%s: expected at least one job ID", cmd);
    long long *v = calloc((size_t)argc, sizeof *v);
    if (!v)
        return gvc_oom();
    for (int i = 0; i < argc; i++) {
        int bad = gvc_id_arg(cmd, argv[i], &v[i]);
        if (bad) {
            free(v);
            return bad;
        }
    }
    *ids = v;
    return 0;
}

int gvc_single_id(const char *cmd, int argc, char **argv, long long *id)
{
    *id = 0;
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
    *id = 0;
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

int gvc_take_value(const char *cmd, int argc, char **argv, int *i, const char *name, const char *what,
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

int gvc_add_kv(json_t *obj, const char *kv, int typed)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return -1;
    char *key = strndup(kv, (size_t)(eq - kv));
    if (!key)
        return -1;
    json_t *val = typed ? json_loads(eq + 1, JSON_DECODE_ANY, NULL) : NULL;
    if (!val)
        val = json_string(eq + 1);
    int rc = val ? json_object_set_new(obj, key, val) : -1;
    free(key);
    return rc;
}

int gvc_parse_int(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    *out = 0;
    if (!*s || strlen(s) > 19)
        return -1;
    long long v = strtoll(s, &end, 10);
    if (*end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int gvc_parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    *out = 0;
    if (!*s)
        return -1;
    double v = strtod(s, &end);
    if (*end || !isfinite(v) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

const char *gvc_str(const json_t *job, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(job, key));
    return s ? s : dflt;
}

double gvc_num(const json_t *job, const char *key)
{
    return json_number_value(json_object_get(job, key));
}

long long gvc_int(const json_t *job, const char *key)
{
    return (long long)json_integer_value(json_object_get(job, key));
}
