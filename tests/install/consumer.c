/*
 * consumer.c — a stand-alone program built *outside* the project against an
 * installed libgalvani (see check_install.sh).  It proves the installed header
 * and library agree: it writes and reads a signal and exits non-zero on any
 * mismatch, so a broken install cannot pass the test.
 */
#include <galvani/signals.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    int failures = 0;

    gv_signal *s = gv_signal_new(gv_int(41));
    if (s == NULL) {
        fprintf(stderr, "consumer: gv_signal_new returned NULL\n");
        return 1;
    }

    if (gv_signal_get_int(s) != 41) {
        fprintf(stderr, "consumer: initial value %lld, expected 41\n",
                (long long)gv_signal_get_int(s));
        failures++;
    }

    /* A write of a different value must report a change ... */
    if (!gv_signal_set(s, gv_int(42))) {
        fprintf(stderr, "consumer: set 41 -> 42 reported no change\n");
        failures++;
    }
    const gv_value *v = gv_signal_get(s);
    if (v->type != GV_INT || v->as.i != 42) {
        fprintf(stderr, "consumer: after set, type %d value %lld, expected GV_INT 42\n",
                (int)v->type, (long long)v->as.i);
        failures++;
    }

    /* ... and a write of an equal value must not. */
    if (gv_signal_set(s, gv_int(42))) {
        fprintf(stderr, "consumer: set 42 -> 42 reported a change\n");
        failures++;
    }

    /* Strings are copied into the graph: the local buffer can change after. */
    char buf[16];
    strcpy(buf, "galvani");
    gv_signal_set(s, gv_str(buf));
    strcpy(buf, "clobbered");
    const char *str = gv_signal_get_string(s);
    if (str == NULL || strcmp(str, "galvani") != 0) {
        fprintf(stderr, "consumer: string value \"%s\", expected \"galvani\"\n",
                str ? str : "(null)");
        failures++;
    }

    gv_signal_free(s);

    if (failures != 0)
        return 1;
    printf("consumer: ok (libgalvani %d.%d.%d)\n",
           GV_VERSION_MAJOR, GV_VERSION_MINOR, GV_VERSION_PATCH);
    return 0;
}
