/*
 * faultvfs.h — a fault-injecting SQLite VFS, for testing the store's fault
 * handling (disk full, database locked, I/O errors) without filling a disk.
 *
 * It is a thin shim over the default VFS ("unix"): every call is passed
 * through, except that while a fault is switched on
 *   GVD_FAULT_FULL     xWrite fails with SQLITE_FULL      (what ENOSPC gives)
 *   GVD_FAULT_IOERR    xWrite and xSync fail with SQLITE_IOERR_WRITE / _FSYNC
 *   GVD_FAULT_SYNC     only xSync fails (SQLITE_IOERR_FSYNC)
 *   GVD_FAULT_BUSY     taking the write lock fails with SQLITE_BUSY, as when
 *                      another process holds it (in WAL mode that is the
 *                      WAL_WRITE_LOCK shared-memory lock; in rollback mode a
 *                      RESERVED or stronger file lock).  SQLite's busy
 *                      handler retries, so busy_timeout is exercised too.
 * Reads are never failed: the daemon keeps serving from memory anyway, and a
 * failed read would only test SQLite.
 *
 * Two ways to drive it:
 *   - in-process (unit tests): gvd_faultvfs_install(NULL), then
 *     gvd_faultvfs_set(kind);
 *   - from outside (the end-to-end tests drive the real galvanid): set
 *     GALVANID_TEST_FAULTS=/some/file before starting galvanid; gvd_sqlite_open
 *     installs the shim and every hooked call reads the file's first word
 *     ("full", "ioerr", "sync", "busy"; anything else or no file: no fault).
 *     Reading a small file per write is slow, which does not matter in tests.
 *
 * Installing makes the shim SQLite's default VFS for the whole process; it
 * cannot be uninstalled (connections may still use it) and installing again
 * only changes the control file.  Not thread-safe: the daemon's store runs on
 * the loop thread only.
 */
#ifndef GALVANI_DAEMON_FAULTVFS_H
#define GALVANI_DAEMON_FAULTVFS_H

typedef enum gvd_fault_kind {
    GVD_FAULT_NONE = 0,
    GVD_FAULT_FULL,
    GVD_FAULT_IOERR,
    GVD_FAULT_SYNC,
    GVD_FAULT_BUSY
} gvd_fault_kind;

/* Register the shim as the default VFS.  control_path: a file to read the
 * fault from at every hooked call, or NULL (gvd_faultvfs_set only).  The path
 * is copied.  0, or an SQLite error code. */
int gvd_faultvfs_install(const char *control_path);

/* The in-process switch (ignored while a control file is configured). */
void gvd_faultvfs_set(gvd_fault_kind kind);

/* How many calls the shim has failed so far (tests check a fault was hit). */
unsigned long gvd_faultvfs_failures(void);

#endif
