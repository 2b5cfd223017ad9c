/*
 * fuzz_rule_expr.c — libFuzzer target for the rule condition language
 * (rules/expr.c): the "when" of a rule, in a job spec or POST /rules, is
 * untrusted text parsed by the daemon.
 *
 * Checks, beyond "no crash / no sanitizer report / no leak / no deep
 * recursion":
 *   - a refused condition has a message and a column inside the text (or
 *     just past its end), or column 0 for out of memory (never here);
 *   - an accepted condition has a hold in (0, 7 days] or none, at most as
 *     many distinct variables as the text has bytes, and evaluates to true,
 *     false or unknown against any values, the same each time (the lookup
 *     answers from a seed derived from the input, so unknowns, numbers,
 *     strings and booleans of any variable all occur);
 *   - parsing is deterministic: the same text is accepted or refused the
 *     same way twice.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "rules/expr.h"

typedef struct answers {
    uint8_t seed;
} answers;

static void lookup(void *ud, const gvd_expr_var *var, gvd_expr_value *out)
{
    const answers *a = ud;
    const char *name = var->name;
    uint32_t h = a->seed + (uint32_t)var->source * 31u;
    for (const char *p = name; *p; p++)
        h = h * 131u + (uint8_t)*p;
    for (const char *p = var->step ? var->step : ""; *p; p++)
        h = h * 137u + (uint8_t)*p;
    switch (h % 5) {
    case 0: break; /* unknown */
    case 1: out->type = GVD_EXPR_NUMBER; out->num = (double)(h % 200) - 100.0; break;
    case 2: out->type = GVD_EXPR_STRING; out->str = name; break;
    case 3: out->type = GVD_EXPR_BOOL; out->b = h & 8; break;
    default: out->type = GVD_EXPR_NUMBER; out->num = 0.5; break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Both contexts: a job's rules and a pipeline's (steps.*, pipeline.*). */
static void check(const char *src, size_t len, uint8_t first, gvd_expr_context ctx)
{
    gvd_expr_error err, err2;
    gvd_expr *e = gvd_expr_parse_for(src, ctx, &err);
    gvd_expr *again = gvd_expr_parse_for(src, ctx, &err2);
    FUZZ_CHECK((e == NULL) == (again == NULL));
    if (!e) {
        FUZZ_CHECK(err.message[0] != '\0');
        FUZZ_CHECK(err.column >= 1 && (size_t)err.column <= len + 1);
        FUZZ_CHECK(err.column == err2.column && strcmp(err.message, err2.message) == 0);
        return;
    }
    double hold = gvd_expr_hold(e);
    FUZZ_CHECK(hold == 0 || (hold > 0 && hold <= GVD_EXPR_MAX_HOLD_S));
    FUZZ_CHECK(gvd_expr_nvars(e) <= len && gvd_expr_nvars(e) == gvd_expr_nvars(again));
    for (size_t i = 0; i < gvd_expr_nvars(e); i++) {
        const gvd_expr_var *var = gvd_expr_var_at(e, i);
        FUZZ_CHECK(var->name && var->name[0]);
        /* the context decides what a condition may name */
        bool about_pipeline = var->step || var->source == GVD_EXPR_PIPELINE;
        FUZZ_CHECK(about_pipeline == (ctx == GVD_EXPR_FOR_PIPELINE));
    }
    for (uint8_t seed = 0; seed < 4; seed++) {
        answers a = {(uint8_t)(seed + first)};
        gvd_expr_value v = gvd_expr_eval(e, lookup, &a), w = gvd_expr_eval(again, lookup, &a);
        FUZZ_CHECK(v.type == GVD_EXPR_BOOL || v.type == GVD_EXPR_UNKNOWN);
        FUZZ_CHECK(v.type == w.type && (v.type != GVD_EXPR_BOOL || v.b == w.b));
        FUZZ_CHECK(gvd_expr_holds(e, lookup, &a) == (v.type == GVD_EXPR_BOOL && v.b));
    }
    gvd_expr_free(again);
    gvd_expr_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > GVD_EXPR_MAX_LEN + 16)
        return 0;
    char *src = malloc(size + 1);
    FUZZ_CHECK(src != NULL);
    memcpy(src, data, size);
    src[size] = '\0';
    size_t len = strlen(src); /* an embedded NUL ends the text, as in a C string */
    check(src, len, size ? data[0] : 0, GVD_EXPR_FOR_JOB);
    check(src, len, size ? data[0] : 0, GVD_EXPR_FOR_PIPELINE);
    free(src);
    return 0;
}
