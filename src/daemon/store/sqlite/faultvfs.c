/*
 * faultvfs.c — see faultvfs.h.  A shim VFS: our sqlite3_file wraps the real
 * VFS's file (allocated right behind it, SQLite sizes the block from
 * szOsFile), and our io methods forward to the real ones, failing writes,
 * syncs or the write lock while a fault is on.
 *
 * Only the hooks that decide something look at the fault; everything else
 * is a one-line forward.  The VFS-level methods forward with the real VFS as
 * their first argument, so the real implementation never sees our struct.
 */
#include "faultvfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct gvd_ffile {
    sqlite3_file base; /* must be first: SQLite hands us this pointer */
    sqlite3_file *real; /* the real VFS's file, right after this struct */
} gvd_ffile;

static sqlite3_vfs gvd_fvfs;
static sqlite3_vfs *gvd_real;          /* the VFS we wrap */
static char *gvd_control;              /* control file, owned, or NULL */
static gvd_fault_kind gvd_fault;       /* the in-process switch */
static unsigned long gvd_failures;

#define REAL(f) (((gvd_ffile *)(void *)(f))->real)

/* The fault in force now: the control file's first word if one is
 * configured, else the in-process switch. */
static gvd_fault_kind gvd_current(void)
{
    if (!gvd_control)
        return gvd_fault;
    int fd = open(gvd_control, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return GVD_FAULT_NONE;
    char buf[16] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return GVD_FAULT_NONE;
    static const struct {
        const char *word;
        gvd_fault_kind kind;
    } words[] = {{"full", GVD_FAULT_FULL}, {"ioerr", GVD_FAULT_IOERR}, {"sync", GVD_FAULT_SYNC},
                 {"busy", GVD_FAULT_BUSY}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t len = strlen(words[i].word);
        if (strncmp(buf, words[i].word, len) == 0 && (buf[len] == '\0' || buf[len] == '\n' || buf[len] == ' '))
            return words[i].kind;
    }
    return GVD_FAULT_NONE;
}

static int gvd_failed(int code)
{
    gvd_failures++;
    return code;
}

/* ---- io methods ---------------------------------------------------------- */

static int gvd_fclose(sqlite3_file *f)
{
    return REAL(f)->pMethods->xClose(REAL(f));
}

static int gvd_fread(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xRead(REAL(f), buf, amt, off);
}

static int gvd_fwrite(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    switch (gvd_current()) {
    case GVD_FAULT_FULL: return gvd_failed(SQLITE_FULL);
    case GVD_FAULT_IOERR: return gvd_failed(SQLITE_IOERR_WRITE);
    default: break;
    }
    return REAL(f)->pMethods->xWrite(REAL(f), buf, amt, off);
}

static int gvd_ftruncate(sqlite3_file *f, sqlite3_int64 size)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int gvd_fsync(sqlite3_file *f, int flags)
{
    gvd_fault_kind k = gvd_current();
    if (k == GVD_FAULT_IOERR || k == GVD_FAULT_SYNC)
        return gvd_failed(SQLITE_IOERR_FSYNC);
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int gvd_ffilesize(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

/* Rollback-journal mode: RESERVED and stronger locks are the write lock. */
static int gvd_flock(sqlite3_file *f, int level)
{
    if (level >= SQLITE_LOCK_RESERVED && gvd_current() == GVD_FAULT_BUSY)
        return gvd_failed(SQLITE_BUSY);
    return REAL(f)->pMethods->xLock(REAL(f), level);
}

static int gvd_funlock(sqlite3_file *f, int level)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int gvd_fcheck_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int gvd_fcontrol(sqlite3_file *f, int op, void *arg)
{
    /* SQLITE_FCNTL_VFSNAME would name only the real VFS: fine for tests. */
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int gvd_fsector(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int gvd_fdevchar(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int gvd_fshm_map(sqlite3_file *f, int page, int pgsz, int extend, void volatile **pp)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), page, pgsz, extend, pp);
}

/* WAL mode: slot 0 of the shared-memory locks is WAL_WRITE_LOCK, the one a
 * writer holds for its whole transaction (SQLite's wal.c). */
static int gvd_fshm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    if (offset == 0 && (flags & SQLITE_SHM_LOCK) && (flags & SQLITE_SHM_EXCLUSIVE) &&
        gvd_current() == GVD_FAULT_BUSY)
        return gvd_failed(SQLITE_BUSY);
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void gvd_fshm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int gvd_fshm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int gvd_ffetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
    return REAL(f)->pMethods->xFetch(REAL(f), off, amt, pp);
}

static int gvd_funfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

/* Two method tables: SQLite looks at iVersion to know which members exist,
 * so a real file with version-1 methods (no shared memory) gets ours with
 * version 1 too. */
static sqlite3_io_methods gvd_io3 = {3,
                                     gvd_fclose,
                                     gvd_fread,
                                     gvd_fwrite,
                                     gvd_ftruncate,
                                     gvd_fsync,
                                     gvd_ffilesize,
                                     gvd_flock,
                                     gvd_funlock,
                                     gvd_fcheck_reserved,
                                     gvd_fcontrol,
                                     gvd_fsector,
                                     gvd_fdevchar,
                                     gvd_fshm_map,
                                     gvd_fshm_lock,
                                     gvd_fshm_barrier,
                                     gvd_fshm_unmap,
                                     gvd_ffetch,
                                     gvd_funfetch};
static sqlite3_io_methods gvd_io1 = {1,
                                     gvd_fclose,
                                     gvd_fread,
                                     gvd_fwrite,
                                     gvd_ftruncate,
                                     gvd_fsync,
                                     gvd_ffilesize,
                                     gvd_flock,
                                     gvd_funlock,
                                     gvd_fcheck_reserved,
                                     gvd_fcontrol,
                                     gvd_fsector,
                                     gvd_fdevchar,
                                     NULL,
                                     NULL,
                                     NULL,
                                     NULL,
                                     NULL,
                                     NULL};

/* ---- vfs methods ---------------------------------------------------------- */

static int gvd_vopen(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
    (void)vfs;
    gvd_ffile *f = (gvd_ffile *)(void *)file;
    f->real = (sqlite3_file *)(void *)(f + 1);
    int rc = gvd_real->xOpen(gvd_real, name, f->real, flags, out_flags);
    /* SQLite calls xClose exactly when pMethods is set, also after a failed
     * open: mirror what the real VFS did. */
    const sqlite3_io_methods *m = f->real->pMethods;
    f->base.pMethods = !m ? NULL : m->iVersion >= 3 ? &gvd_io3 : &gvd_io1;
    return rc;
}

static int gvd_vdelete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    return gvd_real->xDelete(gvd_real, name, sync_dir);
}

static int gvd_vaccess(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return gvd_real->xAccess(gvd_real, name, flags, out);
}

static int gvd_vfullpath(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return gvd_real->xFullPathname(gvd_real, name, n, out);
}

static void *gvd_vdlopen(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return gvd_real->xDlOpen(gvd_real, name);
}

static void gvd_vdlerror(sqlite3_vfs *vfs, int n, char *msg)
{
    (void)vfs;
    gvd_real->xDlError(gvd_real, n, msg);
}

static void (*gvd_vdlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    (void)vfs;
    return gvd_real->xDlSym(gvd_real, h, sym);
}

static void gvd_vdlclose(sqlite3_vfs *vfs, void *h)
{
    (void)vfs;
    gvd_real->xDlClose(gvd_real, h);
}

static int gvd_vrandom(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return gvd_real->xRandomness(gvd_real, n, out);
}

static int gvd_vsleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return gvd_real->xSleep(gvd_real, us);
}

static int gvd_vtime(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return gvd_real->xCurrentTime(gvd_real, out);
}

static int gvd_vlasterror(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return gvd_real->xGetLastError ? gvd_real->xGetLastError(gvd_real, n, out) : 0;
}

static int gvd_vtime64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return gvd_real->xCurrentTimeInt64(gvd_real, out);
}

int gvd_faultvfs_install(const char *control_path)
{
    char *copy = NULL;
    if (control_path && !(copy = strdup(control_path)))
        return SQLITE_NOMEM;
    free(gvd_control);
    gvd_control = copy;
    if (gvd_real)
        return SQLITE_OK;
    int rc = sqlite3_initialize();
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_vfs *real = sqlite3_vfs_find(NULL);
    if (!real || real->iVersion < 2)
        return SQLITE_ERROR; /* xCurrentTimeInt64 is forwarded below */
    gvd_real = real;
    gvd_fvfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(gvd_ffile) + real->szOsFile,
        .mxPathname = real->mxPathname,
        .zName = "gvd-fault",
        .xOpen = gvd_vopen,
        .xDelete = gvd_vdelete,
        .xAccess = gvd_vaccess,
        .xFullPathname = gvd_vfullpath,
        .xDlOpen = gvd_vdlopen,
        .xDlError = gvd_vdlerror,
        .xDlSym = gvd_vdlsym,
        .xDlClose = gvd_vdlclose,
        .xRandomness = gvd_vrandom,
        .xSleep = gvd_vsleep,
        .xCurrentTime = gvd_vtime,
        .xGetLastError = gvd_vlasterror,
        .xCurrentTimeInt64 = gvd_vtime64,
    };
    rc = sqlite3_vfs_register(&gvd_fvfs, 1);
    if (rc != SQLITE_OK)
        gvd_real = NULL;
    return rc;
}

void gvd_faultvfs_set(gvd_fault_kind kind)
{
    gvd_fault = kind;
}

unsigned long gvd_faultvfs_failures(void)
{
    return gvd_failures;
}
