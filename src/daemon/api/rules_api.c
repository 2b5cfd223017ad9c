/*
 * rules_api.c — the global rules' routes (docs/api.md, "Global rules"):
 *
 *   POST   /rules        create: 201 with the rule and Location: /rules/{id}
 *   GET    /rules        {"rules": [...]}, oldest first
 *   GET    /rules/{id}   one rule
 *   DELETE /rules/{id}   204; removed from every job
 *
 * The rules themselves are rules/global.c's; this file only routes and
 * answers.
 */
#include "api_int.h"

#include <stdio.h>
#include <string.h>

#include "../rules/rules.h"

void gvd_on_rules(gvd_server *s, h2o_req_t *req, h2o_iovec_t path)
{
    if (gvd_iov_is(path, "/rules")) {
        if (gvd_http_method_is(req, "GET")) {
            static const char *const none[] = {NULL};
            gvd_query q;
            if (gvd_query_parse(req, none, &q) == 0)
                gvd_http_json(req, 200, gvd_rules_list_json(s->jobs), NULL);
        } else if (gvd_http_method_is(req, "POST")) {
            json_t *body = gvd_http_json_body(req, "a rule");
            if (!body)
                return;
            gvd_error err = {0};
            json_t *rule = gvd_rules_create(s->jobs, body, &err);
            json_decref(body);
            if (!rule) {
                gvd_http_error_from(req, &err);
                return;
            }
            gvd_http_created(req, rule, "rules", json_integer_value(json_object_get(rule, "id")));
        } else {
            gvd_http_method_not_allowed(req, "GET, POST");
        }
        return;
    }
    h2o_iovec_t seg = h2o_iovec_init(path.base + 7, path.len - 7);
    char idtext[24];
    snprintf(idtext, sizeof idtext, "%.*s", (int)(seg.len < 20 ? seg.len : 20), seg.base);
    int64_t id = memchr(seg.base, '/', seg.len) ? -1 : gvd_parse_uint(idtext, INT64_MAX / 2);
    if (seg.len > 18 || id <= 0) {
        gvd_http_error(req, 404, "not_found", "no such route: %.*s (rules: /rules, /rules/{id})", (int)path.len,
                       path.base);
        return;
    }
    if (gvd_http_method_is(req, "GET")) {
        json_t *rule = gvd_rules_get_json(s->jobs, id);
        if (rule)
            gvd_http_json(req, 200, rule, NULL);
        else
            gvd_http_error(req, 404, "not_found", "no rule %lld", (long long)id);
    } else if (gvd_http_method_is(req, "DELETE")) {
        gvd_error err = {0};
        if (gvd_rules_delete(s->jobs, id, &err) != 0)
            gvd_http_error_from(req, &err);
        else
            gvd_http_no_content(req);
    } else {
        gvd_http_method_not_allowed(req, "GET, DELETE");
    }
}
