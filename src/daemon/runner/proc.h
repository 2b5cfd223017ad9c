/*
 * proc.h — reading /proc/PID/stat (runner-internal; tests use it too).
 *
 * The runner needs a process's start time (to recognise it again after a
 * daemon restart, whatever pid recycling happened meanwhile), and the tests
 * need its state ('T' when stopped).  Both come from /proc/PID/stat, whose
 * second field is the command name in parentheses — and that name may itself
 * contain spaces and ')', so the parser anchors on the LAST ')'.
 */
#ifndef GALVANI_DAEMON_PROC_H
#define GALVANI_DAEMON_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct gvd_proc_stat {
    char state;           /* field 3: R, S, D, T, t, Z, X, I... */
    pid_t ppid;           /* field 4 */
    pid_t pgrp;           /* field 5 */
    pid_t session;        /* field 6 */
    uint64_t start_ticks; /* field 22: clock ticks after boot */
} gvd_proc_stat;

/* Parse the text of a /proc/PID/stat file (len bytes, need not be
 * NUL-terminated).  0, or -EINVAL if it is not in the expected shape. */
int gvd_proc_stat_parse(const char *text, size_t len, gvd_proc_stat *out);

/* Read and parse /proc/PID/stat.  0; -ESRCH if there is no such process;
 * another -errno if it cannot be read or parsed. */
int gvd_proc_stat_read(pid_t pid, gvd_proc_stat *out);

/* kill(-pgid, sig), refusing pgid <= 1 (kill(-1, ...) would signal every
 * process we may signal).  0 or -errno. */
int gvd_kill_group(pid_t pgid, int sig);

/* Kill a leftover process group from a previous daemon life (or of a
 * supervisor that died), only if /proc/PID/stat still shows the same start
 * time.  Returns 1 if killed, 0 if no such process (or a different one
 * now), -errno on error.  (Here rather than in exec.h so that galvani-shim,
 * which has no libuv, can use this file.) */
int gvd_exec_kill_stale(pid_t pid, uint64_t start_ticks);

#endif
