/*
 * test_chain.c — depth: a chain of 100,000 computeds (propagation, exact
 * counts, freeing without recursion), and first evaluations nesting deeper
 * than the compute depth limit: cut with GV_EDEPTH (visible only inside a
 * compute function) and resumed, never a stack overflow.
 */
#include "gv_test.h"

#define CHAIN_LEN 100000

/* Node i computes (node i-1) + 1; node 0 computes head + 1.  All nodes share
 * one run counter so a propagation can be checked to run each node once. */
typedef struct link_ud {
    gv_signal *head;
    gv_computed *prev; /* NULL for node 0 */
    uint64_t *runs;
} link_ud;

static void link_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    link_ud *l = ud;
    (*l->runs)++;
    int64_t base = l->prev ? gv_computed_get_int(l->prev) : gv_signal_get_int(l->head);
    *out = gv_int(base + 1);
}

typedef struct chain {
    gv_signal *head;
    gv_computed **nodes;
    link_ud *uds;
    size_t len;
    uint64_t runs;
} chain;

/* Creates the chain.  With read_as_built, every node is read right after it
 * is created, so each first evaluation is one level deep (its predecessor is
 * already cached); otherwise nothing has run yet. */
static void chain_build(chain *ch, size_t len, bool read_as_built)
{
    ch->len = len;
    ch->runs = 0;
    ch->head = gv_signal_new(gv_int(0));
    assert_non_null(ch->head);
    ch->nodes = calloc(len, sizeof *ch->nodes);
    ch->uds = calloc(len, sizeof *ch->uds);
    assert_non_null(ch->nodes);
    assert_non_null(ch->uds);
    for (size_t i = 0; i < len; i++) {
        ch->uds[i] = (link_ud){ch->head, i ? ch->nodes[i - 1] : NULL, &ch->runs};
        ch->nodes[i] = gv_computed_new(link_fn, &ch->uds[i]);
        assert_non_null(ch->nodes[i]);
        if (read_as_built && gv_computed_get_int(ch->nodes[i]) != (int64_t)i + 1)
            fail_msg("node %zu has the wrong value", i);
    }
}

/* Releases the handles head-first: every node but the last is still depended
 * on when its handle goes, so freeing the last one releases the whole chain
 * in one cascade — which must not recurse 100,000 levels deep. */
static void chain_free_head_first(chain *ch)
{
    gv_signal_free(ch->head);
    for (size_t i = 0; i < ch->len; i++)
        gv_computed_free(ch->nodes[i]);
    free(ch->nodes);
    free(ch->uds);
}

static void chain_free_tail_first(chain *ch)
{
    for (size_t i = ch->len; i-- > 0;)
        gv_computed_free(ch->nodes[i]);
    gv_signal_free(ch->head);
    free(ch->nodes);
    free(ch->uds);
}

typedef struct tailwatch {
    gv_computed *c;
    int runs;
    int64_t last;
} tailwatch;

static void tailwatch_fn(void *ud)
{
    tailwatch *w = ud;
    w->runs++;
    w->last = gv_computed_get_int(w->c);
}

static void test_deep_chain_with_effect(void **state)
{
    (void)state;
    chain ch;
    chain_build(&ch, CHAIN_LEN, true);
    assert_int_equal(ch.runs, CHAIN_LEN);

    tailwatch w = {.c = ch.nodes[CHAIN_LEN - 1]};
    gv_effect *e = gv_effect_new(tailwatch_fn, &w);
    assert_int_equal(w.runs, 1);
    assert_int_equal(w.last, CHAIN_LEN);
    assert_int_equal(ch.runs, CHAIN_LEN); /* everything was cached */

    gv_stats st;
    gv_test_stats(&st);
    assert_int_equal(st.computeds, CHAIN_LEN);
    assert_int_equal(st.links, CHAIN_LEN + 1);

    for (int64_t v = 1; v <= 5; v++) {
        uint64_t before = ch.runs;
        assert_true(gv_signal_set_int(ch.head, v * 1000));
        assert_int_equal(ch.runs - before, CHAIN_LEN);
        assert_int_equal(w.runs, 1 + v);
        assert_int_equal(w.last, v * 1000 + CHAIN_LEN);
        assert_int_equal(gv_computed_get_int(ch.nodes[CHAIN_LEN / 2]), v * 1000 + CHAIN_LEN / 2 + 1);
    }

    /* An equal write propagates nothing. */
    uint64_t before = ch.runs;
    assert_false(gv_signal_set_int(ch.head, 5000));
    assert_int_equal(ch.runs, before);
    assert_int_equal(w.runs, 6);

    gv_effect_free(e);
    chain_free_head_first(&ch);
}

static void test_deep_chain_unobserved_revalidation(void **state)
{
    (void)state;
    chain ch;
    chain_build(&ch, CHAIN_LEN, true);
    /* Nobody observes the chain: a write recomputes nothing ... */
    assert_true(gv_signal_set_int(ch.head, 7));
    assert_int_equal(ch.runs, CHAIN_LEN);
    /* ... and reading the tail re-validates all of it, iteratively. */
    assert_null(gv_computed_error(ch.nodes[CHAIN_LEN - 1]));
    assert_int_equal(gv_computed_get_int(ch.nodes[CHAIN_LEN - 1]), 7 + CHAIN_LEN);
    assert_int_equal(ch.runs, 2 * CHAIN_LEN);
    assert_int_equal(gv_computed_get_int(ch.nodes[CHAIN_LEN - 1]), 7 + CHAIN_LEN);
    assert_int_equal(ch.runs, 2 * CHAIN_LEN);
    assert_int_equal(gv_signal_subscriber_count(ch.head), 0);
    chain_free_tail_first(&ch);
}

/* ------------------------------------------------------------------------ */
/* First reads deeper than the compute depth limit                           */
/* ------------------------------------------------------------------------ */

/* Per signals.h (gv_set_max_compute_depth): a first evaluation nesting deeper
 * than the limit is cut with GV_EDEPTH at the innermost computed, and the
 * outermost read resumes from there slice by slice, so a top-level read
 * completes with the right value; only code inside a compute function can
 * see the cut, as GV_EDEPTH through gv_computed_error. */

static void test_unread_chain_deeper_than_limit_completes(void **state)
{
    (void)state;
    gv_set_max_compute_depth(100);
    chain ch;
    chain_build(&ch, 1000, false);
    assert_int_equal(ch.runs, 0);
    assert_null(gv_computed_error(ch.nodes[999]));
    assert_int_equal(gv_computed_get_int(ch.nodes[999]), 1000);
    /* A cut function ran partially and runs again when resumed: at most
     * one extra run per node. */
    assert_true(ch.runs >= 1000 && ch.runs <= 2000);
    for (size_t i = 0; i < ch.len; i += 97)
        assert_int_equal(gv_computed_get_int(ch.nodes[i]), (int64_t)i + 1);

    /* Afterwards everything is cached, and a write re-validates iteratively:
     * exactly one run per node. */
    uint64_t before = ch.runs;
    assert_int_equal(gv_computed_get_int(ch.nodes[999]), 1000);
    assert_int_equal(ch.runs, before);
    assert_true(gv_signal_set_int(ch.head, 10));
    assert_int_equal(gv_computed_get_int(ch.nodes[999]), 1010);
    assert_int_equal(ch.runs - before, 1000);
    chain_free_tail_first(&ch);
}

static void test_unread_100k_chain_first_read(void **state)
{
    (void)state;
    /* The documented extreme: a first read of a 100,000-long chain, default
     * limit, on the real C stack — completes, no overflow. */
    chain ch;
    chain_build(&ch, CHAIN_LEN, false);
    assert_null(gv_computed_error(ch.nodes[CHAIN_LEN - 1]));
    assert_int_equal(gv_computed_get_int(ch.nodes[CHAIN_LEN - 1]), CHAIN_LEN);
    assert_true(ch.runs >= CHAIN_LEN && ch.runs <= 2 * CHAIN_LEN);
    chain_free_head_first(&ch);
}

static void test_chain_within_limit(void **state)
{
    (void)state;
    gv_set_max_compute_depth(100);
    chain ch;
    chain_build(&ch, 50, false);
    assert_null(gv_computed_error(ch.nodes[49]));
    assert_int_equal(gv_computed_get_int(ch.nodes[49]), 50);
    assert_int_equal(ch.runs, 50); /* no cut: exactly one run each */
    chain_free_head_first(&ch);
}

/* A computed that reads the tail of an unread chain through
 * gv_computed_error, so it can see the cut. */
typedef struct probe {
    gv_computed *tail;
    int runs, saw_edepth, saw_other_error;
} probe;

static void probe_fn(gv_value *out, const gv_value *prev, void *ud)
{
    (void)prev;
    probe *p = ud;
    p->runs++;
    const gv_error *err = gv_computed_error(p->tail);
    if (err) {
        if (err->code == GV_EDEPTH)
            p->saw_edepth++;
        else
            p->saw_other_error++;
        *out = gv_int(-1);
        return;
    }
    *out = gv_int(gv_computed_get_int(p->tail) + 1);
}

static void test_cut_visible_inside_compute_as_edepth(void **state)
{
    (void)state;
    gv_set_max_compute_depth(50);
    chain ch;
    chain_build(&ch, 500, false);
    probe p = {.tail = ch.nodes[499]};
    gv_computed *pc = gv_computed_new(probe_fn, &p);
    /* The outermost read resumes until the probe sees the real value. */
    assert_null(gv_computed_error(pc));
    assert_int_equal(gv_computed_get_int(pc), 501);
    assert_true(p.saw_edepth >= 1);
    assert_int_equal(p.saw_other_error, 0);
    assert_int_equal(p.runs, p.saw_edepth + 1);
    gv_computed_free(pc);
    chain_free_tail_first(&ch);
}

/* An effect is an outermost reader too: it sees the full value, and the cut
 * never reaches the error handler. */
typedef struct tailfx {
    gv_computed *tail;
    int runs;
    int64_t last;
} tailfx;

static void tailfx_fn(void *ud)
{
    tailfx *t = ud;
    t->runs++;
    t->last = gv_computed_get_int(t->tail);
}

static void test_effect_reading_unread_deep_chain(void **state)
{
    (void)state;
    gv_set_max_compute_depth(64);
    chain ch;
    chain_build(&ch, 5000, false);
    tailfx t = {.tail = ch.nodes[4999]};
    gv_effect *e = gv_effect_new(tailfx_fn, &t);
    assert_int_equal(t.last, 5000);
    assert_int_equal(gv_test_errors.count, 0);
    uint64_t before = ch.runs;
    int runs = t.runs;
    assert_true(gv_signal_set_int(ch.head, 1));
    assert_int_equal(t.last, 5001);
    assert_int_equal(t.runs, runs + 1);
    assert_int_equal(ch.runs - before, 5000);
    gv_effect_free(e);
    chain_free_head_first(&ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GV_TEST(test_deep_chain_with_effect),
        GV_TEST(test_deep_chain_unobserved_revalidation),
        GV_TEST(test_unread_chain_deeper_than_limit_completes),
        GV_TEST(test_unread_100k_chain_first_read),
        GV_TEST(test_chain_within_limit),
        GV_TEST(test_cut_visible_inside_compute_as_edepth),
        GV_TEST(test_effect_reading_unread_deep_chain),
    };
    return GV_RUN_TESTS(tests);
}
