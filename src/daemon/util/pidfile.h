/*
 * pidfile.h — galvanid's pid file.
 *
 * "PID\n", written to PATH.tmp and renamed, so that a reader sees the whole
 * pid or no file.  Written once galvanid listens, removed when it stops —
 * only if it still holds this process's pid: a galvanid started after a
 * kill -9 of this one has its own.  A kill -9 leaves it behind; the next
 * start replaces it.
 */
#ifndef GALVANI_DAEMON_UTIL_PIDFILE_H
#define GALVANI_DAEMON_UTIL_PIDFILE_H

#include <stddef.h>

/* 0, or -1 with err (strerror's words, or "path too long"). */
int gvd_pid_file_write(const char *path, char *err, size_t errlen);
void gvd_pid_file_remove(const char *path);

#endif
