/* galvani CLI: live progress from galvanid's Server-Sent Events stream
 * (`galvani watch`, `galvani run --follow`). */
#ifndef GALVANI_CLI_WATCH_H
#define GALVANI_CLI_WATCH_H

#include "http.h"

#include <stddef.h>

typedef struct gvc_watch_opts {
    const long long *ids;   /* jobs to watch; NULL/0 = every job */
    size_t nids;
    int tty;                /* redraw bars in place with escape codes */
    int json;               /* print each event's JSON, one per line */
} gvc_watch_opts;

/* Stream GET /events and show the jobs until every watched job has finished
 * (with ids) or the stream ends.  Returns the CLI exit status: 0, or 1 after
 * printing why (unreachable, unknown job, stream lost).  With exactly one id,
 * *job_exit (may be NULL) receives that job's exit status as a shell would
 * report it: exit_code, 128+signal, or 1 for a job that failed/was cancelled
 * without either. */
int gvc_watch(gvc_http *h, const gvc_watch_opts *opts, int *job_exit);

#endif
