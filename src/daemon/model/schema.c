/*
 * schema.c — the optional "params_schema" of a job spec, and the check of a
 * job's params against it (docs/api.md, "Params schema").
 *
 *   {"lr": {"type": "number", "min": 0, "max": 1},
 *    "mode": {"enum": ["fast", "safe"]},
 *    "epochs": {"type": "integer", "required": true}}
 *
 * One entry per parameter; rules: type (number, integer, string, boolean),
 * enum (a non-empty array of allowed values), min and max (numbers, for
 * numeric parameters), required (a boolean).  With a schema, a parameter it
 * does not name is refused too: the point of a schema is that a typo ("lR")
 * cannot slip through as a new parameter nobody reads.
 *
 * The schema itself is checked when the job is created (400 invalid_spec
 * naming the entry and the rule); the params are checked after a patch is
 * merged and before anything is stored (422 invalid_params with "field" and
 * "rule"), so a refused patch changes nothing.  Pure: no state, no I/O.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const gvd_schema_types[] = {"number", "integer", "string", "boolean", NULL};

static int gvd_schema_bad(gvd_error *err, const char *name, const char *what)
{
    char msg[sizeof err->message];
    snprintf(msg, sizeof msg, "field \"params_schema\": entry \"%.100s\" %s", name, what);
    gvd_error_set(err, 400, "invalid_spec", msg);
    return -1;
}

/* Does `v` have schema type `type` (NULL: any)?  Integers are JSON integers:
 * 3.0 is a number, not an integer (what a client sent is what it gets). */
static bool gvd_type_ok(const char *type, json_t *v)
{
    if (!type)
        return true;
    if (!strcmp(type, "number"))
        return json_is_number(v);
    if (!strcmp(type, "integer"))
        return json_is_integer(v);
    if (!strcmp(type, "string"))
        return json_is_string(v);
    return json_is_boolean(v);
}

static int gvd_check_entry(const char *name, json_t *e, gvd_error *err)
{
    if (!*name)
        return gvd_schema_bad(err, name, "has an empty name");
    if (!json_is_object(e))
        return gvd_schema_bad(err, name, "must be an object of rules (type, enum, min, max, required)");
    const char *key;
    json_t *v;
    json_object_foreach(e, key, v) {
        if (strcmp(key, "type") && strcmp(key, "enum") && strcmp(key, "min") && strcmp(key, "max") &&
            strcmp(key, "required")) {
            char what[200];
            snprintf(what, sizeof what, "has an unknown rule \"%.60s\" (known: type, enum, min, max, required)", key);
            return gvd_schema_bad(err, name, what);
        }
    }
    json_t *type = json_object_get(e, "type");
    const char *t = NULL;
    if (type) {
        bool known = false;
        for (const char *const *k = gvd_schema_types; *k && json_is_string(type); k++)
            known |= strcmp(*k, json_string_value(type)) == 0;
        if (!known)
            return gvd_schema_bad(err, name, "rule \"type\" must be \"number\", \"integer\", \"string\" or \"boolean\"");
        t = json_string_value(type);
    }
    json_t *req = json_object_get(e, "required");
    if (req && !json_is_boolean(req))
        return gvd_schema_bad(err, name, "rule \"required\" must be true or false");
    json_t *min = json_object_get(e, "min"), *max = json_object_get(e, "max");
    if ((min && !json_is_number(min)) || (max && !json_is_number(max)))
        return gvd_schema_bad(err, name, "rules \"min\" and \"max\" must be numbers");
    if ((min || max) && t && strcmp(t, "number") && strcmp(t, "integer"))
        return gvd_schema_bad(err, name, "rules \"min\" and \"max\" apply to \"number\" and \"integer\" parameters only");
    if (min && max && json_number_value(min) > json_number_value(max))
        return gvd_schema_bad(err, name, "has \"min\" greater than \"max\"");
    json_t *en = json_object_get(e, "enum");
    if (en) {
        if (!json_is_array(en) || json_array_size(en) == 0)
            return gvd_schema_bad(err, name, "rule \"enum\" must be a non-empty array of allowed values");
        size_t i;
        json_t *a;
        json_array_foreach(en, i, a) {
            if (json_is_null(a) || json_is_object(a) || json_is_array(a))
                return gvd_schema_bad(err, name, "rule \"enum\" may only list strings, numbers and booleans");
            if (!gvd_type_ok(t, a))
                return gvd_schema_bad(err, name, "rule \"enum\" lists a value that is not of its \"type\"");
        }
    }
    return 0;
}

int gvd_schema_check(json_t *schema, gvd_error *err)
{
    if (!json_is_object(schema)) {
        gvd_error_set(err, 400, "invalid_spec", "field \"params_schema\" must be an object (one entry per parameter)");
        return -1;
    }
    const char *name;
    json_t *e;
    json_object_foreach(schema, name, e) {
        if (gvd_check_entry(name, e, err) != 0)
            return -1;
    }
    return 0;
}

/* 422 naming the parameter and the rule it breaks. */
static int gvd_violation(gvd_error *err, const char *field, const char *rule, const char *fmt, const char *a)
{
    char what[300], msg[sizeof err->message];
    snprintf(what, sizeof what, fmt, a ? a : "");
    snprintf(msg, sizeof msg, "param \"%.100s\" %s (rule \"%s\"); nothing was changed", field, what, rule);
    gvd_error_set(err, 422, "invalid_params", msg);
    if (err) {
        snprintf(err->field, sizeof err->field, "%s", field);
        err->rule = rule;
    }
    return -1;
}

static int gvd_check_value(const char *name, json_t *rules, json_t *v, gvd_error *err)
{
    const char *t = json_string_value(json_object_get(rules, "type"));
    if (!gvd_type_ok(t, v)) {
        char want[40];
        snprintf(want, sizeof want, "%s %s", !strcmp(t, "integer") ? "an" : "a", t);
        return gvd_violation(err, name, "type", "must be %s", want);
    }
    json_t *en = json_object_get(rules, "enum");
    if (en) {
        bool found = false;
        size_t i;
        json_t *a;
        json_array_foreach(en, i, a) found |= json_equal(a, v) != 0;
        if (!found) {
            char *list = json_dumps(en, JSON_COMPACT | JSON_ENCODE_ANY);
            int rc = gvd_violation(err, name, "enum", "must be one of %.200s", list ? list : "the listed values");
            free(list);
            return rc;
        }
    }
    json_t *min = json_object_get(rules, "min"), *max = json_object_get(rules, "max");
    if ((min || max) && !json_is_number(v))
        return gvd_violation(err, name, min ? "min" : "max", "must be a number%s", "");
    char lim[40];
    if (min && json_number_value(v) < json_number_value(min)) {
        snprintf(lim, sizeof lim, "%.15g", json_number_value(min));
        return gvd_violation(err, name, "min", "must be >= %s", lim);
    }
    if (max && json_number_value(v) > json_number_value(max)) {
        snprintf(lim, sizeof lim, "%.15g", json_number_value(max));
        return gvd_violation(err, name, "max", "must be <= %s", lim);
    }
    return 0;
}

int gvd_schema_validate(json_t *schema, json_t *params, gvd_error *err)
{
    if (!schema)
        return 0;
    const char *name;
    json_t *v;
    json_object_foreach(params, name, v) {
        json_t *rules = json_object_get(schema, name);
        if (!rules)
            return gvd_violation(err, name, "unknown", "is not in the job's params_schema%s", "");
        if (gvd_check_value(name, rules, v, err) != 0)
            return -1;
    }
    json_object_foreach(schema, name, v) {
        if (json_is_true(json_object_get(v, "required")) && !json_object_get(params, name))
            return gvd_violation(err, name, "required", "is required%s", "");
    }
    return 0;
}
