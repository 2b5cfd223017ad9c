/*
 * spawner.h — galvanid's side of the supervisors' fork server.
 *
 * Every process job runs under its own supervisor (galvani-shim, shim.h).
 * Starting one was a posix_spawn of galvani-shim per job: an exec, whose
 * dynamic loader probes the CPU's caches with `cpuid` — a trap to the
 * hypervisor on a virtual machine, each time — before the shim's first
 * line; on the benchmark machine a quarter of the core while jobs were
 * created (docs/benchmarks.md, target 6).  Instead galvanid starts
 * `galvani-shim --serve` once, at the first job, and asks it for each
 * supervisor: it forks and its child runs the supervisor set up exactly as
 * an exec'd one (shim/serve.c says how).  Supervisors still belong to
 * init, not to galvanid nor to the server, and outlive both.
 *
 * Failure is never fatal: if the server cannot be started, dies, or does
 * not answer within a second, gvd_spawner_spawn returns -ESRCH (and logs
 * it once) and the runner starts the supervisor with posix_spawn, as it
 * does from then on.  The server exits when galvanid closes its end
 * (gvd_spawner_free) or dies.
 */
#ifndef GALVANI_DAEMON_SPAWNER_H
#define GALVANI_DAEMON_SPAWNER_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct gvd_spawner gvd_spawner;

/* A spawner that starts its server at the first gvd_spawner_spawn.  NULL
 * when out of memory. */
gvd_spawner *gvd_spawner_new(void);

/* Start a supervisor for run_dir with conn_fd as its fd 3 and lock_fd as
 * its fd 4 (both stay open here: the caller closes its copies).  shim_bin is
 * the galvani-shim binary, started with --serve if the server is not
 * running yet.  Returns the pid of the supervisor's first process (a
 * session and group leader that forks the supervisor and exits; the server
 * reaps it), or -errno: -ESRCH when there is no server (it failed, now or
 * before: nothing was sent), -ECONNABORTED when it failed after taking the
 * request (a supervisor may have been forked with conn_fd and lock_fd: do
 * not hand them to another one), another when its fork or the child's
 * set-up failed (nothing runs). */
pid_t gvd_spawner_spawn(gvd_spawner *sp, const char *shim_bin, const char *run_dir, int conn_fd, int lock_fd);

/* Whether a supervisor may still be asked of it (started or not yet). */
bool gvd_spawner_usable(const gvd_spawner *sp);

/* The server's pid, 0 before it was started (tests). */
pid_t gvd_spawner_pid(const gvd_spawner *sp);

/* Close our end: the server exits (the supervisors it started do not).
 * NULL is a no-op. */
void gvd_spawner_free(gvd_spawner *sp);

#endif
