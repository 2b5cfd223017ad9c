/*
 * test_dot.c — gv_dump_dot: a Graphviz digraph with one vertex per node
 * (named, with its value) and one edge per dependency, from source to reader.
 *
 * The checks parse as little DOT as possible: vertex statements are found by
 * the node's name in their label, and an edge "X -> Y" is matched by the
 * vertex ids taken from the start of those statements.
 */
#include "gv_test.h"

/* Dump the current thread's graph into a heap string (caller frees). */
static char *dump(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(gv_dump_dot(f), 0);
    assert_int_equal(fclose(f), 0);
    assert_non_null(buf);
    return buf;
}

static size_t count_substr(const char *hay, const char *needle)
{
    size_t n = 0, nl = strlen(needle);
    for (const char *p = strstr(hay, needle); p; p = strstr(p + nl, needle))
        n++;
    return n;
}

/* The id of the vertex whose statement mentions `name`: the first token of
 * the first line that contains `name` and is not an edge. */
static void vertex_id(const char *dot, const char *name, char *id, size_t idsz)
{
    id[0] = '\0';
    for (const char *line = dot; *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        char tmp[512];
        if (len < sizeof tmp) {
            memcpy(tmp, line, len);
            tmp[len] = '\0';
            if (strstr(tmp, name) && !strstr(tmp, "->")) {
                const char *p = tmp;
                while (*p == ' ' || *p == '\t')
                    p++;
                size_t n = strcspn(p, " \t[;");
                if (n > 0 && n < idsz) {
                    memcpy(id, p, n);
                    id[n] = '\0';
                    return;
                }
            }
        }
        if (!eol)
            break;
        line = eol + 1;
    }
}

/* Is there an edge statement "from -> to"? */
static bool has_edge(const char *dot, const char *from, const char *to)
{
    char want[300];
    snprintf(want, sizeof want, "%s -> %s", from, to);
    for (const char *p = strstr(dot, want); p; p = strstr(p + 1, want)) {
        char after = p[strlen(want)];
        bool starts_line = p == dot || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n';
        bool ends_id = after == ' ' || after == ';' || after == '[' || after == '\n' || after == '\0';
        if (starts_line && ends_id)
            return true;
    }
    return false;
}

typedef struct product {
    gv_signal *a, *b;
    int runs;
} product;

static void product_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    product *p = ud;
    p->runs++;
    *out = gv_int(gv_signal_get_int(p->a) * gv_signal_get_int(p->b));
}

typedef struct cwatch {
    gv_computed *c;
    int runs;
} cwatch;

static void cwatch_fn(void *ud)
{
    cwatch *w = ud;
    w->runs++;
    (void)gv_computed_get_int(w->c);
}

static void test_dot_graph(void **state)
{
    (void)state;
    gv_signal *price = gv_signal_new(gv_int(1111));
    gv_signal *qty = gv_signal_new(gv_int(7));
    gv_signal_set_name(price, "price");
    gv_signal_set_name(qty, "qty");
    product p = {.a = price, .b = qty};
    gv_computed *total = gv_computed_new(product_fn, &p);
    gv_computed_set_name(total, "total");
    cwatch w = {.c = total};
    gv_effect *logger = gv_effect_new(cwatch_fn, &w);
    gv_effect_set_name(logger, "logger");

    char *dot = dump();
    assert_non_null(strstr(dot, "digraph"));
    assert_non_null(strstr(dot, "price"));
    assert_non_null(strstr(dot, "qty"));
    assert_non_null(strstr(dot, "total"));
    assert_non_null(strstr(dot, "logger"));
    assert_non_null(strstr(dot, "7777")); /* labels carry values */
    assert_non_null(strrchr(dot, '}'));

    gv_stats st;
    gv_get_stats(&st);
    assert_int_equal(st.links, 3);
    assert_int_equal(count_substr(dot, "->"), 3);

    char idp[128], idq[128], idt[128], idl[128];
    vertex_id(dot, "price", idp, sizeof idp);
    vertex_id(dot, "qty", idq, sizeof idq);
    vertex_id(dot, "total", idt, sizeof idt);
    vertex_id(dot, "logger", idl, sizeof idl);
    assert_true(idp[0] && idq[0] && idt[0] && idl[0]);
    assert_string_not_equal(idp, idt);
    assert_true(has_edge(dot, idp, idt));
    assert_true(has_edge(dot, idq, idt));
    assert_true(has_edge(dot, idt, idl));
    free(dot);

    /* The effect gone: its edge goes too. */
    gv_effect_free(logger);
    dot = dump();
    gv_get_stats(&st);
    assert_int_equal(count_substr(dot, "->"), st.links);
    assert_null(strstr(dot, "logger"));
    free(dot);

    gv_computed_free(total);
    gv_signal_free(price);
    gv_signal_free(qty);
}

static void test_dot_empty_graph(void **state)
{
    (void)state;
    char *dot = dump();
    assert_non_null(strstr(dot, "digraph"));
    assert_int_equal(count_substr(dot, "->"), 0);
    free(dot);
}

static void test_dot_escapes_names(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_str("q\"v"));
    gv_signal_set_name(s, "say \"hi\"");
    char *dot = dump();
    /* A raw quote inside a quoted DOT label would end it early: names and
     * string values are escaped. */
    assert_non_null(strstr(dot, "say \\\"hi\\\""));
    assert_non_null(strstr(dot, "q\\\"v"));
    assert_null(strstr(dot, "say \"hi"));
    assert_null(strstr(dot, "q\"v"));
    free(dot);
    gv_signal_free(s);
}

static void test_dot_write_failure(void **state)
{
    (void)state;
    gv_signal *s = gv_signal_new(gv_int(1));
    gv_signal_set_name(s, "unwritable");
    FILE *ro = fopen("/dev/null", "r"); /* every write to it fails */
    assert_non_null(ro);
    assert_int_equal(gv_dump_dot(ro), -1);
    assert_int_equal(fclose(ro), 0);
    gv_signal_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GV_TEST(test_dot_graph),
        GV_TEST(test_dot_empty_graph),
        GV_TEST(test_dot_escapes_names),
        GV_TEST(test_dot_write_failure),
    };
    return GV_RUN_TESTS(tests);
}
