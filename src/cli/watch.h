/* galvani CLI: live progress from galvanid's Server-Sent Events stream
 * (`galvani watch`). */
#ifndef GALVANI_CLI_WATCH_H
#define GALVANI_CLI_WATCH_H

#include "http.h"

#include <stddef.h>

typedef struct gvc_watch_opts {
    const long long *ids;   /* jobs to watch; NULL/0 = every job */
    size_t nids;
    int tty;                /* a frame redrawn in place, fitted to the terminal; q quits */
    int json;               /* print each event's JSON, one per line */
} gvc_watch_opts;

/* Stream GET /events and show the jobs until every watched job has finished
 * (with ids), or the user quits (q, Ctrl-C).  When galvanid goes away after
 * the first snapshot, the last frame stays with a "reconnecting" line and
 * the stream is opened again until it comes back.  Returns the exit status:
 * 1 after printing why (unreachable at the start, unknown job, refused);
 * with ids, that of the first watched job that did not succeed
 * (gvc_job_exit_status), else 0. */
int gvc_watch(gvc_http *h, const gvc_watch_opts *opts);

#endif
