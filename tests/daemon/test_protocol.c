/*
 * test_protocol.c — gvd_msg_parse (src/daemon/runner/protocol.c).
 *
 * Every documented form, with every field of the result asserted, and every
 * way a line can be malformed, with its exact reason: a parser that is lenient
 * by accident changes what a job's output means.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runner/protocol.h"

/* Parse a NUL-terminated line (the parser itself never needs the NUL). */
static gvd_msg_kind parse(const char *line, bool prefix, gvd_msg *m)
{
    return gvd_msg_parse(line, strlen(line), prefix, m);
}

static void expect_progress(const char *line, bool prefix, double cur, double total, bool has_total)
{
    gvd_msg m;
    assert_int_equal(parse(line, prefix, &m), GVD_MSG_PROGRESS);
    assert_int_equal(m.kind, GVD_MSG_PROGRESS);
    assert_true(m.current == cur);
    assert_true(m.total == total);
    assert_int_equal(m.has_total, has_total);
    assert_true(m.value == 0.0);
    assert_string_equal(m.text, "");
    assert_null(m.reason);
}

static void expect_invalid(const char *line, bool prefix, const char *reason)
{
    gvd_msg m;
    assert_int_equal(parse(line, prefix, &m), GVD_MSG_INVALID);
    assert_int_equal(m.kind, GVD_MSG_INVALID);
    assert_non_null(m.reason);
    assert_string_equal(m.reason, reason);
}

static void expect_none(const char *line, bool prefix)
{
    gvd_msg m;
    assert_int_equal(parse(line, prefix, &m), GVD_MSG_NONE);
    assert_int_equal(m.kind, GVD_MSG_NONE);
    assert_string_equal(m.text, "");
    assert_null(m.reason);
}

static void test_progress_forms(void **state)
{
    (void)state;
    expect_progress("::progress 54", true, 54, 100, false);
    expect_progress("::progress 54/200", true, 54, 200, true);
    expect_progress("::progress 54 / 200", true, 54, 200, true);
    expect_progress("::progress\t 0.5/1 \t", true, 0.5, 1, true);
    expect_progress("::progress 0", true, 0, 100, false);
    expect_progress("::progress 100", true, 100, 100, false);
    expect_progress("::progress 200/200", true, 200, 200, true);
    expect_progress("::progress 1e1", true, 10, 100, false);
    expect_progress("::progress 12.75", true, 12.75, 100, false);
    expect_progress("::progress +3", true, 3, 100, false);
    expect_progress("::progress 54\r", true, 54, 100, false); /* CRLF writers */
    expect_progress(":: progress 7", true, 7, 100, false);    /* spaces around words are tolerated */
    /* -0 is not negative, and comes out as +0 */
    gvd_msg m;
    assert_int_equal(parse("::progress -0", true, &m), GVD_MSG_PROGRESS);
    assert_false(signbit(m.current));
}

static void test_progress_malformed(void **state)
{
    (void)state;
    const char *nan_reason = "progress value is not a finite decimal number (expected N or N/TOTAL)";
    const char *tot_reason = "progress total is not a finite decimal number (expected N/TOTAL)";
    expect_invalid("::progress", true, "progress needs a value: N (percent) or N/TOTAL");
    expect_invalid("::progress   ", true, "progress needs a value: N (percent) or N/TOTAL");
    expect_invalid("::progress abc", true, nan_reason);
    expect_invalid("::progress 54%", true, nan_reason);
    expect_invalid("::progress 54 200", true, nan_reason);
    expect_invalid("::progress 5x", true, nan_reason);
    expect_invalid("::progress nan", true, nan_reason);
    expect_invalid("::progress inf", true, nan_reason);
    expect_invalid("::progress 0x10", true, nan_reason);
    expect_invalid("::progress 1e999", true, nan_reason); /* overflows to inf */
    expect_invalid("::progress 1..2", true, nan_reason);
    expect_invalid("::progress /200", true, nan_reason);
    expect_invalid("::progress 5/", true, tot_reason);
    expect_invalid("::progress 5/abc", true, tot_reason);
    expect_invalid("::progress 5/2/3", true, tot_reason);
    expect_invalid("::progress 5/inf", true, tot_reason);
    expect_invalid("::progress -1", true, "progress value is negative");
    expect_invalid("::progress -1/10", true, "progress value is negative");
    expect_invalid("::progress 1/0", true, "progress total must be greater than 0");
    expect_invalid("::progress 1/-5", true, "progress total must be greater than 0");
    expect_invalid("::progress 101", true, "progress percent above 100");
    expect_invalid("::progress 11/10", true, "progress value exceeds the total");
    /* A number token longer than any sensible number. */
    char big[200] = "::progress ";
    memset(big + strlen(big), '1', 100);
    expect_invalid(big, true, nan_reason);
}

static void test_status(void **state)
{
    (void)state;
    gvd_msg m;
    assert_int_equal(parse("::status compiling", true, &m), GVD_MSG_STATUS);
    assert_string_equal(m.text, "compiling");
    assert_null(m.reason);
    assert_true(m.total == 100.0);

    /* Inner spacing is kept, outer spacing trimmed, tabs become spaces. */
    assert_int_equal(parse("::status   step 2 of  5 \t", true, &m), GVD_MSG_STATUS);
    assert_string_equal(m.text, "step 2 of  5");
    assert_int_equal(parse("::status a\tb", true, &m), GVD_MSG_STATUS);
    assert_string_equal(m.text, "a b");

    /* UTF-8 is fine. */
    assert_int_equal(parse("::status d\xc3\xa9j\xc3\xa0 vu \xe2\x9c\x93", true, &m), GVD_MSG_STATUS);
    assert_string_equal(m.text, "d\xc3\xa9j\xc3\xa0 vu \xe2\x9c\x93");

    /* An empty status clears the message. */
    assert_int_equal(parse("::status", true, &m), GVD_MSG_STATUS);
    assert_string_equal(m.text, "");
    assert_int_equal(parse("::status   ", true, &m), GVD_MSG_STATUS);
    assert_string_equal(m.text, "");

    expect_invalid("::status bell\x07", true, "status text contains a control character");
    expect_invalid("::status \x1b[32mgreen", true, "status text contains a control character");
}

static void test_status_truncated_on_char_boundary(void **state)
{
    (void)state;
    /* 300 bytes of text: cut to 255 bytes. */
    char line[400] = "::status ";
    size_t p = strlen(line);
    memset(line + p, 'a', 300);
    line[p + 300] = '\0';
    gvd_msg m;
    assert_int_equal(parse(line, true, &m), GVD_MSG_STATUS);
    assert_int_equal(strlen(m.text), GVD_MSG_TEXT_MAX - 1);

    /* 254 'a' then a 2-byte character: it does not fit in 255 bytes and is
     * dropped whole rather than cut in half. */
    memset(line + p, 'a', 254);
    memcpy(line + p + 254, "\xc3\xa9zz", 5);
    assert_int_equal(parse(line, true, &m), GVD_MSG_STATUS);
    assert_int_equal(strlen(m.text), 254);
    assert_int_equal(m.text[253], 'a');

    /* 253 'a' then the same character: fits exactly. */
    memset(line + p, 'a', 253);
    memcpy(line + p + 253, "\xc3\xa9zz", 5);
    assert_int_equal(parse(line, true, &m), GVD_MSG_STATUS);
    assert_int_equal(strlen(m.text), 255);
    assert_memory_equal(m.text + 253, "\xc3\xa9", 2);
}

static void test_metric(void **state)
{
    (void)state;
    gvd_msg m;
    assert_int_equal(parse("::metric loss 0.31", true, &m), GVD_MSG_METRIC);
    assert_string_equal(m.text, "loss");
    assert_true(m.value == 0.31);
    assert_null(m.reason);
    assert_false(m.has_total);

    assert_int_equal(parse("::metric  train/acc:top-1_v2.x   -1.5e-3  ", true, &m), GVD_MSG_METRIC);
    assert_string_equal(m.text, "train/acc:top-1_v2.x");
    assert_true(m.value == -1.5e-3);

    const char *need = "metric needs a name and a value: metric NAME VALUE";
    expect_invalid("::metric", true, need);
    expect_invalid("::metric loss", true, need);
    expect_invalid("::metric loss 1 2", true, "unexpected text after the metric value");
    expect_invalid("::metric loss abc", true, "metric value is not a finite decimal number");
    expect_invalid("::metric loss nan", true, "metric value is not a finite decimal number");
    expect_invalid("::metric l\xc3\xa9 1", true, "metric name may only use A-Z a-z 0-9 _ . - / :");
    expect_invalid("::metric a\"b 1", true, "metric name may only use A-Z a-z 0-9 _ . - / :");

    char line[400] = "::metric ";
    size_t p = strlen(line);
    memset(line + p, 'n', 255);
    strcpy(line + p + 255, " 1");
    assert_int_equal(parse(line, true, &m), GVD_MSG_METRIC);
    assert_int_equal(strlen(m.text), 255);
    memset(line + p, 'n', 256);
    strcpy(line + p + 256, " 1");
    expect_invalid(line, true, "metric name too long (at most 255 bytes)");
}

static void test_ack(void **state)
{
    (void)state;
    const char *words[] = {"pause", "resume", "cancel", "params"};
    for (size_t i = 0; i < 4; i++) {
        char line[64];
        snprintf(line, sizeof line, "::ack %s", words[i]);
        gvd_msg m;
        assert_int_equal(parse(line, true, &m), GVD_MSG_ACK);
        assert_string_equal(m.text, words[i]);
        assert_null(m.reason);
        /* On the control fd, with and without the prefix. */
        assert_int_equal(parse(line + 2, false, &m), GVD_MSG_ACK);
        assert_string_equal(m.text, words[i]);
        assert_int_equal(parse(line, false, &m), GVD_MSG_ACK);
        assert_string_equal(m.text, words[i]);
    }
    expect_invalid("::ack", true, "ack needs a word: pause, resume, cancel or params");
    expect_invalid("::ack stop", true, "unknown ack (expected pause, resume, cancel or params)");
    expect_invalid("::ack Pause", true, "unknown ack (expected pause, resume, cancel or params)");
    expect_invalid("::ack params {\"a\":1}", true, "unexpected text after the ack word");
}

static void test_stdout_prefix_rules(void **state)
{
    (void)state;
    /* Ordinary output is not ours. */
    expect_none("", true);
    expect_none("hello world", true);
    expect_none("progress 54", true);      /* no prefix on stdout: plain text */
    expect_none(" ::progress 54", true);   /* the marker starts the line */
    expect_none(":progress 54", true);
    expect_none(":", true);
    gvd_msg m;
    assert_int_equal(gvd_msg_parse(NULL, 0, true, &m), GVD_MSG_NONE);

    const char *unknown = "unknown message type (expected progress, status, metric or ack)";
    expect_invalid("::", true, "empty message (expected progress, status, metric or ack)");
    expect_invalid("::   ", true, "empty message (expected progress, status, metric or ack)");
    expect_invalid("::bogus 1", true, unknown);
    expect_invalid("::Progress 5", true, unknown); /* case-sensitive */
    expect_invalid("::PROGRESS 5", true, unknown);
    expect_invalid("::progress54", true, unknown);
    expect_invalid("::set-output name=x", true, unknown);

    /* The offending line is echoed (sanitised) for the log. */
    assert_int_equal(parse("::bogus 1", true, &m), GVD_MSG_INVALID);
    assert_string_equal(m.text, "::bogus 1");
}

static void test_control_fd_rules(void **state)
{
    (void)state;
    expect_progress("progress 5", false, 5, 100, false);
    expect_progress("::progress 5/10", false, 5, 10, true);
    expect_progress("   progress 5", false, 5, 100, false); /* leading spaces on the control fd */
    expect_progress("progress 5\r", false, 5, 100, false);
    expect_none("", false);
    expect_none("   \t ", false);
    expect_none("\r", false);
    gvd_msg m;
    assert_int_equal(parse("status ready", false, &m), GVD_MSG_STATUS);
    assert_string_equal(m.text, "ready");
    assert_int_equal(parse("metric x 2", false, &m), GVD_MSG_METRIC);
    assert_string_equal(m.text, "x");
    assert_true(m.value == 2.0);
    /* Without a prefix every line is a message: unknown words are errors. */
    expect_invalid("hello", false, "unknown message type (expected progress, status, metric or ack)");
    expect_invalid("::", false, "empty message (expected progress, status, metric or ack)");
}

static void test_bytes(void **state)
{
    (void)state;
    gvd_msg m;
    /* A NUL inside the line (len covers it). */
    const char nul[] = "::status a\0b";
    assert_int_equal(gvd_msg_parse(nul, sizeof nul - 1, true, &m), GVD_MSG_INVALID);
    assert_string_equal(m.reason, "line contains a NUL byte");
    assert_string_equal(m.text, "::status a?b");

    /* Invalid UTF-8: a lone continuation byte, an overlong '/', a surrogate,
     * a truncated sequence, a code point above U+10FFFF. */
    const char *bad[] = {"::status \x80", "::status \xc0\xaf", "::status \xed\xa0\x80", "::status \xe2\x9c",
                         "::status \xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(parse(bad[i], true, &m), GVD_MSG_INVALID);
        assert_string_equal(m.reason, "line is not valid UTF-8");
        assert_memory_equal(m.text, "::status ?", 10); /* echoed with '?' */
    }
    /* Non-"::" lines are not inspected at all, whatever their bytes. */
    expect_none("\xff\xfe garbage", true);

    /* Only the given length is read: the same buffer, shorter len. */
    const char *buf = "::progress 12345";
    assert_int_equal(gvd_msg_parse(buf, strlen("::progress 12"), true, &m), GVD_MSG_PROGRESS);
    assert_true(m.current == 12.0);

    /* A very long invalid line: the echo is cut, the parse does not care. */
    size_t n = 100000;
    char *huge = malloc(n);
    assert_non_null(huge);
    memset(huge, 'x', n);
    memcpy(huge, "::zz", 4);
    assert_int_equal(gvd_msg_parse(huge, n, true, &m), GVD_MSG_INVALID);
    assert_int_equal(strlen(m.text), GVD_MSG_TEXT_MAX - 1);
    free(huge);
}

/* Fields of a reused gvd_msg are reset on every call. */
static void test_reset_between_calls(void **state)
{
    (void)state;
    gvd_msg m;
    assert_int_equal(parse("::metric loss 3", true, &m), GVD_MSG_METRIC);
    assert_int_equal(parse("::progress 4", true, &m), GVD_MSG_PROGRESS);
    assert_string_equal(m.text, "");
    assert_true(m.value == 0.0);
    assert_int_equal(parse("::oops", true, &m), GVD_MSG_INVALID);
    assert_true(m.current == 0.0);
    assert_true(m.total == 100.0);
    assert_int_equal(parse("plain", true, &m), GVD_MSG_NONE);
    assert_null(m.reason);
    assert_string_equal(m.text, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_forms),
        cmocka_unit_test(test_progress_malformed),
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_status_truncated_on_char_boundary),
        cmocka_unit_test(test_metric),
        cmocka_unit_test(test_ack),
        cmocka_unit_test(test_stdout_prefix_rules),
        cmocka_unit_test(test_control_fd_rules),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_reset_between_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
