/*
 * flags.h — the values of galvanid's command-line flags, checked.
 *
 * Each parser takes the flag's text and returns 0 with the value, or -1
 * when the text is not one (main.c then names the flag and exits 2).  Pure
 * functions of their arguments; tests/daemon/test_flags.c is their spec.
 */
#ifndef GALVANI_DAEMON_UTIL_FLAGS_H
#define GALVANI_DAEMON_UTIL_FLAGS_H

#include <stddef.h>

/* "HOST:PORT", ":PORT", "PORT", "[::1]:PORT" (port 0..65535; no host:
 * 127.0.0.1). */
int gvd_flag_listen(const char *s, char *host, size_t hostlen, int *port);
/* A decimal integer 0..max (no sign). */
int gvd_flag_uint(const char *s, unsigned long long max, unsigned long long *out);
/* A positive number of seconds (fractions allowed, at least 1 ms) up to
 * max, in ms. */
int gvd_flag_secs(const char *s, double max, unsigned *ms);
/* "3600", "90s", "90m", "12h", "7d": a positive age up to ten years, in s. */
int gvd_flag_age(const char *s, double *out);
/* Overwrite a secret flag's value in argv with 'x' (after copying it), so
 * that ps and /proc/PID/cmdline no longer show it. */
void gvd_flag_hide(char *arg);

#endif
