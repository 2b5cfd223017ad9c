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

static void lookup(void *ud, gvd_expr_source source, const char *name, gvd_expr_value *out)
{
    const answers *a = ud;
    uint32_t h = a->seed + (uint32_t)source * 31u;
    for (const char *p = name; *p; p++)
        h = h * 131u + (uint8_t)*p;
    switch (h % 5) {
    case 0: break; /* unknown */
    case 1: out->type = GVD_EXPR_NUMBER; out->num = (double)(h % 200) - 100.0; break;
    case 2: out->type = GVD_EXPR_STRING; out->str = name; break;
    case 3: out->type = GVD_EXPR_BOOL; out->b = h & 8; break;
    default: out->type = GVD_EXPR_NUMBER; out->num = 0.5; break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > GVD_EXPR_MAX_LEN + 16)
        return 0;
    char *src = malloc(size + 1);
    FUZZ_CHECK(src != NULL);
    memcpy(src, data, size);
    src[size] = '\0';
    size_t len = strlen(src); /* an embedded NUL ends the text, as in a C string */

    gvd_expr_error err, err2;
    gvd_expr *e = gvd_expr_parse(src, &err);
    gvd_expr *again = gvd_expr_parse(src, &err2);
    FUZZ_CHECK((e == NULL) == (again == NULL));
    if (!e) {
        FUZZ_CHECK(err.message[0] != '\0');
        FUZZ_CHECK(err.column >= 1 && (size_t)err.column <= len + 1);
        FUZZ_CHECK(err.column == err2.column && strcmp(err.message, err2.message) == 0);
        free(src);
        return 0;
    }
    double hold = gvd_expr_hold(e);
    FUZZ_CHECK(hold == 0 || (hold > 0 && hold <= GVD_EXPR_MAX_HOLD_S));
    FUZZ_CHECK(gvd_expr_nvars(e) <= len && gvd_expr_nvars(e) == gvd_expr_nvars(again));
    for (size_t i = 0; i < gvd_expr_nvars(e); i++)
        FUZZ_CHECK(gvd_expr_var_at(e, i)->name && gvd_expr_var_at(e, i)->name[0]);
    for (uint8_t seed = 0; seed < 4; seed++) {
        answers a = {(uint8_t)(seed + (size ? data[0] : 0))};
        gvd_expr_value v = gvd_expr_eval(e, lookup, &a), w = gvd_expr_eval(again, lookup, &a);
        FUZZ_CHECK(v.type == GVD_EXPR_BOOL || v.type == GVD_EXPR_UNKNOWN);
        FUZZ_CHECK(v.type == w.type && (v.type != GVD_EXPR_BOOL || v.b == w.b));
        FUZZ_CHECK(gvd_expr_holds(e, lookup, &a) == (v.type == GVD_EXPR_BOOL && v.b));
    }
    gvd_expr_free(again);
    gvd_expr_free(e);
    free(src);
    return 0;
}
