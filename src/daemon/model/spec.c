/*
 * spec.c — validating a job spec, the body of POST /jobs.
 *
 *   {"command": ["make", "-j2"], "name": "build", "env": {"PATH": "/usr/bin"},
 *    "cwd": "/src", "params": {"lr": 0.1}, "timeout": 600, "max_retries": 2,
 *    "retry_backoff": 5, "priority": 10, "pause_mode": "stop"}
 *   {"command": "make && make test", "shell": true}
 *   {"kind": "demo", "demo_step_ms": 100}
 *
 * Every field is checked for its type and range, and an unknown field is an
 * error that names it: a typo ("timout") must not silently drop a limit.  The
 * normalized spec (every field, defaults filled in) is what gets stored, so a
 * job reloaded after a restart is exactly the job that was accepted.
 *
 * A new spec is also held to the size limits of jobs.h (GVD_SPEC_MAX_*);
 * a stored one is not: a job accepted before a limit existed must still
 * load.  argv and env are kept packed (one allocation each, see
 * gvd_strv_alloc): a job keeps them, not a JSON tree, for its whole life.
 */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const gvd_spec_fields[] = {"name", "kind", "command", "shell", "env", "cwd", "params",
                                              "timeout", "max_retries", "retry_backoff", "priority",
                                              "pause_mode", "demo_step_ms", "params_schema", "rules", "labels",
                                              "at_most_once", NULL};

static char *gvd_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* A NULL-terminated vector of n strings in one block: the n + 1 pointers,
 * then `bytes` for the strings (each with its NUL), which the caller copies
 * to (char *)(v + n + 1) and onwards.  Freed with free().  One block rather
 * than one malloc per string: malloc's overhead per chunk (32 bytes and
 * more) was most of what a short argument cost. */
static char **gvd_strv_alloc(size_t n, size_t bytes)
{
    char **v = malloc((n + 1) * sizeof *v + bytes);
    if (v)
        v[n] = NULL;
    return v;
}

/* The strings of `src` (n of them, `bytes` with their NULs) packed. */
static char **gvd_strv_pack(const char *const *src, size_t n, size_t bytes)
{
    char **v = gvd_strv_alloc(n, bytes);
    if (!v)
        return NULL;
    char *dst = (char *)(v + n + 1);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(src[i]) + 1;
        v[i] = memcpy(dst, src[i], len);
        dst += len;
    }
    return v;
}

void gvd_spec_clear(gvd_spec *spec)
{
    free(spec->name);
    free(spec->argv);
    free(spec->env);
    free(spec->cwd);
    memset(spec, 0, sizeof *spec);
}

static int gvd_bad(gvd_error *err, const char *fmt, const char *a, const char *b)
{
    char msg[sizeof err->message];
    snprintf(msg, sizeof msg, fmt, a, b ? b : "");
    gvd_error_set(err, 400, "invalid_spec", msg);
    return -1;
}

/* 413: a count or size over one of the GVD_SPEC_MAX_* limits, naming the
 * field, what was sent and the limit. */
static int gvd_too_large(gvd_error *err, const char *field, size_t have, const char *unit, size_t max)
{
    char msg[sizeof err->message];
    snprintf(msg, sizeof msg, "field \"%s\" has %zu %s, more than the limit of %zu", field, have, unit, max);
    gvd_error_set(err, 413, "spec_too_large", msg);
    return -1;
}

int gvd_json_size_check(json_t *v, const char *field, const char *code, gvd_error *err)
{
    /* json_dumpb without a buffer only counts: nothing is allocated. */
    size_t n = v ? json_dumpb(v, NULL, 0, JSON_COMPACT) : 0;
    if (n <= GVD_SPEC_MAX_JSON_BYTES)
        return 0;
    gvd_too_large(err, field, n, "bytes of JSON", GVD_SPEC_MAX_JSON_BYTES);
    err->code = code;
    return -1;
}

static int gvd_check_unknown(json_t *body, gvd_error *err)
{
    char names[400] = "";
    size_t used = 0;
    int unknown = 0;
    const char *key;
    json_t *value;
    json_object_foreach(body, key, value) {
        int known = 0;
        for (const char *const *f = gvd_spec_fields; *f; f++)
            known |= strcmp(*f, key) == 0;
        if (known)
            continue;
        unknown++;
        int n = snprintf(names + used, sizeof names - used, "%s\"%s\"", used ? ", " : "", key);
        if (n > 0 && (size_t)n < sizeof names - used)
            used += (size_t)n;
    }
    if (!unknown)
        return 0;
    return gvd_bad(err,
                   "unknown field%s %s (known: name, kind, command, shell, env, cwd, params, timeout, "
                   "max_retries, retry_backoff, priority, pause_mode, demo_step_ms, params_schema, rules, labels, "
                   "at_most_once)",
                   unknown > 1 ? "s" : "", names);
}

static int gvd_get_string(json_t *body, const char *key, const char **out, gvd_error *err)
{
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return gvd_bad(err, "field \"%s\" must be a string", key, NULL);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return gvd_bad(err, "field \"%s\" must not contain NUL characters", key, NULL);
    *out = json_string_value(v);
    return 0;
}

/* A number of seconds from 0 to max.  A stored spec over max (accepted
 * before the bound existed) loads with max: run.c converts it to timer
 * milliseconds, which must stay defined. */
static int gvd_get_seconds(json_t *body, const char *key, double max, bool strict, double *out, gvd_error *err)
{
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return gvd_bad(err, "field \"%s\" must be a number", key, NULL);
    double d = json_number_value(v);
    if (!isfinite(d) || d < 0 || (strict && d > max)) {
        char lim[64];
        snprintf(lim, sizeof lim, "%.0f (seconds), not %g", max, d);
        return gvd_bad(err, "field \"%s\" must be a number from 0 to %s", key, lim);
    }
    *out = d > max ? max : d;
    return 0;
}

static int gvd_get_integer(json_t *body, const char *key, int64_t min, int64_t max, int64_t *out, gvd_error *err)
{
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return gvd_bad(err, "field \"%s\" must be an integer", key, NULL);
    json_int_t i = json_integer_value(v);
    if (i < min || i > max) {
        char lim[64];
        snprintf(lim, sizeof lim, "%lld..%lld", (long long)min, (long long)max);
        return gvd_bad(err, "field \"%s\" must be in %s", key, lim);
    }
    *out = (int64_t)i;
    return 0;
}

static char **gvd_oom(gvd_error *err)
{
    gvd_error_set(err, 503, "out_of_memory", "out of memory");
    return NULL;
}

/* `strings` (n C strings, `bytes` with their NULs) as a packed argv, after
 * the limits when `strict`. */
static char **gvd_argv_pack(const char *const *strings, size_t n, size_t bytes, bool strict, gvd_error *err)
{
    if (strict && n > GVD_SPEC_MAX_ARGS) {
        gvd_too_large(err, "command", n, "arguments", GVD_SPEC_MAX_ARGS);
        return NULL;
    }
    if (strict && bytes > GVD_SPEC_MAX_ARGV_BYTES) {
        gvd_too_large(err, "command", bytes, "bytes", GVD_SPEC_MAX_ARGV_BYTES);
        return NULL;
    }
    char **argv = gvd_strv_pack(strings, n, bytes);
    return argv ? argv : gvd_oom(err);
}

static char **gvd_argv_from_array(json_t *arr, bool strict, gvd_error *err)
{
    size_t n = json_array_size(arr), bytes = 0;
    if (n == 0) {
        gvd_bad(err, "field \"command\" must not be empty", NULL, NULL);
        return NULL;
    }
    /* The count first: a 100,000-element array is refused before anything
     * is allocated for it. */
    if (strict && n > GVD_SPEC_MAX_ARGS) {
        gvd_too_large(err, "command", n, "arguments", GVD_SPEC_MAX_ARGS);
        return NULL;
    }
    const char **strings = malloc(n * sizeof *strings);
    if (!strings)
        return gvd_oom(err);
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(arr, i);
        if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a)) {
            char idx[24];
            snprintf(idx, sizeof idx, "%zu", i);
            gvd_bad(err, "field \"command\" must be an array of strings (element %s is not)", idx, NULL);
            free(strings);
            return NULL;
        }
        strings[i] = json_string_value(a);
        bytes += json_string_length(a) + 1;
    }
    if (strings[0][0] == '\0') {
        gvd_bad(err, "field \"command\": the program name must not be empty", NULL, NULL);
        free(strings);
        return NULL;
    }
    char **argv = gvd_argv_pack(strings, n, bytes, strict, err);
    free(strings);
    return argv;
}

static char **gvd_env_from_object(json_t *obj, bool strict, gvd_error *err)
{
    size_t n = json_object_size(obj), bytes = 0;
    if (strict && n > GVD_SPEC_MAX_ENV) {
        gvd_too_large(err, "env", n, "variables", GVD_SPEC_MAX_ENV);
        return NULL;
    }
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        if (!*key || strchr(key, '=')) {
            gvd_bad(err, "field \"env\": invalid variable name \"%s\"", key, NULL);
            return NULL;
        }
        if (!json_is_string(value) || strlen(json_string_value(value)) != json_string_length(value)) {
            gvd_bad(err, "field \"env\": the value of \"%s\" must be a string", key, NULL);
            return NULL;
        }
        bytes += strlen(key) + 1 + json_string_length(value) + 1;
    }
    if (strict && bytes > GVD_SPEC_MAX_ENV_BYTES) {
        gvd_too_large(err, "env", bytes, "bytes", GVD_SPEC_MAX_ENV_BYTES);
        return NULL;
    }
    char **env = gvd_strv_alloc(n, bytes);
    if (!env)
        return gvd_oom(err);
    char *dst = (char *)(env + n + 1);
    size_t i = 0;
    json_object_foreach(obj, key, value) {
        size_t len = strlen(key) + 1 + json_string_length(value) + 1;
        env[i++] = dst;
        snprintf(dst, len, "%s=%s", key, json_string_value(value));
        dst += len;
    }
    return env;
}

json_t *gvd_spec_command_json(const gvd_spec *spec)
{
    if (spec->kind != GVD_EXEC_PROCESS || !spec->argv)
        return json_null();
    if (spec->shell)
        return json_string(spec->argv[2]); /* /bin/sh -c LINE */
    json_t *a = json_array();
    for (char **p = spec->argv; a && *p; p++)
        if (json_array_append_new(a, json_string(*p)) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

json_t *gvd_spec_env_json(const gvd_spec *spec, bool hide_values)
{
    json_t *o = json_object();
    for (char **p = spec->env; o && p && *p; p++) {
        const char *eq = strchr(*p, '=');
        if (!eq)
            continue;
        char *key = strndup(*p, (size_t)(eq - *p));
        json_t *v = hide_values ? json_null() : json_string(eq + 1);
        if (!key || !v || json_object_set_new(o, key, v) != 0) {
            json_decref(o);
            o = NULL;
        }
        free(key);
    }
    return o;
}

/* "labels": {"team": "payments", "env": "prod"} — at most 32; names of 1 to
 * 63 of A-Z a-z 0-9 _ . - /, values strings of at most 200 bytes.  Global
 * rules match them and GET /jobs?label=K=V filters by them. */
static int gvd_labels_check(json_t *labels, gvd_error *err)
{
    if (!json_is_object(labels))
        return gvd_bad(err, "field \"labels\" must be an object of strings", NULL, NULL);
    if (json_object_size(labels) > 32)
        return gvd_bad(err, "field \"labels\" has more than 32 labels", NULL, NULL);
    const char *key;
    json_t *v;
    json_object_foreach(labels, key, v) {
        size_t n = strlen(key);
        bool ok = n > 0 && n <= 63;
        for (const char *p = key; ok && *p; p++)
            ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
                 *p == '.' || *p == '-' || *p == '/';
        if (!ok)
            return gvd_bad(err, "field \"labels\": \"%.63s\" is not a label name (1 to 63 of A-Z a-z 0-9 _ . - /)",
                           key, NULL);
        if (!json_is_string(v) || json_string_length(v) > 200 || strlen(json_string_value(v)) != json_string_length(v))
            return gvd_bad(err, "field \"labels\": the value of \"%.63s\" must be a string of at most 200 bytes",
                           key, NULL);
    }
    return 0;
}

/* Parse into *spec; shared by a new request (`strict`: held to the
 * GVD_SPEC_MAX_* limits) and a stored spec (not: it was accepted once). */
static int gvd_spec_fill(json_t *body, const gvd_config *cfg, bool strict, gvd_spec *spec, gvd_error *err)
{
    memset(spec, 0, sizeof *spec);
    spec->retry_backoff_s = 1.0;
    spec->demo_step_ms = cfg->demo_step_ms ? cfg->demo_step_ms : 100;
    const char *kind = "process", *name = NULL, *cwd = NULL, *pause_mode = "stop";
    if (gvd_get_string(body, "kind", &kind, err) || gvd_get_string(body, "name", &name, err) ||
        gvd_get_string(body, "cwd", &cwd, err) || gvd_get_string(body, "pause_mode", &pause_mode, err))
        return -1;
    if (strcmp(kind, "process") == 0)
        spec->kind = GVD_EXEC_PROCESS;
    else if (strcmp(kind, "demo") == 0)
        spec->kind = GVD_EXEC_DEMO;
    else
        return gvd_bad(err, "field \"kind\" must be \"process\" or \"demo\", not \"%s\"", kind, NULL);
    if (strcmp(pause_mode, "stop") == 0)
        spec->pause_mode = GVD_PAUSE_STOP;
    else if (strcmp(pause_mode, "cooperative") == 0)
        spec->pause_mode = GVD_PAUSE_COOPERATIVE;
    else
        return gvd_bad(err, "field \"pause_mode\" must be \"stop\" or \"cooperative\", not \"%s\"", pause_mode,
                       NULL);
    if (name && strlen(name) > 200)
        return gvd_bad(err, "field \"name\" is longer than 200 bytes", NULL, NULL);
    if (strict && cwd && strlen(cwd) > GVD_SPEC_MAX_CWD_BYTES)
        return gvd_too_large(err, "cwd", strlen(cwd), "bytes", GVD_SPEC_MAX_CWD_BYTES);

    json_t *shell = json_object_get(body, "shell");
    if (shell && !json_is_null(shell) && !json_is_boolean(shell))
        return gvd_bad(err, "field \"shell\" must be true or false", NULL, NULL);
    spec->shell = shell && json_is_true(shell);
    /* Several nodes: a job whose node is lost is retried elsewhere unless
     * it must never run twice (cluster/node.c reads it from the stored spec). */
    json_t *amo = json_object_get(body, "at_most_once");
    if (amo && !json_is_null(amo) && !json_is_boolean(amo))
        return gvd_bad(err, "field \"at_most_once\" must be true or false", NULL, NULL);
    spec->at_most_once = amo && json_is_true(amo);

    int64_t step = spec->demo_step_ms;
    if (gvd_get_seconds(body, "timeout", GVD_SPEC_MAX_TIMEOUT_S, strict, &spec->timeout_s, err) ||
        gvd_get_integer(body, "max_retries", 0, 100, &spec->max_retries, err) ||
        gvd_get_seconds(body, "retry_backoff", GVD_SPEC_MAX_BACKOFF_S, strict, &spec->retry_backoff_s, err) ||
        gvd_get_integer(body, "priority", -1000000, 1000000, &spec->priority, err) ||
        gvd_get_integer(body, "demo_step_ms", 1, 60000, &step, err))
        return -1;
    spec->demo_step_ms = (unsigned)step;

    json_t *params = json_object_get(body, "params");
    if (params && !json_is_null(params) && !json_is_object(params))
        return gvd_bad(err, "field \"params\" must be an object", NULL, NULL);
    json_t *env = json_object_get(body, "env");
    if (env && !json_is_null(env) && !json_is_object(env))
        return gvd_bad(err, "field \"env\" must be an object of strings", NULL, NULL);

    json_t *command = json_object_get(body, "command");
    if (spec->kind == GVD_EXEC_DEMO) {
        if (command && !json_is_null(command))
            return gvd_bad(err, "a demo job takes no \"command\"", NULL, NULL);
        if (spec->shell)
            return gvd_bad(err, "a demo job takes no \"shell\"", NULL, NULL);
        /* The demo runs inside galvanid: a process's fields would be accepted
         * and then silently mean nothing. */
        static const char *const process_only[] = {"env", "cwd", "pause_mode", NULL};
        for (int i = 0; process_only[i]; i++) {
            json_t *v = json_object_get(body, process_only[i]);
            if (v && !json_is_null(v))
                return gvd_bad(err, "a demo job takes no \"%s\" (it runs inside galvanid)", process_only[i], NULL);
        }
    } else if (json_object_get(body, "demo_step_ms") && !json_is_null(json_object_get(body, "demo_step_ms"))) {
        return gvd_bad(err, "only a demo job takes \"demo_step_ms\"", NULL, NULL);
    } else if (!command || json_is_null(command)) {
        return gvd_bad(err, "field \"command\" is required (an array of strings, or a string with "
                            "\"shell\": true)", NULL, NULL);
    } else if (spec->shell) {
        const char *line = NULL;
        if (gvd_get_string(body, "command", &line, err))
            return gvd_bad(err, "with \"shell\": true, field \"command\" must be a string", NULL, NULL);
        if (!*line)
            return gvd_bad(err, "field \"command\" must not be empty", NULL, NULL);
        const char *const sh[] = {"/bin/sh", "-c", line};
        if (!(spec->argv = gvd_argv_pack(sh, 3, sizeof "/bin/sh" + sizeof "-c" + strlen(line) + 1, strict, err)))
            return -1;
    } else {
        if (!json_is_array(command))
            return gvd_bad(err, "field \"command\" must be an array of strings (or a string with \"shell\": "
                                "true)", NULL, NULL);
        if (!(spec->argv = gvd_argv_from_array(command, strict, err)))
            return -1;
    }
    if (!(spec->env = gvd_env_from_object(env && json_is_object(env) ? env : NULL, strict, err))) {
        gvd_spec_clear(spec);
        return -1;
    }
    const char *base = name;
    if (!base) {
        if (spec->kind == GVD_EXEC_DEMO)
            base = "demo";
        else {
            const char *prog = spec->shell ? spec->argv[2] : spec->argv[0];
            const char *slash = strrchr(prog, '/');
            base = slash && slash[1] ? slash + 1 : prog;
        }
    }
    /* The default name is the program's base name, cut to 63 bytes — at a
     * character boundary: half a UTF-8 character would make the name
     * unrepresentable in JSON (found by fuzz/fuzz_spec.c: the job was refused
     * with "503 out of memory"). */
    char shortname[64];
    size_t cut = strlen(base);
    if (cut >= sizeof shortname) {
        cut = sizeof shortname - 1;
        while (cut > 0 && ((unsigned char)base[cut] & 0xC0) == 0x80)
            cut--; /* base[cut] is a continuation byte: the cut splits a character */
    }
    memcpy(shortname, base, cut);
    shortname[cut] = '\0';
    spec->name = gvd_strdup(name ? name : shortname);
    spec->cwd = cwd ? gvd_strdup(cwd) : NULL;
    if (!spec->name || (cwd && !spec->cwd)) {
        gvd_spec_clear(spec);
        gvd_error_set(err, 503, "out_of_memory", "out of memory");
        return -1;
    }
    return 0;
}

static json_t *gvd_spec_normalize(json_t *body, const gvd_spec *spec)
{
    json_t *n = json_object();
    if (!n)
        return NULL;
    json_t *command = json_object_get(body, "command");
    json_t *env = json_object_get(body, "env");
    int rc = 0;
    rc |= json_object_set_new(n, "name", json_string(spec->name));
    rc |= json_object_set_new(n, "kind", json_string(spec->kind == GVD_EXEC_DEMO ? "demo" : "process"));
    if (spec->kind == GVD_EXEC_PROCESS) {
        rc |= json_object_set_new(n, "command", json_deep_copy(command));
        rc |= json_object_set_new(n, "shell", json_boolean(spec->shell));
        rc |= json_object_set_new(n, "env", env && json_is_object(env) ? json_deep_copy(env) : json_object());
        rc |= json_object_set_new(n, "cwd", spec->cwd ? json_string(spec->cwd) : json_null());
        rc |= json_object_set_new(n, "pause_mode",
                                  json_string(spec->pause_mode == GVD_PAUSE_COOPERATIVE ? "cooperative" : "stop"));
    } else {
        rc |= json_object_set_new(n, "demo_step_ms", json_integer(spec->demo_step_ms));
    }
    rc |= json_object_set_new(n, "timeout", spec->timeout_s > 0 ? json_real(spec->timeout_s) : json_null());
    rc |= json_object_set_new(n, "max_retries", json_integer(spec->max_retries));
    rc |= json_object_set_new(n, "at_most_once", json_boolean(spec->at_most_once));
    rc |= json_object_set_new(n, "retry_backoff", json_real(spec->retry_backoff_s));
    rc |= json_object_set_new(n, "priority", json_integer(spec->priority));
    json_t *schema = json_object_get(body, "params_schema");
    if (schema && !json_is_null(schema))
        rc |= json_object_set_new(n, "params_schema", json_deep_copy(schema));
    json_t *labels = json_object_get(body, "labels");
    if (labels && !json_is_null(labels))
        rc |= json_object_set_new(n, "labels", json_deep_copy(labels));
    json_t *rules = json_object_get(body, "rules");
    if (rules && !json_is_null(rules)) {
        json_t *norm = NULL;
        gvd_error ignored = {0};
        /* checked by gvd_spec_parse already; this only names each rule */
        rc |= gvd_rules_check_spec(rules, &norm, &ignored) != 0 || json_object_set_new(n, "rules", norm) != 0;
    }
    if (rc) {
        json_decref(n);
        return NULL;
    }
    return n;
}

int gvd_spec_parse(json_t *body, const gvd_config *cfg, gvd_spec *spec, json_t **normalized, json_t **params,
                   gvd_error *err)
{
    if (!json_is_object(body)) {
        gvd_error_set(err, 400, "invalid_spec", "the job spec must be a JSON object");
        return -1;
    }
    if (gvd_check_unknown(body, err))
        return -1;
    /* The schema first, then the initial params against it (422 naming the
     * param and the rule, like a refused patch). */
    json_t *schema = json_object_get(body, "params_schema");
    if (schema && json_is_null(schema))
        schema = NULL;
    json_t *p = json_object_get(body, "params");
    if (gvd_json_size_check(schema, "params_schema", "spec_too_large", err) != 0 ||
        gvd_json_size_check(json_is_object(p) ? p : NULL, "params", "spec_too_large", err) != 0)
        return -1;
    if (schema && gvd_schema_check(schema, err) != 0)
        return -1;
    json_t *labels = json_object_get(body, "labels");
    if (labels && !json_is_null(labels) && gvd_labels_check(labels, err) != 0)
        return -1;
    json_t *rules = json_object_get(body, "rules"), *checked = NULL;
    if (rules && !json_is_null(rules)) {
        if (gvd_rules_check_spec(rules, &checked, err) != 0)
            return -1;
        json_decref(checked);
    }
    if (gvd_spec_fill(body, cfg, true, spec, err))
        return -1;
    if (schema && gvd_schema_validate(schema, json_is_object(p) ? p : NULL, err) != 0) {
        gvd_spec_clear(spec);
        return -1;
    }
    *params = p && json_is_object(p) ? json_deep_copy(p) : json_object();
    *normalized = gvd_spec_normalize(body, spec);
    if (!*params || !*normalized) {
        json_decref(*params);
        json_decref(*normalized);
        gvd_spec_clear(spec);
        gvd_error_set(err, 503, "out_of_memory", "out of memory");
        return -1;
    }
    return 0;
}

int gvd_spec_from_json(json_t *stored, const gvd_config *cfg, gvd_spec *spec, gvd_error *err)
{
    if (!json_is_object(stored)) {
        gvd_error_set(err, 500, "corrupt_store", "stored job spec is not a JSON object");
        return -1;
    }
    return gvd_spec_fill(stored, cfg, false, spec, err);
}
