/*
 * test_flags.c — the values galvanid's flags take (util/flags.h): what is
 * accepted, what it means, and what is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/flags.h"

static void test_listen(void **state)
{
    (void)state;
    char host[64];
    int port = -1;
    assert_int_equal(gvd_flag_listen("0.0.0.0:8080", host, sizeof host, &port), 0);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(port, 8080);
    assert_int_equal(gvd_flag_listen(":0", host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1"); /* no host: loopback */
    assert_int_equal(port, 0);
    assert_int_equal(gvd_flag_listen("9000", host, sizeof host, &port), 0);
    assert_int_equal(port, 9000);
    assert_int_equal(gvd_flag_listen("[::1]:8000", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    const char *bad[] = {"host:", "host:65536", "host:-1", "host:80x", "[::1:80", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(gvd_flag_listen(bad[i], host, sizeof host, &port), -1);
    char tiny[4];
    assert_int_equal(gvd_flag_listen("localhost:80", tiny, sizeof tiny, &port), -1); /* does not fit */
}

static void test_numbers(void **state)
{
    (void)state;
    unsigned long long v = 0;
    assert_int_equal(gvd_flag_uint("0", 10, &v), 0);
    assert_int_equal(gvd_flag_uint("10", 10, &v), 0);
    assert_int_equal(v, 10);
    const char *bad[] = {"11", "-1", "", "1e3", "12abc", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(gvd_flag_uint(bad[i], 10, &v), -1);
    unsigned ms = 0;
    assert_int_equal(gvd_flag_secs("1.5", 60, &ms), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(gvd_flag_secs("0.001", 60, &ms), 0);
    assert_int_equal(ms, 1);
    const char *bad_secs[] = {"0", "0.0001", "61", "-1", "nan", "", "5s"};
    for (size_t i = 0; i < sizeof bad_secs / sizeof *bad_secs; i++)
        assert_int_equal(gvd_flag_secs(bad_secs[i], 60, &ms), -1);
}

static void test_age(void **state)
{
    (void)state;
    double s = 0;
    struct { const char *text; double secs; } ok[] = {{"3600", 3600}, {"90s", 90}, {"90m", 5400},
                                                      {"12h", 43200}, {"7d", 604800}, {"0.5h", 1800}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        assert_int_equal(gvd_flag_age(ok[i].text, &s), 0);
        assert_true(s == ok[i].secs);
    }
    const char *bad[] = {"0", "-5m", "5w", "5mm", "", "m", "3651d"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(gvd_flag_age(bad[i], &s), -1);
}

static void test_hide(void **state)
{
    (void)state;
    char arg[] = "s3cret";
    gvd_flag_hide(arg);
    assert_string_equal(arg, "xxxxxx");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_age),
        cmocka_unit_test(test_hide),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
