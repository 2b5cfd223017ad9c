/*
 * expr.c — see expr.h.  A hand-written lexer and recursive-descent parser
 * building a tree whose nodes carry their static type, so a condition that
 * could never be evaluated ("progress > \"high\"", "1 and 2") is refused at
 * creation with the column of the offending token.  Recursion is bounded:
 * the parser counts nesting (GVD_EXPR_MAX_DEPTH) and the source length is
 * capped, so neither parsing, evaluation nor freeing can exhaust the stack.
 */
#include "expr.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const gvd_expr_field gvd_expr_fields[] = {
    {"progress", GVD_EXPR_NUMBER}, /* percent, 0..100 */
    {"current", GVD_EXPR_NUMBER},  {"total", GVD_EXPR_NUMBER},
    {"status", GVD_EXPR_STRING},   {"rate", GVD_EXPR_NUMBER},
    {"eta", GVD_EXPR_NUMBER},      {"attempts", GVD_EXPR_NUMBER},
    {"elapsed", GVD_EXPR_NUMBER},  {"message", GVD_EXPR_STRING},
    {"name", GVD_EXPR_STRING},     {"pid", GVD_EXPR_NUMBER},
    {"exit_code", GVD_EXPR_NUMBER}, {NULL, GVD_EXPR_UNKNOWN},
};

const gvd_expr_field gvd_expr_pipeline_fields[] = {
    {"status", GVD_EXPR_STRING},          {"progress", GVD_EXPR_NUMBER},
    {"steps", GVD_EXPR_NUMBER},           {"failed_steps", GVD_EXPR_NUMBER},
    {"succeeded_steps", GVD_EXPR_NUMBER}, {"running_steps", GVD_EXPR_NUMBER},
    {"waiting_steps", GVD_EXPR_NUMBER},   {"skipped_steps", GVD_EXPR_NUMBER},
    {NULL, GVD_EXPR_UNKNOWN},
};

/* ---- tokens ---------------------------------------------------------- */

typedef enum tok_kind {
    TOK_END, TOK_NUM, TOK_DURATION, TOK_STR, TOK_IDENT, TOK_VAR, TOK_OP, TOK_LPAREN, TOK_RPAREN
} tok_kind;

typedef enum cmp_op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } cmp_op;
static const char *const op_text[] = {"==", "!=", "<", "<=", ">", ">="};

typedef struct tok {
    tok_kind kind;
    int column;           /* 1-based */
    const char *p;        /* start in the source */
    size_t len;
    double num;           /* TOK_NUM, TOK_DURATION (seconds) */
    cmp_op op;            /* TOK_OP */
    char *text;           /* TOK_STR (unescaped), TOK_VAR (the name): owned until taken */
    gvd_expr_source src;  /* TOK_VAR */
    char *step;           /* TOK_VAR, TOK_IDENT after "steps.STEP.": STEP, owned until taken */
    const char *name;     /* TOK_IDENT: the field's own text (after any "steps.STEP.") */
    size_t name_len;
} tok;

/* ---- the tree -------------------------------------------------------- */

typedef enum node_kind { N_LIT, N_VAR, N_CMP, N_AND, N_OR, N_NOT } node_kind;

typedef struct node {
    node_kind kind;
    gvd_expr_type type; /* static type; UNKNOWN = any (params) */
    cmp_op op;
    gvd_expr_value lit; /* N_LIT; lit.str owned */
    size_t var;         /* N_VAR: index into vars */
    struct node *a, *b;
} node;

struct gvd_expr {
    node *root;
    double hold_s;
    gvd_expr_var *vars; /* owned, names owned */
    size_t nvars;
};

typedef struct parser {
    const char *src;
    size_t pos;
    tok t;          /* the current token */
    int depth;
    gvd_expr *e;
    gvd_expr_error *err;
    gvd_expr_context ctx;
    bool failed;
} parser;

static bool fail_at(parser *ps, int column, const char *fmt, ...)
{
    if (ps->failed)
        return false;
    ps->failed = true;
    ps->err->column = column;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err->message, sizeof ps->err->message, fmt, ap);
    va_end(ap);
    return false;
}

/* What the current token is, for "found ..." in messages. */
static void describe(const tok *t, char *buf, size_t n)
{
    switch (t->kind) {
    case TOK_END: snprintf(buf, n, "the end"); break;
    case TOK_NUM: case TOK_DURATION: snprintf(buf, n, "the number '%.*s'", (int)(t->len > 40 ? 40 : t->len), t->p); break;
    case TOK_STR: snprintf(buf, n, "a string"); break;
    default: snprintf(buf, n, "'%.*s'", (int)(t->len > 40 ? 40 : t->len), t->p); break;
    }
}

static bool is_name_char(char c) /* a metric or param name: the protocol's metric characters */
{
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-' || c == '/' || c == ':';
}

static bool lex_number(parser *ps, tok *t)
{
    const char *s = ps->src + ps->pos, *p = s;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (p == s + 1 && *s == '.')
        return fail_at(ps, t->column, "expected digits after '.'");
    if ((*p == 'e' || *p == 'E') && (isdigit((unsigned char)p[1]) ||
                                    ((p[1] == '+' || p[1] == '-') && isdigit((unsigned char)p[2])))) {
        p += 2;
        while (isdigit((unsigned char)*p))
            p++;
    }
    char buf[64];
    if ((size_t)(p - s) >= sizeof buf)
        return fail_at(ps, t->column, "number too long");
    memcpy(buf, s, (size_t)(p - s));
    buf[p - s] = '\0';
    t->num = strtod(buf, NULL);
    if (!isfinite(t->num))
        return fail_at(ps, t->column, "number out of range");
    t->kind = TOK_NUM;
    if (isalpha((unsigned char)*p)) { /* a duration: 30s, 500ms, 2m, 1h */
        const char *u = p;
        while (isalpha((unsigned char)*p))
            p++;
        size_t ul = (size_t)(p - u);
        double scale = ul == 1 && *u == 's' ? 1 : ul == 2 && !strncmp(u, "ms", 2) ? 0.001
                     : ul == 1 && *u == 'm' ? 60 : ul == 1 && *u == 'h' ? 3600 : 0;
        if (scale == 0)
            return fail_at(ps, t->column + (int)(u - s), "expected a unit of time (ms, s, m or h) after the number, "
                           "found '%.*s'", (int)(ul > 20 ? 20 : ul), u);
        t->num *= scale;
        t->kind = TOK_DURATION;
    }
    t->len = (size_t)(p - s);
    ps->pos += t->len;
    return true;
}

static bool lex_string(parser *ps, tok *t)
{
    const char *s = ps->src + ps->pos;
    char q = *s;
    size_t i = 1, n = 0;
    char *out = malloc(strlen(s) + 1);
    if (!out)
        return fail_at(ps, 0, "out of memory");
    for (;; i++) {
        char c = s[i];
        if (c == '\0') {
            free(out);
            return fail_at(ps, t->column, "unterminated string (expected a closing %c)", q);
        }
        if (c == q)
            break;
        if (c == '\\') {
            char e = s[++i];
            if (e == 'n') c = '\n';
            else if (e == 't') c = '\t';
            else if (e == '\\' || e == '"' || e == '\'') c = e;
            else {
                free(out);
                return fail_at(ps, t->column + (int)i - 1, "unknown escape in a string (expected \\\\, \\\", \\', \\n or \\t)");
            }
        }
        out[n++] = c;
    }
    out[n] = '\0';
    t->kind = TOK_STR;
    t->text = out;
    t->len = i + 1;
    ps->pos += t->len;
    return true;
}

static bool is_step_char(char c) /* a pipeline step's name */
{
    return isalnum((unsigned char)c) || c == '_' || c == '-';
}

static size_t word_len(const char *s)
{
    const char *p = s;
    while (isalnum((unsigned char)*p) || *p == '_')
        p++;
    return (size_t)(p - s);
}

static bool prefix_is(const char *s, size_t wl, const char *word)
{
    return wl == strlen(word) && !strncmp(s, word, wl) && s[wl] == '.';
}

/* The name after "metrics." / "params." / "pipeline." into t->text (owned);
 * *end: where it stops. */
static bool lex_name(parser *ps, tok *t, const char *start, const char *name, bool (*ok)(char), const char *what,
                     const char *prefix, const char *hint, const char **end)
{
    const char *p = name;
    while (ok(*p))
        p++;
    size_t nl = (size_t)(p - name);
    if (nl == 0 || nl > 255)
        return fail_at(ps, t->column + (int)(name - start), "expected %s after '%s.' (%s)", what, prefix, hint);
    t->text = malloc(nl + 1);
    if (!t->text)
        return fail_at(ps, 0, "out of memory");
    memcpy(t->text, name, nl);
    t->text[nl] = '\0';
    *end = p;
    return true;
}

static bool is_word_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

static bool lex_word(parser *ps, tok *t)
{
    const char *s = ps->src + ps->pos, *p = s;
    size_t wl = word_len(p);
    if (prefix_is(p, wl, "steps")) {
        /* steps.STEP.<rest>: the rest is read like a job's variable */
        const char *sn = p + wl + 1, *q = sn;
        while (is_step_char(*q))
            q++;
        size_t sl = (size_t)(q - sn);
        if (sl == 0 || sl > 64 || *q != '.')
            return fail_at(ps, t->column + (int)((sl == 0 || sl > 64 ? sn : q) - s),
                           "expected steps.STEP.FIELD (a step name of 1 to 64 of A-Z a-z 0-9 _ -, a '.', then a "
                           "field, metrics.NAME or params.NAME)");
        if (!(t->step = malloc(sl + 1)))
            return fail_at(ps, 0, "out of memory");
        memcpy(t->step, sn, sl);
        t->step[sl] = '\0';
        p = q + 1;
        wl = word_len(p);
        if (wl == 0)
            return fail_at(ps, t->column + (int)(p - s), "expected a field, metrics.NAME or params.NAME after 'steps.%s.'",
                           t->step);
    }
    bool metric = prefix_is(p, wl, "metrics"), param = prefix_is(p, wl, "params");
    if (!t->step && prefix_is(p, wl, "pipeline")) {
        if (!lex_name(ps, t, s, p + wl + 1, is_word_char, "a pipeline field", "pipeline",
                      "status, progress, failed_steps, ...", &p))
            return false;
        t->kind = TOK_VAR;
        t->src = GVD_EXPR_PIPELINE;
    } else if (metric || param) {
        if (!lex_name(ps, t, s, p + wl + 1, is_name_char, metric ? "a metric name" : "a param name",
                      metric ? "metrics" : "params", "1 to 255 of A-Z a-z 0-9 _ . - / :", &p))
            return false;
        t->kind = TOK_VAR;
        t->src = metric ? GVD_EXPR_METRIC : GVD_EXPR_PARAM;
    } else {
        t->kind = TOK_IDENT;
        t->name = p;
        t->name_len = wl;
        p += wl;
    }
    t->len = (size_t)(p - s);
    ps->pos += t->len;
    return true;
}

/* Advance to the next token (the previous one's text must have been taken
 * or freed). */
static bool next(parser *ps)
{
    free(ps->t.text);
    free(ps->t.step);
    memset(&ps->t, 0, sizeof ps->t);
    while (ps->src[ps->pos] == ' ' || ps->src[ps->pos] == '\t' || ps->src[ps->pos] == '\n' || ps->src[ps->pos] == '\r')
        ps->pos++;
    tok *t = &ps->t;
    const char *s = ps->src + ps->pos;
    t->column = (int)ps->pos + 1;
    t->p = s;
    char c = *s;
    if (c == '\0') {
        t->kind = TOK_END;
        return true;
    }
    if (isdigit((unsigned char)c) || c == '.')
        return lex_number(ps, t);
    if (c == '"' || c == '\'')
        return lex_string(ps, t);
    if (isalpha((unsigned char)c) || c == '_')
        return lex_word(ps, t);
    t->len = 1;
    if (c == '(' || c == ')') {
        t->kind = c == '(' ? TOK_LPAREN : TOK_RPAREN;
    } else if ((c == '=' || c == '!') && s[1] == '=') {
        t->kind = TOK_OP, t->op = c == '=' ? OP_EQ : OP_NE, t->len = 2;
    } else if (c == '<' || c == '>') {
        t->kind = TOK_OP;
        t->op = c == '<' ? (s[1] == '=' ? OP_LE : OP_LT) : (s[1] == '=' ? OP_GE : OP_GT);
        t->len = s[1] == '=' ? 2 : 1;
    } else if (c == '-') {
        t->kind = TOK_IDENT; /* unary minus; the parser checks a number follows */
    } else if (c == '=') {
        return fail_at(ps, t->column, "unexpected '=' (expected '==' to compare)");
    } else {
        return fail_at(ps, t->column, "unexpected character '%c' (expected a value, an operator or a parenthesis)",
                       isprint((unsigned char)c) ? c : '?');
    }
    ps->pos += t->len;
    return true;
}

static bool is_word(const tok *t, const char *w)
{
    return t->kind == TOK_IDENT && t->len == strlen(w) && !strncmp(t->p, w, t->len);
}

/* ---- parsing --------------------------------------------------------- */

static void node_free(node *n)
{
    if (!n)
        return;
    node_free(n->a);
    node_free(n->b);
    if (n->kind == N_LIT && n->lit.type == GVD_EXPR_STRING)
        free((char *)n->lit.str);
    free(n);
}

static node *node_new(parser *ps, node_kind kind, gvd_expr_type type)
{
    node *n = calloc(1, sizeof *n);
    if (!n) {
        fail_at(ps, 0, "out of memory");
        return NULL;
    }
    n->kind = kind;
    n->type = type;
    return n;
}

static const char *type_name(gvd_expr_type t)
{
    return t == GVD_EXPR_NUMBER ? "a number" : t == GVD_EXPR_STRING ? "a string" : t == GVD_EXPR_BOOL ? "a condition" : "a value";
}

static bool same_step(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

/* The index of the variable, added on first use (name and step are taken
 * over). */
static bool add_var(parser *ps, gvd_expr_source src, char *name, char *step, size_t *index)
{
    gvd_expr *e = ps->e;
    for (size_t i = 0; i < e->nvars; i++)
        if (e->vars[i].source == src && !strcmp(e->vars[i].name, name) && same_step(e->vars[i].step, step)) {
            free(name);
            free(step);
            *index = i;
            return true;
        }
    gvd_expr_var *v = realloc(e->vars, (e->nvars + 1) * sizeof *v);
    if (!v) {
        free(name);
        free(step);
        return fail_at(ps, 0, "out of memory");
    }
    e->vars = v;
    v[e->nvars].source = src;
    v[e->nvars].name = name;
    v[e->nvars].step = step;
    *index = e->nvars++;
    return true;
}

/* A job's rules read the job; a pipeline's rules name the pipeline or a
 * step.  Refuse the other kind where it stands. */
static bool check_context(parser *ps, const tok *t)
{
    bool about_pipeline = t->step || (t->kind == TOK_VAR && t->src == GVD_EXPR_PIPELINE);
    if (ps->ctx == GVD_EXPR_FOR_JOB && about_pipeline)
        return fail_at(ps, t->column, "'%.*s': steps.* and pipeline.* exist only in a pipeline's rules",
                       (int)(t->len > 60 ? 60 : t->len), t->p);
    if (ps->ctx == GVD_EXPR_FOR_PIPELINE && !about_pipeline)
        return fail_at(ps, t->column,
                       "'%.*s': a pipeline's rule names the pipeline (pipeline.failed_steps, ...) or a step "
                       "(steps.STEP.progress, steps.STEP.metrics.NAME, ...)",
                       (int)(t->len > 60 ? 60 : t->len), t->p);
    return true;
}

static const gvd_expr_field *find_field(const gvd_expr_field *f, const char *name, size_t len)
{
    while (f->name && !(strlen(f->name) == len && !strncmp(f->name, name, len)))
        f++;
    return f->name ? f : NULL;
}

static node *parse_or(parser *ps);

static const char *const expected_value =
    "expected a value (a number, a string, true, false, a job field, metrics.NAME or params.NAME)";

static node *parse_operand(parser *ps)
{
    tok *t = &ps->t;
    char found[80];
    if (t->kind == TOK_LPAREN) {
        if (++ps->depth > GVD_EXPR_MAX_DEPTH) {
            fail_at(ps, t->column, "nested too deeply (at most %d levels)", GVD_EXPR_MAX_DEPTH);
            return NULL;
        }
        if (!next(ps))
            return NULL;
        node *n = parse_or(ps);
        if (!n)
            return NULL;
        ps->depth--;
        if (ps->t.kind != TOK_RPAREN) {
            describe(&ps->t, found, sizeof found);
            fail_at(ps, ps->t.column, "expected ')' or an operator, found %s", found);
            node_free(n);
            return NULL;
        }
        if (!next(ps)) {
            node_free(n);
            return NULL;
        }
        return n;
    }
    node *n = NULL;
    if (t->kind == TOK_NUM || (is_word(t, "-") && isdigit((unsigned char)ps->src[ps->pos]))) {
        double sign = 1;
        if (t->kind != TOK_NUM) {
            sign = -1;
            if (!next(ps))
                return NULL;
            if (t->kind != TOK_NUM) {
                describe(t, found, sizeof found);
                fail_at(ps, t->column, "expected a number after '-', found %s", found);
                return NULL;
            }
        }
        if (!(n = node_new(ps, N_LIT, GVD_EXPR_NUMBER)))
            return NULL;
        n->lit.type = GVD_EXPR_NUMBER;
        n->lit.num = sign * t->num;
    } else if (t->kind == TOK_DURATION) {
        fail_at(ps, t->column, "a duration ('%.*s') may only follow 'for' at the end of the condition", (int)t->len, t->p);
        return NULL;
    } else if (t->kind == TOK_STR) {
        if (!(n = node_new(ps, N_LIT, GVD_EXPR_STRING)))
            return NULL;
        n->lit.type = GVD_EXPR_STRING;
        n->lit.str = t->text;
        t->text = NULL;
    } else if (is_word(t, "true") || is_word(t, "false")) {
        if (!(n = node_new(ps, N_LIT, GVD_EXPR_BOOL)))
            return NULL;
        n->lit.type = GVD_EXPR_BOOL;
        n->lit.b = is_word(t, "true");
    } else if (t->kind == TOK_VAR) {
        if (!check_context(ps, t))
            return NULL;
        gvd_expr_type type = t->src == GVD_EXPR_METRIC ? GVD_EXPR_NUMBER : GVD_EXPR_UNKNOWN;
        if (t->src == GVD_EXPR_PIPELINE) {
            const gvd_expr_field *f = find_field(gvd_expr_pipeline_fields, t->text, strlen(t->text));
            if (!f) {
                fail_at(ps, t->column, "unknown pipeline field '%.40s' (expected status, progress, steps, "
                        "failed_steps, succeeded_steps, running_steps, waiting_steps or skipped_steps)", t->text);
                return NULL;
            }
            type = f->type;
        }
        if (!(n = node_new(ps, N_VAR, type)))
            return NULL;
        char *name = t->text, *step = t->step;
        t->text = t->step = NULL;
        if (!add_var(ps, t->src, name, step, &n->var)) {
            node_free(n);
            return NULL;
        }
    } else if (t->kind == TOK_IDENT && t->name_len > 0 && (isalpha((unsigned char)*t->name) || *t->name == '_') &&
               !is_word(t, "and") && !is_word(t, "or") && !is_word(t, "not") && !is_word(t, "for")) {
        if (!check_context(ps, t))
            return NULL;
        const gvd_expr_field *f = find_field(gvd_expr_fields, t->name, t->name_len);
        if (!f) {
            fail_at(ps, t->column, "unknown field '%.*s' (expected progress, current, total, status, rate, eta, "
                    "attempts, elapsed, message, name, pid, exit_code, metrics.NAME or params.NAME)",
                    (int)(t->name_len > 40 ? 40 : t->name_len), t->name);
            return NULL;
        }
        char *name = strdup(f->name);
        if (!name) {
            fail_at(ps, 0, "out of memory");
            return NULL;
        }
        if (!(n = node_new(ps, N_VAR, f->type))) {
            free(name);
            return NULL;
        }
        char *step = t->step;
        t->step = NULL;
        if (!add_var(ps, GVD_EXPR_FIELD, name, step, &n->var)) {
            node_free(n);
            return NULL;
        }
    } else {
        describe(t, found, sizeof found);
        fail_at(ps, t->column, "%s, found %s", expected_value, found);
        return NULL;
    }
    if (!next(ps)) {
        node_free(n);
        return NULL;
    }
    return n;
}

static bool compatible(gvd_expr_type a, gvd_expr_type b)
{
    return a == GVD_EXPR_UNKNOWN || b == GVD_EXPR_UNKNOWN || a == b;
}

static node *parse_cmp(parser *ps)
{
    node *l = parse_operand(ps);
    if (!l || ps->t.kind != TOK_OP)
        return l;
    tok op = ps->t;
    if (!next(ps)) {
        node_free(l);
        return NULL;
    }
    node *r = parse_operand(ps);
    if (!r) {
        node_free(l);
        return NULL;
    }
    node *n = NULL;
    bool ordering = op.op != OP_EQ && op.op != OP_NE;
    if (!compatible(l->type, r->type))
        fail_at(ps, op.column, "'%s' compares %s with %s (expected the same type on both sides)", op_text[op.op],
                type_name(l->type), type_name(r->type));
    else if (ordering && ((l->type != GVD_EXPR_NUMBER && l->type != GVD_EXPR_UNKNOWN) ||
                          (r->type != GVD_EXPR_NUMBER && r->type != GVD_EXPR_UNKNOWN)))
        fail_at(ps, op.column, "'%s' orders numbers, not %s (expected '==' or '!=')", op_text[op.op],
                type_name(l->type == GVD_EXPR_NUMBER || l->type == GVD_EXPR_UNKNOWN ? r->type : l->type));
    else if (ps->t.kind == TOK_OP)
        fail_at(ps, ps->t.column, "comparisons do not chain (expected 'and' or 'or' before '%s')", op_text[ps->t.op]);
    else if ((n = node_new(ps, N_CMP, GVD_EXPR_BOOL))) {
        n->op = op.op;
        n->a = l;
        n->b = r;
        return n;
    }
    node_free(l);
    node_free(r);
    return NULL;
}

/* A logic operand must be a condition (or a params value, checked later). */
static bool need_bool(parser *ps, const node *n, int column, const char *what)
{
    if (n->type == GVD_EXPR_BOOL || n->type == GVD_EXPR_UNKNOWN)
        return true;
    return fail_at(ps, column, "%s needs a condition (a comparison, true, false or params.NAME), not %s", what,
                   type_name(n->type));
}

static node *parse_not(parser *ps)
{
    if (!is_word(&ps->t, "not"))
        return parse_cmp(ps);
    int column = ps->t.column;
    if (++ps->depth > GVD_EXPR_MAX_DEPTH) {
        fail_at(ps, column, "nested too deeply (at most %d levels)", GVD_EXPR_MAX_DEPTH);
        return NULL;
    }
    if (!next(ps))
        return NULL;
    node *a = parse_not(ps);
    ps->depth--;
    if (!a)
        return NULL;
    node *n = NULL;
    if (need_bool(ps, a, column, "'not'") && (n = node_new(ps, N_NOT, GVD_EXPR_BOOL))) {
        n->a = a;
        return n;
    }
    node_free(a);
    return NULL;
}

static node *parse_chain(parser *ps, const char *word, node_kind kind, node *(*sub)(parser *))
{
    node *l = sub(ps);
    while (l && is_word(&ps->t, word)) {
        int column = ps->t.column;
        if (!need_bool(ps, l, column, kind == N_AND ? "'and'" : "'or'") || !next(ps)) {
            node_free(l);
            return NULL;
        }
        node *r = sub(ps);
        node *n = NULL;
        if (!r || !need_bool(ps, r, column, kind == N_AND ? "'and'" : "'or'") ||
            !(n = node_new(ps, kind, GVD_EXPR_BOOL))) {
            node_free(l);
            node_free(r);
            return NULL;
        }
        n->a = l;
        n->b = r;
        l = n;
    }
    return l;
}

static node *parse_and(parser *ps) { return parse_chain(ps, "and", N_AND, parse_not); }
static node *parse_or(parser *ps) { return parse_chain(ps, "or", N_OR, parse_and); }

gvd_expr *gvd_expr_parse(const char *src, gvd_expr_error *err)
{
    return gvd_expr_parse_for(src, GVD_EXPR_FOR_JOB, err);
}

gvd_expr *gvd_expr_parse_for(const char *src, gvd_expr_context ctx, gvd_expr_error *err)
{
    memset(err, 0, sizeof *err);
    size_t len = strlen(src);
    if (len > GVD_EXPR_MAX_LEN) {
        err->column = GVD_EXPR_MAX_LEN + 1;
        snprintf(err->message, sizeof err->message, "condition too long (at most %d bytes)", GVD_EXPR_MAX_LEN);
        return NULL;
    }
    gvd_expr *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err->message, sizeof err->message, "out of memory");
        return NULL;
    }
    parser ps = {.src = src, .e = e, .err = err, .ctx = ctx};
    char found[80];
    if (next(&ps) && ps.t.kind == TOK_END)
        fail_at(&ps, 1, "empty condition (%s)", expected_value);
    if (!ps.failed && (e->root = parse_or(&ps)) && need_bool(&ps, e->root, 1, "a rule")) {
        if (is_word(&ps.t, "for")) {
            if (next(&ps)) {
                if (ps.t.kind != TOK_DURATION) {
                    describe(&ps.t, found, sizeof found);
                    fail_at(&ps, ps.t.column, "expected a duration after 'for' (such as 30s, 500ms, 2m, 1h), found %s", found);
                } else if (ps.t.num <= 0 || ps.t.num > GVD_EXPR_MAX_HOLD_S) {
                    fail_at(&ps, ps.t.column, "a hold must be more than 0 and at most 7 days");
                } else {
                    e->hold_s = ps.t.num;
                    next(&ps);
                }
            }
        }
        if (!ps.failed && ps.t.kind != TOK_END) {
            describe(&ps.t, found, sizeof found);
            fail_at(&ps, ps.t.column, "expected 'and', 'or', a comparison, 'for DURATION' or the end, found %s", found);
        }
    }
    free(ps.t.text);
    free(ps.t.step);
    if (ps.failed || !e->root) {
        gvd_expr_free(e);
        return NULL;
    }
    return e;
}

void gvd_expr_free(gvd_expr *e)
{
    if (!e)
        return;
    node_free(e->root);
    for (size_t i = 0; i < e->nvars; i++) {
        free((char *)e->vars[i].name);
        free((char *)e->vars[i].step);
    }
    free(e->vars);
    free(e);
}

double gvd_expr_hold(const gvd_expr *e) { return e->hold_s; }
size_t gvd_expr_nvars(const gvd_expr *e) { return e->nvars; }
const gvd_expr_var *gvd_expr_var_at(const gvd_expr *e, size_t i) { return i < e->nvars ? &e->vars[i] : NULL; }

/* ---- evaluation ------------------------------------------------------ */

typedef struct eval_ctx {
    const gvd_expr *e;
    gvd_expr_lookup_fn lookup;
    void *ud;
} eval_ctx;

static gvd_expr_value unknown(void) { return (gvd_expr_value){.type = GVD_EXPR_UNKNOWN}; }
static gvd_expr_value boolean(bool b) { return (gvd_expr_value){.type = GVD_EXPR_BOOL, .b = b}; }

static gvd_expr_value eval(const eval_ctx *cx, const node *n)
{
    switch (n->kind) {
    case N_LIT:
        return n->lit;
    case N_VAR: {
        gvd_expr_value v = unknown();
        const gvd_expr_var *var = &cx->e->vars[n->var];
        cx->lookup(cx->ud, var, &v);
        if ((v.type == GVD_EXPR_NUMBER && !isfinite(v.num)) || (v.type == GVD_EXPR_STRING && !v.str))
            return unknown();
        /* A field or metric of another type than declared (it cannot
         * happen with the daemon's lookup) is unknown, not a surprise. */
        if (n->type != GVD_EXPR_UNKNOWN && v.type != n->type)
            return unknown();
        return v;
    }
    case N_CMP: {
        gvd_expr_value a = eval(cx, n->a), b = eval(cx, n->b);
        if (a.type == GVD_EXPR_UNKNOWN || b.type == GVD_EXPR_UNKNOWN || a.type != b.type)
            return unknown();
        if (a.type != GVD_EXPR_NUMBER && n->op != OP_EQ && n->op != OP_NE)
            return unknown(); /* a params string ordered: no order is defined */
        bool eq = a.type == GVD_EXPR_NUMBER ? a.num == b.num : a.type == GVD_EXPR_STRING ? !strcmp(a.str, b.str) : a.b == b.b;
        switch (n->op) {
        case OP_EQ: return boolean(eq);
        case OP_NE: return boolean(!eq);
        case OP_LT: return boolean(a.num < b.num);
        case OP_LE: return boolean(a.num <= b.num);
        case OP_GT: return boolean(a.num > b.num);
        case OP_GE: return boolean(a.num >= b.num);
        }
        return unknown();
    }
    case N_NOT: {
        gvd_expr_value a = eval(cx, n->a);
        return a.type == GVD_EXPR_BOOL ? boolean(!a.b) : unknown();
    }
    case N_AND:
    case N_OR: {
        bool is_and = n->kind == N_AND;
        gvd_expr_value a = eval(cx, n->a);
        if (a.type == GVD_EXPR_BOOL && a.b != is_and)
            return a; /* false and _ = false; true or _ = true */
        gvd_expr_value b = eval(cx, n->b);
        if (b.type == GVD_EXPR_BOOL && b.b != is_and)
            return b;
        if (a.type == GVD_EXPR_BOOL && b.type == GVD_EXPR_BOOL)
            return a;
        return unknown();
    }
    }
    return unknown();
}

gvd_expr_value gvd_expr_eval(const gvd_expr *e, gvd_expr_lookup_fn lookup, void *ud)
{
    eval_ctx cx = {e, lookup, ud};
    gvd_expr_value v = eval(&cx, e->root);
    return v.type == GVD_EXPR_BOOL ? v : unknown();
}

bool gvd_expr_holds(const gvd_expr *e, gvd_expr_lookup_fn lookup, void *ud)
{
    gvd_expr_value v = gvd_expr_eval(e, lookup, ud);
    return v.type == GVD_EXPR_BOOL && v.b;
}
